//! The disk store on a temporary directory: what is committed comes back (after a reopen
//! too), what is torn or damaged never does, purges hold across reopening, and the bytes on
//! disk stay within the bound.

use super::record::{Purge, Selector};
use super::*;

fn config(dir: &std::path::Path, size: u64) -> DiskConfig {
    DiskConfig {
        path: dir.to_path_buf(),
        size,
        max_object: size / 4,
        segment_size: u32::try_from(size / 8).unwrap(),
        resident_window: resident::WINDOW,
    }
}

fn key(i: u32) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(&i.to_le_bytes());
    k
}

/// A body of `len` bytes that differs per `seed`.
fn body(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32 ^ seed.wrapping_mul(31)) as u8)
        .collect()
}

fn put(store: &Arc<DiskStore>, i: u32, len: usize, tags: &[&str]) {
    let mut w = store.writer(
        key(i),
        format!("http://a.test/obj/{i}"),
        tags.iter().map(|t| (*t).to_owned()).collect(),
        format!("meta-{i}").into_bytes(),
    );
    let b = body(i, len);
    // Written in odd-sized pieces, as a fill streams in.
    for piece in b.chunks(7919) {
        w.write(piece).unwrap();
    }
    assert!(w.commit().unwrap());
}

fn read_all(store: &DiskStore, object: &DiskObject) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, range) in object.fragments_for(0, object.body_len) {
        out.extend_from_slice(&store.fragment(object, i).unwrap()[range]);
    }
    out
}

#[test]
fn committed_objects_come_back_whole_before_and_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    put(&store, 1, 10, &[]);
    put(&store, 2, 3 * FRAGMENT_BYTES + 5, &[]);
    let o = store.lookup(&key(2)).unwrap();
    assert_eq!(read_all(&store, &o), body(2, 3 * FRAGMENT_BYTES + 5));
    assert_eq!(o.meta, &b"meta-2"[..]);
    drop((o, store));

    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    assert_eq!(store.stats().objects, 2);
    let o = store.lookup(&key(1)).unwrap();
    assert_eq!(read_all(&store, &o), body(1, 10));
    let o = store.lookup(&key(2)).unwrap();
    assert_eq!(read_all(&store, &o), body(2, 3 * FRAGMENT_BYTES + 5));
    assert!(store.lookup(&key(3)).is_none());
}

#[test]
fn a_range_reads_only_the_fragments_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    let len = 4 * FRAGMENT_BYTES;
    put(&store, 1, len, &[]);
    let o = store.lookup(&key(1)).unwrap();
    let start = (2 * FRAGMENT_BYTES + 10) as u64;
    let parts = o.fragments_for(start, start + 20);
    assert_eq!(parts, vec![(2, 10..30)]);
    let data = store.fragment(&o, 2).unwrap();
    assert_eq!(
        &data[10..30],
        &body(1, len)[start as usize..start as usize + 20]
    );
}

#[test]
fn an_uncommitted_fill_is_never_served_and_a_torn_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    put(&store, 1, 100, &[]);
    let mut w = store.writer(key(2), "http://a.test/2".into(), vec![], vec![]);
    w.write(&body(2, 2 * FRAGMENT_BYTES)).unwrap();
    drop(w); // the process died before the commit
    assert!(store.lookup(&key(2)).is_none());
    drop(store);

    // A crash in the middle of a record: half a commit at the end of the log.
    let seg = dir.path().join("0000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let whole = bytes.len();
    let half_commit = record::encode(Kind::Commit, &[9u8; 100]);
    bytes.extend_from_slice(&half_commit[..60]);
    std::fs::write(&seg, &bytes).unwrap();

    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    assert!(store.lookup(&key(2)).is_none());
    assert!(store.lookup(&key(1)).is_some());
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        whole as u64,
        "torn tail cut"
    );
    // Appends continue after the last whole record and are found after another reopen.
    put(&store, 3, 50, &[]);
    drop(store);
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    assert_eq!(
        read_all(&store, &store.lookup(&key(3)).unwrap()),
        body(3, 50)
    );
}

