//! How minification at cache fill went, by kind of body.

use crate::transform::minify::{Kind, Skipped};
use crate::transform::plan::MinifyOutcome;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

const KINDS: [&str; 3] = ["html", "css", "js"];
const RESULTS: [&str; 5] = ["minified", "not_text", "failed", "not_smaller", "too_large"];

/// Handles resolved once, `[kind][result]`.
pub struct MinifyMetrics {
    counters: [[IntCounter; RESULTS.len()]; KINDS.len()],
}

impl MinifyMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let vec = IntCounterVec::new(
            Opts::new(
                "meridian_minify_total",
                "Bodies offered to a minifier at cache fill, by kind and result (minified, \
                 not_text, failed, not_smaller, too_large): is minification paying off, and \
                 is any origin sending what the minifiers cannot parse",
            ),
            &["kind", "result"],
        )?;
        registry.register(Box::new(vec.clone()))?;
        Ok(MinifyMetrics {
            counters: KINDS.map(|k| RESULTS.map(|r| vec.with_label_values(&[k, r]))),
        })
    }

    /// Counts one body.
    pub fn observe(&self, outcome: MinifyOutcome) {
        let (kind, result) = match outcome {
            MinifyOutcome::Minified(k) => (k, 0),
            MinifyOutcome::Skipped(k, Skipped::NotText) => (k, 1),
            MinifyOutcome::Skipped(k, Skipped::Failed) => (k, 2),
            MinifyOutcome::Skipped(k, Skipped::NotSmaller) => (k, 3),
            MinifyOutcome::TooLarge(k) => (k, 4),
        };
        let kind = match kind {
            Kind::Html => 0,
            Kind::Css => 1,
            Kind::Js => 2,
        };
        if let Some(c) = self.counters.get(kind).and_then(|row| row.get(result)) {
            c.inc();
        }
    }
}
