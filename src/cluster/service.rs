//! The background service that keeps this node in its cluster: a NATS connection (the client
//! reconnects by itself), the cluster's purge stream, and this node's durable consumer, read
//! for as long as the node runs. A node that started with objects on disk serves none of
//! them until it has applied every purge it missed.

use super::config::SharedConfigWatch;
use super::purges::{consumer_name, stream_name, subject, ClusterPurges, PurgeMessage};
use crate::cache::tiered::TieredStorage;
use async_nats::jetstream::{self, consumer, stream, Context};
use async_trait::async_trait;
use futures_util::StreamExt;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long the stream keeps a purge: a node down for longer replays only the last week.
const PURGE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// A purge delivered and not acknowledged (the node died applying it) comes again after this.
const ACK_WAIT: Duration = Duration::from_secs(5);
/// Pause before setting the stream and consumer up again after an error.
const RETRY: Duration = Duration::from_secs(1);

type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct ClusterService {
    purges: Arc<ClusterPurges>,
    /// With `[cluster] shared_config`: the watch that applies each published version.
    shared: Option<SharedConfigWatch>,
    servers: Vec<String>,
    credentials: Option<PathBuf>,
    storage: &'static TieredStorage,
}

impl ClusterService {
    /// `storage`'s disk tier is held (see [`TieredStorage::hold_disk`]) from now until the
    /// purges this node missed are applied.
    pub fn new(
        purges: Arc<ClusterPurges>,
        servers: Vec<String>,
        credentials: Option<PathBuf>,
        storage: &'static TieredStorage,
    ) -> Self {
        if storage.disk_configured() {
            storage.hold_disk();
        }
        ClusterService {
            purges,
            shared: None,
            servers,
            credentials,
            storage,
        }
    }

    /// Also applies the cluster's shared configuration, through `watch`.
    pub fn with_shared_config(mut self, watch: Option<SharedConfigWatch>) -> Self {
        self.shared = watch;
        self
    }

    async fn connect(&self) -> Result<async_nats::Client, Error> {
        let connected = self.purges.metrics().connected.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("meridian {}", self.purges.node()))
            // Starts without a server, and keeps trying: the node serves meanwhile.
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let connected = connected.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            connected.set(1);
                            log::info!("cluster: connected to NATS");
                        }
                        async_nats::Event::Disconnected => {
                            connected.set(0);
                            log::warn!("cluster: disconnected from NATS; reconnecting");
                        }
                        other => log::debug!("cluster: NATS {other}"),
                    }
                }
            });
        if let Some(path) = &self.credentials {
            options = options.credentials_file(path).await?;
        }
        let servers: Vec<async_nats::ServerAddr> = self
            .servers
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?;
        Ok(options.connect(servers).await?)
    }

    /// Sets the stream and this node's consumer up and applies purges until an error.
    async fn consume(&self, jetstream: &Context) -> Result<(), Error> {
        let cluster = self.purges.cluster();
        let stream = jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name(cluster),
                subjects: vec![subject(cluster)],
                max_age: PURGE_RETENTION,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        self.purges.connected(jetstream.clone());
        let name = consumer_name(self.purges.node());
        let mut consumer = stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    // A new node starts from now; a known one resumes where it stopped.
                    deliver_policy: consumer::DeliverPolicy::New,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    ..Default::default()
                },
            )
            .await?;
        self.purges.subscribed();
        self.caught_up_check(&mut consumer).await?;
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            let (lag, pending) = match message.info() {
                Ok(info) => {
                    let published = info.published.unix_timestamp_nanos();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as i128);
                    let lag = u64::try_from(now - published)
                        .ok()
                        .map(Duration::from_nanos);
                    (lag, Some(info.pending))
                }
                Err(_) => (None, None),
            };
            match serde_json::from_slice::<PurgeMessage>(&message.payload) {
                Ok(purge) => {
                    self.purges.apply(&purge, lag);
                }
                Err(e) => {
                    self.purges.metrics().malformed.inc();
                    log::warn!("cluster: dropped an unreadable purge message: {e}");
                }
            }
            // Acknowledged once applied (a node that dies before this gets it again), and the
            // acknowledgement confirmed, so that the backlog read next counts it.
            message.double_ack().await?;
            if let Some(pending) = pending {
                self.purges
                    .metrics()
                    .pending
                    .set(i64::try_from(pending).unwrap_or(i64::MAX));
                if pending == 0 && self.storage.disk_held() {
                    self.caught_up_check(&mut consumer).await?;
                }
            }
        }
        Err("the consumer's message stream ended".into())
    }

    /// Releases the disk tier once nothing published before now is left for this node
    /// (neither undelivered nor delivered and unacknowledged).
    async fn caught_up_check(&self, consumer: &mut consumer::PullConsumer) -> Result<(), Error> {
        let info = consumer.info().await?;
        self.purges
            .metrics()
            .pending
            .set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
        if info.num_pending == 0 && info.num_ack_pending == 0 && self.storage.disk_held() {
            self.storage.release_disk();
            log::info!("cluster: every missed purge applied; serving from the disk tier");
        }
        Ok(())
    }

    async fn run(&self) {
        let client = loop {
            match self.connect().await {
                Ok(client) => break client,
                Err(e) => {
                    log::error!("cluster: cannot set up the NATS client: {e}");
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        let jetstream = jetstream::new(client);
        let purges = async {
            loop {
                if let Err(e) = self.consume(&jetstream).await {
                    log::warn!("cluster: purge stream: {e}; trying again");
                }
                tokio::time::sleep(RETRY).await;
            }
        };
        let shared_config = async {
            let Some(watch) = &self.shared else {
                return std::future::pending().await;
            };
            loop {
                if let Err(e) = watch.run(&jetstream, self.purges.cluster()).await {
                    log::warn!("cluster: shared configuration: {e}; trying again");
                }
                tokio::time::sleep(RETRY).await;
            }
        };
        tokio::join!(purges, shared_config);
    }
}

#[async_trait]
impl BackgroundService for ClusterService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            () = self.run() => {}
            _ = shutdown.changed() => {}
        }
    }
}
