//! The zones as an index from owner name to record sets, and the lookup that decides between
//! an answer, NXDOMAIN and REFUSED.

use crate::config::dns::{DnsSettings, GeoRecord, RecordValue, Zone};
use crate::config::runtime::{Region, RegionId};
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::IpAddr;

/// Every zone of the server, most specific apex first.
#[derive(Debug)]
pub struct Zones {
    zones: Vec<ZoneIndex>,
}

/// One zone, indexed by lower-case owner name.
#[derive(Debug)]
pub struct ZoneIndex {
    pub apex: LowerName,
    /// The SOA as the authority section of a negative answer carries it: TTL is the lesser
    /// of its own and the negative TTL (RFC 2308 §3).
    pub negative_soa: Record,
    /// aHash rather than SipHash: this is hashed on every query, and aHash stays keyed
    /// per process, so crafted names cannot pick collisions.
    nodes: HashMap<LowerName, Node, ahash::RandomState>,
}

/// Everything at one owner name. A node with nothing is an empty non-terminal: the name
/// exists (NODATA, not NXDOMAIN) because names below it do.
#[derive(Debug, Default)]
pub struct Node {
    /// Static record sets, one per type (the apex holds its SOA and NS here).
    pub rrsets: Vec<Vec<Record>>,
    pub cname: Option<Record>,
    pub geo: Option<GeoNode>,
}

/// A geo record, with the records of each candidate prebuilt so answering only copies.
#[derive(Debug)]
pub struct GeoNode {
    /// Dense index of this geo record across all zones (for per-record metric handles).
    pub id: usize,
    /// The owner name as text, for metrics and status.
    pub label: String,
    pub ttl: u32,
    pub answers: usize,
    /// Candidates with at least one IPv4 address, and their A records.
    pub v4: Candidates,
    /// Candidates with at least one IPv6 address, and their AAAA records.
    pub v6: Candidates,
    /// Every candidate region (for status and metrics).
    pub regions: Vec<RegionId>,
}

/// The regions that can answer one address family, with their records.
#[derive(Debug, Default)]
pub struct Candidates {
    pub regions: Vec<RegionId>,
    /// `records[i]` belongs to `regions[i]`.
    pub records: Vec<Vec<Record>>,
    /// Answered when no candidate is healthy; empty: every candidate, nearest first.
    pub fallback: Vec<Record>,
}

/// Where a query name falls.
#[derive(Debug)]
pub enum Found<'a> {
    /// In none of our zones.
    NotOurs,
    /// In a zone, but no such name.
    NxDomain(&'a ZoneIndex),
    Node(&'a ZoneIndex, &'a Node),
}

impl Zones {
    /// Indexes the validated zones of `dns`.
    pub fn build(dns: &DnsSettings, regions: &[Region]) -> Zones {
        let mut geo_ids = 0..;
        let mut zones: Vec<ZoneIndex> = dns
            .zones
            .iter()
            .map(|z| index_zone(z, regions, &mut geo_ids))
            .collect();
        // Longest apex first, so a child zone wins over its parent.
        zones.sort_by_key(|z| std::cmp::Reverse(z.apex.num_labels()));
        Zones { zones }
    }

    /// No zones: every query is refused.
    pub fn empty() -> Zones {
        Zones { zones: Vec::new() }
    }

    /// The zone and node for `name`.
    pub fn find(&self, name: &LowerName) -> Found<'_> {
        let Some(zone) = self.zones.iter().find(|z| z.apex.zone_of(name)) else {
            return Found::NotOurs;
        };
        match zone.nodes.get(name) {
            Some(node) => Found::Node(zone, node),
            None => Found::NxDomain(zone),
        }
    }

    /// The apex of every zone.
    pub fn apexes(&self) -> impl Iterator<Item = &LowerName> {
        self.zones.iter().map(|z| &z.apex)
    }

    /// Every geo record, in no particular order.
    pub fn geo_nodes(&self) -> impl Iterator<Item = &GeoNode> {
        self.zones
            .iter()
            .flat_map(|z| z.nodes.values().filter_map(|n| n.geo.as_ref()))
    }
}