#[test]
fn a_damaged_body_is_dropped_and_counted_before_its_first_byte_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    put(&store, 1, 1000, &[]);
    put(&store, 2, 1000, &[]);
    drop(store);
    // Flip a byte inside the first object's body, then fix up its fragment's CRC as a
    // misdirected write would leave it: only the body CRC in the commit can tell.
    let seg = dir.path().join("0000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let header = record::Header::parse(&bytes).unwrap();
    let payload_end = record::HEADER_LEN + header.payload_len;
    bytes[record::HEADER_LEN + 12 + 500] ^= 0xff;
    let fixed = record::encode(Kind::Fragment, &bytes[record::HEADER_LEN..payload_end]);
    bytes[..payload_end].copy_from_slice(&fixed);
    std::fs::write(&seg, &bytes).unwrap();

    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    assert!(
        store.lookup(&key(1)).is_none(),
        "a damaged body is never served"
    );
    assert_eq!(store.counters.damaged.load(Ordering::Relaxed), 1);
    assert!(store.lookup(&key(2)).is_some());
    assert_eq!(store.stats().objects, 1);
}

/// A store holding objects 1 to 6 of 100 bytes, tagged "even" or "odd".
fn six_tagged_objects() -> (tempfile::TempDir, Arc<DiskStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    for i in 1..=6 {
        put(
            &store,
            i,
            100,
            if i % 2 == 0 { &["even"] } else { &["odd"] },
        );
    }
    (dir, store)
}

#[test]
fn purges_hold_after_reopening() {
    let (dir, store) = six_tagged_objects();
    let purge = |selector, soft| Purge { selector, soft };
    assert_eq!(store.purge(purge(Selector::Key(key(1)), false)).unwrap(), 1);
    store
        .purge(purge(Selector::Tag("even".into()), false))
        .unwrap();
    store
        .purge(purge(Selector::Prefix("https://a.test/obj/5".into()), true))
        .unwrap();
    // Stored after the purges: untouched by them.
    put(&store, 8, 100, &["even"]);
    let check = |store: &Arc<DiskStore>| {
        assert!(store.lookup(&key(1)).is_none(), "key purge");
        for i in [2, 4, 6] {
            assert!(store.lookup(&key(i)).is_none(), "tag purge of {i}");
        }
        assert!(!store.lookup(&key(3)).unwrap().soft_purged);
        assert!(
            store.lookup(&key(5)).unwrap().soft_purged,
            "soft prefix purge"
        );
        assert!(store.lookup(&key(8)).is_some(), "newer than the purge");
    };
    check(&store);
    drop(store);
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    check(&store);
    store.purge(purge(Selector::All, false)).unwrap();
    drop(store);
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    assert_eq!(store.stats().objects, 0);
    assert!(store.lookup(&key(8)).is_none());
}

#[test]
fn bytes_on_disk_stay_within_size_plus_one_segment_and_the_oldest_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let size = 8 << 20;
    let cfg = config(dir.path(), size);
    let segment = u64::from(cfg.segment_size);
    let store = DiskStore::open(cfg).unwrap();
    for i in 0..200 {
        put(&store, i, 100_000 + (i as usize * 3001) % 50_000, &[]);
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(
            on_disk <= size + segment,
            "{on_disk} bytes on disk after {i}"
        );
    }
    assert!(store.lookup(&key(0)).is_none(), "the oldest went");
    assert!(store.lookup(&key(199)).is_some(), "the newest stays");
    assert!(store.counters.evictions.load(Ordering::Relaxed) > 100);
    let objects = store.stats().objects;
    drop(store);
    let store = DiskStore::open(config(dir.path(), size)).unwrap();
    assert_eq!(
        store.stats().objects,
        objects,
        "the same objects after reopening"
    );
}

