//! Image optimisation: how each image job ended, and the bytes it saved per output format.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Outputs counted in bytes, in label order.
const FORMATS: [&str; 4] = ["avif", "webp", "jpeg", "png"];

/// Results, in label order: re-encoded and stored, re-encoded but not smaller, and the reasons
/// an image is kept as it came.
const RESULTS: [&str; 6] = [
    "optimised",
    "not_smaller",
    "animated",
    "too_many_pixels",
    "undecodable",
    "no_change",
];

/// Handles resolved once.
pub struct ImageMetrics {
    results: [IntCounter; 6],
    bytes_in: [IntCounter; 4],
    bytes_out: [IntCounter; 4],
}

impl ImageMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let results = IntCounterVec::new(
            Opts::new(
                "meridian_image_jobs_total",
                "Image variants worked on after a fill (images = lossless / lossy), by result: \
                 optimised (stored), not_smaller, or kept as sent: animated, too_many_pixels, \
                 undecodable, no_change",
            ),
            &["result"],
        )?;
        let bytes = IntCounterVec::new(
            Opts::new(
                "meridian_image_bytes_total",
                "Bytes of stored image variants before (direction=in, the origin's) and after \
                 (out) optimisation, by output format",
            ),
            &["format", "direction"],
        )?;
        registry.register(Box::new(results.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        Ok(ImageMetrics {
            results: RESULTS.map(|r| results.with_label_values(&[r])),
            bytes_in: FORMATS.map(|f| bytes.with_label_values(&[f, "in"])),
            bytes_out: FORMATS.map(|f| bytes.with_label_values(&[f, "out"])),
        })
    }

    /// A job's result label (one of [`RESULTS`]).
    pub fn observe(&self, result: &str) {
        if let Some(i) = RESULTS.iter().position(|r| *r == result) {
            self.results[i].inc();
        }
    }

    /// An optimised variant stored: `bytes_in` of the origin's became `bytes_out`.
    pub fn saved(&self, format: &str, bytes_in: u64, bytes_out: u64) {
        if let Some(i) = FORMATS.iter().position(|f| *f == format) {
            self.bytes_in[i].inc_by(bytes_in);
            self.bytes_out[i].inc_by(bytes_out);
        }
    }
}
