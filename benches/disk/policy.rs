//! Which eviction policy the disk tier should use, measured: byte hit ratio on a Zipf trace
//! for LRU (the reference) and for the log's own policies, which must evict a whole segment
//! at a time (oldest first) because that is how a log-structured store gets space back.
//!
//! ```sh
//! cargo run --release --example disk_policy            # the default trace
//! cargo run --release --example disk_policy -- 1.0     # another Zipf exponent
//! ```
//!
//! Policies:
//! - `lru`: byte-bounded LRU over objects (what a per-object store could do; the baseline).
//! - `lru+doorkeeper`: LRU admitting an object on its second miss (see below).
//! - `fifo`: the log as it is: every miss appended, the oldest segment dropped whole.
//! - `fifo+reinsert`: as `fifo`, but objects hit since they were written are appended again
//!   when their segment goes (a second chance, as CLOCK), at the cost of rewriting them.
//! - `fifo+doorkeeper`: as `fifo`, but an object is written only on its second miss within
//!   a window (one-hit wonders never reach the disk; TinyLFU's doorkeeper idea).
//! - `fifo+both`: the two together.
//!
//! Reported: byte hit ratio and bytes written to disk per byte requested (write cost).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Objects in the catalogue, requests in the trace.
const OBJECTS: usize = 200_000;
const REQUESTS: usize = 2_000_000;
/// Segments per cache (the store uses 16).
const SEGMENTS: u64 = 16;

fn main() {
    let alpha: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0.8);
    let mut rng = fastrand::Rng::with_seed(7);
    // Sizes: mostly small pages and assets, a tail of large files (a CDN's typical mix).
    let sizes: Vec<u64> = (0..OBJECTS)
        .map(|_| match rng.u32(0..100) {
            0..=59 => rng.u64(2_000..50_000),
            60..=94 => rng.u64(50_000..500_000),
            _ => rng.u64(500_000..8_000_000),
        })
        .collect();
    let catalogue: u64 = sizes.iter().sum();
    let trace = zipf_trace(&mut rng, alpha);
    let requested: u64 = trace.iter().map(|&k| sizes[k]).sum();
    println!(
        "Zipf alpha {alpha}: {OBJECTS} objects ({} GiB), {REQUESTS} requests ({} GiB)\n",
        catalogue >> 30,
        requested >> 30
    );
    println!("| cache / catalogue | policy | byte hit ratio | bytes written / requested |");
    println!("|---|---|---|---|");
    for share in [0.01, 0.05, 0.1, 0.25] {
        let capacity = (catalogue as f64 * share) as u64;
        let results = [
            ("lru", lru(&trace, &sizes, capacity, false)),
            ("lru+doorkeeper", lru(&trace, &sizes, capacity, true)),
            ("fifo", log(&trace, &sizes, capacity, false, false)),
            ("fifo+reinsert", log(&trace, &sizes, capacity, true, false)),
            (
                "fifo+doorkeeper",
                log(&trace, &sizes, capacity, false, true),
            ),
            ("fifo+both", log(&trace, &sizes, capacity, true, true)),
        ];
        for (name, r) in results {
            println!(
                "| {:.0} % | {name} | {:.3} | {:.3} |",
                share * 100.0,
                r.hit_bytes as f64 / requested as f64,
                r.written as f64 / requested as f64
            );
        }
    }
}

fn zipf_trace(rng: &mut fastrand::Rng, alpha: f64) -> Vec<usize> {
    let weights: Vec<f64> = (1..=OBJECTS)
        .map(|r| 1.0 / (r as f64).powf(alpha))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(OBJECTS);
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cdf.push(acc);
    }
    // Rank r is object r shuffled, so popularity is not correlated with size order.
    let mut ids: Vec<usize> = (0..OBJECTS).collect();
    rng.shuffle(&mut ids);
    (0..REQUESTS)
        .map(|_| {
            let u = rng.f64();
            let rank = cdf.partition_point(|&c| c < u).min(OBJECTS - 1);
            ids[rank]
        })
        .collect()
}

#[derive(Default)]
struct Outcome {
    hit_bytes: u64,
    written: u64,
}

