//! What the proxy derives from one configuration: per-site metric handles and the node's
//! `Cache-Status` values. Rebuilt when a reload puts a new configuration in force; each
//! request keeps the generation it started with.

use crate::cache::CacheStatusValues;
use crate::config::Runtime;
use crate::metrics::{Metrics, SiteMetrics, UNKNOWN_SITE};
use std::sync::Arc;

pub struct Generation {
    pub rt: Arc<Runtime>,
    /// Indexed by `SiteId` of `rt`.
    site_metrics: Vec<SiteMetrics>,
    unknown_site: SiteMetrics,
    pub cache_status: CacheStatusValues,
}

impl Generation {
    pub fn new(rt: Arc<Runtime>, metrics: &Metrics) -> Generation {
        Generation {
            site_metrics: rt
                .sites
                .iter()
                .map(|s| {
                    let routes: Vec<&str> = s.routes.iter().map(|r| r.path.as_str()).collect();
                    metrics.site(&s.name, &routes)
                })
                .collect(),
            unknown_site: metrics.site(UNKNOWN_SITE, &[]),
            cache_status: CacheStatusValues::new(&rt.node.name),
            rt,
        }
    }

    /// The handles of `site`, or of requests no site took.
    pub fn site_metrics(&self, site: Option<usize>) -> &SiteMetrics {
        site.and_then(|s| self.site_metrics.get(s))
            .unwrap_or(&self.unknown_site)
    }
}
