//! Purges across the cluster: the message that travels, the names of the stream and of each
//! node's consumer, publishing one (waiting for JetStream's acknowledgement) and applying
//! one exactly once per node.

use crate::cache::purge::PurgeRequest;
use crate::cache::tiered::TieredStorage;
use crate::metrics::cluster::{ClusterMetrics, Published};
use arc_swap::ArcSwapOption;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Purge ids remembered per node, to apply each purge once: far more than a burst of purges
/// delivered twice (a redelivery comes within JetStream's ack wait).
const REMEMBERED_IDS: u64 = 100_000;

/// One purge as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeMessage {
    /// Unique per purge (also JetStream's `Nats-Msg-Id`, so a publish retried by the client
    /// is stored once).
    pub id: String,
    /// The node whose admin API took it.
    pub from: String,
    pub purge: PurgeRequest,
}

/// The stream holding cluster `name`'s purges.
pub fn stream_name(cluster: &str) -> String {
    format!("MERIDIAN_{cluster}_PURGES")
}

/// The subject purges of cluster `name` are published on.
pub fn subject(cluster: &str) -> String {
    format!("meridian.{cluster}.purge")
}

/// The durable consumer through which `node` reads the stream.
pub fn consumer_name(node: &str) -> String {
    // Durable names may not hold '.', which node names may.
    format!("node_{}", node.replace('.', "_"))
}

/// Why a purge was not confirmed cluster-wide (it was applied on this node all the same).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to NATS yet")]
    NotConnected,
    #[error("NATS did not acknowledge the purge within {0:?}")]
    Timeout(Duration),
    #[error("NATS refused the purge: {0}")]
    Refused(String),
}

/// This node's side of the cluster's purges: shared by the admin API (publishing) and the
/// consumer loop (applying).
pub struct ClusterPurges {
    cluster: String,
    node: String,
    timeout: Duration,
    storage: &'static TieredStorage,
    metrics: Arc<ClusterMetrics>,
    /// Set by the service once it has a connection and the stream.
    jetstream: ArcSwapOption<Context>,
    /// Ids applied here (this node's own purges are applied before they are published).
    applied: moka::sync::Cache<String, ()>,
    /// Purges applied from the stream, and the stream's backlog for this node.
    applied_count: AtomicU64,
    last_lag_us: AtomicU64,
    /// This node's durable consumer exists: from then on JetStream keeps every purge for it.
    subscribed: AtomicBool,
}

impl ClusterPurges {
    pub fn new(
        cluster: &str,
        node: &str,
        timeout: Duration,
        storage: &'static TieredStorage,
        metrics: Arc<ClusterMetrics>,
    ) -> Arc<Self> {
        Arc::new(ClusterPurges {
            cluster: cluster.to_owned(),
            node: node.to_owned(),
            timeout,
            storage,
            metrics,
            jetstream: ArcSwapOption::empty(),
            applied: moka::sync::Cache::new(REMEMBERED_IDS),
            applied_count: AtomicU64::new(0),
            last_lag_us: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
        })
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub(super) fn metrics(&self) -> &ClusterMetrics {
        &self.metrics
    }

    pub(super) fn connected(&self, jetstream: Context) {
        self.jetstream.store(Some(Arc::new(jetstream)));
    }

    pub(super) fn subscribed(&self) {
        self.subscribed.store(true, Ordering::Release);
    }

    /// Applies `purge` here, then publishes it to the cluster and waits for JetStream to
    /// have stored it (`cluster.purge_timeout`). Returns the purge id and the objects purged
    /// here; an error says the other nodes may not see it.
    pub async fn purge(&self, purge: PurgeRequest) -> (String, usize, Result<(), PublishError>) {
        let id = new_id(&self.node);
        // First here: the answer may say "gone" for this node whatever NATS does.
        let purged = purge.apply(self.storage);
        self.applied.insert(id.clone(), ());
        self.applied_count.fetch_add(1, Ordering::Relaxed);
        self.metrics.applied.inc();
        let message = PurgeMessage {
            id: id.clone(),
            from: self.node.clone(),
            purge,
        };
        let published = self.publish(&message).await;
        let result = match &published {
            Ok(()) => Published::Acked,
            Err(PublishError::Timeout(_)) => Published::Timeout,
            Err(_) => Published::Failed,
        };
        self.metrics.published(result);
        (id, purged, published)
    }

    async fn publish(&self, message: &PurgeMessage) -> Result<(), PublishError> {
        let Some(jetstream) = self.jetstream.load_full() else {
            return Err(PublishError::NotConnected);
        };
        let payload = serde_json::to_vec(message)
            .map_err(|e| PublishError::Refused(e.to_string()))?
            .into();
        let publish = PublishMessage::build()
            .payload(payload)
            .message_id(&message.id);
        let send = async {
            let ack: PublishAckFuture = jetstream
                .send_publish(subject(&self.cluster), publish)
                .await
                .map_err(|e| PublishError::Refused(e.to_string()))?;
            ack.await
                .map(|_| ())
                .map_err(|e| PublishError::Refused(e.to_string()))
        };
        tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| PublishError::Timeout(self.timeout))?
    }

