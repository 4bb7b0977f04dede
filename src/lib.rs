//! Meridian: an edge CDN node and multi-region load balancer in one binary.
//!
//! The library holds every module so that `tests/` and `benches/` can reach them; `main.rs`
//! is only the command line. docs/architecture.md maps the modules and their layers.

pub mod access_log;
pub mod admin;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod dns;
pub mod edge;
pub mod geo;
pub mod guard;
pub mod metrics;
pub mod node;
pub mod regions;
pub mod telemetry;
pub mod tls;
pub mod transform;
pub mod vocab;
