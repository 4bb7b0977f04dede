//! The runtime model of `[dns]`: zones as typed DNS data, ready to index and answer from.

use super::ids::RegionId;
use hickory_proto::rr::{Name, RData};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// `[dns]`.
#[derive(Debug)]
pub struct DnsSettings {
    /// UDP and TCP are served on each.
    pub listen: Vec<SocketAddr>,
    /// Upper bound on a UDP response, below the client's EDNS payload size.
    pub max_udp_payload: u16,
    /// Worker threads of the DNS service.
    pub threads: usize,
    /// Idle TCP connections are closed after this long.
    pub tcp_idle_timeout: Duration,
    pub zones: Vec<Zone>,
}

/// One zone this server is authoritative for.
#[derive(Debug)]
pub struct Zone {
    /// Fully qualified, lower-case.
    pub apex: Name,
    pub ns: Vec<Name>,
    /// The SOA RNAME (mailbox as a name).
    pub hostmaster: Name,
    pub serial: u32,
    pub refresh: i32,
    pub retry: i32,
    pub expire: i32,
    /// SOA minimum: the negative-caching TTL (RFC 2308).
    pub negative_ttl: u32,
    /// TTL of the SOA, the NS set and static records that set none.
    pub ttl: u32,
    pub records: Vec<ZoneRecord>,
}

/// A record set at one name.
#[derive(Debug)]
pub struct ZoneRecord {
    /// Fully qualified, lower-case, inside the zone.
    pub name: Name,
    pub ttl: u32,
    pub value: RecordValue,
}

/// What a name answers.
#[derive(Debug)]
pub enum RecordValue {
    /// A fixed record set of one type (every element has the same record type).
    Static(Vec<RData>),
    /// A and AAAA answers chosen per client.
    Geo(GeoRecord),
}

/// A geo record: the nearest healthy regions' `dns_addresses`.
#[derive(Debug)]
pub struct GeoRecord {
    /// How many regions to answer.
    pub answers: usize,
    /// Candidate regions, each with at least one DNS address.
    pub regions: Vec<RegionId>,
    /// Answered when no candidate is healthy; empty: every candidate, nearest first.
    pub fallback: Vec<IpAddr>,
}
