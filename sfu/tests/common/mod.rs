//! Test harness: real SFU node, real Rust clients, real UDP on loopback.
//!
//! Bridges a [`veil_client::Client`] to the SFU's in-process control API the
//! way the signalling service will: join with the offer, forward the SFU's
//! renegotiation offers to the client and the client's answers back.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use sfu::{ParticipantEvent, Role, Sfu, SfuConfig, SfuNode};
use tokio::sync::mpsc;
use veil_client::{Client, ClientConfig, FromServer, RoomSecret, ToServer};

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// An SFU with one worker, the usual node of one core: its worker reads the
/// UDP port itself. (`workers.rs` and the signalling tests, a worker per
/// core, cover the receive thread that feeds several workers.)
pub fn start_sfu() -> Sfu {
    init_tracing();
    let config = SfuConfig {
        workers: 1,
        ..SfuConfig::default()
    };
    Sfu::start(config).expect("SFU starts on loopback")
}

/// Derives the room secret once per passphrase (PBKDF2 is deliberately slow).
pub fn secret(room: &str, passphrase: &str) -> RoomSecret {
    RoomSecret::from_passphrase(room, passphrase)
}

/// Joins `config` to its room through a node's control API (in-process or remote).
pub async fn join(sfu: impl Into<SfuNode>, config: ClientConfig) -> Client {
    join_as(sfu, config, Role::Participant).await.0
}

/// [`join`] in `role`; also returns the SFU's SDP answer.
pub async fn join_as(
    sfu: impl Into<SfuNode>,
    config: ClientConfig,
    role: Role,
) -> (Client, String) {
    let sfu: SfuNode = sfu.into();
    let (room, identity) = (config.room.clone(), config.identity.clone());
    let (pending, offer) = Client::prepare(config).expect("client prepares");
    let mut joined = sfu
        .join_as(&room, &identity, offer, role)
        .await
        .expect("join accepted");
    let answer = joined.answer.to_sdp_string();
    let (to_client, from_server) = mpsc::channel(64);
    let (to_server, mut from_client) = mpsc::channel(64);
    let client = pending
        .start(joined.answer, from_server, to_server)
        .expect("client starts");
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = joined.events.recv() => {
                    let msg = match event {
                        None => return,
                        Some(ParticipantEvent::Offer { offer }) => FromServer::Offer(offer),
                        Some(ParticipantEvent::ActiveSpeakers { speakers }) => FromServer::ActiveSpeakers(speakers),
                        Some(ParticipantEvent::ParticipantJoined { participant, .. }) => FromServer::ParticipantJoined(participant),
                        Some(ParticipantEvent::ParticipantLeft { participant }) => FromServer::ParticipantLeft(participant),
                        Some(ParticipantEvent::Disconnected { reason, .. }) => FromServer::Disconnected(reason),
                        Some(ParticipantEvent::NodeDraining) => FromServer::Draining,
                        Some(ParticipantEvent::Error { message }) => FromServer::Error(message),
                        Some(ParticipantEvent::TrackUnpublished { participant, track }) => FromServer::TrackUnpublished { participant, track },
                        Some(ParticipantEvent::LayersWanted { track, max_layer }) => FromServer::LayersWanted { track, max_layer },
                        Some(ParticipantEvent::ConnectionQuality { participant, quality }) => FromServer::ConnectionQuality {
                            participant,
                            quality: format!("{quality:?}").to_lowercase(),
                        },
                        Some(_) => continue,
                    };
                    if to_client.send(msg).await.is_err() {
                        return;
                    }
                }
                message = from_client.recv() => match message {
                    Some(ToServer::Answer(answer)) => {
                        let _ = sfu.answer(&room, &identity, answer).await;
                    }
                    Some(ToServer::Offer(offer)) => {
                        if let Ok(answer) = sfu.offer(&room, &identity, offer).await {
                            let _ = to_client.send(FromServer::Answer(answer)).await;
                        }
                    }
                    None => return,
                }
            }
        }
    });
    (client, answer)
}

/// Waits until what the clients received so far is in their stats. A track
/// publishes its counts every 8 packets, or [`veil_client::session::STATS_EVERY`]
/// after the first unpublished one once it goes quiet, so a count read
/// sooner after a track stops can still grow. Read a baseline for "nothing
/// more arrives" only after this.
pub async fn received_counts_settle() {
    tokio::time::sleep(veil_client::session::STATS_EVERY + Duration::from_millis(250)).await;
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for: {what}");
}