fn lru(trace: &[usize], sizes: &[u64], capacity: u64, doorkeeper: bool) -> Outcome {
    let mut out = Outcome::default();
    let mut seen_once: HashSet<usize> = HashSet::new();
    let doorkeeper_window = index_window(capacity, sizes);
    let mut last_use: HashMap<usize, u64> = HashMap::new();
    let mut by_age: BTreeMap<u64, usize> = BTreeMap::new();
    let mut used = 0;
    for (tick, &k) in trace.iter().enumerate() {
        let tick = tick as u64;
        if let Some(old) = last_use.insert(k, tick) {
            by_age.remove(&old);
            by_age.insert(tick, k);
            out.hit_bytes += sizes[k];
            continue;
        }
        last_use.remove(&k);
        if sizes[k] > capacity / SEGMENTS {
            continue; // the store's max_object: size / 16
        }
        if doorkeeper && seen_once.insert(k) {
            if seen_once.len() > doorkeeper_window {
                seen_once.clear();
            }
            continue;
        }
        out.written += sizes[k];
        used += sizes[k];
        last_use.insert(k, tick);
        by_age.insert(tick, k);
        while used > capacity {
            let Some((_, victim)) = by_age.pop_first() else {
                break;
            };
            last_use.remove(&victim);
            used -= sizes[victim];
        }
    }
    out
}

/// The log: segments of capacity / SEGMENTS bytes, appended in order, dropped oldest first.
fn log(trace: &[usize], sizes: &[u64], capacity: u64, reinsert: bool, doorkeeper: bool) -> Outcome {
    let segment_bytes = capacity / SEGMENTS;
    let mut out = Outcome::default();
    // Object -> (segment it is in, hit since written).
    let mut index: HashMap<usize, (u64, bool)> = HashMap::new();
    let mut segments: VecDeque<(u64, Vec<usize>)> = VecDeque::new();
    let mut head_fill = 0u64;
    let mut next_segment = 0u64;
    // Doorkeeper: keys missed once recently; cleared every `capacity`-worth of requests' keys.
    let mut seen_once: HashSet<usize> = HashSet::new();
    let doorkeeper_window = index_window(capacity, sizes);
    let mut used = 0u64;

    let mut append = |k: usize,
                      index: &mut HashMap<usize, (u64, bool)>,
                      segments: &mut VecDeque<(u64, Vec<usize>)>,
                      out: &mut Outcome,
                      used: &mut u64| {
        if segments.is_empty() || head_fill + sizes[k] > segment_bytes {
            segments.push_back((next_segment, Vec::new()));
            next_segment += 1;
            head_fill = 0;
        }
        head_fill += sizes[k];
        *used += sizes[k];
        out.written += sizes[k];
        if let Some((n, list)) = segments.back_mut() {
            list.push(k);
            index.insert(k, (*n, false));
        }
    };

    for &k in trace {
        if let Some(entry) = index.get_mut(&k) {
            entry.1 = true;
            out.hit_bytes += sizes[k];
            continue;
        }
        if sizes[k] > segment_bytes {
            continue;
        }
        if doorkeeper && seen_once.insert(k) {
            if seen_once.len() > doorkeeper_window {
                seen_once.clear();
            }
            continue;
        }
        append(k, &mut index, &mut segments, &mut out, &mut used);
        while used > capacity && segments.len() > 1 {
            let Some((n, list)) = segments.pop_front() else {
                break;
            };
            for victim in list {
                let Some(&(seg, hit)) = index.get(&victim) else {
                    continue;
                };
                if seg != n {
                    continue; // already rewritten into a newer segment
                }
                used -= sizes[victim];
                index.remove(&victim);
                if reinsert && hit {
                    append(victim, &mut index, &mut segments, &mut out, &mut used);
                }
            }
        }
    }
    out
}

/// How many keys the doorkeeper remembers: about as many objects as the cache holds.
fn index_window(capacity: u64, sizes: &[u64]) -> usize {
    let mean = sizes.iter().sum::<u64>() / sizes.len() as u64;
    usize::try_from(capacity / mean.max(1))
        .unwrap_or(usize::MAX)
        .max(1000)
}
