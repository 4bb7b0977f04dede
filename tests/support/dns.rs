//! A DNS client for the tests: hickory-proto messages over real UDP and TCP sockets, `dig`
//! from dnsutils, and a GeoIP database with networks on several continents.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one exchange may take before it counts as unanswered.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// A query for `name` / `rtype` with EDNS (payload 1232) and, when given, an ECS option.
pub fn query(name: &str, rtype: RecordType, ecs: Option<(&str, u8)>) -> Message {
    let mut msg = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some((addr, prefix)) = ecs {
        let ip: IpAddr = addr.parse().unwrap();
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(ip, prefix, 0)));
    }
    msg.set_edns(edns);
    msg
}

/// A query without EDNS (a plain RFC 1035 client).
pub fn plain_query(name: &str, rtype: RecordType) -> Message {
    let mut msg = query(name, rtype, None);
    msg.edns = None;
    msg
}

/// Sends raw bytes over UDP; the reply's bytes, or `None` when none came in time.
pub async fn udp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(EXCHANGE_TIMEOUT, socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// One exchange over UDP, resent as a resolver resends: a datagram may be dropped when the
/// server's socket buffer is full (right after a test floods it, on a busy machine), which
/// is UDP working as designed, not the server failing. Gives up when patience runs out.
///
/// A reply with another ID is dropped and the wait goes on, as a resolver does (RFC 5452
/// §9.1): after a test floods the server from many sockets, the server's late answer to one
/// of them reaches this socket when the system hands it the same ephemeral port.
pub async fn ask(server: SocketAddr, msg: &Message) -> Message {
    let bytes = msg.to_vec().unwrap();
    let deadline = std::time::Instant::now() + super::patience();
    loop {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(&bytes, server).await.unwrap();
        let attempt_ends = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
        let mut buf = vec![0u8; 65535];
        while let Ok(Ok(n)) = tokio::time::timeout_at(attempt_ends, socket.recv(&mut buf)).await {
            match Message::from_vec(&buf[..n]) {
                Ok(reply) if reply.metadata.id == msg.metadata.id => return reply,
                _ => continue, // another query's answer, or not DNS at all
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no UDP answer within {:?}",
            super::patience()
        );
    }
}

/// One exchange over TCP (two-byte length prefix, RFC 1035 §4.2.2).
pub async fn ask_tcp(server: SocketAddr, msg: &Message) -> Message {
    let bytes = msg.to_vec().unwrap();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.unwrap();
        let len = stream.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await.unwrap();
        buf
    };
    let buf = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .expect("no TCP answer");
    Message::from_vec(&buf).unwrap()
}

/// The addresses in the answer section, in order.
pub fn addresses(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The ECS option of a response: (source prefix, scope prefix, address).
pub fn ecs_of(msg: &Message) -> Option<(u8, u8, IpAddr)> {
    match msg.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some((s.source_prefix(), s.scope_prefix(), s.addr())),
        _ => None,
    }
}

/// Runs `dig` against `server` with `args`, one try, and returns what it printed.
pub async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+tries=1", "+time=2"])
        .args(args)
        .output()
        .await
        .expect("dig (dnsutils) is needed by the DNS tests");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Networks of the test GeoIP database, with the city each is placed in.
pub const LONDON_NET: &str = "81.2.69.0/24";
pub const MOUNTAIN_VIEW_NET: &str = "8.8.8.0/24";
pub const SYDNEY_NET: &str = "1.1.1.0/24";
pub const SAO_PAULO_NET: &str = "200.160.0.0/20";
pub const FRANKFURT_V6_NET: &str = "2a00:1450::/32";

/// A GeoIP2-City-layout database with one network on each of several continents.
pub fn world_database(dir: &Path) -> PathBuf {
    super::geoip::write(
        dir,
        "world.mmdb",
        &[
            (LONDON_NET, super::geoip::city(51.51, -0.13, "GB")),
            (MOUNTAIN_VIEW_NET, super::geoip::city(37.39, -122.08, "US")),
            (SYDNEY_NET, super::geoip::city(-33.87, 151.21, "AU")),
            (SAO_PAULO_NET, super::geoip::city(-23.55, -46.63, "BR")),
            (FRANKFURT_V6_NET, super::geoip::city(50.11, 8.68, "DE")),
        ],
    )
}
