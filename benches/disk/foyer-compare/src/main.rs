//! Meridian's disk store against foyer's block engine (0.22, tombstone log on and off), on
//! the same workload, each engine in a process of its own (so RSS is its own):
//!
//! 1. write `objects` bodies of `size` bytes, and wait until they are on disk;
//! 2. delete every 100th key (a purge);
//! 3. close, reopen (timed: how long until the store serves), count what came back and
//!    whether a deleted key returned;
//! 4. read 2,000 random keys from disk after the reopen (timed), checking every byte.
//!
//! ```sh
//! cd benches/disk/foyer-compare && CARGO_TARGET_DIR=../../../target cargo run --release -- [OBJECTS] [SIZE]
//! ```
//!
//! Not a member of Meridian's package: CI does not build it, and foyer is not a dependency
//! of the node. Results: benches/results/2026-12-01-vm/disk-engine.md.

use anyhow::{anyhow, Result};
use foyer::{BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder};
use meridian::cache::disk::record::{Purge, Selector};
use meridian::cache::disk::{DiskConfig, DiskStore};
use std::path::Path;
use std::time::Instant;

const CAPACITY: u64 = 4 << 30;
const READS: u64 = 2_000;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn body(i: u64, size: usize) -> Vec<u8> {
    let seed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..size)
        .map(|j| (seed >> ((j % 8) * 8)) as u8 ^ j as u8)
        .collect()
}

fn key16(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_le_bytes());
    k[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k
}

/// A pseudo-random key among `objects` (the same sequence for every engine).
fn pick(n: u64, objects: u64) -> u64 {
    n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407) % objects
}

/// What one phase measured, printed as `name=value` lines for the driver.
fn emit(pairs: &[(&str, f64)]) {
    for (name, value) in pairs {
        println!("{name}={value}");
    }
}

/// Phase one: write, then delete every 100th key; the store is closed at the end.
fn meridian_write(dir: &Path, objects: u64, size: usize) -> Result<()> {
    let store = DiskStore::open(DiskConfig::new(dir.to_path_buf(), CAPACITY, 64 << 20))?;
    let started = Instant::now();
    for i in 0..objects {
        let mut w = store.writer(key16(i), format!("http://bench.test/o/{i}"), vec![], vec![0; 64]);
        w.write(&body(i, size))?;
        w.commit()?;
    }
    let write_s = started.elapsed().as_secs_f64();
    for i in (0..objects).step_by(100) {
        store.purge(Purge {
            selector: Selector::Key(key16(i)),
            soft: false,
        })?;
    }
    emit(&[("write_s", write_s)]);
    Ok(())
}

/// Phase two, in a fresh process: reopen, count, read.
fn meridian_reopen(dir: &Path, objects: u64, size: usize) -> Result<()> {
    let rss_before = rss_mib();
    let started = Instant::now();
    let store = DiskStore::open(DiskConfig::new(dir.to_path_buf(), CAPACITY, 64 << 20))?;
    let reopen_s = started.elapsed().as_secs_f64();
    let rss = rss_mib() - rss_before;
    let back = (0..objects)
        .filter(|i| i % 100 != 0 && store.contains(&key16(*i)))
        .count();
    let deleted_back = (0..objects)
        .step_by(100)
        .filter(|i| store.lookup(&key16(*i)).is_some())
        .count();
    let started = Instant::now();
    for n in 0..READS {
        let i = pick(n, objects);
        if i % 100 == 0 {
            continue;
        }
        let object = store
            .lookup(&key16(i))
            .ok_or_else(|| anyhow!("meridian lost key {i}"))?;
        let mut read = Vec::with_capacity(size);
        for (f, range) in object.fragments_for(0, object.body_len) {
            read.extend_from_slice(&store.fragment(&object, f)?[range]);
        }
        if read != body(i, size) {
            return Err(anyhow!("meridian returned a wrong body for {i}"));
        }
    }
    emit(&[
        ("reopen_s", reopen_s),
        ("rss_mib", rss),
        ("back", back as f64),
        ("deleted_back", deleted_back as f64),
        ("read_s", started.elapsed().as_secs_f64()),
    ]);
    Ok(())
}

async fn open_foyer(dir: &Path, tombstones: bool) -> Result<HybridCache<u64, Vec<u8>>> {
    let device = FsDeviceBuilder::new(dir)
        .with_capacity(CAPACITY as usize)
        .build()?;
    Ok(HybridCacheBuilder::new()
        // As small as it goes: reads after the reopen must come from the disk.
        .memory(1 << 20)
        .with_weighter(|_k: &u64, v: &Vec<u8>| v.len())
        .storage()
        .with_engine_config(BlockEngineConfig::new(device).with_tombstone_log(tombstones))
        .build()
        .await?)
}

