//! The hickory `RequestHandler`: authoritative answers from the zones, and geo answers per
//! client network with the ECS scope echoed (the stock catalog drops the ECS option).

use super::ecs;
use super::geo_answer::choose;
use super::zone::{Found, GeoNode, Node, Zones};
use crate::config::runtime::{RegionId, Runtime};
use crate::geo::distance::GeoPoint;
use crate::metrics::dns::DnsHandles;
use crate::metrics::Metrics;
use crate::regions::state::HealthView;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode};
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageRequest, MessageResponse, MessageResponseBuilder};
use prometheus::IntCounter;
use std::iter::Empty;
use std::net::{IpAddr, SocketAddr};
use std::slice::Iter;
use std::sync::Arc;
use std::time::Instant;

/// CNAMEs followed inside our zones before giving up (a loop is a config mistake).
const MAX_CNAME_CHAIN: usize = 8;

/// Answers queries for the configured zones.
pub struct DnsHandler {
    zones: Zones,
    rt: Arc<Runtime>,
    view: Arc<HealthView>,
    metrics: DnsHandles,
    /// Indexed by [`GeoNode::id`].
    geo_counters: Vec<GeoCounters>,
    max_udp_payload: u16,
}

/// Per geo record: one counter per candidate region, and one for fallback answers.
struct GeoCounters {
    by_region: Vec<(RegionId, IntCounter)>,
    fallback: IntCounter,
}

/// Everything of a response but its encoding.
#[derive(Debug, Default)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    /// Present when the query had EDNS (RFC 6891 §7: no OPT to a client that sent none).
    pub edns: Option<Edns>,
}

/// Who is asking, located at most once per query and only if a geo record needs it.
struct Client<'a> {
    src: IpAddr,
    ecs: Option<&'a ClientSubnet>,
    located: Option<(Option<GeoPoint>, u8)>,
}

/// A shared handle, so the admin API can read the zones the server answers from.
#[derive(Clone)]
pub struct SharedHandler(pub super::LiveHandler);

impl DnsHandler {
    /// Indexes `rt.dns` (empty when absent) and resolves its metric handles.
    pub fn new(rt: Arc<Runtime>, view: Arc<HealthView>, metrics: &Metrics) -> DnsHandler {
        let (zones, max_udp_payload) = match &rt.dns {
            Some(dns) => (Zones::build(dns, &rt.regions), dns.max_udp_payload),
            None => (Zones::empty(), 1232),
        };
        let mut geo: Vec<&GeoNode> = zones.geo_nodes().collect();
        geo.sort_by_key(|g| g.id);
        let geo_counters = geo
            .iter()
            .map(|g| GeoCounters {
                by_region: g
                    .regions
                    .iter()
                    .filter_map(|&id| {
                        let name = &rt.regions.get(id)?.name;
                        Some((id, metrics.dns.geo_answer(&g.label, name)))
                    })
                    .collect(),
                fallback: metrics.dns.geo_answer(&g.label, "fallback"),
            })
            .collect();
        DnsHandler {
            zones,
            metrics: metrics.dns.handles(),
            geo_counters,
            max_udp_payload,
            rt,
            view,
        }
    }

    pub(super) fn runtime(&self) -> &Runtime {
        &self.rt
    }

    pub(super) fn view(&self) -> &HealthView {
        &self.view
    }

    /// The zones answered from.
    pub fn zones(&self) -> &Zones {
        &self.zones
    }

