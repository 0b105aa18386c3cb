//! What signalling replicas share, so that they act as one service:
//! who is in which room, relayed messages, and resume secrets.
//!
//! Each replica keeps the sockets it serves in a local table. With one
//! replica that is all there is ([`Shared::local`]). With many
//! ([`Shared::redis`]) the table is mirrored in Redis:
//!
//! * **Relays** are published on a per-room channel
//!   (`{prefix}relay:{room}`); every replica with members in the room is
//!   subscribed and hands the message to its own sockets. The payload stays
//!   opaque: it is end-to-end encrypted by the clients.
//! * **Presence** is a sorted set per room (`{prefix}presence:{room}`),
//!   identity scored by an expiry that the serving replica refreshes; a
//!   replica that dies stops refreshing and its members fade out.
//! * **Resume secrets** (`{prefix}session:{room}:{identity}`) let a client
//!   whose replica died resume on another one; the media session itself
//!   never depended on the replica.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::protocol::ServerMessage;

/// A socket's queue of messages to send.
pub type Outbound = mpsc::Sender<ServerMessage>;

/// How long a presence entry lives without a refresh.
const PRESENCE_TTL: Duration = Duration::from_secs(30);
/// How often a replica refreshes its members' presence.
const PRESENCE_REFRESH: Duration = Duration::from_secs(10);
/// How long a resume secret is kept at most (the session itself ends
/// earlier; this only bounds garbage).
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Errors of [`Shared::relay`].
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The named recipient is not in the room.
    #[error("{0:?} is not in the room")]
    UnknownParticipant(String),
    /// Redis trouble.
    #[error("relay backend: {0}")]
    Backend(String),
}

/// Settings of a room created through the REST API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomConfig {
    /// Most participants at once; `None` leaves it to the SFU's limit.
    #[serde(default)]
    pub max_participants: Option<u32>,
}

/// A relay as it travels between replicas.
#[derive(Serialize, Deserialize)]
struct Envelope {
    from: String,
    to: Option<String>,
    payload: String,
}

type Members = HashMap<String, HashMap<String, Outbound>>;

/// Presence, relays and resume secrets, for one replica or many.
#[derive(Clone)]
pub struct Shared {
    /// Sockets on this replica: room → identity → queue.
    local: Arc<Mutex<Members>>,
    /// Resume secrets (one-replica mode only).
    secrets: Arc<Mutex<HashMap<(String, String), String>>>,
    /// Created rooms (one-replica mode only).
    configs: Arc<Mutex<HashMap<String, RoomConfig>>>,
    /// (room, identity, kind) muted by a moderator (one-replica mode only).
    moderator_mutes: Arc<Mutex<HashSet<(String, String, String)>>>,
    /// Display names from the participants' tokens (one-replica mode only).
    names: Arc<Mutex<HashMap<(String, String), String>>>,
    /// (room, identity) removed by a moderator, until when (one-replica
    /// mode only).
    removed: Arc<Mutex<HashMap<(String, String), std::time::Instant>>>,
    redis: Option<RedisShared>,
}

#[derive(Clone)]
struct RedisShared {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    subscriptions: mpsc::UnboundedSender<Subscription>,
}

impl RedisShared {
    /// The key that keeps `identity` out of `room` while it exists.
    fn removed_key(&self, room: &str, identity: &str) -> String {
        format!("{}removed:{room}\u{0}{identity}", self.prefix)
    }
}

enum Subscription {
    Join(String),
    Leave(String),
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

impl Shared {
    /// One replica: everything stays in this process.
    pub fn local() -> Self {
        Shared {
            local: Arc::default(),
            secrets: Arc::default(),
            configs: Arc::default(),
            moderator_mutes: Arc::default(),
            names: Arc::default(),
            removed: Arc::default(),
            redis: None,
        }
    }

    /// Many replicas sharing the Redis at `url` (keys start with `prefix`).
    pub async fn redis(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client.clone()).await?;
        let local: Arc<Mutex<Members>> = Arc::default();
        let (subscriptions, requests) = mpsc::unbounded_channel();
        tokio::spawn(subscriber(
            client,
            prefix.to_string(),
            requests,
            local.clone(),
        ));
        let shared = Shared {
            local,
            secrets: Arc::default(),
            configs: Arc::default(),
            moderator_mutes: Arc::default(),
            names: Arc::default(),
            removed: Arc::default(),
            redis: Some(RedisShared {
                conn,
                prefix: prefix.to_string(),
                subscriptions,
            }),
        };
        tokio::spawn(refresh_presence(shared.clone()));
        Ok(shared)
    }