async fn foyer_write(dir: &Path, objects: u64, size: usize, tombstones: bool) -> Result<()> {
    let cache = open_foyer(dir, tombstones).await?;
    let started = Instant::now();
    for i in 0..objects {
        // Straight to the disk engine, as Meridian's writes are (forced past its admission).
        cache.storage_writer(i).force().insert(body(i, size));
        // Its flush queue drops entries when it is full: let it drain as it goes.
        if i % 256 == 255 {
            cache.storage().wait().await;
        }
    }
    cache.storage().wait().await;
    let write_s = started.elapsed().as_secs_f64();
    for i in (0..objects).step_by(100) {
        cache.remove(&i);
    }
    cache.storage().wait().await;
    cache.close().await?;
    emit(&[("write_s", write_s)]);
    Ok(())
}

async fn foyer_reopen(dir: &Path, objects: u64, size: usize, tombstones: bool) -> Result<()> {
    let rss_before = rss_mib();
    let started = Instant::now();
    let cache = open_foyer(dir, tombstones).await?;
    let reopen_s = started.elapsed().as_secs_f64();
    let rss = rss_mib() - rss_before;
    let (mut back, mut deleted_back) = (0u64, 0u64);
    for i in 0..objects {
        if cache.storage().may_contains(&i) {
            if i % 100 == 0 {
                // A false positive of the filter is checked by reading.
                if cache.get(&i).await?.is_some() {
                    deleted_back += 1;
                }
            } else {
                back += 1;
            }
        }
    }
    cache.memory().clear();
    let started = Instant::now();
    for n in 0..READS {
        let i = pick(n, objects);
        if i % 100 == 0 {
            continue;
        }
        match cache.get(&i).await? {
            Some(e) if *e.value() == body(i, size) => {}
            Some(_) => return Err(anyhow!("foyer returned a wrong body for {i}")),
            None => {}
        }
    }
    let read_s = started.elapsed().as_secs_f64();
    cache.close().await?;
    emit(&[
        ("reopen_s", reopen_s),
        ("rss_mib", rss),
        ("back", back as f64),
        ("deleted_back", deleted_back as f64),
        ("read_s", read_s),
    ]);
    Ok(())
}

fn phase(engine: &str, phase: &str, dir: &Path, objects: u64, size: usize) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tombstones = engine == "foyer";
    match (engine, phase) {
        ("meridian", "write") => meridian_write(dir, objects, size),
        ("meridian", "reopen") => meridian_reopen(dir, objects, size),
        ("foyer" | "foyer-no-tombstones", "write") => {
            runtime.block_on(foyer_write(dir, objects, size, tombstones))
        }
        ("foyer" | "foyer-no-tombstones", "reopen") => {
            runtime.block_on(foyer_reopen(dir, objects, size, tombstones))
        }
        other => Err(anyhow!("unknown engine or phase {other:?}")),
    }
}

/// Runs one phase in a child process and reads back what it measured.
fn child(engine: &str, step: &str, dir: &Path, objects: u64, size: usize) -> Result<std::collections::HashMap<String, f64>> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--phase")
        .args([engine, step])
        .arg(dir)
        .args([objects.to_string(), size.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(anyhow!("{engine} {step}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--phase") {
        let [engine, step, dir, objects, size] = [2, 3, 4, 5, 6].map(|i| args.get(i).cloned().unwrap_or_default());
        return phase(&engine, &step, Path::new(&dir), objects.parse()?, size.parse()?);
    }
    let objects: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16_384);
    let size: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(65_536);
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into());
    println!("{objects} objects of {size} bytes; every 100th deleted before the reopen\n");
    println!("| engine | write | reopen | objects back | deleted keys back | random disk reads | RSS after reopen per object |");
    println!("|---|---|---|---|---|---|---|");
    for engine in ["meridian", "foyer", "foyer-no-tombstones"] {
        let dir = tempfile::tempdir_in(&base)?;
        let result = child(engine, "write", dir.path(), objects, size)
            .and_then(|w| Ok((w, child(engine, "reopen", dir.path(), objects, size)?)));
        match result {
            Ok((w, r)) => {
                let get = |m: &std::collections::HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(f64::NAN);
                let mib = objects as f64 * size as f64 / f64::from(1 << 20);
                let deleted = objects.div_ceil(100);
                println!(
                    "| {engine} | {:.0} MB/s | {:.2} s | {:.0} of {} | {:.0} of {} | {:.0} reads/s | {:.0} B |",
                    mib / get(&w, "write_s"),
                    get(&r, "reopen_s"),
                    get(&r, "back"),
                    objects - deleted,
                    get(&r, "deleted_back"),
                    deleted,
                    READS as f64 / get(&r, "read_s"),
                    get(&r, "rss_mib").max(0.0) * f64::from(1 << 20) / objects as f64,
                );
            }
            Err(e) => println!("| {engine} | failed: {e} | | | | | |"),
        }
    }
    Ok(())
}
