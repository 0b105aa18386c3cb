//! A client for another process's control API ([`super::server`]).

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use str0m::change::{SdpAnswer, SdpOffer};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::debug;

use super::server::{
    AnswerBody, AnswerReply, JoinBody, LayerBody, LeaveBody, MuteBody, OfferBody, SubscribeBody,
};
use crate::forward::layer::Layer;
use crate::node::{ControlError, JoinError, Joined, ParticipantEvent, Role, RoomStats, TrackKind};

type EventSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How often an idle event stream pings its node; three silent intervals
/// mean the node is gone (or hung).
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// Events buffered between the node's WebSocket and the caller.
const EVENT_QUEUE: usize = 1024;

/// Handle to an SFU node in another process.
#[derive(Clone, Debug)]
pub struct RemoteSfu {
    base: String,
    secret: String,
    http: reqwest::Client,
}

enum Failure<E> {
    Node(E),
    Transport(String),
}

impl RemoteSfu {
    /// `base` is the node's control URL, e.g. `http://10.0.0.5:7880`.
    pub fn new(base: &str, secret: &str) -> Self {
        RemoteSfu {
            base: base.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            // A join burst opens many connections at once; keeping them all
            // idle for reqwest's default 90 s would hold sockets on both
            // sides for nothing. A few idle ones carry the steady traffic.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(4)
                .pool_idle_timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The node's control URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn post<B: Serialize, R: DeserializeOwned, E: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<R>, Failure<E>> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.secret)
            .json(body)
            .send()
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        decode(response).await
    }

    /// See [`crate::Sfu::join`]; events arrive over the node's WebSocket.
    pub async fn join(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
    ) -> Result<Joined, JoinError> {
        self.join_as(room, participant, offer, Role::Participant)
            .await
    }

    /// See [`crate::Sfu::join_as`].
    pub async fn join_as(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
        role: Role,
    ) -> Result<Joined, JoinError> {
        let body = JoinBody {
            room: room.into(),
            participant: participant.into(),
            offer,
            role,
        };
        let reply: AnswerReply = match self.post("/v1/join", &body).await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(JoinError::Unreachable("empty join reply".into())),
            Err(Failure::Node(e)) => return Err(e),
            Err(Failure::Transport(e)) => return Err(JoinError::Unreachable(e)),
        };
        let events = self
            .attach_events(room, participant)
            .await
            .map_err(JoinError::Unreachable)?;
        Ok(Joined {
            answer: reply.answer,
            events,
        })
    }