    /// A socket of `identity` in `room` is served here from now on.
    pub async fn enter(&self, room: &str, identity: &str, outbound: Outbound) {
        let first_here = {
            let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            let members = local.entry(room.to_string()).or_default();
            let first = members.is_empty();
            members.insert(identity.to_string(), outbound);
            first
        };
        if let Some(r) = &self.redis {
            if first_here {
                let _ = r.subscriptions.send(Subscription::Join(room.to_string()));
            }
            let mut c = r.conn.clone();
            let expiry = now_ms() + PRESENCE_TTL.as_millis() as f64;
            let result: redis::RedisResult<()> = c
                .zadd(format!("{}presence:{room}", r.prefix), identity, expiry)
                .await;
            if let Err(e) = result {
                warn!("presence update failed: {e}");
            }
        }
    }

    /// Remembers the display name `identity`'s token gave it in `room`, so
    /// that every replica can tell the others who joined.
    pub async fn remember_name(&self, room: &str, identity: &str, name: &str) {
        match &self.redis {
            None => {
                self.names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((room.to_string(), identity.to_string()), name.to_string());
            }
            Some(r) => {
                let mut c = r.conn.clone();
                let key = format!("{}names:{room}", r.prefix);
                let result: redis::RedisResult<()> = redis::pipe()
                    .hset(&key, identity, name)
                    .expire(&key, SESSION_TTL.as_secs() as i64)
                    .query_async(&mut c)
                    .await;
                if let Err(e) = result {
                    warn!("display name not stored: {e}");
                }
            }
        }
    }

