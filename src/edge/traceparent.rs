//! W3C Trace Context `traceparent`: kept when a client sends a valid one, created otherwise.

use http::HeaderValue;

/// Length of a version-00 `traceparent`: `00-` 32 hex `-` 16 hex `-` 2 hex.
const LEN: usize = 55;

/// A trace context for one request.
///
/// A started trace keeps only its ids: the header is formatted when the request is
/// forwarded, so a cache hit never pays for it.
#[derive(Debug, Clone)]
pub enum TraceParent {
    /// A valid `traceparent` the client sent, forwarded unchanged.
    FromClient(HeaderValue),
    /// A trace this node started (sampled: the node logs the request), or one whose parent is
    /// a span of this node's (`[tracing]`: the upstream attempt's).
    Started { trace_id: u128, parent_id: u64 },
    /// As `Started`, not sampled: `[tracing]` is on and decided not to trace this request.
    Unsampled { trace_id: u128, parent_id: u64 },
}

/// A client's trace context, read: the ids and whether the client sampled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub trace_id: u128,
    pub parent_id: u64,
    pub sampled: bool,
}

/// The 32 hex digits of a trace id, on the stack.
#[derive(Debug, Clone, Copy)]
pub struct TraceId([u8; 32]);

impl TraceId {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl TraceParent {
    /// Keeps `incoming` when valid (W3C Trace Context §3.2), else starts a new trace.
    pub fn from_request(incoming: Option<&HeaderValue>) -> Self {
        match incoming {
            Some(v) if is_valid(v.as_bytes()) => TraceParent::FromClient(v.clone()),
            _ => Self::new_root(),
        }
    }

    /// A new trace with random, non-zero ids.
    pub fn new_root() -> Self {
        TraceParent::Started {
            trace_id: nonzero_random_u128(),
            parent_id: nonzero_random_u64(),
        }
    }

    /// Whether the client sent this context.
    pub fn is_from_client(&self) -> bool {
        matches!(self, TraceParent::FromClient(_))
    }

    /// The trace id, parent id and sampled flag of this context.
    pub fn ids(&self) -> Ids {
        match self {
            TraceParent::FromClient(v) => {
                let field =
                    |range: std::ops::Range<usize>| v.as_bytes().get(range).map_or(0, parse_hex);
                Ids {
                    trace_id: field(3..35),
                    parent_id: u64::try_from(field(36..52)).unwrap_or(0),
                    sampled: field(53..55) & 1 == 1,
                }
            }
            TraceParent::Started {
                trace_id,
                parent_id,
            } => Ids {
                trace_id: *trace_id,
                parent_id: *parent_id,
                sampled: true,
            },
            TraceParent::Unsampled {
                trace_id,
                parent_id,
            } => Ids {
                trace_id: *trace_id,
                parent_id: *parent_id,
                sampled: false,
            },
        }
    }

    /// The trace id, for logs.
    pub fn trace_id(&self) -> TraceId {
        let mut out = [b'0'; 32];
        match self {
            TraceParent::FromClient(v) => {
                if let Some(id) = v.as_bytes().get(3..35) {
                    out.copy_from_slice(id);
                }
            }
            TraceParent::Started { trace_id, .. } | TraceParent::Unsampled { trace_id, .. } => {
                write_hex(&mut out, &trace_id.to_be_bytes())
            }
        }
        TraceId(out)
    }

    /// The `traceparent` header value to forward.
    pub fn header(&self) -> HeaderValue {
        match self {
            TraceParent::FromClient(v) => v.clone(),
            TraceParent::Started {
                trace_id,
                parent_id,
            }
            | TraceParent::Unsampled {
                trace_id,
                parent_id,
            } => {
                let mut buf = [0u8; LEN];
                buf[..3].copy_from_slice(b"00-");
                write_hex(&mut buf[3..35], &trace_id.to_be_bytes());
                buf[35] = b'-';
                write_hex(&mut buf[36..52], &parent_id.to_be_bytes());
                let flags: &[u8] = if matches!(self, TraceParent::Started { .. }) {
                    b"-01"
                } else {
                    b"-00"
                };
                buf[52..].copy_from_slice(flags);
                // Only hex digits and dashes: always a valid header value.
                HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static(
                    "00-00000000000000000000000000000001-0000000000000001-01",
                ))
            }
        }
    }
}

