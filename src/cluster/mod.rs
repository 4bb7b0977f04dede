//! The fleet: nodes of one `[cluster]` share their purges through NATS JetStream.
//!
//! Each purge made on any node's admin API is published to the cluster's purge stream and
//! answered only once JetStream has stored it; every node (the one that took it included)
//! reads the stream through a durable consumer of its own, so a node that was down or cut
//! off replays what it missed, in order, when it is back. The engine (membership,
//! persistence, redelivery) is NATS's; what is Meridian's is what a purge is and when a node
//! may serve again.

pub mod config;
pub mod purges;
mod service;

pub use purges::{ClusterPurges, PublishError};
pub use service::ClusterService;
