//! GeoIP hot paths: looking up a client, and ordering regions from its location.
//! Inputs: the shipped database in geoip/ and the regions of the demo configuration.
// Benchmark setup unwraps: a failure there is a broken benchmark, not a user error.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use meridian::config;
use meridian::geo::GeoIp;
use meridian::regions::select::nearest_first;
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

fn bench_lookup(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip");
    let db = GeoIp::open(
        &root.join("geo-whois-asn-country.mmdb"),
        Some(&root.join("country-coordinates.csv")),
    )
    .unwrap();
    let v4: IpAddr = "81.2.69.160".parse().unwrap();
    let v6: IpAddr = "2001:4860:4860::8888".parse().unwrap();
    let mut g = c.benchmark_group("geoip");
    g.bench_function("lookup_v4", |b| {
        b.iter(|| black_box(db.lookup(black_box(v4))))
    });
    g.bench_function("lookup_v6", |b| {
        b.iter(|| black_box(db.lookup(black_box(v6))))
    });
    g.finish();
}

fn bench_order(c: &mut Criterion) {
    let rt =
        config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(config::DEFAULT_PATH)).unwrap();
    let ids: Vec<usize> = (0..rt.regions.len()).collect();
    let from = meridian::geo::distance::GeoPoint {
        lat: 38.9,
        lon: -77.0,
    };
    let mut g = c.benchmark_group("regions");
    g.bench_function("nearest_first", |b| {
        b.iter(|| black_box(nearest_first(&rt.regions, black_box(&ids), from)))
    });
    g.finish();
}

criterion_group!(benches, bench_lookup, bench_order);
criterion_main!(benches);
