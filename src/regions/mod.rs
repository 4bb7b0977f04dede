//! The shared view of the world: health of every origin and region, and the checks that
//! keep it current.

pub mod health;
mod probe;
pub mod select;
pub mod state;