    /// The reply to `request`, sent from `src`.
    pub fn reply(&self, request: &MessageRequest, src: IpAddr) -> Reply {
        let mut reply = Reply::default();
        // EDNS first: an unknown version is answered BADVERS before anything else is read.
        let mut ecs = None;
        if let Some(edns) = &request.edns {
            let mut out = Edns::new();
            out.set_max_payload(edns.max_payload().clamp(512, self.max_udp_payload.max(512)));
            reply.edns = Some(out);
            if edns.version() > 0 {
                reply.rcode = ResponseCode::BADVERS;
                return reply;
            }
            match ecs::client_subnet(Some(edns)) {
                Ok(subnet) => ecs = subnet,
                Err(_) => {
                    reply.rcode = ResponseCode::FormErr;
                    return reply;
                }
            }
        }
        if request.metadata.op_code != OpCode::Query {
            reply.rcode = ResponseCode::NotImp;
            return reply;
        }
        let [query] = request.queries.queries() else {
            reply.rcode = ResponseCode::FormErr;
            return reply;
        };
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            // Only the Internet class is served, and zones are not transferred.
            reply.rcode = ResponseCode::Refused;
            return reply;
        }
        let mut client = Client {
            src,
            ecs: ecs.as_ref(),
            located: None,
        };
        self.resolve(query.name(), qtype, &mut client, &mut reply);
        if let (Some(out), Some(subnet)) = (reply.edns.as_mut(), ecs.as_ref()) {
            // An answer that did not depend on the client holds for every network: scope 0.
            let scope = client.located.map_or(0, |(_, scope)| scope);
            out.options_mut().insert(ecs::echo(subnet, scope));
        }
        reply
    }

    fn resolve(
        &self,
        qname: &LowerName,
        qtype: RecordType,
        client: &mut Client<'_>,
        reply: &mut Reply,
    ) {
        let mut chased: Option<LowerName> = None;
        for _ in 0..MAX_CNAME_CHAIN {
            let name = chased.as_ref().unwrap_or(qname);
            match self.zones.find(name) {
                Found::NotOurs => {
                    // A CNAME that leaves our zones ends the answer there (the resolver
                    // follows it); a query outside them is not ours to answer.
                    if reply.answers.is_empty() {
                        reply.rcode = ResponseCode::Refused;
                    }
                    return;
                }
                Found::NxDomain(zone) => {
                    reply.authoritative = true;
                    reply.rcode = ResponseCode::NXDomain;
                    reply.authorities.push(zone.negative_soa.clone());
                    return;
                }
                Found::Node(zone, node) => {
                    reply.authoritative = true;
                    if let Some(cname) = &node.cname {
                        reply.answers.push(cname.clone());
                        let target = match &cname.data {
                            RData::CNAME(c) => Some(LowerName::new(&c.0)),
                            _ => None,
                        };
                        match target {
                            Some(t) if !matches!(qtype, RecordType::CNAME | RecordType::ANY) => {
                                chased = Some(t);
                                continue;
                            }
                            _ => return,
                        }
                    }
                    let before = reply.answers.len();
                    self.node_answers(node, qtype, client, reply);
                    if reply.answers.len() == before {
                        // NODATA (RFC 2308 §2.2): the name exists, the type does not.
                        reply.authorities.push(zone.negative_soa.clone());
                    }
                    return;
                }
            }
        }
        log::warn!("dns: CNAME chain from {qname} is longer than {MAX_CNAME_CHAIN}");
        reply.rcode = ResponseCode::ServFail;
    }

    fn node_answers(
        &self,
        node: &Node,
        qtype: RecordType,
        client: &mut Client<'_>,
        reply: &mut Reply,
    ) {
        match (qtype, &node.geo) {
            (RecordType::A, Some(geo)) => self.geo_answers(geo, true, client, reply),
            (RecordType::AAAA, Some(geo)) => self.geo_answers(geo, false, client, reply),
            (RecordType::ANY, geo) => {
                for set in &node.rrsets {
                    reply.answers.extend(set.iter().cloned());
                }
                if let Some(geo) = geo {
                    self.geo_answers(geo, true, client, reply);
                    self.geo_answers(geo, false, client, reply);
                }
            }
            (t, _) => {
                if let Some(set) = node.rrset(t) {
                    reply.answers.extend(set.iter().cloned());
                }
            }
        }
    }

    fn geo_answers(&self, geo: &GeoNode, v4: bool, client: &mut Client<'_>, reply: &mut Reply) {
        let candidates = if v4 { &geo.v4 } else { &geo.v6 };
        if candidates.regions.is_empty() {
            return;
        }
        let geoip = self.rt.geoip.as_deref();
        let (point, _) = *client
            .located
            .get_or_insert_with(|| ecs::locate(geoip, client.ecs, client.src));
        let from = point.unwrap_or(self.rt.node.location);
        let choice = choose(candidates, geo.answers, &self.rt.regions, &self.view, from);
        let counters = self.geo_counters.get(geo.id);
        if choice.none_healthy && !candidates.fallback.is_empty() {
            reply.answers.extend(candidates.fallback.iter().cloned());
        } else {
            for &i in &choice.picked {
                if let Some(records) = candidates.records.get(i) {
                    reply.answers.extend(records.iter().cloned());
                }
            }
        }
        if let Some(c) = counters {
            if choice.none_healthy {
                c.fallback.inc();
            } else {
                for &i in &choice.picked {
                    let id = candidates.regions.get(i).copied();
                    if let Some((_, counter)) = c.by_region.iter().find(|(r, _)| Some(*r) == id) {
                        counter.inc();
                    }
                }
            }
        }
    }
}