fn nonzero_random_u128() -> u128 {
    loop {
        let v = fastrand::u128(..);
        if v != 0 {
            return v;
        }
    }
}

fn nonzero_random_u64() -> u64 {
    loop {
        let v = fastrand::u64(..);
        if v != 0 {
            return v;
        }
    }
}

/// The value of lower-case hex digits (validated by [`is_valid`]; anything else reads as 0).
fn parse_hex(digits: &[u8]) -> u128 {
    digits.iter().fold(0u128, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0,
        };
        (acc << 4) | u128::from(d)
    })
}

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// Version 00 layout, lower-case hex, ids not all zero; version ff is invalid.
fn is_valid(v: &[u8]) -> bool {
    let is_hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let all_zero = |s: &[u8]| s.iter().all(|&c| c == b'0');
    // Future versions may be longer; we only understand the 00 layout of the first 55 bytes.
    let Some(head) = v.get(..LEN) else {
        return false;
    };
    let (version, trace, parent, flags) = (&head[0..2], &head[3..35], &head[36..52], &head[53..55]);
    let dashes = head[2] == b'-' && head[35] == b'-' && head[52] == b'-';
    let version_ok = is_hex(version) && version != b"ff" && (version != b"00" || v.len() == LEN);
    dashes
        && version_ok
        && is_hex(trace)
        && !all_zero(trace)
        && is_hex(parent)
        && !all_zero(parent)
        && is_hex(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_client_traceparent_is_kept() {
        let t = TraceParent::from_request(Some(&HeaderValue::from_static(GOOD)));
        assert!(t.is_from_client());
        assert_eq!(t.header(), GOOD);
        assert_eq!(t.trace_id().as_str(), "0af7651916cd43dd8448eb211c80319c");
    }

    #[test]
    fn invalid_or_absent_traceparents_are_replaced_with_a_new_valid_one() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            let t = TraceParent::from_request(Some(&HeaderValue::from_static(bad)));
            assert!(!t.is_from_client(), "{bad:?} accepted");
            assert!(is_valid(t.header().as_bytes()), "{:?}", t.header());
        }
        let t = TraceParent::from_request(None);
        let header = t.header();
        assert!(is_valid(header.as_bytes()));
        assert_eq!(&header.to_str().unwrap()[3..35], t.trace_id().as_str());
        assert_ne!(
            t.trace_id().as_str(),
            TraceParent::new_root().trace_id().as_str()
        );
    }

    #[test]
    fn ids_are_read_from_a_client_context_and_flags_follow_the_sampling() {
        let t = TraceParent::from_request(Some(&HeaderValue::from_static(GOOD)));
        assert_eq!(
            t.ids(),
            Ids {
                trace_id: 0x0af7651916cd43dd8448eb211c80319c,
                parent_id: 0xb7ad6b7169203331,
                sampled: true
            }
        );
        let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        let t = TraceParent::from_request(Some(&HeaderValue::from_static(unsampled)));
        assert!(!t.ids().sampled);
        let ours = TraceParent::Started {
            trace_id: 1,
            parent_id: 2,
        };
        assert_eq!(
            ours.header(),
            "00-00000000000000000000000000000001-0000000000000002-01"
        );
        let not_traced = TraceParent::Unsampled {
            trace_id: 1,
            parent_id: 2,
        };
        assert_eq!(
            not_traced.header(),
            "00-00000000000000000000000000000001-0000000000000002-00"
        );
    }

    #[test]
    fn future_versions_with_extra_fields_are_accepted() {
        let v = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes-next";
        assert!(TraceParent::from_request(Some(&HeaderValue::from_static(v))).is_from_client());
    }
}
