//! Counts open client connections, all together and per client address, and refuses one
//! that would cross `[limits] max_connections` or `max_connections_per_ip`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Which limit a refused connection crossed.
pub use crate::metrics::guard::ConnectionLimit as Refusal;

/// The open connections of one listener service.
#[derive(Debug, Default)]
pub struct ConnectionGate {
    total: AtomicUsize,
    /// Only addresses with open connections are present: an entry leaves at zero.
    per_ip: Mutex<HashMap<IpAddr, usize, ahash::RandomState>>,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<ConnectionGate>,
    ip: Option<IpAddr>,
}

impl ConnectionGate {
    /// Admits a connection from `ip` (none for a Unix socket) if both limits allow it.
    pub fn enter(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<Permit, Refusal> {
        let before = self.total.fetch_add(1, Ordering::AcqRel);
        if before >= max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        if let Some(ip) = ip {
            let mut map = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            let open = map.entry(ip).or_insert(0);
            if *open >= max_per_ip {
                if *open == 0 {
                    map.remove(&ip);
                }
                drop(map);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerIp);
            }
            *open += 1;
        }
        Ok(Permit {
            gate: self.clone(),
            ip,
        })
    }

    /// Open connections now (for `/status` and tests).
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut map = self
                .gate
                .per_ip
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(open) = map.get_mut(&ip) {
                *open = open.saturating_sub(1);
                if *open == 0 {
                    map.remove(&ip);
                }
            }
        }
        self.gate.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits_count_and_release() {
        let gate = Arc::new(ConnectionGate::default());
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = gate.enter(Some(a), 3, 2).ok();
        let second = gate.enter(Some(a), 3, 2).ok();
        assert!(first.is_some() && second.is_some());
        assert_eq!(gate.enter(Some(a), 3, 2).err(), Some(Refusal::PerIp));
        let third = gate.enter(Some(b), 3, 2).ok();
        assert!(third.is_some());
        assert_eq!(gate.enter(Some(b), 3, 2).err(), Some(Refusal::Total));
        assert_eq!(gate.open(), 3);
        drop(first);
        assert!(gate.enter(Some(a), 3, 2).is_ok(), "a place was given back");
        drop((second, third));
        assert_eq!(gate.open(), 0);
        assert!(gate.per_ip.lock().map(|m| m.is_empty()).unwrap_or(false));
    }
}
