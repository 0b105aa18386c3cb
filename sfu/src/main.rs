//! `sfu`: run one Veil SFU node.
//!
//! ```text
//! sfu --udp 127.0.0.1:7882 --control 127.0.0.1:7880 --metrics 127.0.0.1:9464
//! ```
//!
//! The node forwards media; rooms and participants come from a signalling
//! service through the control API (`sfu::control::server`), guarded by a
//! shared secret (`--control-secret` or `VEIL_SFU_SECRET`; a random one is
//! made and printed when none is given). SIGTERM or Ctrl-C drains: no new joins,
//! participants are told to move, media keeps flowing until `--drain-timeout`.

use sfu::announce::Announcer;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use sfu::{Sfu, SfuConfig};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Veil's blind SFU: forwards end-to-end encrypted media it cannot read"
)]
struct Args {
    /// UDP address for all participants' media.
    #[arg(long, env = "VEIL_SFU_UDP", default_value = "127.0.0.1:7882")]
    udp: SocketAddr,
    /// TCP address for ICE-TCP fallback when UDP is blocked ("off" disables).
    #[arg(long, env = "VEIL_SFU_TCP", default_value = "127.0.0.1:7881")]
    tcp: String,
    /// Address to put in ICE candidates when clients reach us through NAT or a node IP.
    #[arg(long, env = "VEIL_SFU_ADVERTISE_IP")]
    advertise_ip: Option<IpAddr>,
    /// Control API listener (internal: only the signalling service talks to it).
    #[arg(long, env = "VEIL_SFU_CONTROL", default_value = "127.0.0.1:7880")]
    control: SocketAddr,
    /// Shared secret for the control API.
    #[arg(long, env = "VEIL_SFU_SECRET", hide_env_values = true)]
    control_secret: Option<String>,
    /// Prometheus metrics listener.
    #[arg(long, env = "VEIL_SFU_METRICS", default_value = "127.0.0.1:9464")]
    metrics: SocketAddr,
    /// Most participants per room.
    #[arg(long, default_value_t = 100)]
    max_participants: usize,
    /// Media worker threads (default: one per core).
    #[arg(long, env = "VEIL_SFU_WORKERS")]
    workers: Option<usize>,
    /// Redis URL of the cluster registry: the node announces itself there
    /// (id, control URL, load) every second so signalling can route rooms to it.
    #[arg(long, env = "VEIL_REDIS_URL")]
    registry: Option<String>,
    /// Node id in the registry (default: `sfu-<udp port>-<random>`).
    #[arg(long, env = "VEIL_NODE_ID")]
    node_id: Option<String>,
    /// Control URL signalling should use, when it differs from the listen address.
    #[arg(long, env = "VEIL_SFU_PUBLIC_CONTROL_URL")]
    public_control_url: Option<String>,
    /// Seconds to keep forwarding after SIGTERM while participants move.
    #[arg(long, default_value_t = 30)]
    drain_timeout: u64,
    /// Seconds a participant's session survives with no signalling replica
    /// attached (its replica died and the client has not resumed elsewhere).
    #[arg(long, default_value_t = 30)]
    attach_grace: u64,
    /// Add this pod's StatefulSet ordinal (the trailing `-N` of --node-id,
    /// else of the hostname) to the --udp and --tcp ports. Every pod then has
    /// port numbers of its own, so each can sit behind its own NodePort or
    /// LoadBalancer Service and several SFU pods can share a Kubernetes node.
    #[arg(long, env = "VEIL_SFU_ORDINAL_PORTS")]
    ordinal_ports: bool,
}