#[test]
fn a_body_over_max_object_is_refused_while_it_streams() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 4 << 20)).unwrap();
    let mut w = store.writer(key(1), "http://a.test/big".into(), vec![], vec![]);
    let err = w.write(&vec![0u8; (1 << 20) + 1]).unwrap_err();
    assert!(matches!(err, DiskError::TooLarge));
}

#[test]
fn an_object_hit_since_its_write_survives_its_segment_and_one_never_hit_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let size = 8 << 20;
    let store = DiskStore::open(config(dir.path(), size)).unwrap();
    put(&store, 0, 100_000, &[]); // hit below: written again when its segment goes
    put(&store, 1, 100_000, &[]); // never hit: goes with its segment
    put(&store, 2, 100_000, &["gone"]); // hit, but purged since: not written again
    assert!(store.lookup(&key(0)).is_some());
    assert!(store.lookup(&key(2)).is_some());
    store
        .purge(Purge {
            selector: Selector::Tag("gone".into()),
            soft: true,
        })
        .unwrap();
    for i in 10..200 {
        put(&store, i, 100_000, &[]);
        // A popular object: asked for again and again, so each copy is hit before it goes.
        if i % 20 == 0 {
            assert!(
                store.lookup(&key(0)).is_some(),
                "the popular object went at {i}"
            );
        }
    }
    assert!(store.lookup(&key(1)).is_none(), "never hit: evicted");
    assert!(
        store.lookup(&key(2)).is_none(),
        "purged since its write: not kept"
    );
    let kept = store.lookup(&key(0)).expect("hit: written again");
    assert_eq!(read_all(&store, &kept), body(0, 100_000));
    assert!(store.counters.reinserted.load(Ordering::Relaxed) >= 1);
    drop((kept, store));
    let store = DiskStore::open(config(dir.path(), size)).unwrap();
    let kept = store
        .lookup(&key(0))
        .expect("the copy is found after reopening");
    assert_eq!(read_all(&store, &kept), body(0, 100_000));
}

#[test]
fn the_doorkeeper_admits_a_key_on_its_second_miss() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 8 << 20)).unwrap();
    assert!(!store.admit(&key(1)), "first miss: not written");
    assert!(!store.admit(&key(2)));
    assert!(store.admit(&key(1)), "second miss: written");
    assert!(
        !store.admit(&key(1)),
        "the doorkeeper forgot it once admitted"
    );
    assert_eq!(store.counters.not_admitted.load(Ordering::Relaxed), 3);
}

#[test]
fn a_failed_write_pauses_writes_and_a_purge_that_cannot_be_recorded_empties_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    // Small segments, so that the next records need a new file the removed directory
    // cannot take (appends to the open file would still work).
    let store = DiskStore::open(DiskConfig {
        segment_size: 4096,
        ..config(&path, 1 << 20)
    })
    .unwrap();
    let tag = "t".repeat(2000);
    put(&store, 1, 3000, &[&tag]);
    assert!(store.writable());
    std::fs::remove_dir_all(&path).unwrap();

    let mut w = store.writer(key(2), "http://a.test/obj/2".into(), vec![], vec![]);
    w.write(&body(2, 5000)).unwrap();
    assert!(matches!(w.commit(), Err(DiskError::Io { .. })));
    assert!(!store.writable(), "writes pause after a failed one");
    assert_eq!(store.counters.write_errors.load(Ordering::Relaxed), 1);
    assert!(
        !store.admit(&key(3)) && !store.admit(&key(3)),
        "no fill is admitted while paused"
    );
    let mut w = store.writer(key(4), "http://a.test/obj/4".into(), vec![], vec![]);
    w.write(&body(4, 10)).unwrap();
    assert!(matches!(w.commit(), Err(DiskError::Paused)));
    assert_eq!(
        store.counters.write_errors.load(Ordering::Relaxed),
        1,
        "nothing is tried meanwhile"
    );
    // What was written whole is still served (its file is open).
    assert_eq!(
        read_all(&store, &store.lookup(&key(1)).unwrap()),
        body(1, 3000)
    );

    // This purge's record does not fit the open segment and no new one can be made.
    let purge = Purge {
        selector: Selector::Tag(tag),
        soft: false,
    };
    assert_eq!(store.purge(purge).unwrap(), 1);
    assert!(store.lookup(&key(1)).is_none(), "the purge holds");
    assert_eq!(store.stats().objects, 0);
}

