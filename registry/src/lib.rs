//! Which SFU node hosts which room, shared by every signalling replica and
//! written by the SFU nodes themselves (their heartbeats).
//!
//! Two implementations behind one type: in-memory (one process, the default)
//! and Redis (many replicas). The rules are the same:
//!
//! * SFU nodes heartbeat their [`NodeInfo`] with a time-to-live; a node whose
//!   heartbeat lapses is dead.
//! * A room is assigned atomically: an existing live, undrained owner wins, otherwise the
//!   least-loaded live node that is not draining becomes the owner. No two
//!   nodes ever host one room, however many replicas race.
//! * Rooms of a dead node are re-homed by assigning them again.
//!
//! ```
//! # tokio_test_block_on(async {
//! use std::time::Duration;
//! use veil_registry::{NodeInfo, Registry};
//! let registry = Registry::memory();
//! for (id, load) in [("a", 12), ("b", 3)] {
//!     let node = NodeInfo { id: id.into(), control_url: format!("http://{id}"), load, draining: false };
//!     registry.heartbeat(&node, Duration::from_secs(3)).await.unwrap();
//! }
//! assert_eq!(registry.assign_room("standup").await.unwrap().id, "b");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

/// One SFU node as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Stable node id.
    pub id: String,
    /// Where its control API listens (`http://...`), or `local` in-process.
    pub control_url: String,
    /// Participants it hosts now.
    pub load: u32,
    /// Draining nodes get no new rooms.
    pub draining: bool,
}

/// Registry failures.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No live node can take a room.
    #[error("no SFU node is available")]
    NoNode,
    /// Redis trouble.
    #[error("registry backend: {0}")]
    Backend(String),
}

impl From<redis::RedisError> for RegistryError {
    fn from(e: redis::RedisError) -> Self {
        RegistryError::Backend(e.to_string())
    }
}

type Result<T> = std::result::Result<T, RegistryError>;

/// The room and node registry.
#[derive(Clone)]
pub enum Registry {
    /// One process.
    Memory(Arc<Mutex<MemoryState>>),
    /// Shared through Redis.
    Redis(RedisRegistry),
}

/// In-memory registry state.
#[derive(Default)]
pub struct MemoryState {
    nodes: HashMap<String, (NodeInfo, Instant)>,
    rooms: HashMap<String, String>,
}

impl MemoryState {
    /// Alive and not draining: keeps its rooms.
    fn serving(&self, id: &str, now: Instant) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|(node, expires)| *expires > now && !node.draining)
    }
}

/// Redis-backed registry.
#[derive(Clone)]
pub struct RedisRegistry {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

/// Room owners read per `MGET` when listing a node's rooms.
const OWNER_BATCH: usize = 256;

/// Assigns a room atomically: its live owner if that one is not draining,
/// else the least-loaded live node that is not draining. The chosen node's
/// load goes up by one at once, so a burst of new rooms spreads over the
/// nodes instead of piling onto whichever was least loaded at the last
/// heartbeat (which rewrites the real load within a second).
///
/// KEYS[1] = the room's key; ARGV[1] = node key prefix; ARGV[2] = node set.
const ASSIGN_SCRIPT: &str = r#"
local owner = redis.call('GET', KEYS[1])
if owner then
  local info = redis.call('GET', ARGV[1] .. owner)
  if info and not cjson.decode(info).draining then
    return owner
  end
end
local best, best_node
for _, id in ipairs(redis.call('SMEMBERS', ARGV[2])) do
  local info = redis.call('GET', ARGV[1] .. id)
  if info then
    local node = cjson.decode(info)
    if not node.draining and (best == nil or node.load < best_node.load
        or (node.load == best_node.load and id < best)) then
      best, best_node = id, node
    end
  end
end
if not best then
  return false
end
redis.call('SET', KEYS[1], best)
best_node.load = best_node.load + 1
redis.call('SET', ARGV[1] .. best, cjson.encode(best_node), 'KEEPTTL')
return best
"#;

fn least_loaded(nodes: &[NodeInfo]) -> Option<&NodeInfo> {
    nodes
        .iter()
        .filter(|n| !n.draining)
        .min_by(|a, b| a.load.cmp(&b.load).then(a.id.cmp(&b.id)))
}

impl Registry {
    /// A registry for one process.
    pub fn memory() -> Self {
        Registry::Memory(Arc::default())
    }

