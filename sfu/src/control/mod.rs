//! The node's control interface, in-process or over the network.
//!
//! The signalling service drives SFU nodes through [`SfuNode`]: either a
//! [`Sfu`] handle in the same process (the one-command dev server) or a
//! [`RemoteSfu`] that speaks the node's internal HTTP + WebSocket API
//! ([`server::router`]) when nodes run as their own processes. Both give the
//! same calls and the same [`Joined`] event stream.

pub mod client;
pub mod server;

pub use client::RemoteSfu;

/// Read buffer of a participant's event socket, at both ends. tungstenite's
/// default is 128 KiB per socket, more than the node's own media state for
/// that participant; events are small JSON, and a larger one still arrives
/// whole, because the reader reserves each frame's full length.
pub const EVENT_SOCKET_READ_BUFFER: usize = 8 * 1024;

use str0m::change::{SdpAnswer, SdpOffer};

use crate::forward::layer::Layer;
use crate::node::{ControlError, JoinError, Joined, Role, RoomStats, Sfu, TrackKind};

/// An SFU node, local or remote.
#[derive(Clone)]
pub enum SfuNode {
    /// In this process.
    Local(Sfu),
    /// Another process, reached over its control API.
    Remote(RemoteSfu),
}

impl From<&Sfu> for SfuNode {
    fn from(sfu: &Sfu) -> Self {
        SfuNode::Local(sfu.clone())
    }
}

impl From<RemoteSfu> for SfuNode {
    fn from(remote: RemoteSfu) -> Self {
        SfuNode::Remote(remote)
    }
}

impl SfuNode {
    /// See [`Sfu::join`].
    pub async fn join(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
    ) -> Result<Joined, JoinError> {
        self.join_as(room, participant, offer, Role::Participant)
            .await
    }

    /// See [`Sfu::join_as`].
    pub async fn join_as(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
        role: Role,
    ) -> Result<Joined, JoinError> {
        match self {
            SfuNode::Local(s) => s.join_as(room, participant, offer, role).await,
            SfuNode::Remote(r) => r.join_as(room, participant, offer, role).await,
        }
    }

    /// See [`Sfu::answer`].
    pub async fn answer(
        &self,
        room: &str,
        participant: &str,
        answer: SdpAnswer,
    ) -> Result<(), ControlError> {
        match self {
            SfuNode::Local(s) => s.answer(room, participant, answer).await,
            SfuNode::Remote(r) => r.answer(room, participant, answer).await,
        }
    }

    /// See [`Sfu::offer`].
    pub async fn offer(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, ControlError> {
        match self {
            SfuNode::Local(s) => s.offer(room, participant, offer).await,
            SfuNode::Remote(r) => r.offer(room, participant, offer).await,
        }
    }

    /// See [`Sfu::leave`].
    pub async fn leave(
        &self,
        room: &str,
        participant: &str,
        reason: &str,
    ) -> Result<(), ControlError> {
        match self {
            SfuNode::Local(s) => s.leave(room, participant, reason).await,
            SfuNode::Remote(r) => r.leave(room, participant, reason).await,
        }
    }

    /// See [`Sfu::set_max_layer`].
    pub async fn set_max_layer(
        &self,
        room: &str,
        subscriber: &str,
        publisher: &str,
        layer: Layer,
    ) -> Result<(), ControlError> {
        match self {
            SfuNode::Local(s) => s.set_max_layer(room, subscriber, publisher, layer).await,
            SfuNode::Remote(r) => r.set_max_layer(room, subscriber, publisher, layer).await,
        }
    }

    /// See [`Sfu::subscribe`].
    pub async fn subscribe(
        &self,
        room: &str,
        subscriber: &str,
        publisher: &str,
        subscribed: bool,
    ) -> Result<(), ControlError> {
        match self {
            SfuNode::Local(s) => s.subscribe(room, subscriber, publisher, subscribed).await,
            SfuNode::Remote(r) => r.subscribe(room, subscriber, publisher, subscribed).await,
        }
    }

    /// See [`Sfu::set_muted`].
    pub async fn set_muted(
        &self,
        room: &str,
        participant: &str,
        kind: TrackKind,
        muted: bool,
    ) -> Result<(), ControlError> {
        match self {
            SfuNode::Local(s) => s.set_muted(room, participant, kind, muted).await,
            SfuNode::Remote(r) => r.set_muted(room, participant, kind, muted).await,
        }
    }

    /// See [`Sfu::stats`].
    pub async fn stats(&self, room: &str) -> Result<RoomStats, ControlError> {
        match self {
            SfuNode::Local(s) => Ok(s.stats(room).await),
            SfuNode::Remote(r) => r.stats(room).await,
        }
    }

    /// See [`Sfu::drain`].
    pub async fn drain(&self) -> Result<(), ControlError> {
        match self {
            SfuNode::Local(s) => {
                s.drain().await;
                Ok(())
            }
            SfuNode::Remote(r) => r.drain().await,
        }
    }
}
