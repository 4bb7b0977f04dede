//! Edge hot paths: path normalisation, host and path to route, and picking the origin for an attempt.
//! Inputs come from the shipped demo configuration.
// Benchmark setup unwraps: a failure there is a broken benchmark, not a user error.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use meridian::config;
use meridian::edge::route::resolve;
use meridian::edge::upstream::{Cursor, RegionBalancer};
use meridian::regions::state::HealthView;
use meridian::vocab::url_path::normalize;
use pingora_http::RequestHeader;
use std::hint::black_box;
use std::path::Path;

fn runtime() -> config::Runtime {
    config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(config::DEFAULT_PATH)).unwrap()
}

fn bench_route(c: &mut Criterion) {
    let rt = runtime();
    let mut req = RequestHeader::build("GET", b"/static/style.css?v=3", None).unwrap();
    req.insert_header("host", "Demo.Test:8080").unwrap();
    let mut g = c.benchmark_group("route");
    g.bench_function("resolve_host_and_prefix", |b| {
        b.iter(|| {
            let req = black_box(&req);
            let path = normalize(req.uri.path()).unwrap();
            black_box(resolve(&rt, req, &path).unwrap())
        })
    });
    g.finish();
    // The path normaliser on every request: the common case is one scan and no copy.
    let mut g = c.benchmark_group("url_path");
    g.bench_function("normal_path", |b| {
        b.iter(|| black_box(normalize(black_box("/static/css/site.min.css")).unwrap()))
    });
    g.bench_function("dot_segments_and_escapes", |b| {
        b.iter(|| black_box(normalize(black_box("/static/../img/%7Eme/./a%2Fb.png")).unwrap()))
    });
    g.finish();
}

fn bench_upstream(c: &mut Criterion) {
    let rt = runtime();
    let balancers: Vec<RegionBalancer> = rt.regions.iter().map(RegionBalancer::new).collect();
    let order = rt.sites[0].routes.last().unwrap().region_order.clone();
    let view = HealthView::new(&rt.regions, rt.upstream.ejection);
    let mut g = c.benchmark_group("upstream");
    g.bench_function("first_pick", |b| {
        b.iter(|| {
            let mut cursor = Cursor::default();
            black_box(cursor.next(&order, &rt.regions, &balancers, &view, 3))
        })
    });
    g.bench_function("walk_all_origins", |b| {
        b.iter(|| {
            let mut cursor = Cursor::default();
            while let Some(p) = cursor.next(&order, &rt.regions, &balancers, &view, 16) {
                black_box(p);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_route, bench_upstream);
criterion_main!(benches);