    /// A registry shared through the Redis at `url`; keys start with `prefix`.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client).await?;
        Ok(Registry::Redis(RedisRegistry {
            conn,
            prefix: prefix.to_string(),
        }))
    }

    /// A node announces itself; it stays alive for `ttl` unless it beats again.
    pub async fn heartbeat(&self, node: &NodeInfo, ttl: Duration) -> Result<()> {
        match self {
            Registry::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                m.nodes
                    .insert(node.id.clone(), (node.clone(), Instant::now() + ttl));
                Ok(())
            }
            Registry::Redis(r) => {
                let mut c = r.conn.clone();
                let json = serde_json::to_string(node)
                    .map_err(|e| RegistryError::Backend(e.to_string()))?;
                let _: () = c
                    .set_ex(
                        format!("{}node:{}", r.prefix, node.id),
                        json,
                        ttl.as_secs().max(1),
                    )
                    .await?;
                let _: () = c.sadd(format!("{}nodes", r.prefix), &node.id).await?;
                Ok(())
            }
        }
    }

    /// A node leaves cleanly.
    pub async fn remove_node(&self, id: &str) -> Result<()> {
        match self {
            Registry::Memory(m) => {
                m.lock().unwrap_or_else(|e| e.into_inner()).nodes.remove(id);
                Ok(())
            }
            Registry::Redis(r) => {
                let mut c = r.conn.clone();
                let _: () = c.del(format!("{}node:{id}", r.prefix)).await?;
                let _: () = c.srem(format!("{}nodes", r.prefix), id).await?;
                Ok(())
            }
        }
    }

    /// Nodes whose heartbeat has not lapsed.
    pub async fn live_nodes(&self) -> Result<Vec<NodeInfo>> {
        match self {
            Registry::Memory(m) => {
                let now = Instant::now();
                let m = m.lock().unwrap_or_else(|e| e.into_inner());
                let mut nodes: Vec<NodeInfo> = m
                    .nodes
                    .values()
                    .filter(|(_, exp)| *exp > now)
                    .map(|(n, _)| n.clone())
                    .collect();
                nodes.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(nodes)
            }
            Registry::Redis(r) => {
                let mut c = r.conn.clone();
                let ids: Vec<String> = c.smembers(format!("{}nodes", r.prefix)).await?;
                let mut nodes = Vec::new();
                for id in ids {
                    let json: Option<String> = c.get(format!("{}node:{id}", r.prefix)).await?;
                    match json.and_then(|j| serde_json::from_str::<NodeInfo>(&j).ok()) {
                        Some(node) => nodes.push(node),
                        None => {
                            // Heartbeat lapsed: forget the dead node.
                            let _: () = c.srem(format!("{}nodes", r.prefix), &id).await?;
                        }
                    }
                }
                nodes.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(nodes)
            }
        }
    }

    /// The node hosting `room`: its live owner unless that one drains, or atomically the
    /// least-loaded live node that is not draining.
    pub async fn assign_room(&self, room: &str) -> Result<NodeInfo> {
        for _ in 0..3 {
            let owner = match self {
                Registry::Memory(m) => {
                    let now = Instant::now();
                    let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                    match m.rooms.get(room).cloned() {
                        Some(owner) if m.serving(&owner, now) => Some(owner),
                        _ => {
                            let live: Vec<NodeInfo> = m
                                .nodes
                                .values()
                                .filter(|(_, expires)| *expires > now)
                                .map(|(n, _)| n.clone())
                                .collect();
                            let best = least_loaded(&live).map(|n| n.id.clone());
                            if let Some(id) = &best {
                                m.rooms.insert(room.to_string(), id.clone());
                                if let Some((node, _)) = m.nodes.get_mut(id) {
                                    node.load += 1;
                                }
                            }
                            best
                        }
                    }
                }
                Registry::Redis(r) => {
                    let mut c = r.conn.clone();
                    redis::Script::new(ASSIGN_SCRIPT)
                        .key(format!("{}room:{room}", r.prefix))
                        .arg(format!("{}node:", r.prefix))
                        .arg(format!("{}nodes", r.prefix))
                        .invoke_async(&mut c)
                        .await?
                }
            };
            let Some(owner) = owner else {
                return Err(RegistryError::NoNode);
            };
            // The owner may have died in between: look again.
            if let Some(node) = self.live_nodes().await?.into_iter().find(|n| n.id == owner) {
                return Ok(node);
            }
        }
        Err(RegistryError::NoNode)
    }

    /// The current owner of `room`, alive or not.
    pub async fn room_owner(&self, room: &str) -> Result<Option<String>> {
        match self {
            Registry::Memory(m) => Ok(m
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .rooms
                .get(room)
                .cloned()),
            Registry::Redis(r) => Ok(r
                .conn
                .clone()
                .get(format!("{}room:{room}", r.prefix))
                .await?),
        }
    }

    /// Forgets an empty room, if `node` still owns it (compare and delete
    /// in one step, so a room just given to another node stays its).
    pub async fn release_room(&self, room: &str, node: &str) -> Result<()> {
        match self {
            Registry::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                if m.rooms.get(room).map(String::as_str) == Some(node) {
                    m.rooms.remove(room);
                }
                Ok(())
            }
            Registry::Redis(r) => {
                let mut c = r.conn.clone();
                let _: i64 = redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                )
                .key(format!("{}room:{room}", r.prefix))
                .arg(node)
                .invoke_async(&mut c)
                .await?;
                Ok(())
            }
        }
    }

    /// Rooms whose owner is `node` (to re-home them when it dies).
    pub async fn rooms_of(&self, node: &str) -> Result<Vec<String>> {
        let mut rooms = match self {
            Registry::Memory(m) => {
                let m = m.lock().unwrap_or_else(|e| e.into_inner());
                m.rooms
                    .iter()
                    .filter(|(_, n)| *n == node)
                    .map(|(r, _)| r.clone())
                    .collect::<Vec<_>>()
            }
            Registry::Redis(r) => {
                // SCAN, not KEYS: KEYS walks the whole keyspace in one
                // command and blocks every other client of the server
                // meanwhile. Owners are then read a batch at a time.
                let mut c = r.conn.clone();
                let room_prefix = format!("{}room:", r.prefix);
                let keys: Vec<String> = {
                    let mut iter = c.scan_match::<_, String>(format!("{room_prefix}*")).await?;
                    let mut keys = Vec::new();
                    while let Some(key) = iter.next_item().await {
                        keys.push(key?);
                    }
                    keys
                };
                let mut rooms = Vec::new();
                for chunk in keys.chunks(OWNER_BATCH) {
                    let owners: Vec<Option<String>> =
                        redis::cmd("MGET").arg(chunk).query_async(&mut c).await?;
                    for (key, owner) in chunk.iter().zip(owners) {
                        if owner.as_deref() == Some(node)
                            && let Some(room) = key.strip_prefix(&room_prefix)
                        {
                            rooms.push(room.to_string());
                        }
                    }
                }
                rooms
            }
        };
        rooms.sort();
        Ok(rooms)
    }
}

/// A throwaway `redis-server` on a free loopback port, for tests of the
/// registry and of everything built on it. Killed and reaped on drop.
pub mod testing {
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    /// A running `redis-server` child process.
    pub struct RedisServer {
        child: Child,
        url: String,
    }

    impl RedisServer {
        /// Starts one (the binary must be installed; `.ci/run` installs it)
        /// and waits until it accepts connections.
        pub async fn start() -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free loopback port");
            let child = Command::new("redis-server")
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server is installed (.ci/run installs it)");
            // Owned at once, so the process is reaped on every path.
            let server = RedisServer {
                child,
                url: format!("redis://127.0.0.1:{port}/"),
            };
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return server;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("redis-server did not start on port {port}");
        }

        /// Its `redis://` URL.
        pub fn url(&self) -> &str {
            &self.url
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
