//! One shared configuration for the cluster: `meridian config publish` stores the shared part
//! (sites, regions, DNS, limits) of a validated file in the cluster's JetStream key-value
//! bucket; nodes with `[cluster] shared_config = true` read the latest version at start and
//! apply every new one through the reload path. A version a node refuses (invalid with its
//! own file merged in, or a change that takes a restart) is logged, counted and shown in
//! `/status`, and the node keeps the last good one.

use crate::config::reload::Reload;
use crate::config::runtime::ClusterSettings;
use crate::config::shared::Published;
use crate::metrics::cluster::ClusterMetrics;
use async_nats::jetstream::{self, kv, stream, Context};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The key the shared part is stored under.
pub const KEY: &str = "shared";
/// Versions the bucket keeps: the current one and a few to look back on.
const HISTORY: i64 = 10;

/// The bucket holding cluster `name`'s shared configuration.
pub fn bucket(cluster: &str) -> String {
    format!("meridian_{cluster}_config")
}

/// Why the shared configuration could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum SharedConfigError {
    #[error("[cluster] has no name or no nats servers")]
    NotInACluster,
    #[error("cannot reach NATS ({servers}): {source}")]
    Connect {
        servers: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("JetStream key-value bucket {bucket}: {source}")]
    Bucket {
        bucket: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("NATS did not answer within {0:?}")]
    Timeout(Duration),
}

/// A client for `settings`' servers that gives up after `timeout` (the CLI and a node's
/// start must not hang on a dead server).
async fn connect(
    settings: &ClusterSettings,
    who: &str,
    timeout: Duration,
) -> Result<async_nats::Client, SharedConfigError> {
    let connect_error =
        |source: Box<dyn std::error::Error + Send + Sync>| SharedConfigError::Connect {
            servers: settings.nats.join(", "),
            source,
        };
    let mut options = async_nats::ConnectOptions::new()
        .name(who)
        .connection_timeout(timeout);
    if let Some(path) = &settings.credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| connect_error(e.into()))?;
    }
    let servers: Vec<async_nats::ServerAddr> = settings
        .nats
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|e: std::io::Error| connect_error(e.into()))?;
    options
        .connect(servers)
        .await
        .map_err(|e| connect_error(e.into()))
}

/// The cluster's bucket, created on first use.
async fn store(jetstream: &Context, cluster: &str) -> Result<kv::Store, SharedConfigError> {
    let name = bucket(cluster);
    let bucket_error =
        |source: Box<dyn std::error::Error + Send + Sync>| SharedConfigError::Bucket {
            bucket: name.clone(),
            source,
        };
    if let Ok(store) = jetstream.get_key_value(&name).await {
        return Ok(store);
    }
    // The bucket's stream, as the client's `create_key_value` builds it; made here because
    // that call first asks for the account's information, whose answer from nats-server
    // 2.9 (Debian 12's) this client version cannot read.
    jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{name}"),
            description: Some(
                "Meridian: the shared configuration (sites, regions, dns, limits)".into(),
            ),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: HISTORY,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| bucket_error(e.into()))?;
    jetstream
        .get_key_value(&name)
        .await
        .map_err(|e| bucket_error(e.into()))
}

/// Stores `shared` (the shared part's TOML) as the cluster's configuration; returns its
/// revision.
pub async fn publish(
    settings: &ClusterSettings,
    shared: String,
    timeout: Duration,
) -> Result<u64, SharedConfigError> {
    let cluster = settings
        .name
        .as_deref()
        .ok_or(SharedConfigError::NotInACluster)?;
    let work = async {
        let client = connect(settings, "meridian config publish", timeout).await?;
        let store = store(&jetstream::new(client), cluster).await?;
        store
            .put(KEY, shared.into())
            .await
            .map_err(|e| SharedConfigError::Bucket {
                bucket: bucket(cluster),
                source: e.into(),
            })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| SharedConfigError::Timeout(timeout))?
}

/// The cluster's current shared configuration, `None` when none was ever published.
pub async fn fetch(
    settings: &ClusterSettings,
    node: &str,
    timeout: Duration,
) -> Result<Option<Published>, SharedConfigError> {
    let cluster = settings
        .name
        .as_deref()
        .ok_or(SharedConfigError::NotInACluster)?;
    let work = async {
        let client = connect(settings, &format!("meridian {node} (start)"), timeout).await?;
        let store = store(&jetstream::new(client), cluster).await?;
        let entry = store
            .entry(KEY)
            .await
            .map_err(|e| SharedConfigError::Bucket {
                bucket: bucket(cluster),
                source: e.into(),
            })?;
        Ok(entry.and_then(published))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| SharedConfigError::Timeout(timeout))?
}

/// A put of the shared key as a [`Published`] version (a delete or purge of it is none).
fn published(entry: kv::Entry) -> Option<Published> {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    let text = String::from_utf8(entry.value.to_vec()).ok()?;
    Some(Published {
        revision: entry.revision,
        text,
    })
}

/// What `/status` says of the shared configuration on this node.
#[derive(Debug, Default)]
pub struct SharedConfigState {
    /// The revision in force (0: the node's own file alone).
    applied: AtomicU64,
    /// The last revision refused, and why.
    refused: Mutex<Option<(u64, String)>>,
}

impl SharedConfigState {
    pub fn new(started_with: Option<u64>) -> Arc<Self> {
        let state = SharedConfigState::default();
        state
            .applied
            .store(started_with.unwrap_or(0), Ordering::Release);
        Arc::new(state)
    }

    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    pub fn status(&self) -> serde_json::Value {
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        serde_json::json!({
            "revision": self.applied(),
            "refused": refused.map(|(revision, error)| {
                serde_json::json!({"revision": revision, "error": error})
            }),
        })
    }
}

/// Applies every new version of the shared configuration on this node.
pub struct SharedConfigWatch {
    reload: Arc<dyn Reload>,
    state: Arc<SharedConfigState>,
    metrics: Arc<ClusterMetrics>,
}

impl SharedConfigWatch {
    pub fn new(
        reload: Arc<dyn Reload>,
        state: Arc<SharedConfigState>,
        metrics: Arc<ClusterMetrics>,
    ) -> Self {
        metrics.config_revision.set(gauge(state.applied()));
        SharedConfigWatch {
            reload,
            state,
            metrics,
        }
    }

    /// Watches the key (its latest version first) and applies each version newer than the
    /// one in force, until an error.
    pub(super) async fn run(
        &self,
        jetstream: &Context,
        cluster: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let store = store(jetstream, cluster).await?;
        let mut watch = store.watch_with_history(KEY).await?;
        while let Some(entry) = watch.next().await {
            let Some(version) = published(entry?) else {
                continue;
            };
            if version.revision <= self.state.applied() {
                continue;
            }
            let revision = version.revision;
            match self.reload.reload_shared(version).await {
                Ok(_) => {
                    self.state.applied.store(revision, Ordering::Release);
                    self.metrics.config_revision.set(gauge(revision));
                }
                Err(e) => {
                    self.metrics.config_refused.inc();
                    log::error!(
                        "shared configuration revision {revision} refused; the last good one \
                         stays in force: {e}"
                    );
                    *self
                        .state
                        .refused
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some((revision, e.to_string()));
                }
            }
        }
        Err("the configuration watch ended".into())
    }
}

fn gauge(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}
