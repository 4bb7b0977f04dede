//! The configuration in force, swapped whole on reload: each request or connection loads it
//! once and keeps that one to its end, so in-flight work finishes on the config it began with.

use crate::config::Runtime;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The current `Runtime`, shared by every service of the node.
#[derive(Debug)]
pub struct Live {
    rt: ArcSwap<Runtime>,
}

impl Live {
    pub fn new(rt: Arc<Runtime>) -> Live {
        Live {
            rt: ArcSwap::new(rt),
        }
    }

    /// The config in force now; hold it for the length of one unit of work.
    pub fn load(&self) -> Arc<Runtime> {
        self.rt.load_full()
    }

    /// A cheap borrow for a quick read that does not outlive the caller's statement.
    pub fn peek(&self) -> arc_swap::Guard<Arc<Runtime>> {
        self.rt.load()
    }

    pub(crate) fn store(&self, rt: Arc<Runtime>) {
        self.rt.store(rt);
    }
}