impl Node {
    /// The static record set of `rtype` here, if any.
    pub fn rrset(&self, rtype: RecordType) -> Option<&[Record]> {
        self.rrsets
            .iter()
            .find(|set| set.first().is_some_and(|r| r.record_type() == rtype))
            .map(Vec::as_slice)
    }
}

fn index_zone(z: &Zone, regions: &[Region], geo_ids: &mut std::ops::RangeFrom<usize>) -> ZoneIndex {
    let soa = SOA::new(
        z.ns.first().cloned().unwrap_or_else(|| z.apex.clone()),
        z.hostmaster.clone(),
        z.serial,
        z.refresh,
        z.retry,
        z.expire,
        z.negative_ttl,
    );
    let mut nodes: HashMap<LowerName, Node, ahash::RandomState> = HashMap::default();
    let apex_node = nodes.entry(LowerName::new(&z.apex)).or_default();
    apex_node.rrsets.push(vec![Record::from_rdata(
        z.apex.clone(),
        z.ttl,
        RData::SOA(soa.clone()),
    )]);
    apex_node.rrsets.push(
        z.ns.iter()
            .map(|ns| Record::from_rdata(z.apex.clone(), z.ttl, RData::NS(NS(ns.clone()))))
            .collect(),
    );
    for record in &z.records {
        let node = nodes.entry(LowerName::new(&record.name)).or_default();
        match &record.value {
            RecordValue::Static(data) => {
                let set: Vec<Record> = data
                    .iter()
                    .map(|d| Record::from_rdata(record.name.clone(), record.ttl, d.clone()))
                    .collect();
                if data
                    .first()
                    .is_some_and(|d| d.record_type() == RecordType::CNAME)
                {
                    node.cname = set.into_iter().next();
                } else {
                    node.rrsets.push(set);
                }
            }
            RecordValue::Geo(geo) => {
                let id = geo_ids.next().unwrap_or(usize::MAX);
                node.geo = Some(geo_node(id, &record.name, record.ttl, geo, regions));
            }
        }
        add_empty_non_terminals(&mut nodes, &record.name, &z.apex);
    }
    ZoneIndex {
        apex: LowerName::new(&z.apex),
        negative_soa: Record::from_rdata(
            z.apex.clone(),
            z.ttl.min(z.negative_ttl),
            RData::SOA(soa),
        ),
        nodes,
    }
}

/// Names between a record's owner and the apex exist even without records of their own.
fn add_empty_non_terminals(
    nodes: &mut HashMap<LowerName, Node, ahash::RandomState>,
    name: &Name,
    apex: &Name,
) {
    let mut parent = name.base_name();
    while parent.num_labels() > apex.num_labels() {
        nodes.entry(LowerName::new(&parent)).or_default();
        parent = parent.base_name();
    }
}

fn geo_node(id: usize, name: &Name, ttl: u32, geo: &GeoRecord, regions: &[Region]) -> GeoNode {
    let family = |v4: bool| {
        let mut c = Candidates::default();
        for &id in &geo.regions {
            let Some(region) = regions.get(id) else {
                continue;
            };
            let records: Vec<Record> = addresses(&region.dns_addresses, v4)
                .map(|ip| Record::from_rdata(name.clone(), ttl, address_rdata(ip)))
                .collect();
            if !records.is_empty() {
                c.regions.push(id);
                c.records.push(records);
            }
        }
        c.fallback = addresses(&geo.fallback, v4)
            .map(|ip| Record::from_rdata(name.clone(), ttl, address_rdata(ip)))
            .collect();
        c
    };
    GeoNode {
        id,
        label: name.to_ascii(),
        ttl,
        answers: geo.answers,
        v4: family(true),
        v6: family(false),
        regions: geo.regions.clone(),
    }
}

fn addresses(list: &[IpAddr], v4: bool) -> impl Iterator<Item = IpAddr> + '_ {
    list.iter().copied().filter(move |ip| ip.is_ipv4() == v4)
}

fn address_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(v4.into()),
        IpAddr::V6(v6) => RData::AAAA(v6.into()),
    }
}