    /// The display name of `identity` in `room`, if its token had one.
    pub async fn name_of(&self, room: &str, identity: &str) -> Option<String> {
        match &self.redis {
            None => self
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(room.to_string(), identity.to_string()))
                .cloned(),
            Some(r) => {
                let mut c = r.conn.clone();
                c.hget(format!("{}names:{room}", r.prefix), identity)
                    .await
                    .ok()
                    .flatten()
            }
        }
    }

    /// Forgets `identity`'s display name (it left for good).
    pub(crate) async fn forget_name(&self, room: &str, identity: &str) {
        match &self.redis {
            None => {
                self.names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(room.to_string(), identity.to_string()));
            }
            Some(r) => {
                let mut c = r.conn.clone();
                let _: redis::RedisResult<()> =
                    c.hdel(format!("{}names:{room}", r.prefix), identity).await;
            }
        }
    }

    /// The socket of `identity` in `room` is gone from this replica.
    /// `still_present`: the participant only changes socket (a resume may
    /// follow), so the room keeps listing it.
    pub async fn exit(&self, room: &str, identity: &str, still_present: bool) {
        let last_here = {
            let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            match local.get_mut(room) {
                Some(members) => {
                    members.remove(identity);
                    let empty = members.is_empty();
                    if empty {
                        local.remove(room);
                    }
                    empty
                }
                None => false,
            }
        };
        if let Some(r) = &self.redis {
            if last_here {
                let _ = r.subscriptions.send(Subscription::Leave(room.to_string()));
            }
            if !still_present {
                let mut c = r.conn.clone();
                let result: redis::RedisResult<()> = c
                    .zrem(format!("{}presence:{room}", r.prefix), identity)
                    .await;
                if let Err(e) = result {
                    warn!("presence update failed: {e}");
                }
            }
        }
        if !still_present {
            self.forget_name(room, identity).await;
        }
    }

    /// Relays an opaque payload from `from` to `to` (or the rest of the room).
    pub async fn relay(
        &self,
        room: &str,
        from: &str,
        to: Option<&str>,
        payload: String,
    ) -> Result<(), RelayError> {
        let Some(r) = &self.redis else {
            if let Some(one) = to
                && !self.local_members(room).iter().any(|m| m == one)
            {
                return Err(RelayError::UnknownParticipant(one.to_string()));
            }
            deliver(&self.local, room, from, to, &payload);
            return Ok(());
        };
        let mut c = r.conn.clone();
        if let Some(one) = to {
            let expiry: Option<f64> = c
                .zscore(format!("{}presence:{room}", r.prefix), one)
                .await
                .map_err(|e| RelayError::Backend(e.to_string()))?;
            if expiry.is_none_or(|e| e < now_ms()) {
                return Err(RelayError::UnknownParticipant(one.to_string()));
            }
        }
        let envelope = Envelope {
            from: from.to_string(),
            to: to.map(str::to_string),
            payload,
        };
        let json =
            serde_json::to_string(&envelope).map_err(|e| RelayError::Backend(e.to_string()))?;
        let _: () = c
            .publish(format!("{}relay:{room}", r.prefix), json)
            .await
            .map_err(|e| RelayError::Backend(e.to_string()))?;
        Ok(())
    }

    fn local_members(&self, room: &str) -> Vec<String> {
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local
            .get(room)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Everyone in `room`, on any replica.
    pub async fn members(&self, room: &str) -> Vec<String> {
        let Some(r) = &self.redis else {
            let mut members = self.local_members(room);
            members.sort();
            return members;
        };
        let mut c = r.conn.clone();
        let members: redis::RedisResult<Vec<String>> = c
            .zrangebyscore(format!("{}presence:{room}", r.prefix), now_ms(), "+inf")
            .await;
        let mut members = members.unwrap_or_else(|e| {
            warn!("presence read failed: {e}");
            self.local_members(room)
        });
        members.sort();
        members
    }

    /// Rooms with anyone in them, on any replica, and created rooms, with
    /// their members.
    pub async fn rooms(&self) -> HashMap<String, Vec<String>> {
        let names: Vec<String> = match &self.redis {
            None => {
                let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
                local.keys().cloned().collect()
            }
            Some(r) => {
                let mut c = r.conn.clone();
                let pattern = format!("{}presence:*", r.prefix);
                let keys: Vec<String> = match c.scan_match::<_, String>(pattern).await {
                    Ok(iter) => iter.filter_map(|k| async move { k.ok() }).collect().await,
                    Err(e) => {
                        warn!("room listing failed: {e}");
                        Vec::new()
                    }
                };
                let skip = format!("{}presence:", r.prefix).len();
                keys.into_iter().map(|k| k[skip..].to_string()).collect()
            }
        };
        let mut rooms = HashMap::new();
        for name in names {
            let members = self.members(&name).await;
            if !members.is_empty() {
                rooms.insert(name, members);
            }
        }
        // Created rooms are listed while empty too.
        for name in self.created_rooms().await {
            rooms.entry(name).or_default();
        }
        rooms
    }

    /// Creates or updates a room's settings; true if it was new.
    pub async fn create_room(&self, room: &str, config: &RoomConfig) -> Result<bool, String> {
        match &self.redis {
            None => Ok(self
                .configs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(room.to_string(), config.clone())
                .is_none()),
            Some(r) => {
                let mut c = r.conn.clone();
                let json = serde_json::to_string(config).map_err(|e| e.to_string())?;
                let added: i64 = c
                    .hset(format!("{}rooms", r.prefix), room, json)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(added == 1)
            }
        }
    }

    /// A created room's settings.
    pub async fn room_config(&self, room: &str) -> Option<RoomConfig> {
        match &self.redis {
            None => self
                .configs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(room)
                .cloned(),
            Some(r) => {
                let mut c = r.conn.clone();
                let json: Option<String> = c
                    .hget(format!("{}rooms", r.prefix), room)
                    .await
                    .unwrap_or(None);
                json.and_then(|j| serde_json::from_str(&j).ok())
            }
        }
    }

    /// Forgets a created room; true if there was one.
    pub async fn delete_room(&self, room: &str) -> bool {
        match &self.redis {
            None => self
                .configs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(room)
                .is_some(),
            Some(r) => {
                let mut c = r.conn.clone();
                let removed: i64 = c
                    .hdel(format!("{}rooms", r.prefix), room)
                    .await
                    .unwrap_or(0);
                removed == 1
            }
        }
    }

    /// Names of the created rooms.
    pub async fn created_rooms(&self) -> Vec<String> {
        match &self.redis {
            None => self
                .configs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned()
                .collect(),
            Some(r) => {
                let mut c = r.conn.clone();
                c.hkeys(format!("{}rooms", r.prefix))
                    .await
                    .unwrap_or_default()
            }
        }
    }

    /// Records a moderator's mute (or unmute) of `identity`'s `kind` tracks.
    pub async fn set_moderator_mute(&self, room: &str, identity: &str, kind: &str, muted: bool) {
        match &self.redis {
            None => {
                let key = (room.to_string(), identity.to_string(), kind.to_string());
                let mut set = self
                    .moderator_mutes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if muted {
                    set.insert(key);
                } else {
                    set.remove(&key);
                }
            }
            Some(r) => {
                let mut c = r.conn.clone();
                let key = format!("{}modmute:{room}", r.prefix);
                let member = format!("{identity}\u{0}{kind}");
                let result: redis::RedisResult<()> = if muted {
                    c.sadd(key, member).await
                } else {
                    c.srem(key, member).await
                };
                if let Err(e) = result {
                    warn!("cannot record a moderator mute: {e}");
                }
            }
        }
    }

    /// Keeps `identity` out of `room` for `period`: a moderator removed
    /// them, and their token would otherwise let them straight back in.
    pub async fn keep_out(&self, room: &str, identity: &str, period: std::time::Duration) {
        match &self.redis {
            None => {
                let mut removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
                let now = std::time::Instant::now();
                removed.retain(|_, until| *until > now);
                removed.insert((room.to_string(), identity.to_string()), now + period);
            }
            Some(r) => {
                let mut c = r.conn.clone();
                let key = r.removed_key(room, identity);
                let ms = period.as_millis().max(1) as u64;
                let result: redis::RedisResult<()> = c.pset_ex(key, 1, ms).await;
                if let Err(e) = result {
                    warn!("cannot record a removal: {e}");
                }
            }
        }
    }

    /// Whether a moderator removed `identity` from `room` recently
    /// ([`Shared::keep_out`]).
    pub async fn is_kept_out(&self, room: &str, identity: &str) -> bool {
        match &self.redis {
            None => self
                .removed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(room.to_string(), identity.to_string()))
                .is_some_and(|until| *until > std::time::Instant::now()),
            Some(r) => {
                let mut c = r.conn.clone();
                c.exists(r.removed_key(room, identity))
                    .await
                    .unwrap_or(false)
            }
        }
    }

    /// Whether a moderator muted `identity`'s `kind` tracks.
    pub async fn moderator_muted(&self, room: &str, identity: &str, kind: &str) -> bool {
        match &self.redis {
            None => self
                .moderator_mutes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&(room.to_string(), identity.to_string(), kind.to_string())),
            Some(r) => {
                let mut c = r.conn.clone();
                c.sismember(
                    format!("{}modmute:{room}", r.prefix),
                    format!("{identity}\u{0}{kind}"),
                )
                .await
                .unwrap_or(false)
            }
        }
    }

    /// Remembers the secret that resumes `identity`'s session in `room`.
    pub async fn save_secret(&self, room: &str, identity: &str, secret: &str) {
        match &self.redis {
            None => {
                self.secrets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((room.to_string(), identity.to_string()), secret.to_string());
            }
            Some(r) => {
                let mut c = r.conn.clone();
                let key = format!("{}session:{room}:{identity}", r.prefix);
                let result: redis::RedisResult<()> =
                    c.set_ex(key, secret, SESSION_TTL.as_secs()).await;
                if let Err(e) = result {
                    warn!("cannot store the resume secret: {e}");
                }
            }
        }
    }

    /// The resume secret of `identity`'s current session in `room`.
    async fn stored_secret(&self, room: &str, identity: &str) -> Option<String> {
        match &self.redis {
            None => self
                .secrets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(room.to_string(), identity.to_string()))
                .cloned(),
            Some(r) => {
                let mut c = r.conn.clone();
                c.get(format!("{}session:{room}:{identity}", r.prefix))
                    .await
                    .unwrap_or(None)
            }
        }
    }

    /// Whether `presented` resumes `identity`'s session in `room`.
    pub async fn check_secret(&self, room: &str, identity: &str, presented: &str) -> bool {
        let stored = self.stored_secret(room, identity).await;
        stored.is_some_and(|s| constant_time_eq(s.as_bytes(), presented.as_bytes()))
    }

    /// The session that `secret` resumes is over: its secret resumes
    /// nothing any more. False (and nothing changes) when a newer session of
    /// the same identity holds the key by now, as after a rejoin on another
    /// node: ending the old one must not end the new one.
    pub async fn forget_secret(&self, room: &str, identity: &str, secret: &str) -> bool {
        match &self.redis {
            None => {
                let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
                let key = (room.to_string(), identity.to_string());
                match secrets.get(&key) {
                    Some(stored) if stored != secret => false,
                    _ => {
                        secrets.remove(&key);
                        true
                    }
                }
            }
            Some(r) => {
                let mut c = r.conn.clone();
                let result: redis::RedisResult<i64> = redis::Script::new(FORGET_SECRET)
                    .key(format!("{}session:{room}:{identity}", r.prefix))
                    .arg(secret)
                    .invoke_async(&mut c)
                    .await;
                match result {
                    Ok(n) => n == 1,
                    Err(e) => {
                        warn!("cannot drop the resume secret: {e}");
                        true
                    }
                }
            }
        }
    }

    /// Whether `secret` is still the identity's current session (or no
    /// session holds the key).
    pub async fn is_current(&self, room: &str, identity: &str, secret: &str) -> bool {
        let stored = self.stored_secret(room, identity).await;
        stored.is_none_or(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()))
    }
}

