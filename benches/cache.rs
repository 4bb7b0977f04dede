//! Cache hot paths: building the key, and a storage hit (lookup plus body read).
//!
//! The storage group also runs pingora's own `MemCache` on the same object: it stores
//! metadata serialized and deserializes it on every hit, which is the cost our storage avoids.
// Benchmark setup unwraps: a failure there is a broken benchmark, not a user error.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use meridian::cache::policy::cache_key;
use meridian::cache::MemoryStorage;
use meridian::config::runtime::CacheKeyRule;
use pingora_cache::key::CacheHashKey;
use pingora_cache::storage::Storage;
use pingora_cache::trace::Span;
use pingora_cache::{CacheKey, CacheMeta, MemCache};
use pingora_http::ResponseHeader;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

fn meta() -> CacheMeta {
    // Headers of a typical static asset response.
    let mut h = ResponseHeader::build(200, Some(8)).unwrap();
    h.insert_header("content-type", "text/css; charset=utf-8")
        .unwrap();
    h.insert_header("content-length", "1024").unwrap();
    h.insert_header("cache-control", "public, max-age=3600")
        .unwrap();
    h.insert_header("etag", "\"5f3c2a1b9e\"").unwrap();
    h.insert_header("last-modified", "Wed, 25 Nov 2026 10:00:00 GMT")
        .unwrap();
    h.insert_header("date", "Thu, 26 Nov 2026 10:00:00 GMT")
        .unwrap();
    let now = SystemTime::now();
    CacheMeta::new(now + Duration::from_secs(3600), now, 0, 0, h)
}

fn bench_key(c: &mut Criterion) {
    let rule = CacheKeyRule::DEFAULT;
    let headers = http::HeaderMap::new();
    let mut g = c.benchmark_group("cache_key");
    g.bench_function("build_and_hash", |b| {
        b.iter(|| {
            let key = cache_key(
                "http",
                black_box("static.example.com"),
                black_box("/assets/app.3f9c2a.css?v=12"),
                &rule,
                &headers,
            );
            black_box(key.combined_bin())
        })
    });
    g.finish();
}

async fn fill(storage: &'static (dyn Storage + Sync), key: &CacheKey, body: Bytes) {
    let span = Span::inactive().handle();
    let mut miss = storage.get_miss_handler(key, &meta(), &span).await.unwrap();
    miss.write_body(body, true).await.unwrap();
    miss.finish().await.unwrap();
}

async fn hit(storage: &'static (dyn Storage + Sync), key: &CacheKey) -> usize {
    let span = Span::inactive().handle();
    let (meta, mut handler) = storage.lookup(key, &span).await.unwrap().unwrap();
    let mut n = meta.headers().len();
    while let Some(b) = handler.read_body().await.unwrap() {
        n += b.len();
    }
    n
}

fn bench_storage_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ours: &'static MemoryStorage = Box::leak(Box::new(MemoryStorage::new(64 << 20, 16)));
    let pingora: &'static MemCache = Box::leak(Box::new(MemCache::new()));
    let mut g = c.benchmark_group("storage_hit");
    for size in [1024usize, 64 * 1024] {
        let target = format!("/o{size}");
        let key = cache_key(
            "http",
            "static.example.com",
            &target,
            &CacheKeyRule::DEFAULT,
            &http::HeaderMap::new(),
        );
        let body = Bytes::from(vec![b'x'; size]);
        rt.block_on(fill(ours, &key, body.clone()));
        rt.block_on(fill(pingora, &key, body));
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("meridian_moka", size), &key, |b, key| {
            b.to_async(&rt).iter(|| hit(ours, key))
        });
        g.bench_with_input(
            BenchmarkId::new("pingora_memcache", size),
            &key,
            |b, key| b.to_async(&rt).iter(|| hit(pingora, key)),
        );
    }
    g.finish();
}

criterion_group!(benches, bench_key, bench_storage_hit);
criterion_main!(benches);
