//! What a configuration reload may change and what it reports. The node carries reloads out
//! (`node::reload`); services that trigger one (the admin API) see only the [`Reload`] trait,
//! so their arrow points down to this module and never up to the node.
//!
//! What the process was built around (listeners, threads, cache size, regions and their
//! health checks, the DNS listeners) cannot change in place: a reload that changes them is
//! refused and names them, and a restart or a graceful upgrade (docs/reload.md) applies them.

use super::shared::Published;
use super::Runtime;

/// A reload of the node's configuration, as a service asks for one.
#[async_trait::async_trait]
pub trait Reload: Send + Sync {
    /// Reads, validates and applies the configuration file.
    async fn reload(&self) -> Result<Reloaded, ReloadError>;

    /// As [`reload`](Self::reload), with `shared` (the cluster's published sites, regions,
    /// DNS and limits) in place of the file's own; kept for the reloads that follow.
    async fn reload_shared(&self, shared: Published) -> Result<Reloaded, ReloadError>;
}

/// Why a reload left the old configuration in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{path}: {count} error(s); the previous configuration stays in force:\n{errors}")]
    Invalid {
        path: String,
        count: usize,
        errors: String,
    },
    #[error(
        "{path}: {} changed, which takes a restart (or a graceful upgrade); nothing was applied",
        keys.join(", ")
    )]
    NeedsRestart {
        path: String,
        keys: Vec<&'static str>,
    },
}

/// What a successful reload put in force.
#[derive(Debug, serde::Serialize)]
pub struct Reloaded {
    pub config: String,
    pub sites: usize,
    pub dns_zones: usize,
}

/// The keys whose change a running node cannot apply, by their config names.
pub fn restart_only_changes(old: &Runtime, new: &Runtime) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |changed: bool, key: &'static str| {
        if changed {
            keys.push(key);
        }
    };
    check(old.listen.http != new.listen.http, "listen.http");
    check(old.listen.https != new.listen.https, "listen.https");
    check(old.listen.h2c != new.listen.h2c, "listen.h2c");
    check(old.listen.admin != new.listen.admin, "listen.admin");
    check(old.node.threads != new.node.threads, "node.threads");
    check(
        old.cache.memory_bytes != new.cache.memory_bytes,
        "cache.memory",
    );
    check(
        old.cache.lock_timeout != new.cache.lock_timeout,
        "cache.lock_timeout",
    );
    check(
        old.cache.max_variants != new.cache.max_variants,
        "cache.max_variants",
    );
    check(old.cache.disk != new.cache.disk, "cache.disk");
    // The disk tier takes what the memory tier does not: the line between them is fixed.
    check(
        old.cache.disk.is_some() && old.cache.max_object_bytes != new.cache.max_object_bytes,
        "cache.max_object",
    );
    check(old.transforms != new.transforms, "transforms");
    check(
        old.upstream.ejection != new.upstream.ejection,
        "upstream.eject_*",
    );
    check(old.log.access != new.log.access, "log.access");
    check(old.cluster != new.cluster, "cluster");
    check(old.tracing != new.tracing, "tracing");
    check(
        old.demo.as_ref().map(|d| &d.origins) != new.demo.as_ref().map(|d| &d.origins),
        "demo.origins",
    );
    // Regions carry the health view's shape and the running checks; compared through their
    // full printed form, since this runs once per reload.
    check(
        format!("{:?}", old.regions) != format!("{:?}", new.regions),
        "regions (or dns.edges, shield)",
    );
    let dns_shape = |rt: &Runtime| {
        rt.dns
            .as_ref()
            .map(|d| (d.listen.clone(), d.threads, d.tcp_idle_timeout))
    };
    check(dns_shape(old) != dns_shape(new), "dns.listen / dns.threads");
    keys
}