/// Deletes a session's resume secret only if it is still that session's:
/// 1 when this session was current (or none was), 0 when a newer one is.
const FORGET_SECRET: &str = r#"
local stored = redis.call('GET', KEYS[1])
if stored and stored ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
"#;

/// Compares secrets without an early exit that would leak their prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hands a relay to this replica's sockets in `room`.
fn deliver(local: &Mutex<Members>, room: &str, from: &str, to: Option<&str>, payload: &str) {
    let targets: Vec<Outbound> = {
        let local = local.lock().unwrap_or_else(|e| e.into_inner());
        let Some(members) = local.get(room) else {
            return;
        };
        match to {
            Some(one) => members.get(one).cloned().into_iter().collect(),
            None => members
                .iter()
                .filter(|(who, _)| *who != from)
                .map(|(_, tx)| tx.clone())
                .collect(),
        }
    };
    for target in targets {
        let message = ServerMessage::Relay {
            from: from.to_string(),
            payload: payload.to_string(),
        };
        if target.try_send(message).is_err() {
            metrics::counter!("veil_signalling_relay_dropped_total").increment(1);
        }
    }
}

/// Keeps this replica subscribed to the relay channels of its rooms, and
/// delivers what arrives; reconnects (and resubscribes) if Redis goes away.
async fn subscriber(
    client: redis::Client,
    prefix: String,
    mut requests: mpsc::UnboundedReceiver<Subscription>,
    local: Arc<Mutex<Members>>,
) {
    let channel_prefix = format!("{prefix}relay:");
    let mut rooms: HashSet<String> = HashSet::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        let pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                warn!("relay subscription: cannot reach Redis: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let (mut sink, mut stream) = pubsub.split();
        for room in &rooms {
            let _ = sink.subscribe(format!("{channel_prefix}{room}")).await;
        }
        loop {
            tokio::select! {
                request = requests.recv() => match request {
                    None => return,
                    Some(Subscription::Join(room)) => {
                        if rooms.insert(room.clone()) {
                            let _ = sink.subscribe(format!("{channel_prefix}{room}")).await;
                        }
                    }
                    Some(Subscription::Leave(room)) => {
                        let still_here = local.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&room);
                        if !still_here && rooms.remove(&room) {
                            let _ = sink.unsubscribe(format!("{channel_prefix}{room}")).await;
                        }
                    }
                },
                message = stream.next() => {
                    let Some(message) = message else {
                        warn!("relay subscription lost; reconnecting");
                        break;
                    };
                    let Some(room) = message.get_channel_name().strip_prefix(&channel_prefix) else {
                        continue;
                    };
                    match serde_json::from_slice::<Envelope>(message.get_payload_bytes()) {
                        Ok(e) => deliver(&local, room, &e.from, e.to.as_deref(), &e.payload),
                        Err(e) => debug!("unreadable relay envelope: {e}"),
                    }
                }
            }
        }
    }
}

/// Re-announces this replica's members before their presence expires.
async fn refresh_presence(shared: Shared) {
    let Some(r) = shared.redis.clone() else {
        return;
    };
    loop {
        tokio::time::sleep(PRESENCE_REFRESH).await;
        let snapshot: Vec<(String, Vec<String>)> = {
            let local = shared.local.lock().unwrap_or_else(|e| e.into_inner());
            local
                .iter()
                .map(|(room, m)| (room.clone(), m.keys().cloned().collect()))
                .collect()
        };
        let expiry = now_ms() + PRESENCE_TTL.as_millis() as f64;
        let mut c = r.conn.clone();
        for (room, members) in snapshot {
            let items: Vec<(f64, String)> = members.into_iter().map(|m| (expiry, m)).collect();
            let result: redis::RedisResult<()> = c
                .zadd_multiple(format!("{}presence:{room}", r.prefix), &items)
                .await;
            if let Err(e) = result {
                warn!("presence refresh failed: {e}");
            }
            // Entries of replicas that died lapse; drop them from the set.
            let _: redis::RedisResult<()> = c
                .zrembyscore(format!("{}presence:{room}", r.prefix), "-inf", now_ms())
                .await;
        }
    }
}
