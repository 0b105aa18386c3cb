//! A node's life in the room registry: heartbeats with its load and
//! draining state, and keeping the rooms it hosts in line with the rooms
//! the registry gives it.
//!
//! Two things can make them disagree, and both would hurt users:
//!
//! * **A split room.** A node that misses its heartbeats for a few seconds
//!   (a stall, a network blip) is declared dead while it still runs, and its
//!   rooms go to another node at their next join. Its participants would
//!   then be in one room on two nodes, unable to see each other. When the
//!   registry names another owner for a room hosted here, the node tells that
//!   room's participants to move (`NodeDraining`), and they rejoin on the
//!   owner.
//! * **A room pinned for ever.** A room stays assigned after everyone has
//!   left, so its next call would land here however busy this node is.
//!   When a room empties, the node releases it (only if it still owns it),
//!   and its next join picks the least-loaded node again.
//!
//! ```no_run
//! # async fn demo(sfu: sfu::Sfu, registry: veil_registry::Registry) {
//! use std::time::Duration;
//! let announcer = sfu::announce::Announcer::new(sfu, registry, "sfu-0", "http://10.0.0.5:7880");
//! tokio::spawn(announcer.run(Duration::from_secs(1), Duration::from_secs(3)));
//! # }
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{info, warn};
use veil_registry::{NodeInfo, Registry};

use crate::Sfu;

/// Announces one node and reconciles its rooms; see the module docs.
/// Clones share the draining flag (one runs in the background, another
/// marks the node draining at shutdown).
#[derive(Clone)]
pub struct Announcer {
    sfu: Sfu,
    registry: Registry,
    id: String,
    control_url: String,
    draining: Arc<AtomicBool>,
    /// Rooms with participants at the last pass.
    hosted: BTreeSet<String>,
}

/// What one [`Announcer::reconcile`] pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Rooms the registry gives to another node: their participants were
    /// told to move.
    pub moved: Vec<String>,
    /// Rooms that emptied here and were released.
    pub released: Vec<String>,
}

impl Announcer {
    /// An announcer for `sfu`, registered as `id` with its control API at
    /// `control_url`.
    pub fn new(sfu: Sfu, registry: Registry, id: &str, control_url: &str) -> Self {
        Announcer {
            sfu,
            registry,
            id: id.to_string(),
            control_url: control_url.to_string(),
            draining: Arc::default(),
            hosted: BTreeSet::new(),
        }
    }

    /// The flag that marks the node draining in its heartbeats.
    pub fn draining(&self) -> Arc<AtomicBool> {
        self.draining.clone()
    }

    /// This node as the registry should see it now.
    pub fn node(&self) -> NodeInfo {
        NodeInfo {
            id: self.id.clone(),
            control_url: self.control_url.clone(),
            load: self.sfu.participants() as u32,
            draining: self.draining.load(Ordering::Relaxed),
        }
    }

    /// Announces the node for `ttl`.
    pub async fn heartbeat(&self, ttl: Duration) -> Result<(), veil_registry::RegistryError> {
        self.registry.heartbeat(&self.node(), ttl).await
    }

    /// Takes the node out of the registry (after a drain).
    pub async fn deregister(&self) {
        if let Err(e) = self.registry.remove_node(&self.id).await {
            warn!("could not remove the node from the registry: {e}");
        }
    }

    /// One pass over the rooms hosted here (see the module docs).
    pub async fn reconcile(&mut self) -> Result<Reconciled, veil_registry::RegistryError> {
        let mut done = Reconciled::default();
        let active: BTreeSet<String> = self
            .sfu
            .rooms()
            .await
            .into_iter()
            .filter(|(_, participants)| *participants > 0)
            .map(|(room, _)| room)
            .collect();
        for room in self.hosted.difference(&active) {
            self.registry.release_room(room, &self.id).await?;
            done.released.push(room.clone());
        }
        for room in &active {
            match self.registry.room_owner(room).await? {
                Some(owner) if owner != self.id => {
                    let told = self.sfu.move_room(room).await;
                    info!(%room, %owner, told, "the registry gave this room to another node; moving its participants there");
                    done.moved.push(room.clone());
                }
                _ => {}
            }
        }
        self.hosted = active;
        Ok(done)
    }

    /// Heartbeats every `every` (valid for `ttl`) and reconciles after each,
    /// until the task is dropped.
    pub async fn run(mut self, every: Duration, ttl: Duration) {
        loop {
            if let Err(e) = self.heartbeat(ttl).await {
                warn!("registry heartbeat failed: {e}");
            }
            if let Err(e) = self.reconcile().await {
                warn!("registry reconciliation failed: {e}");
            }
            tokio::time::sleep(every).await;
        }
    }
}
