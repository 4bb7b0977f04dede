//! EDNS Client Subnet (RFC 7871): reading the option, locating the client network, and the
//! scope an answer holds for.

use crate::geo::distance::GeoPoint;
use crate::geo::GeoIp;
use hickory_proto::op::Edns;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use std::net::IpAddr;

/// Why an ECS option makes the query malformed (answered with FORMERR, RFC 7871 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    #[error("ECS SCOPE PREFIX-LENGTH must be 0 in a query")]
    ScopeInQuery,
    #[error("ECS ADDRESS has bits set beyond SOURCE PREFIX-LENGTH")]
    BitsBeyondPrefix,
}

/// The query's ECS option, if it has a well-formed one. (Unknown families and prefixes longer
/// than the address are rejected while the message is parsed, also with FORMERR.)
pub fn client_subnet(edns: Option<&Edns>) -> Result<Option<ClientSubnet>, EcsError> {
    let Some(EdnsOption::Subnet(subnet)) = edns.and_then(|e| e.option(EdnsCode::Subnet)) else {
        return Ok(None);
    };
    if subnet.scope_prefix() != 0 {
        return Err(EcsError::ScopeInQuery);
    }
    if masked(subnet.addr(), subnet.source_prefix()) != subnet.addr() {
        return Err(EcsError::BitsBeyondPrefix);
    }
    Ok(Some(*subnet))
}

/// Where the client is, if known, and the ECS scope of an answer chosen from that: the
/// prefix length of the GeoIP network that placed it, never longer than what the resolver
/// revealed. A source prefix of 0 (the resolver asks for no tailoring) locates nobody and
/// gives scope 0.
pub fn locate(
    geoip: Option<&GeoIp>,
    ecs: Option<&ClientSubnet>,
    src: IpAddr,
) -> (Option<GeoPoint>, u8) {
    let (addr, source_prefix) = match ecs {
        Some(s) if s.source_prefix() == 0 => return (None, 0),
        Some(s) => (s.addr(), s.source_prefix()),
        None => {
            let ip = src.to_canonical();
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let Some(db) = geoip else {
        return (None, 0);
    };
    let located = db.locate(addr);
    (
        located.location.map(|l| l.point),
        located.prefix_len.min(source_prefix),
    )
}

/// The ECS option of a response: the query's family, source prefix and address, with `scope`.
pub fn echo(query: &ClientSubnet, scope: u8) -> EdnsOption {
    EdnsOption::Subnet(ClientSubnet::new(
        query.addr(),
        query.source_prefix(),
        scope.min(query.source_prefix()),
    ))
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edns_with(subnet: ClientSubnet) -> Edns {
        let mut edns = Edns::new();
        edns.options_mut().insert(EdnsOption::Subnet(subnet));
        edns
    }

    #[test]
    fn a_well_formed_subnet_is_read_and_a_bad_one_is_formerr() {
        let ok = ClientSubnet::new("198.51.100.0".parse().unwrap(), 24, 0);
        assert_eq!(client_subnet(Some(&edns_with(ok))), Ok(Some(ok)));
        assert_eq!(client_subnet(None), Ok(None));
        assert_eq!(client_subnet(Some(&Edns::new())), Ok(None));
        let scoped = ClientSubnet::new("198.51.100.0".parse().unwrap(), 24, 16);
        assert_eq!(
            client_subnet(Some(&edns_with(scoped))),
            Err(EcsError::ScopeInQuery)
        );
        let dirty = ClientSubnet::new("198.51.100.7".parse().unwrap(), 24, 0);
        assert_eq!(
            client_subnet(Some(&edns_with(dirty))),
            Err(EcsError::BitsBeyondPrefix)
        );
        let v6 = ClientSubnet::new("2001:db8::".parse().unwrap(), 32, 0);
        assert_eq!(client_subnet(Some(&edns_with(v6))), Ok(Some(v6)));
    }

    #[test]
    fn masking_keeps_only_the_prefix() {
        let ip: IpAddr = "203.0.113.77".parse().unwrap();
        assert_eq!(masked(ip, 24), "203.0.113.0".parse::<IpAddr>().unwrap());
        assert_eq!(masked(ip, 0), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(masked(ip, 32), ip);
        let v6: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        assert_eq!(masked(v6, 48), "2001:db8:1::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn source_prefix_zero_locates_nobody_with_scope_zero() {
        let any = ClientSubnet::new("0.0.0.0".parse().unwrap(), 0, 0);
        assert_eq!(
            locate(None, Some(&any), "192.0.2.1".parse().unwrap()),
            (None, 0)
        );
        assert_eq!(locate(None, None, "192.0.2.1".parse().unwrap()), (None, 0));
    }

    #[test]
    fn the_echo_never_claims_more_than_the_source_prefix() {
        let q = ClientSubnet::new("198.51.100.0".parse().unwrap(), 24, 0);
        let EdnsOption::Subnet(e) = echo(&q, 32) else {
            panic!("not a subnet option")
        };
        assert_eq!((e.source_prefix(), e.scope_prefix()), (24, 24));
        let EdnsOption::Subnet(e) = echo(&q, 16) else {
            panic!("not a subnet option")
        };
        assert_eq!((e.addr(), e.scope_prefix()), (q.addr(), 16));
    }
}
