//! `signalling`: Veil's signalling service.
//!
//! ```text
//! signalling                 # serve on 127.0.0.1:8080 with an in-process SFU (dev defaults)
//! signalling serve --help
//! signalling token --room standup --identity alice
//! ```

use std::net::{IpAddr, SocketAddr};

use clap::{Args, Parser, Subcommand};
use sfu::{Sfu, SfuConfig, SfuNode};
use signalling::auth::{Authenticator, Grants, TokenRequest, random_secret};
use signalling::nodes::Nodes;
use signalling::server::{AppState, router};

#[derive(Debug, Parser)]
#[command(version, about = "Veil's signalling service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Print a signed access token.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// HTTP/WebSocket listen address.
    #[arg(long, env = "VEIL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// API key; with no key and secret, dev credentials are made and printed.
    #[arg(long, env = "VEIL_API_KEY")]
    api_key: Option<String>,
    /// API secret (at least 32 bytes).
    #[arg(long, env = "VEIL_API_SECRET", hide_env_values = true)]
    api_secret: Option<String>,
    /// Redis URL of the cluster registry. With it, rooms go to the SFU nodes
    /// registered there (`sfu --registry ...`) and no SFU runs in-process.
    #[arg(long, env = "VEIL_REDIS_URL")]
    redis: Option<String>,
    /// Secret of the SFU nodes' control APIs (cluster mode).
    #[arg(long, env = "VEIL_SFU_SECRET", hide_env_values = true)]
    sfu_secret: Option<String>,
    /// UDP media address of the in-process SFU.
    #[arg(long, env = "VEIL_SFU_UDP", default_value = "127.0.0.1:7882")]
    udp: SocketAddr,
    /// ICE-TCP address of the in-process SFU ("off" disables).
    #[arg(long, env = "VEIL_SFU_TCP", default_value = "127.0.0.1:7881")]
    tcp: String,
    /// Address put in ICE candidates (NAT, Kubernetes).
    #[arg(long, env = "VEIL_ADVERTISE_IP")]
    advertise_ip: Option<IpAddr>,
    /// Let anyone get a token for any room from `POST /token` (the browser
    /// client's invite links). Always on in dev mode; in production your
    /// own backend normally mints tokens instead.
    #[arg(long, env = "VEIL_OPEN_ROOMS")]
    open_rooms: bool,
    /// Most WebSockets one client IP address may hold open (and twice as
    /// many TCP connections). Behind a proxy every client shares its
    /// address: raise this there, and cap per client at the proxy.
    #[arg(long, env = "VEIL_MAX_CONNECTIONS_PER_IP", default_value_t = signalling::server::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,
}

/// `signalling` with no subcommand: serve with defaults (and env overrides).
#[derive(Debug, Parser)]
struct DefaultServe {
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// Room the token admits to (omit only with --grants admin).
    #[arg(long)]
    room: Option<String>,
    /// Participant identity.
    #[arg(long)]
    identity: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Comma-separated: join, publish, subscribe, publish-data, admin.
    #[arg(long, default_value = "join,publish,subscribe,publish-data")]
    grants: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// API key (the token's `kid`).
    #[arg(long, env = "VEIL_API_KEY")]
    api_key: String,
    /// API secret (at least 32 bytes).
    #[arg(long, env = "VEIL_API_SECRET", hide_env_values = true)]
    api_secret: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => token(args),
        Some(Command::Serve(args)) => serve(args),
        None => serve(DefaultServe::parse_from(["signalling"]).args),
    }
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let grants = Grants::parse(&args.grants).map_err(anyhow::Error::msg)?;
    if args.room.is_none() && !grants.admin {
        anyhow::bail!("--room is required unless the token is an admin token (--grants admin)");
    }
    let auth = Authenticator::new([(args.api_key.as_str(), args.api_secret.as_str())])?;
    let request = TokenRequest {
        identity: args.identity,
        name: args.name,
        room: args.room,
        grants,
    };
    println!("{}", auth.mint(&args.api_key, request, args.ttl)?);
    Ok(())
}

#[tokio::main]
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (key, secret, dev) = match (args.api_key, args.api_secret) {
        (Some(k), Some(s)) => (k, s, false),
        (None, None) => ("dev".to_string(), random_secret(), true),
        _ => anyhow::bail!("give both --api-key and --api-secret, or neither for dev mode"),
    };
    let auth = Authenticator::new([(key.as_str(), secret.as_str())])?;
    let metrics =
        sfu::telemetry::with_buckets(metrics_exporter_prometheus::PrometheusBuilder::new())?
            .install_recorder()?;
    let (nodes, shared, local) = match &args.redis {
        Some(url) => {
            let secret = args.sfu_secret.clone().ok_or_else(|| {
                anyhow::anyhow!("--redis needs --sfu-secret, the SFU nodes' control secret")
            })?;
            let registry = signalling::registry::Registry::redis(url, "veil:")
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach the registry at {url}: {e}"))?;
            let shared = signalling::shared::Shared::redis(url, "veil:")
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach Redis at {url}: {e}"))?;
            (Nodes::cluster(registry, &secret), Some(shared), None)
        }
        None => {
            let sfu = Sfu::start(SfuConfig {
                udp_bind: args.udp,
                tcp_bind: match args.tcp.as_str() {
                    "off" => None,
                    addr => Some(
                        addr.parse()
                            .map_err(|e| anyhow::anyhow!("--tcp {addr:?}: {e}"))?,
                    ),
                },
                advertised_ip: args.advertise_ip,
                ..SfuConfig::default()
            })
            .map_err(|e| anyhow::anyhow!("cannot start the SFU on {}: {e}", args.udp))?;
            // The process's CPU and memory on /metrics, as a separate SFU
            // node reports them (what `loadtest --sfu-metrics` reads).
            sfu::process::spawn_gauges(std::time::Duration::from_secs(1));
            (Nodes::Single(SfuNode::from(&sfu)), None, Some(sfu))
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Veil signalling on http://{addr} (WebSocket at ws://{addr}/ws)");
    match &local {
        Some(sfu) => println!("SFU media on udp://{}", sfu.udp_addr()),
        None => println!(
            "Rooms go to the SFU nodes registered in {}",
            args.redis.as_deref().unwrap_or_default()
        ),
    }
    if dev {
        println!("Dev mode. API key: {key}  API secret: {secret}");
        println!(
            "Mint a token: signalling token --api-key {key} --api-secret {secret} --room demo --identity you"
        );
    }
    let mut state = AppState::with_nodes(auth, nodes, Some(metrics));
    if let Some(shared) = shared {
        state = state.with_shared(shared);
    }
    if dev || args.open_rooms {
        state = state.with_open_rooms(&key);
        println!("Open rooms are on: POST /token {{\"room\", \"name\"}} returns a token");
    }
    if dev {
        println!();
        println!("Open http://{addr}/ in a browser to start or join an end-to-end encrypted call");
        println!("(or share an invite: http://{addr}/r/ROOM#PASSPHRASE)");
    }
    let state = state.with_max_connections_per_ip(args.max_connections_per_ip);
    let limits = signalling::listener::Limits {
        max_connections_per_ip: 2 * args.max_connections_per_ip,
        ..Default::default()
    };
    // On SIGTERM (Kubernetes) or Ctrl-C the in-process SFU drains: joins
    // are refused and participants told to move, while media and this
    // listener keep serving until they have gone or the drain times out.
    let shutdown = async move {
        shutdown_signal().await;
        if let Some(sfu) = local {
            sfu.drain().await;
        }
    };
    signalling::listener::serve(listener, router(state), limits, shutdown).await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
