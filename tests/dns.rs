//! Geo-DNS end to end: the real binary answering real DNS (hickory-proto messages over UDP
//! and TCP, and `dig`), with GeoIP from a built test database and health from real origins.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::dns::{
    addresses, ask, ask_tcp, dig, ecs_of, plain_query, query, udp_raw, world_database,
};
use support::{eventually, Node, Origin};

const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 100;

const EU: &str = "127.0.1.1";
const EU_V6: &str = "2001:db8::1";
const US: &str = "127.0.2.1";
const AP: &str = "127.0.3.1";
const SA: &str = "127.0.4.1";
const FALLBACK: &str = "192.0.2.99";

/// A node in Dublin with four regions on four continents. The Sydney region's origin is
/// its own, so it can fail alone; the others share one.
struct World {
    node: Node,
    shared: Origin,
    sydney: Origin,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let shared = Origin::builder().start().await;
        let sydney = Origin::builder().start().await;
        let dir = tempfile::tempdir().unwrap();
        let db = world_database(dir.path());
        let node = Node::start(&config(&db, shared.addr(), sydney.addr())).await;
        World {
            node,
            shared,
            sydney,
            _dir: dir,
        }
    }

    fn dns(&self) -> SocketAddr {
        self.node.dns
    }

    /// Asks for `name` (A) with ECS `subnet/prefix`.
    async fn geo(&self, name: &str, subnet: &str, prefix: u8) -> Message {
        ask(
            self.dns(),
            &query(name, RecordType::A, Some((subnet, prefix))),
        )
        .await
    }
}

fn config(db: &std::path::Path, shared: SocketAddr, sydney: SocketAddr) -> String {
    let check = format!(
        "[regions.health_check]\nkind = \"tcp\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\n\
         jitter = \"1ms\"\nhealthy_after = 1\nunhealthy_after = 1\n\n"
    );
    let region = |name: &str, lat: f64, lon: f64, origin: SocketAddr, dns: &str| {
        format!(
            "[[regions]]\nname = \"{name}\"\nlocation = {{ lat = {lat}, lon = {lon} }}\n\
             origins = [\"{origin}\"]\ndns_addresses = [{dns}]\n{check}"
        )
    };
    let big_txt: Vec<String> = (0..20)
        .map(|i| format!("\"{i:02}{}\"", "x".repeat(98)))
        .collect();
    format!(
        "[node]\nname = \"edge-test\"\nlocation = {{ lat = 53.35, lon = -6.26 }}\nthreads = 1\n\n\
         [listen]\nhttp = [\"@HTTP@\"]\nadmin = \"@ADMIN@\"\n\n\
         [geoip]\ndatabase = \"{db}\"\n\n{}{}{}{}\
         [dns]\nlisten = [\"@DNS@\"]\n\n\
         [[dns.zones]]\nname = \"example.test\"\nns = [\"ns1.example.test\", \"ns2.example.test\"]\n\
         hostmaster = \"hostmaster.example.test\"\nserial = 2026112601\nnegative_ttl = 60\n\n\
         [[dns.zones.records]]\nname = \"www\"\ntype = \"geo\"\n\n\
         [[dns.zones.records]]\nname = \"two\"\ntype = \"geo\"\nanswers = 2\nttl = 20\n\n\
         [[dns.zones.records]]\nname = \"pinned\"\ntype = \"geo\"\nregions = [\"eu-west\", \"us-east\"]\n\n\
         [[dns.zones.records]]\nname = \"pinned-fb\"\ntype = \"geo\"\nregions = [\"eu-west\", \"us-east\"]\nfallback = [\"{FALLBACK}\"]\n\n\
         [[dns.zones.records]]\nname = \"ns1\"\ntype = \"A\"\nvalues = [\"127.0.0.53\"]\n\n\
         [[dns.zones.records]]\nname = \"alias\"\ntype = \"CNAME\"\nvalues = [\"www.example.test\"]\n\n\
         [[dns.zones.records]]\nname = \"away\"\ntype = \"CNAME\"\nvalues = [\"www.elsewhere.test\"]\n\n\
         [[dns.zones.records]]\nname = \"a.deep\"\ntype = \"A\"\nvalues = [\"192.0.2.1\"]\n\n\
         [[dns.zones.records]]\nname = \"@\"\ntype = \"MX\"\nvalues = [\"10 mail.example.test\"]\n\n\
         [[dns.zones.records]]\nname = \"@\"\ntype = \"TXT\"\nvalues = [\"v=spf1 -all\"]\n\n\
         [[dns.zones.records]]\nname = \"@\"\ntype = \"CAA\"\nvalues = [\"0 issue \\\"letsencrypt.org\\\"\"]\n\n\
         [[dns.zones.records]]\nname = \"big\"\ntype = \"TXT\"\nvalues = [{}]\n",
        region("eu-west", 53.35, -6.26, shared, &format!("\"{EU}\", \"{EU_V6}\"")),
        region("us-east", 39.04, -77.49, shared, &format!("\"{US}\"")),
        region("ap-southeast", -33.87, 151.21, sydney, &format!("\"{AP}\"")),
        region("sa-east", -23.55, -46.63, shared, &format!("\"{SA}\"")),
        big_txt.join(", "),
        db = db.display(),
    )
}