/// Drops the store's files from the page cache (written back first, so the pages can go).
fn evict_page_cache(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "seg") {
            let file = std::fs::File::open(&path).unwrap();
            file.sync_all().unwrap();
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        }
    }
}

#[test]
fn a_read_that_would_wait_for_the_device_is_refused_without_waiting_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    put(&store, 1, 2 * FRAGMENT_BYTES + 10, &[]);
    // Just written: in the page cache, read at once.
    let object = store.lookup_now(&key(1)).unwrap().unwrap();
    let mut body = Vec::new();
    for (i, range) in object.fragments_for(0, object.body_len) {
        body.extend_from_slice(&store.fragment_now(&object, i).unwrap()[range]);
    }
    assert_eq!(body, self::body(1, 2 * FRAGMENT_BYTES + 10));

    // The kernel may read evicted pages back at once (readahead after a refused read), so
    // eviction is retried, with a deadline, until both reads find their bytes gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        evict_page_cache(dir.path());
        let before = (
            store.counters.hits.load(Ordering::Relaxed),
            store.counters.misses.load(Ordering::Relaxed),
        );
        let fragment_refused = matches!(store.fragment_now(&object, 1), Err(ReadError::WouldBlock));
        let lookup_refused = store.lookup_now(&key(1)).is_err();
        if fragment_refused && lookup_refused {
            assert_eq!(
                (
                    store.counters.hits.load(Ordering::Relaxed),
                    store.counters.misses.load(Ordering::Relaxed),
                    store.stats().objects
                ),
                (before.0, before.1, 1),
                "a refused read counts nothing and drops nothing"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page cache never let go of the store's bytes"
        );
    }
    // The waiting read (on the blocking pool, in the node) still finds it whole.
    assert_eq!(read_all(&store, &store.lookup(&key(1)).unwrap()), body);
}

#[test]
fn a_region_found_in_the_page_cache_is_not_asked_about_again_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(DiskConfig {
        // Longer than the eviction below may take.
        resident_window: std::time::Duration::from_secs(3600),
        ..config(dir.path(), 64 << 20)
    })
    .unwrap();
    put(&store, 1, 1000, &[]);
    let object = store.lookup_now(&key(1)).unwrap().unwrap();
    // Just written, so in the page cache: found there, and noted.
    assert!(store.fragment_region(&object, 0, 0..500).unwrap().is_some());
    // Gone from the page cache: a region of the same page, never noted, is refused (a probe
    // found cached is noted in turn, so each probe is a region of its own). `cachestat`
    // reads nothing, so the probes do not bring the page back as a refused read may.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut end = 1000;
    loop {
        evict_page_cache(dir.path());
        if store
            .fragment_region(&object, 0, 500..end)
            .unwrap()
            .is_none()
        {
            break;
        }
        end -= 1;
        assert!(
            std::time::Instant::now() < deadline && end > 500,
            "the page cache never let go of the store's bytes"
        );
    }
    // ...yet the noted region is given without asking: found there less than the window ago.
    assert!(store.fragment_region(&object, 0, 0..500).unwrap().is_some());
}