    /// Attaches to a participant's event stream (after a join here or by
    /// another signalling replica).
    ///
    /// Dropping the receiver detaches: the node parks the events for the
    /// next replica. If the connection breaks, the stream re-attaches; when
    /// the node cannot be reached any more, the last event is
    /// [`ParticipantEvent::NodeLost`].
    pub async fn attach_events(
        &self,
        room: &str,
        participant: &str,
    ) -> Result<mpsc::Receiver<ParticipantEvent>, String> {
        let mut socket = self.events_socket(room, participant).await?;
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let (me, room, participant) = (self.clone(), room.to_string(), participant.to_string());
        tokio::spawn(async move {
            // A node that hangs (rather than dies) keeps the socket open:
            // ping it, and treat silence as a broken connection.
            let mut keepalive = tokio::time::interval(KEEPALIVE);
            let mut last_heard = tokio::time::Instant::now();
            loop {
                let message = tokio::select! {
                    _ = tx.closed() => {
                        let _ = socket.close(None).await;
                        return;
                    }
                    _ = keepalive.tick() => {
                        if last_heard.elapsed() > KEEPALIVE * 3 {
                            None
                        } else {
                            let _ = socket.send(Message::Ping(Vec::new().into())).await;
                            continue;
                        }
                    }
                    message = socket.next() => message,
                };
                last_heard = tokio::time::Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str::<ParticipantEvent>(&text) {
                            Ok(event) => {
                                if tx.send(event).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => debug!("unreadable event from SFU node: {e}"),
                        }
                    }
                    // The node closes the stream when the session is over.
                    Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => match me.reattach(&room, &participant).await {
                        Ok(s) => socket = s,
                        Err(reason) => {
                            metrics::counter!("veil_sfu_control_node_lost_total").increment(1);
                            let _ = tx.send(ParticipantEvent::NodeLost { reason }).await;
                            return;
                        }
                    },
                }
            }
        });
        Ok(rx)
    }

    /// A few quick tries to pick the event stream up again after the
    /// connection to the node broke.
    async fn reattach(&self, room: &str, participant: &str) -> Result<EventSocket, String> {
        let mut last = String::new();
        for delay_ms in [50, 200, 500] {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            match self.events_socket(room, participant).await {
                Ok(socket) => return Ok(socket),
                Err(e) => last = e,
            }
        }
        Err(format!("SFU node {} unreachable: {last}", self.base))
    }

    async fn events_socket(&self, room: &str, participant: &str) -> Result<EventSocket, String> {
        let ws_base = self.base.replacen("http", "ws", 1);
        let url = format!(
            "{ws_base}/v1/events/{}/{}",
            encode(room),
            encode(participant)
        );
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        let auth = format!("Bearer {}", self.secret)
            .parse()
            .map_err(|_| "bad secret".to_string())?;
        request.headers_mut().insert("authorization", auth);
        let config = WebSocketConfig::default().read_buffer_size(super::EVENT_SOCKET_READ_BUFFER);
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
        let (socket, _) = tokio::time::timeout(KEEPALIVE, connect)
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        Ok(socket)
    }

    /// Whether the node answers its health check within `timeout`.
    pub async fn is_alive(&self, timeout: std::time::Duration) -> bool {
        let request = self
            .http
            .get(format!("{}/v1/health", self.base))
            .timeout(timeout);
        matches!(request.send().await, Ok(r) if r.status().is_success())
    }

    /// See [`crate::Sfu::answer`].
    pub async fn answer(
        &self,
        room: &str,
        participant: &str,
        answer: SdpAnswer,
    ) -> Result<(), ControlError> {
        let body = AnswerBody {
            room: room.into(),
            participant: participant.into(),
            answer,
        };
        control(self.post::<_, (), _>("/v1/answer", &body).await).map(|_| ())
    }

    /// See [`crate::Sfu::offer`].
    pub async fn offer(
        &self,
        room: &str,
        participant: &str,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, ControlError> {
        let body = OfferBody {
            room: room.into(),
            participant: participant.into(),
            offer,
        };
        let reply: Option<AnswerReply> = control(self.post("/v1/offer", &body).await)?;
        reply
            .map(|r| r.answer)
            .ok_or_else(|| ControlError::Unreachable("empty offer reply".into()))
    }

    /// See [`crate::Sfu::leave`].
    pub async fn leave(
        &self,
        room: &str,
        participant: &str,
        reason: &str,
    ) -> Result<(), ControlError> {
        let body = LeaveBody {
            room: room.into(),
            participant: participant.into(),
            reason: reason.into(),
        };
        control(self.post::<_, (), _>("/v1/leave", &body).await).map(|_| ())
    }

    /// See [`crate::Sfu::set_max_layer`].
    pub async fn set_max_layer(
        &self,
        room: &str,
        subscriber: &str,
        publisher: &str,
        layer: Layer,
    ) -> Result<(), ControlError> {
        let body = LayerBody {
            room: room.into(),
            subscriber: subscriber.into(),
            publisher: publisher.into(),
            layer,
        };
        control(self.post::<_, (), _>("/v1/layer", &body).await).map(|_| ())
    }

    /// See [`crate::Sfu::subscribe`].
    pub async fn subscribe(
        &self,
        room: &str,
        subscriber: &str,
        publisher: &str,
        subscribed: bool,
    ) -> Result<(), ControlError> {
        let body = SubscribeBody {
            room: room.into(),
            subscriber: subscriber.into(),
            publisher: publisher.into(),
            subscribed,
        };
        control(self.post::<_, (), _>("/v1/subscribe", &body).await).map(|_| ())
    }

    /// See [`crate::Sfu::set_muted`].
    pub async fn set_muted(
        &self,
        room: &str,
        participant: &str,
        kind: TrackKind,
        muted: bool,
    ) -> Result<(), ControlError> {
        let body = MuteBody {
            room: room.into(),
            participant: participant.into(),
            kind,
            muted,
        };
        control(self.post::<_, (), _>("/v1/mute", &body).await).map(|_| ())
    }

    /// See [`crate::Sfu::stats`].
    pub async fn stats(&self, room: &str) -> Result<RoomStats, ControlError> {
        let response = self
            .http
            .get(format!("{}/v1/rooms/{}", self.base, encode(room)))
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(|e| ControlError::Unreachable(e.to_string()))?;
        control(decode(response).await)?
            .ok_or_else(|| ControlError::Unreachable("empty stats reply".into()))
    }

    /// See [`crate::Sfu::drain`].
    pub async fn drain(&self) -> Result<(), ControlError> {
        control(self.post::<_, (), _>("/v1/drain", &()).await).map(|_| ())
    }
}

fn control<T>(result: Result<T, Failure<ControlError>>) -> Result<T, ControlError> {
    result.map_err(|f| match f {
        Failure::Node(e) => e,
        Failure::Transport(e) => ControlError::Unreachable(e),
    })
}

async fn decode<R: DeserializeOwned, E: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<Option<R>, Failure<E>> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Failure::Transport(e.to_string()))?;
    if status.is_success() {
        if bytes.is_empty() {
            return Ok(None);
        }
        return serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Failure::Transport(format!("bad reply: {e}")));
    }
    match serde_json::from_slice::<E>(&bytes) {
        Ok(e) => Err(Failure::Node(e)),
        Err(_) => Err(Failure::Transport(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        ))),
    }
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
