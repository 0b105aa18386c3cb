//! `sfu-throughput`: how many packets the real SFU forwards per core.
//!
//! ```text
//! cargo run --release -p benches --bin sfu-throughput -- --fanout 10 --seconds 10 --json
//! ```
//!
//! The SFU runs in a process of its own (this binary started again with
//! `--serve-sfu`: the `Sfu` node and its control API, nothing else), so the
//! CPU it uses is read from `/proc/<pid>` and belongs to it alone. This
//! process is the load: signalling in front of that node, and one room per
//! publisher, each with `--fanout` subscribers, all real WebRTC peers (the
//! load tester's participants: str0m over UDP on loopback, ICE, DTLS-SRTP,
//! SFrame-encrypted frames that every subscriber decrypts and checks).
//!
//! Figures are taken over a window of `--seconds` after every participant
//! has joined and a warm-up has passed: packets from the node's own
//! counters (`/metrics`), CPU and memory from `/proc`, latency and loss from
//! the subscribers. `added_latency_us` is the end-to-end frame latency on
//! loopback (encrypt at the publisher to decrypt at the subscriber), so it
//! is an upper bound on what the SFU adds: both client stacks are in it.
//!
//! At higher loads than verifying subscribers can take on the same
//! machine, subscribers that drop media unread (`--sink`, with `--no-bwe`):
//!
//! ```text
//! cargo run --release -p benches --bin sfu-throughput -- --fanout 10 --publishers 24 --video-kbps 6000 --seconds 10 --sink --no-bwe
//! ```
//!
//! What one more subscriber costs in memory, without the process's fixed
//! cost spread over the subscribers (two runs, at 12 and 24 publishers):
//!
//! ```text
//! cargo run --release -p benches --bin sfu-throughput -- --fanout 10 --publishers 12 --seconds 10 --memory-slope
//! ```

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use loadtest::run::{Progress, run};
use loadtest::scenario::{Scenario, Shard};
use loadtest::target::{SfuSample, Target};
use serde::Serialize;
use sfu::{RemoteSfu, Sfu, SfuConfig, SfuNode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[derive(Debug, Parser)]
#[command(about = "Forwarding throughput of the real SFU, measured from another process")]
struct Args {
    /// Subscribers per publisher (each publisher has a room of its own).
    #[arg(long, default_value_t = 10)]
    fanout: usize,
    /// Publishers (rooms).
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Length of the measured window, after joins and warm-up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up after the last join, before the window opens.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// SFU media worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Video packets the SFU keeps per outgoing stream for resends
    /// (`SfuConfig::resend_buffer_video`; default: the SFU's default).
    #[arg(long)]
    resend_buffer_video: Option<usize>,
    /// Leaves per second during the run, each followed by a fresh join
    /// (a soak: memory and file descriptors must stay flat).
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Turn the SFU's egress bandwidth estimation (and with it str0m's
    /// pacer) off, to see what it costs.
    #[arg(long)]
    no_bwe: bool,
    /// With the estimate on, hold forwarded media in str0m's pacer too
    /// (`SfuConfig::pace_media`), to see what pacing media costs.
    #[arg(long)]
    pace_media: bool,
    /// Video frames per second per publisher.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Video bitrate per publisher, kbit/s. The default, at 30 frames/s,
    /// makes about 160 packets/s of about 1200 bytes: one HD camera.
    #[arg(long, default_value_t = 1500)]
    video_kbps: u32,
    /// Publishers pace each frame's packets at this multiple of the video
    /// bitrate, as browsers do (libwebrtc: 2.5), instead of sending every
    /// frame as one burst. `added_latency_us` then includes that pacing;
    /// `sfu_transit_us` is the SFU's own time either way.
    #[arg(long, value_name = "FACTOR")]
    pace_video: Option<f64>,
    /// Measure what one more subscriber costs in memory: run the benchmark
    /// twice, at `--publishers` and at twice as many, in fresh SFU
    /// processes, and divide the difference in resident memory by the
    /// difference in subscribers. The average of a single run also carries
    /// the process's fixed cost (code, threads, buffers) spread over its
    /// subscribers.
    #[arg(long)]
    memory_slope: bool,
    /// Subscribers count what they receive and drop it unread, instead of
    /// decrypting and checking every frame, so one machine can load the SFU
    /// harder. Latency and loss are then not measured (null in the JSON);
    /// the SFU's own counters, CPU and transit times still are. Use it with
    /// `--no-bwe`: sink subscribers send no transport-wide feedback, so an
    /// estimate would run without its input.
    #[arg(long)]
    sink: bool,
    /// Print one JSON object (for scripts) instead of a summary.
    #[arg(long)]
    json: bool,
    /// Also write the load tester's full report (per-second timeline,
    /// histograms) to this file.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// Run the SFU process under this profiler command, e.g. "heaptrack"
    /// or "perf record -g -o sfu.perf" (split on spaces). CPU figures are
    /// then those of the wrapper process, not the SFU's.
    #[arg(long)]
    sfu_wrapper: Option<String>,
    /// Internal: be the SFU process (started by this program itself).
    #[arg(long, hide = true)]
    serve_sfu: bool,
    /// Internal: the SFU process's metrics port.
    #[arg(long, hide = true, default_value_t = 0)]
    metrics_port: u16,
}

/// The control API secret the two processes share (loopback only).
const SECRET_ENV: &str = "VEIL_BENCH_SFU_SECRET";
/// What the SFU process prints once it is ready.
const READY: &str = "Control API at ";

/// The printed result. Rates are per second of the measured window.
#[derive(Debug, Serialize)]
struct Outcome {
    publishers: usize,
    fanout: usize,
    subscribers: usize,
    workers: usize,
    window_s: f64,
    packets_in_per_s: f64,
    packets_out_per_s: f64,
    bytes_out_per_s: f64,
    mean_packet_bytes: f64,
    /// Cores the SFU process used (CPU seconds per second).
    sfu_cpu_seconds_per_s: f64,
    /// `packets_out_per_s / sfu_cpu_seconds_per_s`.
    packets_out_per_core_s: f64,
    /// Cores the load generator (this process) used. When it nears the
    /// cores the SFU leaves free, the generator, not the SFU, sets the
    /// pace: `packets_in_per_s` then falls short of what was offered.
    load_cpu_seconds_per_s: Option<f64>,
    /// End-to-end frame latency on loopback, an upper bound on what the
    /// SFU adds; null with `--sink`.
    added_latency_us: Option<Latency>,
    /// Time in the SFU, from a datagram reaching its socket (the kernel's
    /// stamp) to its batch's output reaching the kernel (`veil_sfu_transit_seconds` over the
    /// window), as histogram bucket bounds; null past the last bound.
    sfu_transit_us: Transit,
    /// Frames lost on the way to subscribers; null with `--sink`.
    loss_ratio: Option<f64>,
    decrypt_failures: u64,
    /// Frames the subscribers decrypted and checked over the whole run
    /// (none with `--sink`).
    frames_decrypted: u64,
    /// Subscribers dropped what they received unread (`--sink`).
    sink: bool,
    /// Publishers paced their frames at this multiple of their bitrate
    /// (`--pace-video`); null when each frame left as one burst.
    pace_video: Option<f64>,
    join_failures: usize,
    /// The SFU's resident memory before anyone joined, when the window
    /// opened and at its end (flat over the window means no growth per packet).
    sfu_resident_bytes_idle: u64,
    sfu_resident_bytes_window_start: u64,
    sfu_resident_bytes: u64,
    /// `(end - idle) / subscribers`.
    resident_bytes_per_subscriber: f64,
    /// Participants who left and were replaced during the run (`--churn`).
    churned: usize,
    /// The SFU's open file descriptors before anyone joined, when the
    /// window opened, at its end, and once everyone had left.
    sfu_fds_idle: usize,
    sfu_fds_window_start: usize,
    sfu_fds_end: usize,
    sfu_fds_after_leave: usize,
    /// What the SFU still holds once everyone has left: participants (its
    /// gauge) and resident memory.
    sfu_participants_after_leave: f64,
    sfu_resident_bytes_after_leave: u64,
}

#[derive(Debug, Serialize)]
struct Transit {
    p50: Option<f64>,
    p99: Option<f64>,
    p999: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.serve_sfu {
        return serve_sfu(&args);
    }
    if args.fanout == 0 || args.publishers == 0 || args.seconds <= 0.0 {
        bail!("--fanout, --publishers and --seconds must be positive");
    }
    if args.memory_slope {
        return memory_slope(&args);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(measure(&args))?;
    if args.json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        print_summary(&outcome);
    }
    Ok(())
}

/// One run's memory figures, as `--memory-slope` reads them from a child
/// run's JSON.
#[derive(Debug, Serialize)]
struct MemoryRun {
    subscribers: usize,
    /// Resident bytes at the window's end minus before anyone joined.
    resident_bytes_added: f64,
    resident_bytes_per_subscriber: f64,
    packets_out_per_core_s: f64,
    loss_ratio: Option<f64>,
}

/// What `--memory-slope` prints.
#[derive(Debug, Serialize)]
struct MemorySlope {
    runs: [MemoryRun; 2],
    /// What one more subscriber adds: the difference in resident memory
    /// between the runs over the difference in subscribers.
    marginal_bytes_per_subscriber: f64,
    /// What the process holds whatever its subscribers: the first run's
    /// added memory less its subscribers at the marginal cost.
    fixed_bytes: f64,
}

/// `--memory-slope`: this benchmark run twice, each in processes of its own.
fn memory_slope(args: &Args) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut runs = Vec::new();
    for publishers in [args.publishers, 2 * args.publishers] {
        let mut command = std::process::Command::new(&exe);
        command
            .args(["--fanout", &args.fanout.to_string()])
            .args(["--publishers", &publishers.to_string()])
            .args(["--seconds", &args.seconds.to_string()])
            .args(["--warmup", &args.warmup.to_string()])
            .args(["--workers", &args.workers.to_string()])
            .args(["--churn", &args.churn.to_string()])
            .args(["--fps", &args.fps.to_string()])
            .args(["--video-kbps", &args.video_kbps.to_string()])
            .args(
                args.pace_video
                    .map(|f| ["--pace-video".to_string(), f.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .args(args.no_bwe.then_some("--no-bwe"))
            .args(args.pace_media.then_some("--pace-media"))
            .args(args.sink.then_some("--sink"))
            .arg("--json");
        if let Some(n) = args.resend_buffer_video {
            command.args(["--resend-buffer-video", &n.to_string()]);
        }
        let output = command
            .stderr(Stdio::inherit())
            .output()
            .context("running the benchmark")?;
        if !output.status.success() {
            bail!(
                "the run with {publishers} publishers failed ({})",
                output.status
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().last().context("the run printed nothing")?;
        let o: serde_json::Value = serde_json::from_str(line).context("the run's JSON")?;
        let number = |key: &str| -> anyhow::Result<f64> {
            o[key]
                .as_f64()
                .with_context(|| format!("`{key}` in the run's JSON"))
        };
        runs.push(MemoryRun {
            subscribers: number("subscribers")? as usize,
            resident_bytes_added: number("sfu_resident_bytes")?
                - number("sfu_resident_bytes_idle")?,
            resident_bytes_per_subscriber: number("resident_bytes_per_subscriber")?,
            packets_out_per_core_s: number("packets_out_per_core_s")?,
            loss_ratio: o["loss_ratio"].as_f64(),
        });
    }
    let [small, large]: [MemoryRun; 2] = runs.try_into().expect("two runs");
    let marginal = (large.resident_bytes_added - small.resident_bytes_added)
        / (large.subscribers - small.subscribers) as f64;
    let slope = MemorySlope {
        fixed_bytes: small.resident_bytes_added - marginal * small.subscribers as f64,
        marginal_bytes_per_subscriber: marginal,
        runs: [small, large],
    };
    if args.json {
        println!("{}", serde_json::to_string(&slope)?);
    } else {
        for run in &slope.runs {
            println!(
                "{:>5} subscribers: +{:.1} MiB ({:.0} KiB per subscriber), {:.0} packets out per core-second, loss {}",
                run.subscribers,
                run.resident_bytes_added / 1048576.0,
                run.resident_bytes_per_subscriber / 1024.0,
                run.packets_out_per_core_s,
                run.loss_ratio
                    .map_or("not measured".into(), |l| format!("{:.4} %", l * 100.0))
            );
        }
        println!(
            "  one more subscriber: {:.0} KiB; fixed: {:.1} MiB",
            slope.marginal_bytes_per_subscriber / 1024.0,
            slope.fixed_bytes / 1048576.0
        );
    }
    Ok(())
}

/// The SFU process: a node and its control API on loopback, its counters
/// on `/metrics`. It exits when its parent closes stdin.
fn serve_sfu(args: &Args) -> anyhow::Result<()> {
    let secret = std::env::var(SECRET_ENV).context("started without a control secret")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        sfu::telemetry::with_buckets(metrics_exporter_prometheus::PrometheusBuilder::new())?
            .with_http_listener(([127, 0, 0, 1], args.metrics_port))
            .install()
            .context("serving metrics")?;
        let sfu = Sfu::start(SfuConfig {
            udp_bind: "127.0.0.1:0".parse()?,
            tcp_bind: None,
            workers: args.workers,
            max_participants_per_room: 10_000,
            resend_buffer_video: args
                .resend_buffer_video
                .unwrap_or(SfuConfig::default().resend_buffer_video),
            bandwidth_estimation: !args.no_bwe,
            pace_media: args.pace_media,
            ..SfuConfig::default()
        })?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{READY}http://{}", listener.local_addr()?);
        let control = sfu::control::server::router(sfu.clone(), &secret);
        tokio::spawn(async move { axum::serve(listener, control).await });
        // Until the parent goes away.
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(_)) = stdin.next_line().await {}
        drop(sfu);
        Ok(())
    })
}

/// The SFU process at one moment: its counters, CPU time, memory and
/// open descriptors.
struct Snapshot {
    counters: SfuSample,
    /// The node's transit-time histogram (cumulative buckets).
    transit: Vec<(f64, f64)>,
    cpu: Option<f64>,
    /// The load generator's (this process's) CPU seconds.
    load_cpu: Option<f64>,
    at: Instant,
    rss: u64,
    fds: usize,
}

/// The SFU process's `/metrics` text; empty when it cannot be read.
async fn metrics_text(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    match reqwest::get(&url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

impl Snapshot {
    async fn take(target: &Target, pid: u32, metrics_port: u16) -> Snapshot {
        let text = metrics_text(metrics_port).await;
        Snapshot {
            counters: target.sfu_sample().await,
            transit: sfu::telemetry::buckets_in(&text, sfu::telemetry::TRANSIT_SECONDS),
            cpu: sfu::process::cpu_seconds_of(pid),
            load_cpu: sfu::process::cpu_seconds_of(std::process::id()),
            at: Instant::now(),
            rss: sfu::process::resident_bytes_of(pid).unwrap_or(0),
            fds: sfu::process::open_fds_of(pid).unwrap_or(0),
        }
    }
}

async fn measure(args: &Args) -> anyhow::Result<Outcome> {
    let secret = signalling::auth::random_secret();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let exe = std::env::current_exe()?;
    let mut command = match &args.sfu_wrapper {
        Some(wrapper) => {
            let mut words = wrapper.split_whitespace();
            let mut c = Command::new(words.next().context("--sfu-wrapper is empty")?);
            c.args(words).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let mut child = command
        .args(["--serve-sfu", "--workers", &args.workers.to_string()])
        .args(["--metrics-port", &metrics_port.to_string()])
        .args(args.no_bwe.then_some("--no-bwe"))
        .args(args.pace_media.then_some("--pace-media"))
        .args(
            args.resend_buffer_video
                .map(|n| vec!["--resend-buffer-video".to_string(), n.to_string()])
                .unwrap_or_default(),
        )
        .env(SECRET_ENV, &secret)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the SFU process")?;
    let pid = child.id().context("SFU process id")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let control = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix(READY) {
                return Ok(url.to_string());
            }
        }
        bail!("the SFU process exited before it was ready")
    })
    .await
    .context("waiting for the SFU process")??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // The workers build their runtimes (epoll, eventfd) just after the
    // node reports ready: wait until its descriptors stop changing.
    let mut fds_idle = sfu::process::open_fds_of(pid).unwrap_or(0);
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sfu::process::open_fds_of(pid).unwrap_or(0);
        if now == fds_idle {
            break;
        }
        fds_idle = now;
    }
    let rss_idle = sfu::process::resident_bytes_of(pid).unwrap_or(0);

    let node = SfuNode::from(RemoteSfu::new(&control, &secret));
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let target = Arc::new(Target::in_front_of(node, vec![metrics_url]).await?);
    let scenario = Scenario {
        rooms: args.publishers,
        participants: args.fanout + 1,
        publishers: Some(1),
        fps: args.fps,
        video_kbps: args.video_kbps,
        pace_video: args.pace_video,
        // Joins, warm-up, the window, and a second to spare.
        duration_s: args.warmup + args.seconds + 1.0,
        // Latency is counted from the window on, like everything else.
        warmup_s: args.warmup,
        churn: args.churn,
        ramp: 100.0,
        sink_subscribers: args.sink,
        ..Scenario::default()
    };
    let participants = scenario.rooms * scenario.participants;
    let ramp = Duration::from_secs_f64(participants as f64 / scenario.ramp);
    let started = Instant::now();
    let load = tokio::spawn(run(
        scenario,
        Shard { index: 0, count: 1 },
        target.clone(),
        Progress::Quiet,
    ));

    tokio::time::sleep_until((started + ramp + Duration::from_secs_f64(args.warmup)).into()).await;
    let start = Snapshot::take(&target, pid, metrics_port).await;
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let end = Snapshot::take(&target, pid, metrics_port).await;
    let report = load.await.context("load task")??;
    // Everyone has left: give the SFU a moment to let go of them.
    let mut participants_left = f64::NAN;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        participants_left = gauge(&metrics_text(metrics_port).await, "veil_sfu_participants");
        if participants_left == 0.0 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = Snapshot::take(&target, pid, metrics_port).await;
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;

    let window = (end.at - start.at).as_secs_f64();
    let cpu = match (start.cpu, end.cpu) {
        (Some(a), Some(b)) => (b - a) / window,
        _ => bail!("cannot read the SFU process's CPU time from /proc"),
    };
    let packets_out_per_s = (end.counters.packets_out - start.counters.packets_out) / window;
    let bytes_out_per_s = (end.counters.bytes_out - start.counters.bytes_out) / window;
    let subscribers = args.publishers * args.fanout;
    let us = |ms: f64| (ms * 1000.0).round();
    Ok(Outcome {
        publishers: args.publishers,
        fanout: args.fanout,
        subscribers,
        workers: args.workers,
        window_s: window,
        packets_in_per_s: (end.counters.packets_in - start.counters.packets_in) / window,
        packets_out_per_s,
        bytes_out_per_s,
        mean_packet_bytes: if packets_out_per_s > 0.0 {
            bytes_out_per_s / packets_out_per_s
        } else {
            0.0
        },
        sfu_cpu_seconds_per_s: cpu,
        load_cpu_seconds_per_s: start
            .load_cpu
            .zip(end.load_cpu)
            .map(|(a, b)| (b - a) / window),
        packets_out_per_core_s: if cpu > 0.0 {
            packets_out_per_s / cpu
        } else {
            0.0
        },
        added_latency_us: (!args.sink).then(|| Latency {
            p50: us(report.latency_ms.p50),
            p95: us(report.latency_ms.p95),
            p99: us(report.latency_ms.p99),
        }),
        sfu_transit_us: {
            let q = |q| sfu::telemetry::quantile_us_from_buckets(&start.transit, &end.transit, q);
            Transit {
                p50: q(0.5),
                p99: q(0.99),
                p999: q(0.999),
            }
        },
        loss_ratio: (!args.sink).then_some(report.loss_ratio),
        decrypt_failures: report.decrypt_failures,
        frames_decrypted: report.frames_decrypted,
        sink: args.sink,
        pace_video: args.pace_video,
        join_failures: report.join_failures,
        sfu_resident_bytes_idle: rss_idle,
        sfu_resident_bytes_window_start: start.rss,
        sfu_resident_bytes: end.rss,
        resident_bytes_per_subscriber: end.rss.saturating_sub(rss_idle) as f64 / subscribers as f64,
        churned: report.participants.saturating_sub(participants),
        sfu_fds_idle: fds_idle,
        sfu_fds_window_start: start.fds,
        sfu_fds_end: end.fds,
        sfu_fds_after_leave: after.fds,
        sfu_participants_after_leave: participants_left,
        sfu_resident_bytes_after_leave: after.rss,
    })
}

/// A gauge summed over its series (the SFU keeps one per worker) in
/// Prometheus text; NaN when absent.
fn gauge(text: &str, name: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            (rest.starts_with(' ') || rest.starts_with('{')).then_some(rest)
        })
        .filter_map(|rest| rest.rsplit_once(' ')?.1.trim().parse().ok())
        .collect();
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum()
    }
}