impl DnsHandler {
    /// Answers one UDP datagram into `out`. False when it gets no answer at all: shorter
    /// than a header, or itself a response (answering those would make us a reflector).
    pub fn answer_udp(&self, datagram: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> bool {
        let started = Instant::now();
        if datagram.len() < HEADER_LEN || datagram[2] & 0x80 != 0 {
            return false;
        }
        match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
            Ok(request) => {
                let rcode = self.encode_udp(&request, src.ip(), out);
                self.observe(&request, rcode, Protocol::Udp, started);
            }
            Err(_) => {
                formerr(datagram, out);
                self.metrics.query(None, ResponseCode::FormErr, false);
            }
        }
        true
    }

    /// Encodes the reply to `request` into `out`, truncated (TC) to the UDP payload size the
    /// client allows: 512 without EDNS, else its size capped at `max_udp_payload`.
    fn encode_udp(&self, request: &MessageRequest, src: IpAddr, out: &mut Vec<u8>) -> ResponseCode {
        let reply = self.reply(request, src);
        let metadata = response_metadata(request, &reply);
        let limit = reply.edns.as_ref().map_or(512, Edns::max_payload);
        let response = response(request, &reply, metadata);
        let mut encoder = BinEncoder::new(out);
        encoder.set_max_size(limit);
        match response.destructive_emit(&mut encoder) {
            Ok(_) => reply.rcode,
            Err(e) => {
                log::warn!("dns: encoding an answer failed: {e}");
                out.clear();
                let mut header = metadata;
                header.response_code = ResponseCode::ServFail;
                let header = Header {
                    metadata: header,
                    counts: HeaderCounts::default(),
                };
                if header.emit(&mut BinEncoder::new(out)).is_err() {
                    out.clear();
                }
                ResponseCode::ServFail
            }
        }
    }

    fn observe(
        &self,
        request: &MessageRequest,
        rcode: ResponseCode,
        protocol: Protocol,
        started: Instant,
    ) {
        let qtype = request.queries.queries().first().map(|q| q.query_type());
        let has_ecs = request
            .edns
            .as_ref()
            .is_some_and(|e| e.option(EdnsCode::Subnet).is_some());
        self.metrics.query(qtype, rcode, has_ecs);
        let duration = match protocol {
            Protocol::Udp => &self.metrics.udp_duration,
            _ => &self.metrics.tcp_duration,
        };
        duration.observe(started.elapsed().as_secs_f64());
    }
}

const HEADER_LEN: usize = 12;

/// A header-only FORMERR for a datagram whose header is readable but whose body is not
/// (RFC 1035 §4.1.1): same id, opcode and RD, QR set, no sections.
fn formerr(datagram: &[u8], out: &mut Vec<u8>) {
    let opcode_and_rd = datagram[2] & 0x79;
    out.extend_from_slice(&[datagram[0], datagram[1], 0x80 | opcode_and_rd, 0x01]);
    out.extend_from_slice(&[0; 8]);
}

/// The response to `request` carrying `reply`, for hickory to encode.
fn response<'a>(
    request: &'a MessageRequest,
    reply: &'a Reply,
    metadata: Metadata,
) -> MessageResponse<'a, 'a, Iter<'a, Record>, Iter<'a, Record>, Empty<&'a Record>, Empty<&'a Record>>
{
    MessageResponseBuilder::new(&request.queries, reply.edns.as_ref()).build(
        metadata,
        reply.answers.iter(),
        reply.authorities.iter(),
        std::iter::empty(),
        std::iter::empty(),
    )
}

fn response_metadata(request: &MessageRequest, reply: &Reply) -> Metadata {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.authoritative = reply.authoritative;
    metadata.response_code = reply.rcode;
    metadata
}

#[async_trait::async_trait]
impl RequestHandler for SharedHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // The zones in force when the query arrived answer it, even across a reload.
        let handler = self.0.load_full();
        let started = Instant::now();
        let reply = handler.reply(request, request.src().ip());
        let metadata = response_metadata(request, &reply);
        let response = response(request, &reply, metadata);
        let info = match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                log::debug!("dns: no response to {}: {e}", request.src());
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        };
        handler.observe(request, reply.rcode, request.protocol(), started);
        info
    }
}