#[tokio::test]
async fn static_records_are_authoritative_and_names_are_case_insensitive() {
    let w = World::start().await;
    let r = ask(w.dns(), &query("NS1.Example.TEST.", RecordType::A, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.authoritative, "AA for our zone");
    assert!(!r.metadata.recursion_available);
    assert_eq!(addresses(&r), ["127.0.0.53"]);
    assert_eq!(
        r.queries[0].name().to_ascii(),
        "NS1.Example.TEST.",
        "question echoed as asked"
    );

    let r = ask(w.dns(), &query("example.test.", RecordType::MX, None)).await;
    assert!(matches!(&r.answers[..], [rec] if rec.data.to_string() == "10 mail.example.test."));
    let r = ask(w.dns(), &query("example.test.", RecordType::TXT, None)).await;
    assert!(matches!(&r.answers[..], [rec] if rec.data.to_string().contains("v=spf1 -all")));
    let r = ask(w.dns(), &query("example.test.", RecordType::CAA, None)).await;
    assert!(matches!(&r.answers[..], [rec] if rec.data.to_string().contains("letsencrypt.org")));
    let r = ask(w.dns(), &query("example.test.", RecordType::NS, None)).await;
    let ns: Vec<String> = r.answers.iter().map(|a| a.data.to_string()).collect();
    assert_eq!(ns, ["ns1.example.test.", "ns2.example.test."]);
    let r = ask(w.dns(), &query("example.test.", RecordType::SOA, None)).await;
    let RData::SOA(soa) = &r.answers[0].data else {
        panic!("not an SOA: {r:?}")
    };
    assert_eq!(soa.serial, 2026112601);
    assert_eq!(soa.minimum, 60);

    // A CNAME inside our zones is followed; one leaving them is answered alone.
    let r = ask(w.dns(), &query("alias.example.test.", RecordType::A, None)).await;
    assert_eq!(r.answers.len(), 2, "{r:?}");
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(
        addresses(&r),
        [EU],
        "the CNAME's target, a geo record, answered too"
    );
    let r = ask(w.dns(), &query("away.example.test.", RecordType::A, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 1);
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);

    // The same over TCP.
    let r = ask_tcp(w.dns(), &query("ns1.example.test.", RecordType::A, None)).await;
    assert_eq!(addresses(&r), ["127.0.0.53"]);
}

#[tokio::test]
async fn nxdomain_nodata_and_refused_carry_the_right_codes_and_soa() {
    let w = World::start().await;
    let r = ask(w.dns(), &query("nope.example.test.", RecordType::A, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(r.metadata.authoritative);
    assert!(r.answers.is_empty());
    assert!(
        matches!(&r.authorities[..], [soa] if soa.record_type() == RecordType::SOA && soa.ttl == 60),
        "SOA in authority with the negative TTL: {r:?}"
    );

    // NODATA: the name exists with another type, or only has names below it.
    for (name, rtype) in [
        ("ns1.example.test.", RecordType::AAAA),
        ("deep.example.test.", RecordType::A),
        ("www.example.test.", RecordType::MX),
    ] {
        let r = ask(w.dns(), &query(name, rtype, None)).await;
        assert_eq!(
            r.metadata.response_code,
            ResponseCode::NoError,
            "{name} {rtype}"
        );
        assert!(r.answers.is_empty(), "{name} {rtype}: {r:?}");
        assert!(r.metadata.authoritative);
        assert_eq!(
            r.authorities[0].record_type(),
            RecordType::SOA,
            "{name} {rtype}"
        );
    }

    let r = ask(w.dns(), &query("example.com.", RecordType::A, None)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert!(!r.metadata.authoritative);

    let mut chaos = query("version.bind.", RecordType::TXT, None);
    chaos.queries[0].set_query_class(DNSClass::CH);
    let r = ask(w.dns(), &chaos).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);

    let mut axfr = query("example.test.", RecordType::AXFR, None);
    axfr.metadata.recursion_desired = false;
    let r = ask_tcp(w.dns(), &axfr).await;
    assert_eq!(
        r.metadata.response_code,
        ResponseCode::Refused,
        "no zone transfers"
    );
}

#[tokio::test]
async fn edns_payload_badvers_unknown_options_and_truncation() {
    let w = World::start().await;
    // No EDNS asked, none sent back.
    let r = ask(w.dns(), &plain_query("ns1.example.test.", RecordType::A)).await;
    assert!(r.edns.is_none());
    let r = ask(w.dns(), &query("ns1.example.test.", RecordType::A, None)).await;
    let edns = r.edns.as_ref().unwrap();
    assert_eq!((edns.version(), edns.max_payload()), (0, 1232));

    // An unknown version is BADVERS (RFC 6891 §6.1.3), answered with version 0.
    let mut v1 = query("ns1.example.test.", RecordType::A, None);
    v1.edns.as_mut().unwrap().set_version(1);
    let r = ask(w.dns(), &v1).await;
    // 16 is both BADVERS and BADSIG; hickory reads it back as the latter.
    assert_eq!(u16::from(r.metadata.response_code), 16);
    assert_eq!(r.edns.as_ref().unwrap().version(), 0);
    assert!(r.answers.is_empty());

    // Unknown options are ignored.
    let mut odd = query("ns1.example.test.", RecordType::A, None);
    odd.edns.as_mut().unwrap().options_mut().insert(
        hickory_proto::rr::rdata::opt::EdnsOption::Unknown(65001, vec![1, 2, 3]),
    );
    let r = ask(w.dns(), &odd).await;
    assert_eq!(addresses(&r), ["127.0.0.53"]);

    // 20 TXT strings of 100 bytes do not fit 1232 bytes, nor 512: TC over UDP...
    let r = ask(w.dns(), &query("big.example.test.", RecordType::TXT, None)).await;
    assert!(r.metadata.truncation, "TC with EDNS 1232");
    assert!(r.answers.len() < 20);
    let r = ask(w.dns(), &plain_query("big.example.test.", RecordType::TXT)).await;
    assert!(r.metadata.truncation, "TC at 512 without EDNS");
    // ...and everything over TCP.
    let r = ask_tcp(w.dns(), &query("big.example.test.", RecordType::TXT, None)).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 20);
    // A larger client buffer is still capped at max_udp_payload.
    let mut large = query("big.example.test.", RecordType::TXT, None);
    large.edns.as_mut().unwrap().set_max_payload(4096);
    let r = ask(w.dns(), &large).await;
    assert!(r.metadata.truncation);
    assert_eq!(r.edns.as_ref().unwrap().max_payload(), 1232);

    // dig sees TC and retries over TCP by itself.
    let out = dig(w.dns(), &["big.example.test", "TXT"]).await;
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(out.contains("ANSWER: 20"), "{out}");
}

#[tokio::test]
async fn ecs_from_several_continents_gets_the_nearest_region_and_the_geoip_scope() {
    let w = World::start().await;
    for (subnet, prefix, want, scope) in [
        ("81.2.69.0", 24, EU, 24),   // London
        ("8.8.8.0", 24, US, 24),     // Mountain View: Ashburn is nearer than the rest
        ("1.1.1.0", 24, AP, 24),     // Sydney
        ("200.160.0.0", 20, SA, 20), // São Paulo, a /20 network
        ("81.2.69.7", 32, EU, 24),   // a /32 source narrowed to the GeoIP /24
        ("200.160.0.0", 16, SA, 16), // never longer than the source prefix
    ] {
        let r = w.geo("www.example.test.", subnet, prefix).await;
        assert_eq!(addresses(&r), [want], "{subnet}/{prefix}");
        assert_eq!(
            ecs_of(&r),
            Some((prefix, scope, subnet.parse().unwrap())),
            "{subnet}/{prefix}: family, source and address echoed, scope from GeoIP"
        );
        assert_eq!(r.answers[0].ttl, 30, "geo TTL default");
    }

    // Unknown to GeoIP: the node's own order (Dublin first), scoped to the empty network.
    let r = w.geo("www.example.test.", "192.0.2.0", 24).await;
    assert_eq!(addresses(&r), [EU]);
    let (_, scope, _) = ecs_of(&r).unwrap();
    assert!(scope <= 24, "{scope}");
    // Source prefix 0: the resolver asks for one answer for everyone.
    let r = w.geo("www.example.test.", "0.0.0.0", 0).await;
    assert_eq!(addresses(&r), [EU]);
    assert_eq!(ecs_of(&r).map(|e| e.1), Some(0));
    // IPv6 ECS for an AAAA: Frankfurt is nearest Dublin.
    let r = ask(
        w.dns(),
        &query(
            "www.example.test.",
            RecordType::AAAA,
            Some(("2a00:1450::", 48)),
        ),
    )
    .await;
    assert_eq!(addresses(&r), [EU_V6]);
    assert_eq!(ecs_of(&r).map(|e| e.1), Some(32));
    // Without ECS the resolver's own address decides (loopback: unknown, node order), and
    // no ECS comes back.
    let r = ask(w.dns(), &query("www.example.test.", RecordType::A, None)).await;
    assert_eq!(addresses(&r), [EU]);
    assert_eq!(ecs_of(&r), None);
    // answers = 2: the two nearest, nearest first, with the record's own TTL.
    let r = w.geo("two.example.test.", "8.8.8.0", 24).await;
    assert_eq!(addresses(&r), [US, EU]);
    assert_eq!(r.answers[0].ttl, 20);
    // A static answer does not depend on the client: scope 0.
    let r = ask(
        w.dns(),
        &query("ns1.example.test.", RecordType::A, Some(("1.1.1.0", 24))),
    )
    .await;
    assert_eq!(ecs_of(&r).map(|e| e.1), Some(0));

    // dig shows the same: source/scope in CLIENT-SUBNET.
    let out = dig(w.dns(), &["www.example.test", "+subnet=1.1.1.0/24"]).await;
    assert!(out.contains("CLIENT-SUBNET: 1.1.1.0/24/24"), "{out}");
    assert!(out.contains(&format!("IN\tA\t{AP}")), "{out}");
}

#[tokio::test]
async fn a_region_marked_down_leaves_the_answers_within_one_interval_and_comes_back() {
    let w = World::start().await;
    let sydney = ("1.1.1.0", 24);
    eventually("the Sydney region verified up", || async {
        addresses(&w.geo("www.example.test.", sydney.0, sydney.1).await) == [AP]
    })
    .await;
    let killed = Instant::now();
    w.sydney.stop();
    eventually("Sydney clients sent to the next nearest region", || async {
        addresses(&w.geo("www.example.test.", sydney.0, sydney.1).await) == [SA]
    })
    .await;
    let to_down = killed.elapsed();
    let status = w.node.status().await;
    let www = &status["dns"]["geo_records"][3];
    let candidates = &www["candidates"];
    assert_eq!(www["name"], "www.example.test.");
    assert_eq!(candidates[2]["region"], "ap-southeast");
    assert_eq!(candidates[2]["usable"], false, "{status}");
    assert_eq!(
        www["answer_for"]["near ap-southeast"],
        serde_json::json!([SA, EU_V6]),
        "A from the nearest healthy region, AAAA from the only one with IPv6"
    );

    let restored = Instant::now();
    w.sydney.resume().await;
    eventually("Sydney clients back on their region", || async {
        addresses(&w.geo("www.example.test.", sydney.0, sydney.1).await) == [AP]
    })
    .await;
    let to_up = restored.elapsed();
    eprintln!("kill -> out of DNS answers {to_down:?}, restore -> back {to_up:?}");
    // One failed check (fall 1) ends within an interval plus its timeout; slack for scheduling.
    let bound = support::within(
        Duration::from_millis(INTERVAL_MS + TIMEOUT_MS) + Duration::from_millis(2 * INTERVAL_MS),
    );
    assert!(to_down <= bound, "{to_down:?} > {bound:?}");
    assert!(to_up <= bound, "{to_up:?} > {bound:?}");

    let served = w
        .node
        .metric("meridian_dns_geo_answers_total{record=\"www.example.test.\",target=\"sa-east\"}")
        .await;
    assert!(served >= 1.0, "geo answers counted by target: {served}");
}

#[tokio::test]
async fn when_no_candidate_is_healthy_all_are_answered_or_the_fallback() {
    let w = World::start().await;
    w.shared.stop();
    eventually("Europe and America down", || async {
        addresses(&w.geo("pinned.example.test.", "81.2.69.0", 24).await) == [EU, US]
    })
    .await;
    // Every candidate, nearest first, though answers = 1: better than an empty answer.
    let r = w.geo("pinned.example.test.", "8.8.8.0", 24).await;
    assert_eq!(addresses(&r), [US, EU]);
    // A configured fallback replaces them.
    let r = w.geo("pinned-fb.example.test.", "81.2.69.0", 24).await;
    assert_eq!(addresses(&r), [FALLBACK]);
    // A record with a healthy candidate answers only that one, however far.
    let r = w.geo("www.example.test.", "81.2.69.0", 24).await;
    assert_eq!(addresses(&r), [AP]);
    let fallback = w
        .node
        .metric("meridian_dns_geo_answers_total{record=\"pinned-fb.example.test.\",target=\"fallback\"}")
        .await;
    assert_eq!(fallback, 1.0);
}

/// A DNS header: id 0x1234, the given flags word and section counts.
fn header(flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    [0x1234, flags, qd, an, ns, ar]
        .iter()
        .flat_map(|v: &u16| v.to_be_bytes())
        .collect()
}

fn rcode_of(bytes: &[u8]) -> u8 {
    bytes[3] & 0x0f
}

#[tokio::test]
async fn malformed_packets_get_formerr_or_are_dropped_and_the_server_keeps_answering() {
    let w = World::start().await;
    let formerr = 1;
    let question = |name: &[u8]| {
        let mut q = header(0x0100, 1, 0, 0, 0);
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]); // A, IN
        q
    };
    let cases: Vec<(&str, Vec<u8>, Option<u8>)> = vec![
        ("truncated header", vec![0x12, 0x34, 0x01, 0x00, 0x00], None),
        (
            "longer than any query (5000 bytes)",
            {
                let mut q = question(b"\x03ns1\x07example\x04test\x00");
                q.resize(5000, 0);
                q
            },
            None,
        ),
        (
            "a question promised, none sent",
            header(0x0100, 1, 0, 0, 0),
            Some(formerr),
        ),
        (
            "a label longer than the packet",
            question(b"\x3fabc"),
            Some(formerr),
        ),
        (
            "a reserved label type",
            question(b"\x41abc\x00"),
            Some(formerr),
        ),
        (
            "a compression pointer to itself",
            question(b"\xc0\x0c"),
            Some(formerr),
        ),
        (
            "a pointer loop",
            question(b"\x03abc\xc0\x0c"),
            Some(formerr),
        ),
        (
            "a pointer past the end",
            question(b"\xc0\xff"),
            Some(formerr),
        ),
        (
            "a response sent as a query",
            {
                let mut q = question(b"\x03www\x07example\x04test\x00");
                q[2] |= 0x80;
                q
            },
            None,
        ),
        (
            "two questions",
            {
                let mut q = header(0x0100, 2, 0, 0, 0);
                for _ in 0..2 {
                    q.extend_from_slice(b"\x03ns1\x07example\x04test\x00\x00\x01\x00\x01");
                }
                q
            },
            Some(formerr),
        ),
        (
            "an UPDATE",
            {
                let mut q = question(b"\x07example\x04test\x00");
                q[2] = 0x28; // opcode 5
                q
            },
            Some(4),
        ),
    ];
    for (what, packet, want) in &cases {
        let got = udp_raw(w.dns(), packet).await;
        match (want, got) {
            (None, None) => {}
            (Some(code), Some(reply)) => {
                assert_eq!(&reply[..2], &[0x12, 0x34], "{what}: id echoed");
                assert_eq!(rcode_of(&reply), *code, "{what}");
            }
            (want, got) => panic!("{what}: wanted {want:?}, got {got:?}"),
        }
    }

    // ECS that breaks RFC 7871: a scope in a query, an IPv4 prefix over 32, dirty bits.
    for (what, option) in [
        ("scope set", &[0, 1, 24, 8, 81, 2, 69][..]),
        ("prefix 33", &[0, 1, 33, 0, 81, 2, 69, 0, 0][..]),
        ("bits beyond the prefix", &[0, 1, 20, 0, 81, 2, 69][..]),
        ("unknown family", &[0, 9, 8, 0, 81][..]),
    ] {
        let mut q = header(0x0100, 1, 0, 0, 1);
        q.extend_from_slice(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01");
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]); // OPT, 1232, v0
        let len = (option.len() + 4) as u16;
        q.extend_from_slice(&len.to_be_bytes());
        q.extend_from_slice(&[0, 8]);
        q.extend_from_slice(&(option.len() as u16).to_be_bytes());
        q.extend_from_slice(option);
        let reply = udp_raw(w.dns(), &q).await.unwrap_or_default();
        assert!(!reply.is_empty(), "{what}: no answer");
        assert_eq!(rcode_of(&reply), formerr, "{what}");
    }

    // Noise: random packets, some with a plausible header.
    for i in 0..300u32 {
        let len = fastrand::usize(0..200);
        let mut p: Vec<u8> = (0..len).map(|_| fastrand::u8(..)).collect();
        if i % 2 == 0 && p.len() > 12 {
            p[2] = 0x01;
            p[3] = 0x00;
        }
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(&p, w.dns()).await.unwrap();
    }
    // Garbage over TCP: a length prefix promising more than comes, then a close.
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(w.dns()).await.unwrap();
        s.write_all(&[0x40, 0x00, 1, 2, 3]).await.unwrap();
    }
    let r = ask(w.dns(), &query("ns1.example.test.", RecordType::A, None)).await;
    assert_eq!(addresses(&r), ["127.0.0.53"], "still answering");
    let r = ask_tcp(w.dns(), &query("ns1.example.test.", RecordType::A, None)).await;
    assert_eq!(addresses(&r), ["127.0.0.53"], "still answering over TCP");
}

