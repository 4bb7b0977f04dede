//! Meridian: an edge CDN node and multi-region load balancer in one binary.
//!
//! The library holds every module so that `tests/` and `benches/` can reach them; `main.rs`
//! is only the command line. See the README's architecture section for the module map.

pub mod config;
pub mod cache;
pub mod geo;
