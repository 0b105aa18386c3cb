//! `loadtest`: thousands of end-to-end encrypted participants, measured end
//! to end.
//!
//! ```text
//! loadtest run --embedded --rooms 10 --participants 8 --audio-only --duration 30s --report r.json
//! loadtest run --url http://sig-a:8080 --url http://sig-b:8080 --api-key K --api-secret S \
//!              --sfu-metrics http://sfu-1:9464/metrics --shard 0/4 --report shard0.json
//! loadtest merge shard*.json --report all.json
//! ```
//!
//! Exit codes: 0 passed, 1 missed a threshold (`--max-loss`, `--max-p99-ms`)
//! or joins failed, 2 bad usage or setup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use loadtest::report::Report;
use loadtest::run::{Progress, default_session_threads, run_on};
use loadtest::scenario::{Scenario, Shard};
use loadtest::target::Target;
use veil_client::SessionPool;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Veil's load tester: end-to-end encrypted participants, measured end to end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario.
    Run(Box<RunArgs>),
    /// Merge shard reports of one scenario into one report.
    Merge(MergeArgs),
    /// Rehearse a node drain on loopback: Redis, SFU nodes and signalling
    /// replicas as separate processes, a load on them, and the busiest node
    /// drained (SIGTERM) mid-run. Reports each participant's interruption.
    Drill(Box<DrillArgs>),
}

#[derive(Debug, Args)]
struct DrillArgs {
    /// SFU nodes to start (the busiest is drained).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Signalling replicas to start.
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// Drain this long after every room has a node, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    drain_after: std::time::Duration,
    /// The `sfu` binary (default: next to this one).
    #[arg(long)]
    sfu_bin: Option<PathBuf>,
    /// The `signalling` binary (default: next to this one).
    #[arg(long)]
    signalling_bin: Option<PathBuf>,
    #[command(flatten)]
    flags: Scenario,
    /// Write the drill's JSON (the load report, rooms per node before and
    /// after, the drained node) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Fail (exit 1) when a participant waited longer than this for media, ms.
    #[arg(long)]
    max_interruption_ms: Option<f64>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Start a signalling server and SFU in this process (one-command benchmark).
    #[arg(long, conflicts_with = "url")]
    embedded: bool,
    /// Signalling base URL (repeat for several replicas).
    #[arg(long)]
    url: Vec<String>,
    /// API key to mint tokens with (else the server's open-room `POST /token`).
    #[arg(long, env = "VEIL_API_KEY", requires = "api_secret")]
    api_key: Option<String>,
    /// API secret.
    #[arg(long, env = "VEIL_API_SECRET", hide_env_values = true)]
    api_secret: Option<String>,
    /// The SFU's `/metrics` URL (repeat per node) for its packet rates, CPU and memory.
    #[arg(long)]
    sfu_metrics: Vec<String>,
    /// The SFU's UDP media address, needed for impairment against a remote server.
    #[arg(long)]
    media_addr: Option<SocketAddr>,
    /// Read the scenario from this JSON file instead of the flags below.
    #[arg(long)]
    scenario: Option<PathBuf>,
    #[command(flatten)]
    flags: Scenario,
    /// Run only this shard of the participants: i/n.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Write the JSON report here (`-`: as the last line of stdout, the
    /// table then going to stderr; for Kubernetes Jobs, whose logs are kept).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write an SVG plot of latency and throughput over time here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Fail (exit 1) when the loss ratio is above this (e.g. 0.01).
    #[arg(long)]
    max_loss: Option<f64>,
    /// Fail (exit 1) when the p99 latency is above this many ms.
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Threads that drive the participants' media, each with one epoll
    /// loop for many sockets (default: one per core this process may use).
    /// 0 gives every participant a tokio task of its own instead, which
    /// costs more per packet.
    #[arg(long)]
    session_threads: Option<usize>,
    /// Give every pooled participant a socket of its own, even against a
    /// loopback target (by default participants that bind 127.0.0.1 share
    /// one socket per session thread, each on its own 127.64.x.y address).
    #[arg(long)]
    own_sockets: bool,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Shard reports.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Write the merged report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Thresholds, as for `run`.
    #[arg(long)]
    max_loss: Option<f64>,
    /// Thresholds, as for `run`.
    #[arg(long)]
    max_p99_ms: Option<f64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run(args) => run_command(*args),
        Command::Merge(args) => merge_command(args),
        Command::Drill(args) => drill_command(*args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Raises this process's open-file limit to its hard limit: each participant
/// holds a UDP socket and a WebSocket. A plain `setrlimit` (the `rlimit`
/// crate), so it works in the distroless image too; where it fails the run
/// goes on with the limit it has, and says so.
fn raise_fd_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!(
            "loadtest: could not raise the open-file limit ({e}); large runs may fail to join"
        );
    }
}