#[tokio::test]
async fn queries_are_counted_by_type_rcode_and_ecs_and_status_shows_the_geo_records() {
    let w = World::start().await;
    ask(w.dns(), &query("ns1.example.test.", RecordType::A, None)).await;
    ask(
        w.dns(),
        &query("nope.example.test.", RecordType::AAAA, None),
    )
    .await;
    w.geo("www.example.test.", "81.2.69.0", 24).await;
    assert_eq!(
        w.node
            .metric("meridian_dns_queries_total{qtype=\"A\",rcode=\"NOERROR\"}")
            .await,
        2.0
    );
    assert_eq!(
        w.node
            .metric("meridian_dns_queries_total{qtype=\"AAAA\",rcode=\"NXDOMAIN\"}")
            .await,
        1.0
    );
    assert_eq!(
        w.node
            .metric("meridian_dns_queries_ecs_total{ecs=\"present\"}")
            .await,
        1.0
    );
    assert_eq!(
        w.node
            .metric("meridian_dns_queries_ecs_total{ecs=\"absent\"}")
            .await,
        2.0
    );
    assert_eq!(
        w.node
            .metric(
                "meridian_dns_geo_answers_total{record=\"www.example.test.\",target=\"eu-west\"}"
            )
            .await,
        1.0
    );
    assert_eq!(
        w.node
            .metric("meridian_dns_handle_duration_seconds_count{transport=\"udp\"}")
            .await,
        3.0
    );

    let status = w.node.status().await;
    let dns = &status["dns"];
    assert_eq!(dns["zones"], serde_json::json!(["example.test."]));
    let names: Vec<&str> = dns["geo_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "pinned-fb.example.test.",
            "pinned.example.test.",
            "two.example.test.",
            "www.example.test."
        ]
    );
    let www = &dns["geo_records"][3];
    assert_eq!(
        www["answer_for"]["near us-east"],
        serde_json::json!([US, EU_V6])
    );
    assert_eq!(www["answer_for"]["node"], serde_json::json!([EU, EU_V6]));
    assert_eq!(
        www["candidates"][0]["addresses"],
        serde_json::json!([EU, EU_V6])
    );
}

