//! Validation of `[tracing]`: the collector's URL, the service name, the sampling ratio.

use super::*;
use crate::config::runtime::TracingSettings;

/// Share of requests traced without a sampled parent: enough to see an edge's shape, little
/// enough that tracing costs next to nothing on cache hits.
const DEFAULT_SAMPLE_RATIO: f64 = 0.01;
const DEFAULT_QUEUE: i64 = 4096;

impl Builder<'_> {
    pub(super) fn tracing(&mut self, f: &FileConfig) -> Option<TracingSettings> {
        let t = f.tracing.as_ref()?;
        let endpoint = t.otlp_endpoint.get_ref().trim().trim_end_matches('/');
        let usable = endpoint
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.is_empty())
            && endpoint.parse::<http::Uri>().is_ok();
        if !usable {
            self.push_hint(
                t.otlp_endpoint.span(),
                "tracing.otlp_endpoint",
                format!("{endpoint:?} is not an http:// URL"),
                "the collector's OTLP/HTTP base, e.g. \"http://127.0.0.1:4318\"",
            );
        }
        let service_name = match &t.service_name {
            Some(s) if s.get_ref().trim().is_empty() => {
                self.push(s.span(), "tracing.service_name", "service name is empty");
                "meridian".to_owned()
            }
            Some(s) => s.get_ref().trim().to_owned(),
            None => "meridian".to_owned(),
        };
        let sample_ratio = match &t.sample_ratio {
            Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
            Some(r) => {
                self.push(
                    r.span(),
                    "tracing.sample_ratio",
                    format!("{} is not a ratio between 0 and 1", r.get_ref()),
                );
                DEFAULT_SAMPLE_RATIO
            }
            None => DEFAULT_SAMPLE_RATIO,
        };
        let queue = self.count(&t.queue, "tracing.queue", DEFAULT_QUEUE, 1, 1 << 20);
        Some(TracingSettings {
            traces_url: format!("{endpoint}/v1/traces"),
            service_name,
            sample_ratio,
            queue: usize::try_from(queue).unwrap_or(4096),
        })
    }
}
