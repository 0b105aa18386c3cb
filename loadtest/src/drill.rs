//! The scale-out drill: Veil's Kubernetes topology on loopback, a load on
//! it, and one SFU node drained in the middle, as a rolling update or a
//! scale-down would.
//!
//! It starts real processes: one `redis-server`, `sfu` nodes announcing
//! themselves in it, and `signalling` replicas routing rooms over them. The
//! load tester joins its rooms through all replicas, and once every room
//! has a node, the busiest node gets SIGTERM. Its participants are told to
//! move, rejoin on the other nodes, and the report says how long each one
//! waited for media (`interruptions`) and whether any room went silent.
//!
//! ```text
//! loadtest drill --rooms 30 --participants 3 --duration 30s --report drill.json
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use signalling::registry::Registry;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::report::Report;
use crate::run::{Progress, run};
use crate::scenario::{Scenario, Shard};
use crate::target::Target;

const API_KEY: &str = "drill";
const API_SECRET: &str = "drill-api-secret-0123456789abcdef";
const NODE_SECRET: &str = "drill-node-secret";

/// What to start and when to drain.
#[derive(Debug, Clone)]
pub struct DrillConfig {
    /// The `sfu` binary.
    pub sfu: PathBuf,
    /// The `signalling` binary.
    pub signalling: PathBuf,
    /// SFU nodes to start.
    pub nodes: usize,
    /// Signalling replicas to start.
    pub replicas: usize,
    /// The load. Its rooms must spread over the nodes.
    pub scenario: Scenario,
    /// How long after every room has a node the busiest one is drained.
    pub drain_after: Duration,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct DrillOutcome {
    /// The load tester's report (interruptions per participant, silent rooms).
    pub report: Report,
    /// The node that was drained.
    pub drained: String,
    /// Rooms per node just before the drain.
    pub rooms_before: BTreeMap<String, Vec<String>>,
    /// Rooms per node at the end.
    pub rooms_after: BTreeMap<String, Vec<String>>,
    /// Rooms with no live node at the end.
    pub rooms_without_node: Vec<String>,
    /// How long the drained process took to exit after SIGTERM, seconds.
    pub drained_exit_s: Option<f64>,
}

/// A child process that is killed when dropped.
struct Process {
    child: Child,
}

impl Process {
    /// Spawns `command` and waits for the stdout line starting with
    /// `marker`; returns the rest of that line.
    async fn start(mut command: Command, marker: &str) -> anyhow::Result<(Process, String)> {
        let mut child = command
            // DRILL_LOG=info shows what the processes did (stderr).
            .env(
                "RUST_LOG",
                std::env::var("DRILL_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {:?}", command.as_std().get_program()))?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let rest = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix(marker) {
                    return Ok(rest.to_string());
                }
            }
            bail!("exited before printing {marker:?}")
        })
        .await
        .with_context(|| format!("waiting for {marker:?}"))??;
        // Keep reading so the child never blocks on a full pipe; echo the
        // log when asked to (DRILL_LOG).
        let echo = std::env::var_os("DRILL_LOG").is_some();
        let name = format!(
            "{} {}",
            command.as_std().get_program().to_string_lossy(),
            child.id().unwrap_or_default()
        );
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("[{name}] {line}");
                }
            }
        });
        Ok((Process { child }, rest))
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs the drill. Everything it started stops when it returns.
pub async fn drill(config: DrillConfig) -> anyhow::Result<DrillOutcome> {
    if config.nodes < 2 {
        bail!("a drill needs at least 2 SFU nodes (one is drained)");
    }
    let redis_port = free_port()?;
    let mut redis = Command::new("redis-server");
    redis.args(["--bind", "127.0.0.1", "--port", &redis_port.to_string()]);
    redis.args(["--save", "", "--appendonly", "no"]);
    let (_redis, _) = Process::start(redis, "")
        .await
        .context("redis-server is needed (apt-get install redis-server)")?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}/");
    let registry = connect_registry(&redis_url).await?;

    let mut nodes = Vec::new();
    let mut metrics = Vec::new();
    for i in 0..config.nodes {
        let id = format!("drill-sfu-{i}");
        let metrics_addr = format!("127.0.0.1:{}", free_port()?);
        let mut command = Command::new(&config.sfu);
        command
            .args(["--udp", "127.0.0.1:0", "--tcp", "off"])
            .args(["--control", "127.0.0.1:0", "--metrics", &metrics_addr])
            .args(["--control-secret", NODE_SECRET, "--workers", "1"])
            .args(["--registry", &redis_url, "--node-id", &id])
            .args(["--drain-timeout", "20"]);
        let (process, _) = Process::start(command, "Control API at ").await?;
        metrics.push(format!("http://{metrics_addr}/metrics"));
        nodes.push((id, process));
    }
    let mut urls = Vec::new();
    let mut _replicas = Vec::new();
    for _ in 0..config.replicas {
        let mut command = Command::new(&config.signalling);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--api-key", API_KEY, "--api-secret", API_SECRET])
            .args(["--redis", &redis_url, "--sfu-secret", NODE_SECRET]);
        let (process, rest) = Process::start(command, "Veil signalling on http://").await?;
        let addr = rest.split_whitespace().next().unwrap_or_default();
        urls.push(format!("http://{addr}"));
        _replicas.push(process);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.live_nodes().await?.len() < config.nodes {
        if Instant::now() > deadline {
            bail!("the SFU nodes did not all register");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let target = Arc::new(Target::remote(
        &urls,
        Some((API_KEY.into(), API_SECRET.into())),
        None,
        metrics,
    )?);
    let rooms = config.scenario.rooms;
    let load = tokio::spawn(run(
        config.scenario.clone(),
        Shard { index: 0, count: 1 },
        target,
        Progress::Quiet,
    ));

    // Every room on a node, then a while of steady load.
    let node_ids: Vec<String> = nodes.iter().map(|(id, _)| id.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut rooms_before = rooms_by_node(&registry, &node_ids).await?;
    while rooms_before.values().map(Vec::len).sum::<usize>() < rooms {
        if Instant::now() > deadline || load.is_finished() {
            bail!("not every room got a node: {rooms_before:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        rooms_before = rooms_by_node(&registry, &node_ids).await?;
    }
    tokio::time::sleep(config.drain_after).await;
    rooms_before = rooms_by_node(&registry, &node_ids).await?;
    let drained = rooms_before
        .iter()
        .max_by_key(|(_, r)| r.len())
        .map(|(id, _)| id.clone())
        .context("no node has rooms")?;
    let process = &mut nodes
        .iter_mut()
        .find(|(id, _)| *id == drained)
        .context("drained node")?
        .1;
    let pid = process.child.id().context("node already exited")?;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -TERM {pid} failed");
    }
    let sigterm = Instant::now();
    let exited = async {
        let exit = tokio::time::timeout(Duration::from_secs(30), process.child.wait()).await;
        exit.ok().map(|_| sigterm.elapsed().as_secs_f64())
    };

    // Where the rooms are now, read while the calls still run (and whether
    // or not the drained node has exited yet): nodes release the rooms that
    // empty, so after the load has left there is nothing to see. Wait
    // (briefly) until the moved rooms have landed.
    let settle = Instant::now() + Duration::from_secs(15);
    let placement = async {
        loop {
            let after = rooms_by_node(&registry, &node_ids).await?;
            let live: Vec<String> = registry
                .live_nodes()
                .await?
                .into_iter()
                .map(|n| n.id)
                .collect();
            let placed: Vec<&String> = after
                .iter()
                .filter(|(id, _)| **id != drained && live.contains(id))
                .flat_map(|(_, r)| r)
                .collect();
            let missing: Vec<String> = rooms_before
                .values()
                .flatten()
                .filter(|room| !placed.contains(room))
                .cloned()
                .collect();
            // Nodes are read one after another, so a room moving meanwhile
            // can show on both: settled means on live nodes only, none of
            // it left on the drained one.
            let settled = missing.is_empty() && after.get(&drained).is_none_or(Vec::is_empty);
            if settled || Instant::now() > settle || load.is_finished() {
                return anyhow::Ok((after, missing));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (drained_exit_s, placement) = tokio::join!(exited, placement);
    let (rooms_after, rooms_without_node) = placement?;
    let report = load.await.context("the load task")??;
    Ok(DrillOutcome {
        report,
        drained,
        rooms_before,
        rooms_after,
        rooms_without_node,
        drained_exit_s,
    })
}

async fn connect_registry(url: &str) -> anyhow::Result<Registry> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Registry::redis(url, "veil:").await {
            Ok(r) => return Ok(r),
            Err(e) if Instant::now() > deadline => bail!("cannot reach redis at {url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn rooms_by_node(
    registry: &Registry,
    nodes: &[String],
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    for id in nodes {
        let mut rooms = registry.rooms_of(id).await?;
        rooms.sort();
        out.insert(id.clone(), rooms);
    }
    Ok(out)
}
