//! Where a room's media lives: one in-process SFU, or the registry's choice
//! among SFU nodes running as their own processes.
//!
//! [`Nodes`] offers the [`SfuNode`] calls, each taking the room first, and
//! resolves the room to its node on every call: joins assign the room
//! (atomically, least-loaded), everything else asks who owns it. So any
//! signalling replica can serve any participant of any room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sfu::{ControlError, JoinError, Joined, RemoteSfu, Role, RoomStats, SfuNode, TrackKind};
use str0m::change::{SdpAnswer, SdpOffer};
use veil_registry::Registry;

/// The SFU side of the signalling service.
#[derive(Clone)]
pub enum Nodes {
    /// Every room on one node (dev mode: in-process).
    Single(SfuNode),
    /// Rooms spread over the nodes in the registry.
    Cluster {
        /// Shared registry.
        registry: Registry,
        /// Secret of the nodes' control APIs.
        secret: String,
        /// Clients per control URL, reused across calls.
        clients: Arc<Mutex<HashMap<String, RemoteSfu>>>,
    },
}

impl Nodes {
    /// Rooms placed by `registry` on nodes whose control API takes `secret`.
    pub fn cluster(registry: Registry, secret: &str) -> Self {
        Nodes::Cluster {
            registry,
            secret: secret.to_string(),
            clients: Arc::default(),
        }
    }

