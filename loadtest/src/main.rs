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
use loadtest::run::{Progress, run};
use loadtest::scenario::{Scenario, Shard};
use loadtest::target::Target;

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
    /// Write the JSON report here.
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

/// Raises the open-file soft limit to the hard limit: every participant
/// holds a UDP socket and a WebSocket. Uses `prlimit` on our own pid, so the
/// crate needs no unsafe code; where that fails the run goes on with the
/// limit it has (and says so).
fn raise_fd_limit() {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let Some(hard) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
    else {
        return;
    };
    let pid = std::process::id().to_string();
    let ok = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "loadtest: could not raise the open-file limit to {hard}; large runs may fail to join"
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
        run(scenario, args.shard, std::sync::Arc::new(target), progress).await
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
    print!("{}", report.table());
    if let Some(path) = json {
        write(path, &serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(path) = plot {
        write(path, &loadtest::plot::svg(&report))?;
    }
    Ok(report.verdict.passed)
}

fn merge_command(args: MergeArgs) -> anyhow::Result<bool> {
    let mut reports = Vec::new();
    for path in &args.reports {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        reports.push(
            serde_json::from_str::<Report>(&text)
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