    /// Applies one purge from the stream unless this node applied that id already.
    /// `lag` is the time since JetStream stored it. Returns whether it was applied.
    pub(super) fn apply(&self, message: &PurgeMessage, lag: Option<Duration>) -> bool {
        if self.applied.contains_key(&message.id) {
            self.metrics.duplicates.inc();
            return false;
        }
        let purged = message.purge.apply(self.storage);
        self.applied.insert(message.id.clone(), ());
        self.applied_count.fetch_add(1, Ordering::Relaxed);
        self.metrics.applied.inc();
        if let Some(lag) = lag {
            self.metrics.lag.observe(lag.as_secs_f64());
            self.last_lag_us.store(
                u64::try_from(lag.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        log::info!(
            "cluster purge {} from {}: {:?} ({:?}): {purged} object(s)",
            message.id,
            message.from,
            message.purge.selector,
            message.purge.mode
        );
        true
    }

    /// For `/status`: purges applied from the stream, the last one's lag in seconds, and
    /// whether this node holds a NATS connection.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.cluster,
            "nats_connected": self.metrics.connected.get() == 1,
            "purges": {
                "subscribed": self.subscribed.load(Ordering::Acquire),
                "applied": self.applied_count.load(Ordering::Relaxed),
                "pending": self.metrics.pending.get(),
                "last_lag_seconds": self.last_lag_us.load(Ordering::Relaxed) as f64 / 1e6,
                "disk_held": self.storage.disk_held(),
            },
        })
    }
}

/// A purge id: the node, the time, and randomness (two purges in one microsecond differ).
fn new_id(node: &str) -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{node}-{micros}-{:016x}", fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::purge::Selector;
    use crate::cache::PurgeMode;

    #[test]
    fn names_are_valid_for_nats() {
        assert_eq!(stream_name("prod"), "MERIDIAN_prod_PURGES");
        assert_eq!(subject("prod"), "meridian.prod.purge");
        assert_eq!(consumer_name("edge-1.fra"), "node_edge-1_fra");
    }

    #[test]
    fn a_message_round_trips_and_ids_differ() {
        let m = PurgeMessage {
            id: new_id("edge-1"),
            from: "edge-1".into(),
            purge: PurgeRequest {
                selector: Selector::Prefix("http://a.test/img/".into()),
                mode: PurgeMode::Hard,
            },
        };
        let text = serde_json::to_vec(&m).unwrap();
        assert_eq!(serde_json::from_slice::<PurgeMessage>(&text).unwrap(), m);
        assert_ne!(new_id("edge-1"), new_id("edge-1"));
        assert!(new_id("edge-1").starts_with("edge-1-"));
    }
}
