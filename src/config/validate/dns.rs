//! Validation of `[dns]`: listeners, zones and their records, each error naming its key.

use super::*;
use crate::config::dns::{DnsSettings, GeoRecord, RecordValue, Zone, ZoneRecord};
use crate::config::file::{DnsRecordFile, ZoneFile};
use crate::config::runtime::RegionId;
use hickory_proto::rr::{rdata, Name, RData, RecordType};

/// RFC 8900 / DNS Flag Day 2020: fits an unfragmented IPv6 packet on any path.
const DEFAULT_MAX_UDP_PAYLOAD: i64 = 1232;
const DEFAULT_ZONE_TTL: i64 = 3600;
const DEFAULT_GEO_TTL: i64 = 30;
const DEFAULT_NEGATIVE_TTL: i64 = 300;
const DEFAULT_REFRESH: i64 = 3600;
const DEFAULT_RETRY: i64 = 900;
const DEFAULT_EXPIRE: i64 = 604_800;
const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(10);
/// RFC 2181 §8: TTLs are 31-bit.
const MAX_TTL: i64 = i32::MAX as i64;
const STATIC_TYPES: &str = "geo, A, AAAA, CNAME, TXT, MX, CAA";

impl Builder<'_> {
    pub(super) fn dns(&mut self, f: &FileConfig, regions: &[Region]) -> Option<DnsSettings> {
        let d = f.dns.as_ref()?;
        let listen = self.addr_list(&d.listen, "dns.listen");
        if d.listen.get_ref().is_empty() {
            self.push_hint(
                d.listen.span(),
                "dns.listen",
                "no DNS listen address",
                "give at least one, e.g. [\"127.0.0.1:5353\"]",
            );
        }
        if d.zones.is_empty() {
            self.push_hint(
                d.listen.span(),
                "dns.zones",
                "no zone: the server would refuse every query",
                "add a [[dns.zones]] table, or remove [dns]",
            );
        }
        let max_udp_payload = self.count(
            &d.max_udp_payload,
            "dns.max_udp_payload",
            DEFAULT_MAX_UDP_PAYLOAD,
            512,
            i64::from(u16::MAX),
        ) as u16;
        let threads = self.count(&d.threads, "dns.threads", 1, 1, 256) as usize;
        let tcp_idle_timeout = self.duration(
            &d.tcp_idle_timeout,
            "dns.tcp_idle_timeout",
            DEFAULT_TCP_IDLE,
        );
        let mut apexes: HashMap<Name, usize> = HashMap::new();
        let mut zones = Vec::with_capacity(d.zones.len());
        for (i, z) in d.zones.iter().enumerate() {
            if let Some(zone) = self.zone(z, &format!("dns.zones[{i}]"), regions) {
                if let Some(first) = apexes.insert(zone.apex.clone(), i) {
                    self.push(
                        z.name.span(),
                        format!("dns.zones[{i}].name"),
                        format!(
                            "zone {} is already defined by dns.zones[{first}]",
                            zone.apex
                        ),
                    );
                }
                zones.push(zone);
            }
        }
        Some(DnsSettings {
            listen,
            max_udp_payload,
            threads,
            tcp_idle_timeout,
            zones,
        })
    }

    fn zone(&mut self, z: &ZoneFile, key: &str, regions: &[Region]) -> Option<Zone> {
        let apex = self.absolute_name(z.name.get_ref(), z.name.span(), &format!("{key}.name"))?;
        if z.ns.get_ref().is_empty() {
            self.push_hint(
                z.ns.span(),
                format!("{key}.ns"),
                "a zone needs at least one name server",
                "e.g. ns = [\"ns1.example.test\"]",
            );
        }
        let ns: Vec<Name> =
            z.ns.get_ref()
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    self.absolute_name(n.get_ref(), n.span(), &format!("{key}.ns[{i}]"))
                })
                .collect();
        // Accept the mailbox as people write it: hostmaster@example.test.
        let mailbox = z.hostmaster.get_ref().trim().replacen('@', ".", 1);
        let hostmaster = self
            .absolute_name(&mailbox, z.hostmaster.span(), &format!("{key}.hostmaster"))
            .unwrap_or_else(Name::root);
        let serial = self.count(
            &z.serial,
            &format!("{key}.serial"),
            unix_now_secs(),
            0,
            i64::from(u32::MAX),
        ) as u32;
        let ttl = self.ttl(&z.ttl, &format!("{key}.ttl"), DEFAULT_ZONE_TTL);
        let refresh = self.ttl(&z.refresh, &format!("{key}.refresh"), DEFAULT_REFRESH) as i32;
        let retry = self.ttl(&z.retry, &format!("{key}.retry"), DEFAULT_RETRY) as i32;
        let expire = self.ttl(&z.expire, &format!("{key}.expire"), DEFAULT_EXPIRE) as i32;
        let negative_ttl = self.ttl(
            &z.negative_ttl,
            &format!("{key}.negative_ttl"),
            DEFAULT_NEGATIVE_TTL,
        );
        let mut records = Vec::with_capacity(z.records.len());
        let mut spans = Vec::with_capacity(z.records.len());
        for (i, r) in z.records.iter().enumerate() {
            let rkey = format!("{key}.records[{i}]");
            if let Some(record) = self.zone_record(r, &rkey, &apex, ttl, regions) {
                records.push(record);
                spans.push((i, r.name.span()));
            }
        }
        self.record_conflicts(&records, &spans, &apex, key);
        Some(Zone {
            apex,
            ns,
            hostmaster,
            serial,
            refresh,
            retry,
            expire,
            negative_ttl,
            ttl,
            records,
        })
    }

    fn ttl(&mut self, v: &Option<Spanned<i64>>, key: &str, default: i64) -> u32 {
        self.count(v, key, default, 0, MAX_TTL) as u32
    }

    fn zone_record(
        &mut self,
        r: &DnsRecordFile,
        key: &str,
        apex: &Name,
        zone_ttl: u32,
        regions: &[Region],
    ) -> Option<ZoneRecord> {
        let name = self.record_name(&r.name, &format!("{key}.name"), apex);
        let kind = r.kind.get_ref().trim().to_ascii_uppercase();
        let value = if kind == "GEO" {
            if let Some(v) = &r.values {
                self.push_hint(
                    v.span(),
                    format!("{key}.values"),
                    "a geo record takes no values",
                    "its answers are the dns_addresses of its regions",
                );
            }
            let ttl = self.ttl(&r.ttl, &format!("{key}.ttl"), DEFAULT_GEO_TTL);
            let geo = self.geo_record(r, key, regions)?;
            (ttl, RecordValue::Geo(geo))
        } else {
            let rtype = match kind.as_str() {
                "A" => RecordType::A,
                "AAAA" => RecordType::AAAA,
                "CNAME" => RecordType::CNAME,
                "TXT" => RecordType::TXT,
                "MX" => RecordType::MX,
                "CAA" => RecordType::CAA,
                _ => {
                    self.push_hint(
                        r.kind.span(),
                        format!("{key}.type"),
                        format!(
                            "{:?} is not a record type Meridian serves",
                            r.kind.get_ref()
                        ),
                        format!("write one of {STATIC_TYPES}"),
                    );
                    return None;
                }
            };
            for (field, span) in [
                ("answers", r.answers.as_ref().map(|v| v.span())),
                ("regions", r.regions.as_ref().map(|v| v.span())),
                ("edges", r.edges.as_ref().map(|v| v.span())),
                ("fallback", r.fallback.as_ref().map(|v| v.span())),
            ] {
                if let Some(span) = span {
                    self.push(
                        span,
                        format!("{key}.{field}"),
                        format!("only geo records take {field}, not {kind}"),
                    );
                }
            }
            let ttl = self.ttl(&r.ttl, &format!("{key}.ttl"), i64::from(zone_ttl));
            let data = self.static_values(r, key, rtype)?;
            (ttl, RecordValue::Static(data))
        };
        Some(ZoneRecord {
            name: name?,
            ttl: value.0,
            value: value.1,
        })
    }

    fn geo_record(
        &mut self,
        r: &DnsRecordFile,
        key: &str,
        regions: &[Region],
    ) -> Option<GeoRecord> {
        let answers = self.count(&r.answers, &format!("{key}.answers"), 1, 1, 64) as usize;
        let fallback = self.ip_list(r.fallback.as_ref(), &format!("{key}.fallback"));
        let mut chosen = Vec::new();
        if r.regions.is_none() && r.edges.is_none() {
            chosen = (0..regions.len())
                .filter(|&id| !regions[id].dns_addresses.is_empty())
                .collect();
            if chosen.is_empty() {
                self.push_hint(
                    r.kind.span(),
                    format!("{key}.type"),
                    "a geo record needs regions with dns_addresses, and no region has any",
                    "add dns_addresses = [\"...\"] to the [[regions]] this record answers for, or [[dns.edges]]",
                );
                return None;
            }
        }
        for (field, edges) in [("regions", false), ("edges", true)] {
            let list = if edges { &r.edges } else { &r.regions };
            for (i, n) in list.iter().flat_map(|l| l.get_ref().iter()).enumerate() {
                if let Some(id) = self.geo_target(n, &format!("{key}.{field}[{i}]"), regions, edges)
                {
                    if chosen.contains(&id) {
                        self.push(
                            n.span(),
                            format!("{key}.{field}[{i}]"),
                            format!("{:?} is listed twice", n.get_ref()),
                        );
                    } else {
                        chosen.push(id);
                    }
                }
            }
        }
        Some(GeoRecord {
            answers,
            regions: chosen,
            fallback,
        })
    }

    /// A region (or, with `edge`, a `[[dns.edges]]` entry) a geo record may answer.
    fn geo_target(
        &mut self,
        n: &Spanned<String>,
        key: &str,
        regions: &[Region],
        edge: bool,
    ) -> Option<RegionId> {
        let what = if edge { "edge" } else { "region" };
        let wanted = if edge {
            RegionKind::DnsEdge
        } else {
            RegionKind::Origins
        };
        let known: Vec<&str> = regions
            .iter()
            .filter(|r| r.kind == wanted)
            .map(|r| r.name.as_str())
            .collect();
        match regions
            .iter()
            .position(|r| r.kind == wanted && r.name == n.get_ref().trim())
        {
            Some(id) if regions[id].dns_addresses.is_empty() => {
                self.push_hint(
                    n.span(),
                    key,
                    format!("region {:?} has no dns_addresses", n.get_ref()),
                    "add dns_addresses = [\"...\"] to that region",
                );
                None
            }
            Some(id) => Some(id),
            None => {
                let hint = match crate::config::closest(n.get_ref(), &known) {
                    Some(c) => format!("did you mean {c:?}?"),
                    None if known.is_empty() => format!("no {what} is configured"),
                    None => format!("known {what}s: {}", known.join(", ")),
                };
                self.push_hint(
                    n.span(),
                    key,
                    format!("unknown {what} {:?}", n.get_ref()),
                    hint,
                );
                None
            }
        }
    }

    fn static_values(
        &mut self,
        r: &DnsRecordFile,
        key: &str,
        rtype: RecordType,
    ) -> Option<Vec<RData>> {
        let Some(values) = &r.values else {
            self.push_hint(
                r.kind.span(),
                format!("{key}.values"),
                format!("a {rtype} record needs values"),
                "e.g. values = [\"192.0.2.10\"]",
            );
            return None;
        };
        if values.get_ref().is_empty() {
            self.push(values.span(), format!("{key}.values"), "no values");
            return None;
        }
        if rtype == RecordType::CNAME && values.get_ref().len() > 1 {
            self.push(
                values.span(),
                format!("{key}.values"),
                "a CNAME has exactly one target",
            );
        }
        let mut out: Vec<RData> = Vec::with_capacity(values.get_ref().len());
        for (i, v) in values.get_ref().iter().enumerate() {
            let vkey = format!("{key}.values[{i}]");
            if let Some(data) = self.static_value(v, &vkey, rtype) {
                if out.contains(&data) {
                    self.push(v.span(), vkey, "this value is listed twice");
                } else {
                    out.push(data);
                }
            }
        }
        (out.len() == values.get_ref().len()).then_some(out)
    }

    fn static_value(&mut self, v: &Spanned<String>, key: &str, rtype: RecordType) -> Option<RData> {
        let text = v.get_ref().trim();
        let bad = |b: &mut Self, reason: String, hint: &str| {
            b.push_hint(v.span(), key, reason, hint);
            None
        };
        match rtype {
            RecordType::A => match text.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(ip)) => Some(RData::A(rdata::A(ip))),
                Ok(_) => bad(
                    self,
                    format!("{text} is not an IPv4 address"),
                    "IPv6 addresses go in an AAAA record",
                ),
                Err(_) => bad(
                    self,
                    format!("{text:?} is not an IPv4 address"),
                    "write e.g. \"192.0.2.10\"",
                ),
            },
            RecordType::AAAA => match text.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(ip)) => Some(RData::AAAA(rdata::AAAA(ip))),
                Ok(_) => bad(
                    self,
                    format!("{text} is not an IPv6 address"),
                    "IPv4 addresses go in an A record",
                ),
                Err(_) => bad(
                    self,
                    format!("{text:?} is not an IPv6 address"),
                    "write e.g. \"2001:db8::10\"",
                ),
            },
            RecordType::CNAME => {
                let target = self.absolute_name(text, v.span(), key)?;
                Some(RData::CNAME(rdata::CNAME(target)))
            }
            RecordType::MX => {
                let mut parts = text.split_whitespace();
                let (Some(pref), Some(host), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return bad(
                        self,
                        format!("{text:?} is not \"preference host\""),
                        "write e.g. \"10 mail.example.test\"",
                    );
                };
                let Ok(pref) = pref.parse::<u16>() else {
                    return bad(
                        self,
                        format!("{pref:?} is not a preference (0..=65535)"),
                        "write e.g. \"10 mail.example.test\"",
                    );
                };
                let host = self.absolute_name(host, v.span(), key)?;
                Some(RData::MX(rdata::MX::new(pref, host)))
            }
            // One TXT record per value, split into the 255-byte strings the wire format needs.
            RecordType::TXT => {
                let chunks: Vec<&[u8]> = if text.is_empty() {
                    vec![&[]]
                } else {
                    v.get_ref().as_bytes().chunks(255).collect()
                };
                Some(RData::TXT(rdata::TXT::from_bytes(chunks)))
            }
            RecordType::CAA => match RData::try_from_str(RecordType::CAA, text) {
                Ok(data) => Some(data),
                Err(e) => bad(
                    self,
                    format!("{text:?} is not a CAA value: {e}"),
                    "write flags, tag and value, e.g. \"0 issue \\\"letsencrypt.org\\\"\"",
                ),
            },
            _ => None,
        }
    }

    /// A fully qualified name; the trailing dot is optional, case is folded.
    fn absolute_name(&mut self, text: &str, span: Range<usize>, key: &str) -> Option<Name> {
        let text = text.trim();
        let bare = text.strip_suffix('.').unwrap_or(text);
        let reason = if bare.is_empty() {
            Some("empty name".to_owned())
        } else if bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some(format!("{text:?} contains whitespace"))
        } else {
            None
        };
        let parsed = match reason {
            Some(r) => Err(r),
            None => {
                Name::from_ascii(bare).map_err(|e| format!("{text:?} is not a domain name: {e}"))
            }
        };
        match parsed {
            Ok(mut name) => {
                name.set_fqdn(true);
                Some(name.to_lowercase())
            }
            Err(reason) => {
                self.push(span, key, reason);
                None
            }
        }
    }

    /// A record's owner: `@`, a name relative to the zone, or an absolute name ending in `.`.
    fn record_name(&mut self, v: &Spanned<String>, key: &str, apex: &Name) -> Option<Name> {
        let text = v.get_ref().trim();
        if text == "@" {
            return Some(apex.clone());
        }
        if text.ends_with('.') {
            let name = self.absolute_name(text, v.span(), key)?;
            if !apex.zone_of(&name) {
                self.push(v.span(), key, format!("{name} is outside the zone {apex}"));
                return None;
            }
            return Some(name);
        }
        let apex_text = apex.to_ascii();
        let apex_bare = apex_text.trim_end_matches('.');
        let lower = text.to_ascii_lowercase();
        if lower == apex_bare || lower.ends_with(&format!(".{apex_bare}")) {
            self.push_hint(
                v.span(),
                key,
                format!("{text:?} is relative to the zone, so it names {text}.{apex_text}"),
                format!("write the part before .{apex_bare} (or \"@\"), or end an absolute name with a dot"),
            );
            return None;
        }
        let relative = self.absolute_name(text, v.span(), key)?;
        let mut relative = relative;
        relative.set_fqdn(false);
        match relative.append_domain(apex) {
            Ok(name) => Some(name),
            Err(e) => {
                self.push(
                    v.span(),
                    key,
                    format!("{text:?} is too long inside {apex}: {e}"),
                );
                None
            }
        }
    }

    /// RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME owner has no other data; one record set per
    /// name and type (a geo record answers both A and AAAA).
    fn record_conflicts(
        &mut self,
        records: &[ZoneRecord],
        spans: &[(usize, Range<usize>)],
        apex: &Name,
        key: &str,
    ) {
        let mut by_type: HashMap<(&Name, RecordType), usize> = HashMap::new();
        let mut cname: HashMap<&Name, usize> = HashMap::new();
        let mut other: HashMap<&Name, usize> = HashMap::new();
        for (record, (i, span)) in records.iter().zip(spans) {
            let types: Vec<RecordType> = match &record.value {
                RecordValue::Geo(_) => vec![RecordType::A, RecordType::AAAA],
                RecordValue::Static(data) => data.iter().take(1).map(RData::record_type).collect(),
            };
            let rkey = format!("{key}.records[{i}].name");
            for &t in &types {
                if let Some(first) = by_type.insert((&record.name, t), *i) {
                    self.push_hint(
                        span.clone(),
                        rkey.clone(),
                        format!(
                            "{} already has {t} data from {key}.records[{first}]",
                            record.name
                        ),
                        "put every value of one name and type in one record, with values = [...]",
                    );
                }
            }
            let is_cname = types == [RecordType::CNAME];
            if is_cname && &record.name == apex {
                self.push(
                    span.clone(),
                    rkey,
                    format!("a CNAME cannot be at the zone apex {apex}, beside its SOA and NS"),
                );
            } else if is_cname {
                if let Some(o) = other.get(&record.name) {
                    self.push(
                        span.clone(),
                        rkey,
                        format!(
                            "{} has other data (records[{o}]), so it cannot be a CNAME",
                            record.name
                        ),
                    );
                }
                cname.insert(&record.name, *i);
            } else {
                if let Some(c) = cname.get(&record.name) {
                    self.push(
                        span.clone(),
                        rkey,
                        format!(
                            "{} is a CNAME (records[{c}]) and cannot have other data",
                            record.name
                        ),
                    );
                }
                other.insert(&record.name, *i);
            }
        }
    }
}

fn unix_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
        .min(i64::from(u32::MAX))
}
