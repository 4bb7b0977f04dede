//! Metrics of the geo-DNS server: what is asked, what is answered, and how fast.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// Query types with their own label; everything else is `other`.
pub const QTYPES: [&str; 10] = [
    "A", "AAAA", "CNAME", "TXT", "MX", "CAA", "NS", "SOA", "ANY", "other",
];
/// Response codes with their own label; everything else is `other`.
pub const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
];

/// Handling-time buckets in seconds: a few microseconds (a static answer) up to 10 ms.
const HANDLE_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.01,
];

/// The DNS metric families.
pub struct DnsMetrics {
    queries: IntCounterVec,
    ecs: IntCounterVec,
    geo_answers: IntCounterVec,
    duration: HistogramVec,
}

/// Handles resolved once, so answering a query touches only atomics.
pub struct DnsHandles {
    /// `[qtype][rcode]`, indexed as [`QTYPES`] and [`RCODES`].
    queries: [[IntCounter; RCODES.len()]; QTYPES.len()],
    ecs_present: IntCounter,
    ecs_absent: IntCounter,
    pub udp_duration: Histogram,
    pub tcp_duration: Histogram,
}

impl DnsHandles {
    /// Counts one answered query; `qtype` is `None` when the query could not be read.
    pub fn query(&self, qtype: Option<RecordType>, rcode: ResponseCode, ecs: bool) {
        let t = qtype.map_or(QTYPES.len() - 1, qtype_index);
        if let Some(c) = self
            .queries
            .get(t)
            .and_then(|row| row.get(rcode_index(rcode)))
        {
            c.inc();
        }
        if ecs {
            self.ecs_present.inc();
        } else {
            self.ecs_absent.inc();
        }
    }
}

impl DnsMetrics {
    pub(super) fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let queries = IntCounterVec::new(
            Opts::new(
                "meridian_dns_queries_total",
                "DNS queries answered, by query type and response code: what resolvers ask and \
                 how often the answer is negative or refused",
            ),
            &["qtype", "rcode"],
        )?;
        let ecs = IntCounterVec::new(
            Opts::new(
                "meridian_dns_queries_ecs_total",
                "DNS queries by whether they carried an EDNS Client Subnet option: how much \
                 traffic is placed by client network rather than by resolver",
            ),
            &["ecs"],
        )?;
        let geo_answers = IntCounterVec::new(
            Opts::new(
                "meridian_dns_geo_answers_total",
                "Geo answers by record and chosen target (a region, or \"fallback\" when none \
                 was healthy): where DNS is sending clients",
            ),
            &["record", "target"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "meridian_dns_handle_duration_seconds",
                "Time from a parsed query to its response being queued, by transport",
            )
            .buckets(HANDLE_BUCKETS.to_vec()),
            &["transport"],
        )?;
        registry.register(Box::new(queries.clone()))?;
        registry.register(Box::new(ecs.clone()))?;
        registry.register(Box::new(geo_answers.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(DnsMetrics {
            queries,
            ecs,
            geo_answers,
            duration,
        })
    }

    /// Resolves the per-query handles (their series appear at zero from then on).
    pub fn handles(&self) -> DnsHandles {
        DnsHandles {
            queries: QTYPES.map(|t| RCODES.map(|r| self.queries.with_label_values(&[t, r]))),
            ecs_present: self.ecs.with_label_values(&["present"]),
            ecs_absent: self.ecs.with_label_values(&["absent"]),
            udp_duration: self.duration.with_label_values(&["udp"]),
            tcp_duration: self.duration.with_label_values(&["tcp"]),
        }
    }

    /// The counter of answers of `record` that chose `target`.
    pub fn geo_answer(&self, record: &str, target: &str) -> IntCounter {
        self.geo_answers.with_label_values(&[record, target])
    }
}

/// Position of `t` in [`QTYPES`].
fn qtype_index(t: RecordType) -> usize {
    match t {
        RecordType::A => 0,
        RecordType::AAAA => 1,
        RecordType::CNAME => 2,
        RecordType::TXT => 3,
        RecordType::MX => 4,
        RecordType::CAA => 5,
        RecordType::NS => 6,
        RecordType::SOA => 7,
        RecordType::ANY => 8,
        _ => 9,
    }
}

/// Position of `r` in [`RCODES`].
fn rcode_index(r: ResponseCode) -> usize {
    match r {
        ResponseCode::NoError => 0,
        ResponseCode::FormErr => 1,
        ResponseCode::ServFail => 2,
        ResponseCode::NXDomain => 3,
        ResponseCode::NotImp => 4,
        ResponseCode::Refused => 5,
        ResponseCode::BADVERS => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_indexes_match_the_label_tables() {
        assert_eq!(QTYPES[qtype_index(RecordType::AAAA)], "AAAA");
        assert_eq!(QTYPES[qtype_index(RecordType::ANY)], "ANY");
        assert_eq!(QTYPES[qtype_index(RecordType::SRV)], "other");
        assert_eq!(RCODES[rcode_index(ResponseCode::NXDomain)], "NXDOMAIN");
        assert_eq!(RCODES[rcode_index(ResponseCode::BADVERS)], "BADVERS");
        assert_eq!(RCODES[rcode_index(ResponseCode::YXDomain)], "other");
    }
}
