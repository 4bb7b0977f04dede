//! The disk store at a million objects: index memory per object (RSS growth while the index
//! fills, over the object count) and the time a reopen takes to recover the index.
//!
//! ```sh
//! cargo run --release --example disk_index [OBJECTS] [DIR]   # default 1,000,000 in a temp dir
//! cargo run --release --example disk_index 0 DIR              # only reopen DIR (e.g. after
//!                                                              # dropping the page cache)
//! ```
//!
//! Objects are 100-byte bodies with a 40-byte URL and no tags: the index cost, not the disk's.

use meridian::cache::disk::{DiskConfig, DiskStore};
use std::time::Instant;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let objects: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let temp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(2)
        .map_or_else(|| temp.path().to_path_buf(), std::path::PathBuf::from);
    let config = DiskConfig::new(dir.clone(), 64 << 30, 1 << 20);

    if objects == 0 {
        let started = Instant::now();
        let store = DiskStore::open(config)?;
        println!(
            "reopen: {} objects recovered in {:.2} s",
            store.stats().objects,
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let store = DiskStore::open(config.clone())?;
    let before = rss_bytes();
    let started = Instant::now();
    let body = [7u8; 100];
    for i in 0..objects {
        let mut key = [0u8; 16];
        key[..4].copy_from_slice(&i.to_le_bytes());
        key[4..8].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        let mut w = store.writer(
            key,
            format!("http://bench.test/o/{i:020}"),
            vec![],
            vec![0; 64],
        );
        w.write(&body)?;
        w.commit()?;
    }
    let wrote = started.elapsed();
    let after = rss_bytes();
    let stats = store.stats();
    println!(
        "{} objects written in {:.1} s; {:.1} MiB on disk in {} segments",
        stats.objects,
        wrote.as_secs_f64(),
        stats.bytes as f64 / (1 << 20) as f64,
        stats.segments
    );
    println!(
        "index memory: {:.0} bytes per object (RSS {:.1} -> {:.1} MiB)",
        (after.saturating_sub(before)) as f64 / f64::from(objects),
        before as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64
    );
    drop(store);

    let started = Instant::now();
    let store = DiskStore::open(config)?;
    println!(
        "reopen: {} objects recovered in {:.2} s (a scan of every segment)",
        store.stats().objects,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
