//! The address a client is counted under by the rate limit and the connection caps: its IPv4
//! address, or its IPv6 address cut to `[limits] ipv6_prefix` bits (a /64 by default), so one
//! host cannot escape a limit by rotating addresses inside its own network.

use std::net::{IpAddr, Ipv6Addr};

/// `ip` as counted: IPv4 (and IPv4-mapped IPv6) as is, IPv6 masked to `prefix` bits.
pub fn client_key(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u32::from(prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_addresses_of_one_prefix_share_a_key() {
        let a = client_key(v6("2001:db8:1:2:aaaa::1"), 64);
        let b = client_key(v6("2001:db8:1:2:ffff:1:2:3"), 64);
        let other = client_key(v6("2001:db8:1:3::1"), 64);
        assert_eq!(a, b);
        assert_eq!(a, v6("2001:db8:1:2::"));
        assert_ne!(a, other);
        assert_eq!(client_key(v6("2001:db8::1"), 128), v6("2001:db8::1"));
        assert_eq!(client_key(v6("2001:db8::1"), 48), v6("2001:db8::"));
    }

    #[test]
    fn ipv4_and_mapped_ipv4_are_counted_per_address() {
        let v4: IpAddr = [192, 0, 2, 7].into();
        assert_eq!(client_key(v4, 64), v4);
        assert_eq!(client_key(v6("::ffff:192.0.2.7"), 64), v4);
    }
}
