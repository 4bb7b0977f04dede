//! The geo-DNS hot path in user space: one datagram in, one answer out (parse, zone lookup,
//! GeoIP, region choice, encode), without the sockets.
//! Inputs: the demo configuration (its `www.demo.test` geo record and shipped GeoIP data).
// Benchmark setup unwraps: a failure there is a broken benchmark, not a user error.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use meridian::config;
use meridian::dns::DnsHandler;
use meridian::metrics::Metrics;
use meridian::regions::state::HealthView;
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

fn datagram(name: &str, ecs: Option<(&str, u8)>) -> Vec<u8> {
    let mut msg = Message::new(7, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some((addr, prefix)) = ecs {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                addr.parse().unwrap(),
                prefix,
                0,
            )));
    }
    msg.set_edns(edns);
    msg.to_vec().unwrap()
}

fn bench_answer(c: &mut Criterion) {
    let rt = Arc::new(
        config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(config::DEFAULT_PATH)).unwrap(),
    );
    let view = Arc::new(HealthView::new(&rt.regions, rt.upstream.ejection));
    let metrics = Metrics::new().unwrap();
    let handler = DnsHandler::new(rt, view, &metrics);
    let src: SocketAddr = "192.0.2.53:5353".parse().unwrap();
    let geo_ecs = datagram("www.demo.test.", Some(("8.8.8.0", 24)));
    let geo_src = datagram("www.demo.test.", None);
    let static_a = datagram("ns1.demo.test.", None);
    let nxdomain = datagram("nope.demo.test.", None);
    let mut out = Vec::with_capacity(1232);
    let mut g = c.benchmark_group("dns");
    for (name, query) in [
        ("geo_with_ecs", &geo_ecs),
        ("geo_by_source", &geo_src),
        ("static_a", &static_a),
        ("nxdomain", &nxdomain),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(handler.answer_udp(black_box(query), src, &mut out))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_answer);
criterion_main!(benches);