#[tokio::test]
async fn an_edge_node_is_answered_while_its_check_passes() {
    let edge = Origin::builder().start().await; // stands in for another edge node
    let origin = Origin::builder().start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = world_database(dir.path());
    let check = format!(
        "kind = \"tcp\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\n\
         jitter = \"1ms\"\nhealthy_after = 1\nunhealthy_after = 1\n"
    );
    let config = format!(
        "[node]\nname = \"edge-test\"\nlocation = {{ lat = 53.35, lon = -6.26 }}\nthreads = 1\n\n\
         [listen]\nhttp = [\"@HTTP@\"]\nadmin = \"@ADMIN@\"\n\n\
         [geoip]\ndatabase = \"{db}\"\n\n\
         [[regions]]\nname = \"us-east\"\nlocation = {{ lat = 39.04, lon = -77.49 }}\n\
         origins = [\"{origin}\"]\ndns_addresses = [\"{US}\"]\n\n\
         [regions.health_check]\n{check}\n\
         [dns]\nlisten = [\"@DNS@\"]\n\n\
         [[dns.edges]]\nname = \"edge-fra\"\nlocation = {{ lat = 50.11, lon = 8.68 }}\n\
         addresses = [\"127.0.5.1\"]\ncheck = \"{edge_addr}\"\n\n\
         [dns.edges.health_check]\n{check}\n\
         [[dns.zones]]\nname = \"example.test\"\nns = [\"ns1.example.test\"]\n\
         hostmaster = \"hostmaster.example.test\"\n\n\
         [[dns.zones.records]]\nname = \"www\"\ntype = \"geo\"\n",
        db = db.display(),
        origin = origin.addr(),
        edge_addr = edge.addr(),
    );
    let node = Node::start(&config).await;
    let london = || async {
        addresses(
            &ask(
                node.dns,
                &query("www.example.test.", RecordType::A, Some(("81.2.69.0", 24))),
            )
            .await,
        )
    };
    eventually("London sent to the Frankfurt edge", || async {
        london().await == ["127.0.5.1"]
    })
    .await;
    edge.stop();
    eventually(
        "the edge leaves the answers when its check fails",
        || async { london().await == [US] },
    )
    .await;
    let status = node.status().await;
    let fra = &status["regions"][1];
    assert_eq!(
        (fra["name"].as_str(), fra["dns_edge"].as_bool()),
        (Some("edge-fra"), Some(true))
    );
    assert_eq!(fra["usable"], false);
    edge.resume().await;
    eventually("and comes back when it passes again", || async {
        london().await == ["127.0.5.1"]
    })
    .await;
}