#[test]
fn a_checkpoint_restores_the_index_and_what_the_log_holds_after_it_is_replayed() {
    let (dir, store) = six_tagged_objects();
    let purge = |selector, soft| Purge { selector, soft };
    store
        .purge(purge(Selector::Prefix("https://a.test/obj/5".into()), true))
        .unwrap();
    store.checkpoint().unwrap();
    // After the checkpoint: a key purge, a tag rule, a new object.
    store.purge(purge(Selector::Key(key(1)), false)).unwrap();
    store
        .purge(purge(Selector::Tag("even".into()), false))
        .unwrap();
    put(&store, 8, 100, &["even"]);
    let check = |store: &Arc<DiskStore>| {
        assert!(
            store.lookup(&key(1)).is_none(),
            "key purge after the checkpoint"
        );
        for i in [2, 4, 6] {
            assert!(store.lookup(&key(i)).is_none(), "tag purge of {i}");
        }
        assert_eq!(
            read_all(store, &store.lookup(&key(3)).unwrap()),
            body(3, 100)
        );
        assert!(
            store.lookup(&key(5)).unwrap().soft_purged,
            "a rule from the checkpoint"
        );
        assert!(
            store.lookup(&key(8)).is_some(),
            "written after the checkpoint"
        );
        assert_eq!(store.stats().objects, 3);
    };
    drop(store);
    assert!(dir.path().join("index.ckpt").exists());
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    assert!(
        !dir.path().join("index.ckpt").exists(),
        "a checkpoint is used once"
    );
    check(&store);
    drop(store);
    // Without it, the whole log says the same.
    check(&DiskStore::open(config(dir.path(), 64 << 20)).unwrap());
}

/// A closed store holding objects 1 and 2 of 100 bytes, with a checkpoint after them.
fn two_objects_and_a_checkpoint() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    put(&store, 1, 100, &[]);
    put(&store, 2, 100, &[]);
    store.checkpoint().unwrap();
    dir
}

#[test]
fn a_checkpoint_the_log_no_longer_matches_is_ignored_for_a_full_scan() {
    let dir = two_objects_and_a_checkpoint();
    // The log lost its end (the checkpoint's position is past it): object 2 is gone.
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    assert!(store.lookup(&key(1)).is_some());
    assert!(
        store.lookup(&key(2)).is_none(),
        "not taken from the checkpoint"
    );
    assert_eq!(store.stats().objects, 1);
}

#[test]
fn objects_evicted_after_a_checkpoint_are_not_restored_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let size = 4 << 20;
    let store = DiskStore::open(config(dir.path(), size)).unwrap();
    for i in 0..8 {
        put(&store, i, 200_000, &[]);
    }
    store.checkpoint().unwrap();
    // Enough more that the oldest segments go.
    for i in 100..140 {
        put(&store, i, 200_000, &[]);
    }
    let live: Vec<u32> = (0..8)
        .chain(100..140)
        .filter(|i| store.contains(&key(*i)))
        .collect();
    assert!(!store.contains(&key(0)), "the oldest were evicted");
    drop(store);
    let store = DiskStore::open(config(dir.path(), size)).unwrap();
    for i in (0..8).chain(100..140) {
        assert_eq!(store.contains(&key(i)), live.contains(&i), "object {i}");
        if let Some(o) = store.lookup(&key(i)) {
            assert_eq!(read_all(&store, &o), body(i, 200_000));
        }
    }
}

#[test]
fn a_commit_longer_than_one_read_guess_comes_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    // A commit record is read with its header in one call of a guessed size: this one (a
    // 9 KiB meta, 200 tags) needs the rest read after it.
    let meta: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
    let tags: Vec<String> = (0..200).map(|i| format!("tag-{i}")).collect();
    let mut w = store.writer(
        key(7),
        "http://a.test/long".into(),
        tags.clone(),
        meta.clone(),
    );
    w.write(&body(7, 5000)).unwrap();
    assert!(w.commit().unwrap());
    drop(store);
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    let o = store.lookup(&key(7)).expect("found after reopening");
    assert_eq!((o.meta.to_vec(), o.tags.clone()), (meta.clone(), tags));
    assert_eq!(read_all(&store, &o), body(7, 5000));
    // And from the page cache without waiting, as a proxy thread reads it.
    let now = store
        .lookup_now(&key(7))
        .ok()
        .flatten()
        .expect("in the page cache");
    assert_eq!(now.meta, meta);
    assert_eq!(
        &store.fragment_now(&now, 0).unwrap()[..],
        &body(7, 5000)[..]
    );
}