fn write(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn run_command(args: RunArgs) -> anyhow::Result<bool> {
    let scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<Scenario>(&text)
                .with_context(|| format!("{} is not a scenario", path.display()))?
        }
        None => args.flags.clone(),
    };
    scenario.validate().map_err(anyhow::Error::msg)?;
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let target = if args.embedded {
            Target::embedded().await?
        } else {
            let credentials = args.api_key.clone().zip(args.api_secret.clone());
            Target::remote(
                &args.url,
                credentials,
                args.media_addr,
                args.sfu_metrics.clone(),
            )?
        };
        let progress = if args.quiet {
            Progress::Quiet
        } else {
            Progress::Bar
        };
        let pool = match args.session_threads.unwrap_or_else(default_session_threads) {
            0 => None,
            threads if args.own_sockets => Some(SessionPool::new(threads)?),
            threads => Some(SessionPool::with_shared_sockets(threads)?),
        };
        let target = std::sync::Arc::new(target);
        run_on(scenario, args.shard, target, progress, pool).await
    })?;
    finish(
        report,
        args.report.as_ref(),
        args.plot.as_ref(),
        args.max_loss,
        args.max_p99_ms,
    )
}

fn finish(
    mut report: Report,
    json: Option<&PathBuf>,
    plot: Option<&PathBuf>,
    max_loss: Option<f64>,
    max_p99_ms: Option<f64>,
) -> anyhow::Result<bool> {
    report.judge(max_loss, max_p99_ms);
    match json {
        // `--report -`: the JSON report is stdout's last line (what a
        // Kubernetes Job's log keeps); the table goes to stderr.
        Some(path) if path.as_os_str() == "-" => {
            eprint!("{}", report.table());
            println!("{}", serde_json::to_string(&report)?);
        }
        Some(path) => {
            print!("{}", report.table());
            write(path, &serde_json::to_string_pretty(&report)?)?;
        }
        None => print!("{}", report.table()),
    }
    if let Some(path) = plot {
        write(path, &loadtest::plot::svg(&report))?;
    }
    Ok(report.verdict.passed)
}

/// A report file, or a log whose last JSON line is the report (`kubectl
/// logs` of a pod that ran `loadtest run --report -`).
fn parse_report(text: &str) -> Result<Report, serde_json::Error> {
    serde_json::from_str(text).or_else(|whole| {
        text.lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .ok_or(whole)
    })
}

/// A binary that sits next to this one (`cargo build` puts them together).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        anyhow::bail!(
            "no {} next to {}: build it (cargo build --release -p {name}) or pass --{name}-bin",
            path.display(),
            exe.display()
        );
    }
    Ok(path)
}

fn drill_command(args: DrillArgs) -> anyhow::Result<bool> {
    args.flags.validate().map_err(anyhow::Error::msg)?;
    raise_fd_limit();
    let config = loadtest::drill::DrillConfig {
        sfu: args.sfu_bin.map_or_else(|| sibling("sfu"), Ok)?,
        signalling: args
            .signalling_bin
            .map_or_else(|| sibling("signalling"), Ok)?,
        nodes: args.nodes,
        replicas: args.replicas,
        scenario: args.flags,
        drain_after: args.drain_after,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(loadtest::drill::drill(config))?;
    let mut report = outcome.report.clone();
    report.judge(None, None);
    print!("{}", report.table());
    println!(
        "  drained node                 {} (exited {} after SIGTERM)",
        outcome.drained,
        outcome
            .drained_exit_s
            .map_or("not".into(), |s| format!("{s:.1} s"))
    );
    for (node, rooms) in &outcome.rooms_before {
        let after = outcome.rooms_after.get(node).map_or(0, Vec::len);
        println!(
            "  rooms on {node:<19} {} before, {after} after",
            rooms.len()
        );
    }
    println!("  interruptions (longest gap per participant that waited >= 250 ms):");
    for i in &report.interruptions {
        println!(
            "    {:<24} {:<12} {:>7.0} ms  {} rejoins",
            i.participant, i.room, i.longest_gap_ms, i.rejoins
        );
    }
    if let Some(path) = &args.report {
        write(path, &serde_json::to_string_pretty(&outcome)?)?;
    }
    let mut passed = report.verdict.passed && outcome.rooms_without_node.is_empty();
    if !outcome.rooms_without_node.is_empty() {
        println!(
            "  LOST rooms (no live node): {:?}",
            outcome.rooms_without_node
        );
    }
    if let Some(max) = args.max_interruption_ms
        && report.interruption_ms.max > max
    {
        println!(
            "  FAILED: longest interruption {:.0} ms > --max-interruption-ms {max}",
            report.interruption_ms.max
        );
        passed = false;
    }
    Ok(passed)
}

fn merge_command(args: MergeArgs) -> anyhow::Result<bool> {
    let mut reports = Vec::new();
    for path in &args.reports {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        reports.push(
            parse_report(&text)
                .with_context(|| format!("{} is not a loadtest report", path.display()))?,
        );
    }
    let merged = Report::merge(&reports).map_err(anyhow::Error::msg)?;
    finish(
        merged,
        args.report.as_ref(),
        None,
        args.max_loss,
        args.max_p99_ms,
    )
}
