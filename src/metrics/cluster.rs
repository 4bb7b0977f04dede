//! The fleet's purge fan-out: how many purges went out and came in, how far behind this node
//! is, and whether it can reach NATS at all.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// How publishing one purge to the cluster ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// JetStream acknowledged it: every node will apply it.
    Acked,
    /// No acknowledgement within `cluster.purge_timeout` (NATS unreachable, or slow).
    Timeout,
    /// NATS refused it or the node has no connection yet.
    Failed,
}

impl Published {
    const ALL: [Published; 3] = [Published::Acked, Published::Timeout, Published::Failed];

    pub fn label(self) -> &'static str {
        match self {
            Published::Acked => "acked",
            Published::Timeout => "timeout",
            Published::Failed => "failed",
        }
    }
}

/// Handles resolved once.
pub struct ClusterMetrics {
    published: [IntCounter; 3],
    /// Purges from the cluster applied here (this node's own included).
    pub applied: IntCounter,
    /// Deliveries skipped because their id was applied already.
    pub duplicates: IntCounter,
    /// Messages on the purge stream that could not be read (counted, acknowledged, dropped).
    pub malformed: IntCounter,
    /// Seconds from a purge's publication to its application here.
    pub lag: Histogram,
    /// Purges published and not yet delivered to this node.
    pub pending: IntGauge,
    /// 1 while this node has a NATS connection.
    pub connected: IntGauge,
    /// The shared configuration's revision in force (0: the node's own file).
    pub config_revision: IntGauge,
    /// Shared configuration versions this node refused.
    pub config_refused: IntCounter,
}

impl ClusterMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let published = IntCounterVec::new(
            Opts::new(
                "meridian_cluster_purges_published_total",
                "Purges this node's admin API published to the cluster, by result: acked \
                 (every node will apply it), timeout or failed (applied here only; answered 503)",
            ),
            &["result"],
        )?;
        let applied = IntCounter::new(
            "meridian_cluster_purges_applied_total",
            "Purges from the cluster's stream applied on this node, its own included",
        )?;
        let duplicates = IntCounter::new(
            "meridian_cluster_purges_duplicate_total",
            "Purge deliveries skipped because this node had applied that purge id already",
        )?;
        let malformed = IntCounter::new(
            "meridian_cluster_purges_malformed_total",
            "Messages on the purge stream this node could not read (dropped)",
        )?;
        let lag = Histogram::with_opts(
            HistogramOpts::new(
                "meridian_cluster_purge_lag_seconds",
                "Seconds from a purge's publication (JetStream's timestamp) to its application \
                 on this node",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
        )?;
        let pending = IntGauge::new(
            "meridian_cluster_purges_pending",
            "Purges on the cluster's stream not yet delivered to this node (its consumer's backlog)",
        )?;
        let connected = IntGauge::new(
            "meridian_cluster_nats_connected",
            "1 while this node is connected to a NATS server of its cluster",
        )?;
        let config_revision = IntGauge::new(
            "meridian_cluster_config_revision",
            "Revision of the cluster's shared configuration in force on this node (0: its own \
             file alone)",
        )?;
        let config_refused = IntCounter::new(
            "meridian_cluster_config_refused_total",
            "Versions of the shared configuration this node refused (invalid with its own \
             file, or needing a restart); it keeps the last good one",
        )?;
        registry.register(Box::new(config_revision.clone()))?;
        registry.register(Box::new(config_refused.clone()))?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(applied.clone()))?;
        registry.register(Box::new(duplicates.clone()))?;
        registry.register(Box::new(malformed.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        registry.register(Box::new(connected.clone()))?;
        Ok(ClusterMetrics {
            published: Published::ALL.map(|p| published.with_label_values(&[p.label()])),
            applied,
            duplicates,
            malformed,
            lag,
            pending,
            connected,
            config_revision,
            config_refused,
        })
    }

    pub fn published(&self, result: Published) {
        if let Some(c) = self.published.get(result as usize) {
            c.inc();
        }
    }
}