#[test]
fn entries_filed_from_a_checkpoint_whose_crc_fails_are_undone_for_a_full_scan() {
    let dir = two_objects_and_a_checkpoint();
    // Entries go into the index as they are read, before the CRC at the end is checked: a
    // flipped bit in the first entry's key must not leave a made-up key behind.
    let ckpt = dir.path().join("index.ckpt");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    bytes[32] ^= 0x80;
    std::fs::write(&ckpt, &bytes).unwrap();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    assert_eq!(store.stats().objects, 2, "both found by the full scan");
    assert!(store.lookup(&key(1)).is_some() && store.lookup(&key(2)).is_some());
    let mut made_up = [key(1), key(2)];
    made_up.iter_mut().for_each(|k| k[0] ^= 0x80);
    assert!(made_up.iter().all(|k| !store.contains(k)));
}

/// The index entry's `commit_len` for `key` (0: not known).
fn known_commit_len(store: &DiskStore, key: &[u8; 16]) -> u16 {
    store.index.read().unwrap()[key]
        .commit_len
        .load(Ordering::Relaxed)
}

#[test]
fn a_lookup_reads_the_commit_record_by_the_length_the_index_keeps() {
    assert_eq!(
        std::mem::size_of::<Entry>(),
        24,
        "the length fits the padding"
    );
    let dir = two_objects_and_a_checkpoint();
    let store = DiskStore::open(config(dir.path(), 64 << 20)).unwrap();
    // Filed from the checkpoint: the length is learnt at the first (checking) lookup.
    assert_eq!(known_commit_len(&store, &key(1)), 0);
    assert_eq!(store.lookup(&key(1)).unwrap().meta, &b"meta-1"[..]);
    let (at, _) = store.filed(&key(1)).unwrap();
    let record = store.log().read(at, Kind::Commit).unwrap();
    assert_eq!(usize::from(known_commit_len(&store, &key(1))), record.len());
    // Written by this process: known from the write.
    put(&store, 3, 100, &["t"]);
    let (at, _) = store.filed(&key(3)).unwrap();
    let record = store.log().read(at, Kind::Commit).unwrap();
    assert_eq!(usize::from(known_commit_len(&store, &key(3))), record.len());
    // Lookups by that length serve the object, from the page cache too.
    for _ in 0..2 {
        let o = store.lookup(&key(3)).unwrap();
        assert_eq!(
            (o.meta.to_vec(), read_all(&store, &o)),
            (b"meta-3".to_vec(), body(3, 100))
        );
        assert_eq!(
            store.lookup_now(&key(3)).unwrap().unwrap().meta,
            &b"meta-3"[..]
        );
    }
    // A revalidation's new commit record (longer meta) brings its own length.
    assert!(store.update_meta(&key(3), vec![7; 3000]).unwrap());
    assert_eq!(store.lookup(&key(3)).unwrap().meta, vec![7u8; 3000]);
    let (at, _) = store.filed(&key(3)).unwrap();
    let record = store.log().read(at, Kind::Commit).unwrap();
    assert_eq!(usize::from(known_commit_len(&store, &key(3))), record.len());
    // The lookup reads by that length: a kept length that is not the record's fails the
    // read's check (the object is dropped as damaged), where a guessed read would not.
    let kept = known_commit_len(&store, &key(2));
    store.index.read().unwrap()[&key(2)]
        .commit_len
        .store(kept + 1, Ordering::Relaxed);
    assert!(store.lookup(&key(2)).is_none());
}
