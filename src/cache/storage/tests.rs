//! Storage cases pingora's own `memory.rs` tests cover, and the memory bound.

use super::*;
use bytes::Bytes;
use pingora_cache::storage::PurgeTarget;
use pingora_http::ResponseHeader;
use std::time::{Duration, SystemTime};

fn leak(storage: MemoryStorage) -> &'static MemoryStorage {
    Box::leak(Box::new(storage))
}

fn meta() -> CacheMeta {
    let h = ResponseHeader::build(200, None).unwrap();
    let now = SystemTime::now();
    CacheMeta::new(now + Duration::from_secs(60), now, 0, 0, h)
}

fn key(path: &str) -> CacheKey {
    CacheKey::new(format!("http://t{path}"), "")
}

async fn read_all(hit: &mut HitHandler) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(b) = hit.read_body().await? {
        out.extend_from_slice(&b);
    }
    Ok(out)
}

async fn put(s: &'static MemoryStorage, k: &CacheKey, body: &[u8]) {
    let mut miss = s.get_miss_handler(k, &meta(), &span()).await.unwrap();
    miss.write_body(Bytes::copy_from_slice(body), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
}

fn span() -> SpanHandle {
    pingora_cache::trace::Span::inactive().handle()
}

#[tokio::test]
async fn a_finished_write_is_a_complete_hit_with_the_same_bytes() {
    let s = leak(MemoryStorage::new(1 << 20, 16));
    let k = key("/a");
    assert!(s.lookup(&k, &span()).await.unwrap().is_none());
    put(s, &k, b"hello").await;
    let (m, mut hit) = s.lookup(&k, &span()).await.unwrap().unwrap();
    assert_eq!(m.response_header().status, 200);
    assert!(hit.can_seek());
    assert_eq!(read_all(&mut hit).await.unwrap(), b"hello");
    assert_eq!(s.stats().objects, 1);
}

#[tokio::test]
async fn readers_stream_a_fill_while_it_is_written() {
    // pingora memory.rs `test_write_while_read`.
    let s = leak(MemoryStorage::new(1 << 20, 16));
    let k = key("/stream");
    let mut miss = s.get_miss_handler(&k, &meta(), &span()).await.unwrap();
    let (_, mut hit) = s.lookup(&k, &span()).await.unwrap().unwrap();
    miss.write_body(Bytes::from_static(b"one "), false)
        .await
        .unwrap();
    assert_eq!(hit.read_body().await.unwrap().unwrap(), "one ");
    let reader = tokio::spawn(async move { read_all(&mut hit).await.unwrap() });
    miss.write_body(Bytes::from_static(b"two"), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
    assert_eq!(reader.await.unwrap(), b"two");
    // After the fill, a fresh lookup is a complete hit of the joined body.
    let (_, mut hit) = s.lookup(&k, &span()).await.unwrap().unwrap();
    assert_eq!(read_all(&mut hit).await.unwrap(), b"one two");
}

#[tokio::test]
async fn an_abandoned_fill_is_an_error_for_its_readers_and_stores_nothing() {
    let s = leak(MemoryStorage::new(1 << 20, 16));
    let k = key("/abandon");
    let mut miss = s.get_miss_handler(&k, &meta(), &span()).await.unwrap();
    let (_, mut hit) = s.lookup(&k, &span()).await.unwrap().unwrap();
    miss.write_body(Bytes::from_static(b"part"), false)
        .await
        .unwrap();
    drop(miss);
    assert_eq!(hit.read_body().await.unwrap().unwrap(), "part");
    assert!(
        hit.read_body().await.is_err(),
        "a truncated body must not look whole"
    );
    assert!(s.lookup(&k, &span()).await.unwrap().is_none());
}

#[tokio::test]
async fn purge_during_a_fill_wins_over_its_finish() {
    // pingora memory.rs `test_purge_partial`.
    let s = leak(MemoryStorage::new(1 << 20, 16));
    let k = key("/purge");
    let mut miss = s.get_miss_handler(&k, &meta(), &span()).await.unwrap();
    miss.write_body(Bytes::from_static(b"x"), true)
        .await
        .unwrap();
    let outcome = s
        .purge(
            PurgeTarget::Active(&k.to_compact()),
            PurgeType::Invalidation,
            &span(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PurgeOutcome::Purged(None));
    miss.finish().await.unwrap();
    assert!(s.lookup(&k, &span()).await.unwrap().is_none());
}

#[tokio::test]
async fn purge_and_expire_a_complete_object() {
    let s = leak(MemoryStorage::new(1 << 20, 16));
    let k = key("/p");
    put(s, &k, b"v").await;
    let target = k.to_compact();
    assert_eq!(
        s.expire(PurgeTarget::Active(&target), &span())
            .await
            .unwrap(),
        PurgeOutcome::Expired
    );
    let (m, _) = s.lookup(&k, &span()).await.unwrap().unwrap();
    assert!(!m.is_fresh(SystemTime::now()));
    assert_eq!(
        s.purge(
            PurgeTarget::Active(&target),
            PurgeType::Invalidation,
            &span()
        )
        .await
        .unwrap(),
        PurgeOutcome::Purged(None)
    );
    assert!(s.lookup(&k, &span()).await.unwrap().is_none());
    assert_eq!(
        s.purge(
            PurgeTarget::Active(&target),
            PurgeType::Invalidation,
            &span()
        )
        .await
        .unwrap(),
        PurgeOutcome::NotFound
    );
}

#[tokio::test]
async fn seek_serves_ranges_from_the_shared_body() {
    let s = leak(MemoryStorage::new(1 << 20, 16));
    let k = key("/range");
    put(s, &k, b"0123456789").await;
    let (_, mut hit) = s.lookup(&k, &span()).await.unwrap().unwrap();
    hit.seek(2, Some(5)).unwrap();
    assert_eq!(read_all(&mut hit).await.unwrap(), b"234");
    hit.seek(8, None).unwrap();
    assert_eq!(read_all(&mut hit).await.unwrap(), b"89");
    assert!(hit.seek(10, None).is_err());
}

#[tokio::test]
async fn update_meta_replaces_headers_and_keeps_the_body() {
    let s = leak(MemoryStorage::new(1 << 20, 16));
    let k = key("/u");
    put(s, &k, b"body").await;
    let mut m = meta();
    m.response_header_mut().insert_header("x-new", "1").unwrap();
    assert!(s.update_meta(&k, &m, &span()).await.unwrap());
    let (got, mut hit) = s.lookup(&k, &span()).await.unwrap().unwrap();
    assert_eq!(got.headers().get("x-new").unwrap(), "1");
    assert_eq!(read_all(&mut hit).await.unwrap(), b"body");
    assert!(!s.update_meta(&key("/absent"), &m, &span()).await.unwrap());
}

#[tokio::test]
async fn the_memory_bound_holds_after_filling_past_it() {
    let bound = 256 * 1024;
    let s = leak(MemoryStorage::new(bound, 16));
    let body = vec![b'x'; 16 * 1024];
    for i in 0..64 {
        put(s, &key(&format!("/{i}")), &body).await;
    }
    let stats = s.stats();
    assert!(stats.bytes <= bound, "{stats:?} exceeds {bound}");
    assert!(stats.objects > 0 && stats.objects < 64, "{stats:?}");
}

#[tokio::test]
async fn a_url_keeps_at_most_max_variants_and_its_primary_slot() {
    let s = leak(MemoryStorage::new(1 << 20, 4));
    let primary = key("/v");
    put(s, &primary, b"first").await;
    for i in 0..100u8 {
        let mut k = key("/v");
        k.set_variance_key([i; 16]);
        put(s, &k, &[i]).await;
    }
    s.objects.run_pending_tasks();
    assert_eq!(s.stats().objects, 4, "one URL, four variants at most");
    assert_eq!(s.stats().variants_replaced, 97);
    assert_eq!(s.indexes.by_url.keys("http://t/v").len(), 4);
    let (_, mut hit) = s.lookup(&primary, &span()).await.unwrap().unwrap();
    assert_eq!(
        read_all(&mut hit).await.unwrap(),
        b"first",
        "the primary slot stays"
    );
    assert_eq!(s.purge_url("http://t/v", PurgeMode::Hard), 4);
}

fn small() -> Refinement {
    Refinement {
        body: Bytes::from_static(b"small"),
        fields: vec![(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static("br"),
        )],
    }
}

async fn hit_body(s: &'static MemoryStorage, k: &CacheKey) -> Vec<u8> {
    let (m, mut hit) = s.lookup(k, &span()).await.unwrap().unwrap();
    let body = read_all(&mut hit).await.unwrap();
    assert_eq!(m.response_header().status, 200);
    body
}

#[tokio::test]
async fn a_refinement_replaces_its_fill_before_or_after_the_commit() {
    let s = leak(MemoryStorage::new(1 << 20, 16));
    // Arrives while the fill is still being written: committed instead of the chunks.
    let early = key("/early");
    let mut miss = s.get_miss_handler(&early, &meta(), &span()).await.unwrap();
    let ticket = s.fill_ticket(&early.combined_bin()).unwrap();
    miss.write_body(Bytes::from_static(b"fast fast fast"), true)
        .await
        .unwrap();
    assert!(s.refine(ticket, small()));
    miss.finish().await.unwrap();
    assert_eq!(hit_body(s, &early).await, b"small");
    // Arrives after the commit: the stored object is replaced.
    let late = key("/late");
    let mut miss = s.get_miss_handler(&late, &meta(), &span()).await.unwrap();
    let ticket = s.fill_ticket(&late.combined_bin()).unwrap();
    miss.write_body(Bytes::from_static(b"fast fast fast"), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
    assert!(s.refine(ticket, small()));
    assert_eq!(hit_body(s, &late).await, b"small");
    let (m, _) = s.lookup(&late, &span()).await.unwrap().unwrap();
    assert_eq!(
        m.headers()["content-encoding"],
        "br",
        "the fields came with the body"
    );
    assert_eq!(m.headers()["content-length"], "5");
    assert_eq!(
        s.purge_url("http://t/late", PurgeMode::Hard),
        1,
        "still indexed by URL"
    );
}

#[tokio::test]
async fn a_refinement_never_outlives_a_purge_or_a_newer_fill() {
    let s = leak(MemoryStorage::new(1 << 20, 16));
    let k = key("/p");
    let mut miss = s.get_miss_handler(&k, &meta(), &span()).await.unwrap();
    let ticket = s.fill_ticket(&k.combined_bin()).unwrap();
    miss.write_body(Bytes::from_static(b"v1"), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
    s.purge_url("http://t/p", PurgeMode::Hard);
    assert!(!s.refine(ticket, small()), "purged");
    assert!(s.lookup(&k, &span()).await.unwrap().is_none());

    let mut miss = s.get_miss_handler(&k, &meta(), &span()).await.unwrap();
    let first = s.fill_ticket(&k.combined_bin()).unwrap();
    miss.write_body(Bytes::from_static(b"v2"), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
    put(s, &k, b"v3").await;
    assert!(!s.refine(first, small()), "rewritten since");
    assert_eq!(hit_body(s, &k).await, b"v3");
    assert!(s.fill_ticket(&key("/none").combined_bin()).is_none());
}