/// The StatefulSet ordinal at the end of a pod name: `veil-sfu-2` → 2.
fn ordinal_of(name: &str) -> Option<u16> {
    let (_, digits) = name.trim().rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `addr` with its port moved up by `offset`.
fn shifted(addr: SocketAddr, offset: u16) -> anyhow::Result<SocketAddr> {
    let port = addr
        .port()
        .checked_add(offset)
        .ok_or_else(|| anyhow::anyhow!("port {} + ordinal {offset} is past 65535", addr.port()))?;
    Ok(SocketAddr::new(addr.ip(), port))
}

/// Registry key prefix shared with the signalling service.
const REGISTRY_PREFIX: &str = "veil:";
/// Heartbeat period and lifetime: a node silent for 3 s is dead.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_TTL: Duration = Duration::from_secs(3);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = Args::parse();
    if args.ordinal_ports {
        let name = match &args.node_id {
            Some(id) => id.clone(),
            None => std::env::var("HOSTNAME")
                .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
                .unwrap_or_default(),
        };
        let ordinal = ordinal_of(&name).ok_or_else(|| {
            anyhow::anyhow!(
                "--ordinal-ports needs a name ending in -N (a StatefulSet pod), got {name:?}"
            )
        })?;
        args.udp = shifted(args.udp, ordinal)?;
        if args.tcp != "off" {
            let tcp: SocketAddr = args
                .tcp
                .parse()
                .map_err(|e| anyhow::anyhow!("--tcp {:?}: {e}", args.tcp))?;
            args.tcp = shifted(tcp, ordinal)?.to_string();
        }
    }
    sfu::telemetry::with_buckets(metrics_exporter_prometheus::PrometheusBuilder::new())?
        .with_http_listener(args.metrics)
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {}: {e}", args.metrics))?;
    // Process CPU and memory as gauges, for dashboards and the load tester.
    sfu::process::spawn_gauges(Duration::from_secs(1));
    let config = SfuConfig {
        udp_bind: args.udp,
        tcp_bind: match args.tcp.as_str() {
            "off" => None,
            addr => Some(
                addr.parse()
                    .map_err(|e| anyhow::anyhow!("--tcp {addr:?}: {e}"))?,
            ),
        },
        advertised_ip: args.advertise_ip,
        max_participants_per_room: args.max_participants,
        ..SfuConfig::default()
    };
    let config = SfuConfig {
        workers: args.workers.unwrap_or(config.workers),
        ..config
    };
    let sfu =
        Sfu::start(config).map_err(|e| anyhow::anyhow!("cannot bind UDP {}: {e}", args.udp))?;
    let listener = tokio::net::TcpListener::bind(args.control)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for control on {}: {e}", args.control))?;
    let secret = match args.control_secret {
        Some(secret) if !secret.is_empty() => secret,
        _ => {
            let secret = random_secret();
            println!("No --control-secret given; generated one: {secret}");
            secret
        }
    };
    let control = sfu::control::server::router_with_grace(
        sfu.clone(),
        &secret,
        Duration::from_secs(args.attach_grace),
    );
    println!(
        "Veil SFU forwarding on udp://{} with {} workers",
        sfu.udp_addr(),
        sfu.workers()
    );
    if let Some(tcp) = sfu.tcp_addr() {
        println!("ICE-TCP fallback on tcp://{tcp}");
    }
    println!("Control API at http://{}", listener.local_addr()?);
    println!("Metrics at http://{}/metrics", args.metrics);
    let control_url = args.public_control_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        )
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, control).await {
            tracing::error!("control API stopped: {e}");
        }
    });
    let announcer = match &args.registry {
        Some(url) => {
            let registry = veil_registry::Registry::redis(url, REGISTRY_PREFIX)
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach the registry at {url}: {e}"))?;
            let id = args.node_id.clone().unwrap_or_else(|| {
                format!("sfu-{}-{}", sfu.udp_addr().port(), &random_secret()[..8])
            });
            println!("Announcing node {id} at {control_url} in {url}");
            let announcer = Announcer::new(sfu.clone(), registry, &id, &control_url);
            tokio::spawn(announcer.clone().run(HEARTBEAT_EVERY, HEARTBEAT_TTL));
            Some(announcer)
        }
        None => None,
    };

    shutdown_signal().await;
    println!("Draining for {} s", args.drain_timeout);
    // The registry hears first, so that participants told to move next are
    // not placed on this node again by a replica that has not yet seen the
    // next heartbeat.
    if let Some(announcer) = &announcer {
        announcer
            .draining()
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = announcer.heartbeat(HEARTBEAT_TTL).await {
            tracing::warn!("could not mark the node draining in the registry: {e}");
        }
    }
    sfu.drain().await;
    // Participants were told to move; stop as soon as the last has gone
    // (a rolling update then takes seconds, not the whole timeout).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.drain_timeout);
    while sfu.participants() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(announcer) = announcer {
        announcer.deregister().await;
    }
    Ok(())
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_come_from_statefulset_pod_names() {
        assert_eq!(ordinal_of("veil-sfu-0"), Some(0));
        assert_eq!(ordinal_of("veil-sfu-12\n"), Some(12));
        assert_eq!(ordinal_of("sfu"), None);
        assert_eq!(ordinal_of("sfu-abc"), None);
        assert_eq!(ordinal_of("sfu-"), None);
        assert_eq!(ordinal_of("sfu-99999999"), None);
    }

    #[test]
    fn ports_shift_by_the_ordinal_or_fail_clearly() {
        let addr: SocketAddr = "0.0.0.0:30000".parse().unwrap();
        assert_eq!(shifted(addr, 7).unwrap().port(), 30007);
        let high: SocketAddr = "0.0.0.0:65535".parse().unwrap();
        assert!(shifted(high, 1).unwrap_err().to_string().contains("65535"));
    }
}