fn print_summary(o: &Outcome) {
    println!(
        "{} publishers × {} subscribers, {} SFU worker(s), {:.1} s window",
        o.publishers, o.fanout, o.workers, o.window_s
    );
    println!(
        "  packets out     {:>12.0} /s  ({:.0} B each)",
        o.packets_out_per_s, o.mean_packet_bytes
    );
    println!("  SFU CPU         {:>12.3} cores", o.sfu_cpu_seconds_per_s);
    if let Some(load) = o.load_cpu_seconds_per_s {
        println!("  load CPU        {load:>12.3} cores (this process)");
    }
    println!(
        "  per core        {:>12.0} packets out /s",
        o.packets_out_per_core_s
    );
    match (&o.added_latency_us, o.loss_ratio) {
        (Some(latency), Some(loss)) => {
            println!(
                "  latency (e2e)   p50 {:.0} µs, p95 {:.0} µs, p99 {:.0} µs",
                latency.p50, latency.p95, latency.p99
            );
            println!(
                "  loss            {:.4} %, {} decrypt failures, {} join failures",
                loss * 100.0,
                o.decrypt_failures,
                o.join_failures
            );
        }
        _ => println!(
            "  subscribers     dropped media unread (--sink): no latency or loss; {} join failures",
            o.join_failures
        ),
    }
    let (p50, p99) = (o.sfu_transit_us.p50, o.sfu_transit_us.p99);
    println!(
        "  in the SFU      p50 under {} µs, p99 under {} µs",
        p50.map_or("?".into(), |v| format!("{v:.0}")),
        p99.map_or("?".into(), |v| format!("{v:.0}"))
    );
    println!(
        "  SFU memory      {:.1} MiB ({:.0} KiB per subscriber; {:+.1} MiB over the window)",
        o.sfu_resident_bytes as f64 / 1048576.0,
        o.resident_bytes_per_subscriber / 1024.0,
        (o.sfu_resident_bytes as f64 - o.sfu_resident_bytes_window_start as f64) / 1048576.0
    );
    println!(
        "  file descriptors {} idle, {} at the window's start, {} at its end, {} once all left",
        o.sfu_fds_idle, o.sfu_fds_window_start, o.sfu_fds_end, o.sfu_fds_after_leave
    );
    println!(
        "  after leaving   {} participants, {:.1} MiB resident; {} churned",
        o.sfu_participants_after_leave,
        o.sfu_resident_bytes_after_leave as f64 / 1048576.0,
        o.churned
    );
}
