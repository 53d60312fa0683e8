//! The backends and their roles, as one immutable snapshot.
//!
//! Roles change at run time (failover, switchover, config reload), so nothing
//! keeps a `&Backend` across decisions: every decision loads the current
//! snapshot once (`ArcSwap::load`, a few atomic ops, no lock, no deep clone)
//! and uses it for that decision only. The monitor (a later change) publishes
//! new snapshots; readers never wait for it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::config::{BackendConfig, Role};

/// One backend server as the proxy sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Backend {
    pub name: String,
    pub address: String,
    #[serde(serialize_with = "ser_role")]
    pub role: Role,
    pub weight: u32,
}

/// An immutable view of all backends.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub backends: Vec<Arc<Backend>>,
    /// Bumped on every publish, so readers can tell views apart.
    pub generation: u64,
}

/// The published topology.
pub struct Topology {
    // ArcSwap: read on every routing decision by every session, written
    // rarely by one task; readers must never block on the writer.
    current: ArcSwap<Snapshot>,
}

fn ser_role<S: serde::Serializer>(r: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match r {
        Role::Primary => "primary",
        Role::Replica => "replica",
    })
}

// === impl Snapshot ===

impl Snapshot {
    pub fn primary(&self) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.role == Role::Primary)
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.name == name)
    }
}

// === impl Topology ===

impl Topology {
    pub fn from_config(backends: &[BackendConfig]) -> Topology {
        let backends = backends
            .iter()
            .map(|b| {
                Arc::new(Backend {
                    name: b.name.clone(),
                    address: b.address.clone(),
                    role: b.role,
                    weight: b.weight,
                })
            })
            .collect();
        Topology {
            current: ArcSwap::from_pointee(Snapshot {
                backends,
                generation: 1,
            }),
        }
    }

    /// The current snapshot; hold it for one decision only.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot (monitor, failover, reload).
    pub fn publish(&self, mut next: Snapshot) {
        next.generation = self.current.load().generation + 1;
        self.current.store(Arc::new(next));
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&*self.current.load_full()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, role: Role) -> BackendConfig {
        BackendConfig {
            name: name.into(),
            address: "127.0.0.1:1".into(),
            role,
            weight: 1,
        }
    }

    #[test]
    fn primary_is_found_and_publish_bumps_generation() {
        let t = Topology::from_config(&[cfg("a", Role::Replica), cfg("b", Role::Primary)]);
        let s = t.load();
        assert_eq!(s.primary().unwrap().name, "b");
        let mut next = (*s).clone();
        next.backends.reverse();
        t.publish(next);
        assert_eq!(t.load().generation, 2);
        assert_eq!(s.generation, 1, "an old snapshot is unchanged");
    }
}