    async fn node(&self, room: &str, assign: bool) -> Result<SfuNode, String> {
        match self {
            Nodes::Single(node) => Ok(node.clone()),
            Nodes::Cluster {
                registry,
                secret,
                clients,
            } => {
                let url = if assign {
                    registry
                        .assign_room(room)
                        .await
                        .map_err(|e| e.to_string())?
                        .control_url
                } else {
                    let owner = registry
                        .room_owner(room)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("no node hosts room {room:?}"))?;
                    let nodes = registry.live_nodes().await.map_err(|e| e.to_string())?;
                    nodes
                        .into_iter()
                        .find(|n| n.id == owner)
                        .ok_or_else(|| format!("the node hosting room {room:?} is gone"))?
                        .control_url
                };
                Ok(SfuNode::Remote(Self::client(clients, &url, secret)))
            }
        }
    }

    fn client(clients: &Mutex<HashMap<String, RemoteSfu>>, url: &str, secret: &str) -> RemoteSfu {
        clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(url.to_string())
            .or_insert_with(|| RemoteSfu::new(url, secret))
            .clone()
    }

    /// The control URL of the node hosting `room` now (cluster mode), so a
    /// session can later be ended on the node it joined even after the room
    /// moved on.
    pub async fn owner_url(&self, room: &str) -> Option<String> {
        let Nodes::Cluster { registry, .. } = self else {
            return None;
        };
        let owner = registry.room_owner(room).await.ok()??;
        let nodes = registry.live_nodes().await.ok()?;
        nodes
            .into_iter()
            .find(|n| n.id == owner)
            .map(|n| n.control_url)
    }

    /// [`Nodes::leave`] on the node at `node_url` (from [`Nodes::owner_url`])
    /// rather than the room's current one.
    pub async fn leave_on(
        &self,
        node_url: Option<&str>,
        room: &str,
        participant: &str,
        reason: &str,
    ) -> Result<(), ControlError> {
        match (self, node_url) {
            (
                Nodes::Cluster {
                    clients, secret, ..
                },
                Some(url),
            ) => {
                SfuNode::Remote(Self::client(clients, url, secret))
                    .leave(room, participant, reason)
                    .await
            }
            _ => self.leave(room, participant, reason).await,
        }
    }

    /// Whether joins can succeed now: an SFU node is reachable (and, in a
    /// cluster, the registry answers and lists a node that takes rooms).
    pub async fn ready(&self) -> Result<(), String> {
        match self {
            Nodes::Single(SfuNode::Local(_)) => Ok(()),
            Nodes::Single(SfuNode::Remote(remote)) => {
                if remote.is_alive(std::time::Duration::from_secs(1)).await {
                    Ok(())
                } else {
                    Err(format!("SFU node {} unreachable", remote.base()))
                }
            }
            Nodes::Cluster { registry, .. } => {
                let nodes = registry
                    .live_nodes()
                    .await
                    .map_err(|e| format!("registry unreachable: {e}"))?;
                if nodes.iter().any(|n| !n.draining) {
                    Ok(())
                } else {
                    Err("no live SFU node takes rooms".into())
                }
            }
        }
    }

    /// Whether the nodes keep a session whose signalling socket dropped (so
    /// any replica may resume it), rather than this process.
    pub fn keeps_detached_sessions(&self) -> bool {
        !matches!(self, Nodes::Single(SfuNode::Local(_)))
    }

    /// Picks up the events of a session that another socket (maybe on
    /// another replica) served until now.
    pub async fn attach_events(
        &self,
        room: &str,
        participant: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<sfu::ParticipantEvent>, String> {
        match self.node(room, false).await? {
            SfuNode::Remote(remote) => remote.attach_events(room, participant).await,
            SfuNode::Local(_) => Err("an in-process node keeps no detached sessions".into()),
        }
    }

    /// A session lost the node hosting `room`. If the node fails its health
    /// check too, it is struck from the registry at once instead of after
    /// its heartbeat lapses, so the clients' rejoins land on a live node
    /// straight away. A node that is alive after all re-registers with its
    /// next heartbeat.
    pub async fn node_lost(&self, room: &str) {
        let Nodes::Cluster { registry, .. } = self else {
            return;
        };
        let Ok(Some(owner)) = registry.room_owner(room).await else {
            return;
        };
        let Ok(nodes) = registry.live_nodes().await else {
            return;
        };
        let Some(info) = nodes.into_iter().find(|n| n.id == owner) else {
            return;
        };
        let probe = RemoteSfu::new(&info.control_url, "");
        if !probe.is_alive(std::time::Duration::from_millis(500)).await {
            tracing::warn!(node = %owner, "SFU node unreachable; removing it from the registry");
            let _ = registry.remove_node(&owner).await;
        }
    }

    async fn control(&self, room: &str) -> Result<SfuNode, ControlError> {
        self.node(room, false)
            .await
            .map_err(ControlError::Unreachable)
    }

    /// Joins on the room's node, assigning the room to a node if needed.
    pub async fn join(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
    ) -> Result<Joined, JoinError> {
        self.join_as(room, participant, offer, Role::Participant)
            .await
    }

    /// [`Nodes::join`] in a given [`Role`] (WHIP ingest, WHEP viewer).
    pub async fn join_as(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
        role: Role,
    ) -> Result<Joined, JoinError> {
        let node = self
            .node(room, true)
            .await
            .map_err(JoinError::Unreachable)?;
        node.join_as(room, participant, offer, role).await
    }

    /// See [`SfuNode::answer`].
    pub async fn answer(
        &self,
        room: &str,
        participant: &str,
        answer: SdpAnswer,
    ) -> Result<(), ControlError> {
        self.control(room)
            .await?
            .answer(room, participant, answer)
            .await
    }

    /// See [`SfuNode::offer`].
    pub async fn offer(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, ControlError> {
        self.control(room)
            .await?
            .offer(room, participant, offer)
            .await
    }

    /// See [`SfuNode::leave`].
    pub async fn leave(
        &self,
        room: &str,
        participant: &str,
        reason: &str,
    ) -> Result<(), ControlError> {
        self.control(room)
            .await?
            .leave(room, participant, reason)
            .await
    }

    /// See [`SfuNode::subscribe`].
    pub async fn subscribe(
        &self,
        room: &str,
        subscriber: &str,
        publisher: &str,
        on: bool,
    ) -> Result<(), ControlError> {
        self.control(room)
            .await?
            .subscribe(room, subscriber, publisher, on)
            .await
    }

    /// See [`SfuNode::set_max_layer`].
    pub async fn set_max_layer(
        &self,
        room: &str,
        subscriber: &str,
        publisher: &str,
        layer: u8,
    ) -> Result<(), ControlError> {
        self.control(room)
            .await?
            .set_max_layer(room, subscriber, publisher, layer)
            .await
    }

    /// See [`SfuNode::set_muted`].
    pub async fn set_muted(
        &self,
        room: &str,
        participant: &str,
        kind: TrackKind,
        muted: bool,
    ) -> Result<(), ControlError> {
        self.control(room)
            .await?
            .set_muted(room, participant, kind, muted)
            .await
    }

    /// See [`SfuNode::stats`].
    pub async fn stats(&self, room: &str) -> Result<RoomStats, ControlError> {
        self.control(room).await?.stats(room).await
    }
}
