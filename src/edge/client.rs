//! The client's address: the peer's, or, behind trusted proxies, the first untrusted hop of
//! `X-Forwarded-For` counted from the right (the hops a client wrote itself are not believed).

use http::HeaderValue;
use ipnet::IpNet;
use std::net::IpAddr;

/// The address to locate the client by.
pub fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut leftmost = None;
    for line in forwarded_for.rev() {
        let Ok(line) = line.to_str() else { continue };
        for hop in line.rsplit(',') {
            let Some(ip) = parse_hop(hop) else {
                // A malformed hop ends the chain of trust: what lies left of it is unknowable.
                return leftmost.or(Some(peer));
            };
            if !is_trusted(&ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
    }
    leftmost.or(Some(peer))
}

/// Whether a trusted proxy (an edge in front of this shield, a load balancer) says the client
/// spoke TLS to it: its `X-Forwarded-Proto` (the last value: the nearest proxy's) is `https`.
/// From any other peer the header is the client's own say and is not believed.
pub fn forwarded_https<'a>(
    peer: Option<IpAddr>,
    mut forwarded_proto: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted: &[IpNet],
) -> bool {
    let Some(peer) = peer else { return false };
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return false;
    }
    forwarded_proto
        .next_back()
        .and_then(|line| line.to_str().ok()?.rsplit(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// One `X-Forwarded-For` hop: an address, possibly with a port or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(lines: &[&str]) -> Vec<HeaderValue> {
        lines
            .iter()
            .map(|l| HeaderValue::from_str(l).unwrap())
            .collect()
    }

    fn trusted() -> Vec<IpNet> {
        vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = xff(&["203.0.113.9"]);
        assert_eq!(
            client_ip(Some(ip("198.51.100.1")), h.iter(), &trusted()),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        // The client forged the first hop; the proxy chain 10.0.0.5 appended the real one.
        let h = xff(&["1.2.3.4, 203.0.113.9", "10.0.0.5"]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), h.iter(), &trusted()),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn hops_with_ports_and_brackets_are_understood() {
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), h.iter(), &trusted()),
            Some(ip("2001:db8::1"))
        );
        let h = xff(&["203.0.113.9:5000"]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), h.iter(), &trusted()),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn without_forwarded_for_or_when_all_hops_are_trusted() {
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), xff(&[]).iter(), &trusted()),
            Some(ip("127.0.0.1"))
        );
        let h = xff(&["10.1.1.1, 10.2.2.2"]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), h.iter(), &trusted()),
            Some(ip("10.1.1.1"))
        );
        let garbage = xff(&["not-an-ip"]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), garbage.iter(), &trusted()),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(client_ip(None, xff(&[]).iter(), &trusted()), None);
    }

    #[test]
    fn x_forwarded_proto_counts_only_from_a_trusted_peer_and_its_last_value() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let https = xff(&["https"]);
        assert!(forwarded_https(
            Some(ip("10.1.2.3")),
            https.iter(),
            &trusted
        ));
        assert!(!forwarded_https(
            Some(ip("192.0.2.1")),
            https.iter(),
            &trusted
        ));
        assert!(!forwarded_https(None, https.iter(), &trusted));
        let spoofed = xff(&["https, http"]);
        assert!(!forwarded_https(
            Some(ip("10.1.2.3")),
            spoofed.iter(),
            &trusted
        ));
        let lines = xff(&["http", " HTTPS "]);
        assert!(forwarded_https(
            Some(ip("10.1.2.3")),
            lines.iter(),
            &trusted
        ));
        assert!(!forwarded_https(
            Some(ip("10.1.2.3")),
            xff(&[]).iter(),
            &trusted
        ));
    }
}
