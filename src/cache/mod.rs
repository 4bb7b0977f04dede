//! The HTTP cache: in-memory storage on moka, cache decisions, and `Cache-Status`.

pub mod disk;
pub mod freshness;
mod index;
pub mod policy;
pub mod purge;
pub mod status;
pub mod storage;
mod stored_meta;
pub mod target;
pub mod tiered;
mod variants;

pub use policy::BypassReason;
pub use status::{CacheResult, CacheStatusValues, LocalAnswer};
pub use storage::{FillTicket, MemoryStorage, PurgeMode, Refinement, StorageStats};
