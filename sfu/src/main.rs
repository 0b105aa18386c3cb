//! `sfu`: run one Veil SFU node.
//!
//! ```text
//! sfu --udp 127.0.0.1:7882 --metrics 127.0.0.1:9464
//! ```
//!
//! The node forwards media; rooms and participants come from a signalling
//! service through the control API. SIGTERM or Ctrl-C drains: no new joins,
//! participants are told to move, media keeps flowing until `--drain-timeout`.

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
    /// Address to put in ICE candidates when clients reach us through NAT or a node IP.
    #[arg(long, env = "VEIL_SFU_ADVERTISE_IP")]
    advertise_ip: Option<IpAddr>,
    /// Prometheus metrics listener.
    #[arg(long, env = "VEIL_SFU_METRICS", default_value = "127.0.0.1:9464")]
    metrics: SocketAddr,
    /// Most participants per room.
    #[arg(long, default_value_t = 100)]
    max_participants: usize,
    /// Seconds to keep forwarding after SIGTERM while participants move.
    #[arg(long, default_value_t = 30)]
    drain_timeout: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(args.metrics)
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {}: {e}", args.metrics))?;
    let config = SfuConfig {
        udp_bind: args.udp,
        advertised_ip: args.advertise_ip,
        max_participants_per_room: args.max_participants,
        ..SfuConfig::default()
    };
    let sfu =
        Sfu::start(config).map_err(|e| anyhow::anyhow!("cannot bind UDP {}: {e}", args.udp))?;
    println!("Veil SFU forwarding on udp://{}", sfu.udp_addr());
    println!("Metrics at http://{}/metrics", args.metrics);

    shutdown_signal().await;
    println!("Draining for {} s", args.drain_timeout);
    sfu.drain().await;
    tokio::time::sleep(Duration::from_secs(args.drain_timeout)).await;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
