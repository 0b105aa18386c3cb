//! Runs a scenario: joins participants at the ramp rate, holds the load
//! (with churn and key rotation), samples every second, and builds the
//! report.
//!
//! Every participant is a real `signalling::client::Connection`: token,
//! WebSocket, WebRTC over UDP, SFrame with the browser's key derivation.
//! They share one tokio runtime; none has a thread of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use signalling::client::{ConnectOptions, Connection};
use tokio::task::JoinSet;
use veil_client::impair::{Impairment, ImpairmentProxy};
use veil_client::{ClientConfig, RoomSecret, SessionPool, VideoConfig};

use crate::histogram::Histogram;
use crate::report::{Interruption, Network, Report, SfuFigures, Tick};
use crate::scenario::{Scenario, Shard};
use crate::target::Target;

/// The audio level simulated publishers send: normal speech.
const SPEAKING_DBOV: u8 = 30;

/// How long a join may take before it counts as failed.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

/// One planned participant.
#[derive(Debug, Clone)]
struct Plan {
    room: String,
    identity: String,
    publisher: bool,
    wrong_key: bool,
    /// Global number, for seeds and server spreading.
    global: usize,
}

/// A participant in the call.
struct Live {
    plan: Plan,
    connection: Connection,
    joined_at: Instant,
    first_frame: bool,
    proxy: Option<ImpairmentProxy>,
}

/// Counters of participants that already left (churn).
#[derive(Default)]
struct Retired {
    frames_decrypted: u64,
    decrypt_failures: u64,
    frames_sent: u64,
    frames_skipped: u64,
    packets_in: u64,
    datagrams_passed: u64,
    datagrams_dropped: u64,
    late_packets: u64,
}

/// Sequence tracking of one received stream, for loss.
struct Stream {
    first: u32,
    last: u32,
    received: u64,
    last_latency_us: Option<u64>,
    jitter_us: f64,
}

/// Everything measured, as the run goes.
#[derive(Default)]
struct Collector {
    latency: Histogram,
    /// Past the warm-up: frame latencies count (see [`Scenario::warmup_s`]).
    steady: bool,
    join: Histogram,
    first_frame: Histogram,
    streams: HashMap<(String, String, &'static str, usize), Stream>,
    join_failures: usize,
    attempted: usize,
    /// Per (receiver, sender, kind): when its latest frame was decrypted.
    last_frame_at_us: HashMap<(String, String, &'static str), u64>,
    /// Per receiver: its longest wait between two frames of one stream.
    longest_gap_us: HashMap<String, u64>,
    /// Each participant's longest gap, once it left.
    interruption: Histogram,
    /// Participants whose longest gap reached [`INTERRUPTION_US`].
    interruptions: Vec<Interruption>,
    /// Rejoins (new media sessions after a node was lost or drained).
    rejoins: u64,
}

/// How many of `live` participants should have had their samples drained
/// this second when `left` of it remains: a share that grows with the
/// second, and all of them once it is over.
fn drained_by(left: Duration, live: usize) -> usize {
    const SECOND_NS: u128 = 1_000_000_000;
    let into = SECOND_NS - left.as_nanos().min(SECOND_NS);
    (into * live as u128).div_ceil(SECOND_NS) as usize
}

/// A room whose members decrypted nothing for this long at the end of the
/// run is reported lost.
const SILENT_AFTER_US: u64 = 2_000_000;

/// A wait between frames this long counts as an interruption, not jitter.
const INTERRUPTION_US: u64 = 250_000;

impl Collector {
    fn add(
        &mut self,
        receiver: &str,
        samples: Vec<veil_client::RemoteSamples>,
        count_loss_on_video: bool,
        tick: &mut Histogram,
    ) -> u64 {
        let mut frames = 0;
        for s in samples {
            // Interruptions: the longest wait between two frames of a stream
            // (a node move shows here, wherever either side was).
            let key = (receiver.to_string(), s.identity.clone(), s.kind);
            let mut last = self.last_frame_at_us.get(&key).copied();
            let mut longest = 0;
            for &at in &s.received_at_us {
                if let Some(prev) = last {
                    longest = longest.max(at.saturating_sub(prev));
                }
                last = Some(at);
            }
            if let Some(at) = last {
                self.last_frame_at_us.insert(key, at);
            }
            let gap = self.longest_gap_us.entry(receiver.to_string()).or_default();
            *gap = (*gap).max(longest);
            for l in &s.latencies_us {
                if self.steady {
                    self.latency.record(*l);
                }
                tick.record(*l);
            }
            frames += s.latencies_us.len() as u64;
            let counted = s.kind == "audio" || count_loss_on_video;
            if !counted {
                continue;
            }
            for (layer, seqs) in s.sequences.iter().enumerate() {
                if seqs.is_empty() {
                    continue;
                }
                let key = (receiver.to_string(), s.identity.clone(), s.kind, layer);
                let stream = self.streams.entry(key).or_insert(Stream {
                    first: seqs[0],
                    last: seqs[0],
                    received: 0,
                    last_latency_us: None,
                    jitter_us: 0.0,
                });
                for seq in seqs {
                    stream.first = stream.first.min(*seq);
                    stream.last = stream.last.max(*seq);
                    stream.received += 1;
                }
                // RFC 3550 interarrival jitter on the frame latency.
                for l in &s.latencies_us {
                    if let Some(prev) = stream.last_latency_us {
                        let d = (*l as f64 - prev as f64).abs();
                        stream.jitter_us += (d - stream.jitter_us) / 16.0;
                    }
                    stream.last_latency_us = Some(*l);
                }
            }
        }
        frames
    }
}

/// What the caller sees while the run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A live progress bar on the terminal.
    Bar,
    /// Nothing (tests, pipes).
    Quiet,
}

fn plan(scenario: &Scenario, shard: Shard) -> Vec<Plan> {
    let mut plans = Vec::new();
    // Rooms fill side by side, so a partial ramp loads every room alike.
    for i in 0..scenario.participants {
        for r in 0..scenario.rooms {
            let global = r * scenario.participants + i;
            if !shard.owns(global) {
                continue;
            }
            plans.push(Plan {
                room: format!("lt-room-{r}"),
                identity: format!("lt-r{r}-p{i}"),
                publisher: i < scenario.publishers(),
                wrong_key: i >= scenario.participants - scenario.wrong_key,
                global,
            });
        }
    }
    plans
}

fn client_config(
    scenario: &Scenario,
    plan: &Plan,
    identity: &str,
    secret: RoomSecret,
) -> ClientConfig {
    let mut config = ClientConfig::new(identity, &plan.room, secret);
    config.record_digests = false;
    config.sink_media = scenario.sink_subscribers && !plan.publisher;
    config.audio = plan.publisher;
    // Publishers speak (-30 dBov in the audio-level extension): an SFU that
    // forwards only the loudest voices of a large room (Veil's default past
    // 8 members) would otherwise drop them all as silence.
    config.audio_level = SPEAKING_DBOV;
    config.video = if plan.publisher && !scenario.audio_only {
        let top = (scenario.video_kbps as usize * 1000 / 8 / scenario.fps as usize).max(200);
        Some(VideoConfig {
            simulcast: scenario.simulcast,
            fps: scenario.fps,
            frame_bytes: if scenario.simulcast {
                [top / 8, top / 3, top]
            } else {
                [top, top, top]
            },
            keyframe_interval: Duration::from_secs(3),
            pacing: scenario.pace_video,
        })
    } else {
        None
    };
    config
}

struct Secrets {
    right: HashMap<String, RoomSecret>,
    wrong: HashMap<String, RoomSecret>,
}

impl Secrets {
    fn new(scenario: &Scenario) -> Self {
        let mut right = HashMap::new();
        let mut wrong = HashMap::new();
        for r in 0..scenario.rooms {
            let room = format!("lt-room-{r}");
            right.insert(
                room.clone(),
                RoomSecret::from_passphrase(&room, &scenario.passphrase),
            );
            if scenario.wrong_key > 0 {
                let bad = format!("{} (wrong)", scenario.passphrase);
                wrong.insert(room.clone(), RoomSecret::from_passphrase(&room, &bad));
            }
        }
        Secrets { right, wrong }
    }

    fn of(&self, plan: &Plan) -> RoomSecret {
        let table = if plan.wrong_key {
            &self.wrong
        } else {
            &self.right
        };
        table[&plan.room].clone()
    }
}

/// Joins one participant; `Err` when the join fails or does not connect in time.
async fn join(
    target: &Target,
    scenario: &Scenario,
    plan: Plan,
    secret: RoomSecret,
    pool: Option<SessionPool>,
) -> Result<(Live, Duration), String> {
    let started = Instant::now();
    let (token, identity) = target
        .token(&plan.room, &plan.identity)
        .await
        .map_err(|e| e.to_string())?;
    let mut config = client_config(scenario, &plan, &identity, secret);
    config.pool = pool;
    let proxy = match (scenario.impaired(), target.media_addr) {
        (true, Some(media)) => {
            let impairment = Impairment {
                loss: scenario.loss / 100.0,
                delay: Duration::from_secs_f64(scenario.delay_s),
                jitter: Duration::from_secs_f64(scenario.jitter_s),
                seed: scenario
                    .seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add(plan.global as u64),
                downlink_bps: None,
            };
            let proxy = ImpairmentProxy::start(media, impairment)
                .await
                .map_err(|e| e.to_string())?;
            config.via_proxy = Some(proxy.addr());
            Some(proxy)
        }
        (true, None) => {
            return Err("impairment needs the SFU's media address (--media-addr)".into());
        }
        _ => None,
    };
    let mut servers = target.servers.clone();
    let first = plan.global % servers.len();
    servers.rotate_left(first);
    let mut options = ConnectOptions::new(servers, token, config);
    // An audio-only room's participants join as audio clients do: sent no
    // video, so the SFU runs no bandwidth estimation for them.
    options.audio_only = scenario.audio_only;
    let connection = Connection::connect(options)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + JOIN_TIMEOUT;
    while !connection.with_stats(|s| s.connected) {
        if Instant::now() > deadline {
            return Err("ICE/DTLS did not connect in time".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    Ok((
        Live {
            plan,
            connection,
            joined_at: started,
            first_frame: false,
            proxy,
        },
        took,
    ))
}

type Joined = Result<(Live, Duration), String>;

/// Runs `scenario` (this shard's part of it) against `target`.
/// Threads a [`SessionPool`] gets by default: one per core this process
/// may use.
pub fn default_session_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs a scenario, its participants' media driven by a [`SessionPool`] of
/// [`default_session_threads`] (sharing one socket per thread on loopback).
pub async fn run(
    scenario: Scenario,
    shard: Shard,
    target: Arc<Target>,
    progress: Progress,
) -> anyhow::Result<Report> {
    let pool = SessionPool::with_shared_sockets(default_session_threads())?;
    run_on(scenario, shard, target, progress, Some(pool)).await
}

/// Runs a scenario; the participants' media sessions run on `pool`, or
/// each in a tokio task of its own when it is `None` (what an application
/// using the client SDK does by default; slower per packet, see
/// `veil_client::pool`).
pub async fn run_on(
    scenario: Scenario,
    shard: Shard,
    target: Arc<Target>,
    progress: Progress,
    pool: Option<SessionPool>,
) -> anyhow::Result<Report> {
    scenario.validate().map_err(anyhow::Error::msg)?;
    let secrets = Arc::new(Secrets::new(&scenario));
    let plans = plan(&scenario, shard);
    let mut rooms: Vec<String> = plans.iter().map(|p| p.room.clone()).collect();
    rooms.sort();
    rooms.dedup();
    let scenario = Arc::new(scenario);
    let expected_participants = plans.len();
    let ramp_time = Duration::from_secs_f64(expected_participants as f64 / scenario.ramp);
    let total_time = ramp_time + scenario.duration();

    let bar = match progress {
        Progress::Bar => {
            let bar = ProgressBar::new(total_time.as_secs().max(1));
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} s  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        }
        Progress::Quiet => ProgressBar::hidden(),
    };

    let started = Instant::now();
    let sfu_start = target.sfu_sample().await;
    let embedded = target.is_embedded();
    let generator_start = generator_cpu_seconds(embedded, sfu_start.cpu_seconds);
    // Like the latencies, the receive waits leave out the warm-up.
    let mut waits_start = pool.as_ref().map(|p| p.receive_waits());
    // When the steady window began, with the SFU's and the generator's CPU
    // seconds then.
    let mut steady_start: Option<(Instant, Option<f64>, Option<f64>)> = None;
    let mut collector = Collector {
        steady: scenario.warmup_s == 0.0,
        ..Collector::default()
    };
    let steady_from = started + ramp_time + Duration::from_secs_f64(scenario.warmup_s);
    let mut retired = Retired::default();
    let mut live: Vec<Live> = Vec::new();
    let mut joining: JoinSet<Joined> = JoinSet::new();
    let mut pending = plans.into_iter().enumerate();
    let mut next_join = started;
    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let mut churned = 0usize;
    let mut next_churn = started + ramp_time;
    let mut epoch = 0u64;
    let mut next_rotation = scenario
        .key_rotation_s
        .map(|s| started + ramp_time + Duration::from_secs_f64(s));
    let mut timeline = Vec::new();
    let mut next_tick = started + Duration::from_secs(1);
    // This second's figures so far, and how many of `live` were drained.
    let (mut tick_latency, mut tick_frames, mut drained) = (Histogram::default(), 0, 0);
    let mut last_packets_out = sfu_start.packets_out;
    let count_video_loss = !scenario.simulcast;

    let spawn = |joining: &mut JoinSet<Joined>, plan: Plan| {
        let (target, scenario, secret) = (target.clone(), scenario.clone(), secrets.of(&plan));
        let pool = pool.clone();
        joining.spawn(async move { join(&target, &scenario, plan, secret, pool).await });
    };

    loop {
        let now = Instant::now();
        if now >= started + total_time {
            break;
        }
        // Ramp: start joins on schedule.
        while next_join <= now {
            let Some((_, plan)) = pending.next() else {
                next_join = started + total_time * 2;
                break;
            };
            collector.attempted += 1;
            spawn(&mut joining, plan);
            next_join += Duration::from_secs_f64(1.0 / scenario.ramp);
        }
        // Joins that finished.
        while let Some(done) = joining.try_join_next() {
            match done {
                Ok(Ok((participant, took))) => {
                    collector.join.record(took.as_micros() as u64);
                    live.push(participant);
                }
                Ok(Err(e)) => {
                    tracing::warn!("join failed: {e}");
                    collector.join_failures += 1;
                }
                Err(e) => {
                    tracing::warn!("join task failed: {e}");
                    collector.join_failures += 1;
                }
            }
        }
        // Churn: someone leaves, someone new takes their place.
        if scenario.churn > 0.0 && now >= next_churn && !live.is_empty() {
            next_churn += Duration::from_secs_f64(1.0 / scenario.churn);
            let leaving = live.swap_remove(rng.random_range(0..live.len()));
            churned += 1;
            let base = leaving
                .plan
                .identity
                .split("-g")
                .next()
                .unwrap_or_default()
                .to_string();
            let plan = Plan {
                identity: format!("{base}-g{churned}"),
                ..leaving.plan.clone()
            };
            retire(&mut retired, &mut collector, leaving, count_video_loss);
            collector.attempted += 1;
            spawn(&mut joining, plan);
        }
        // Key rotation: every publisher moves to the next epoch.
        if let Some(at) = next_rotation
            && now >= at
        {
            epoch = (epoch + 1) % 256;
            for p in live.iter().filter(|l| l.plan.publisher) {
                p.connection.with_client(|c| c.try_set_epoch(epoch));
            }
            next_rotation = scenario
                .key_rotation_s
                .map(|s| at + Duration::from_secs_f64(s));
        }
        // Samples: every participant's once a second, spread over the
        // second. Draining all of them at the tick took the generator's core
        // for about 11 ms at 2,000 participants, and the datagrams that
        // arrived meanwhile queued behind it (its receive waits).
        let due = drained_by(next_tick.saturating_duration_since(now), live.len());
        while drained < due {
            let p = &mut live[drained];
            drained += 1;
            let samples = p.connection.drain_samples();
            tick_frames += collector.add(
                &p.plan.identity,
                samples,
                count_video_loss,
                &mut tick_latency,
            );
            if !p.first_frame
                && let Some(at) = p.connection.with_stats(|s| s.first_frame_at)
            {
                p.first_frame = true;
                let took = at.saturating_duration_since(p.joined_at);
                collector.first_frame.record(took.as_micros() as u64);
            }
        }
        // Once a second: the timeline and progress.
        if now >= next_tick {
            next_tick += Duration::from_secs(1);
            drained = 0;
            let (tick_latency, frames) = (
                std::mem::take(&mut tick_latency),
                std::mem::take(&mut tick_frames),
            );
            // The second just drained was counted before this: the steady
            // window's latencies start with the next one.
            if !collector.steady && now >= steady_from {
                waits_start = pool.as_ref().map(|p| p.receive_waits());
            }
            collector.steady = now >= steady_from;
            let sfu = target.sfu_sample().await;
            if collector.steady && steady_start.is_none() {
                let generator = generator_cpu_seconds(embedded, sfu.cpu_seconds);
                steady_start = Some((Instant::now(), sfu.cpu_seconds, generator));
            }
            let tick = Tick {
                t: started.elapsed().as_secs_f64().round(),
                connected: live.len(),
                frames,
                latency_p50_ms: tick_latency.quantile(0.5) as f64 / 1000.0,
                latency_p99_ms: tick_latency.quantile(0.99) as f64 / 1000.0,
                packets_out: sfu.packets_out - last_packets_out,
            };
            last_packets_out = sfu.packets_out;
            bar.set_position(started.elapsed().as_secs());
            bar.set_message(format!(
                "{}/{} in  p50 {:.1} ms  p99 {:.1} ms  {:.0} frames/s  {} join failures",
                live.len(),
                expected_participants,
                tick.latency_p50_ms,
                tick.latency_p99_ms,
                tick.frames,
                collector.join_failures
            ));
            timeline.push(tick);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Joins still in flight count as failed.
    collector.join_failures += joining.len();
    joining.abort_all();

    let elapsed = started.elapsed().as_secs_f64();
    let sfu_end = target.sfu_sample().await;
    let generator_end = generator_cpu_seconds(embedded, sfu_end.cpu_seconds);
    let steady_cores = |start: Option<f64>, end: Option<f64>| {
        let (at, _, _) = steady_start?;
        let window = at.elapsed().as_secs_f64();
        (window > 0.0).then_some((end? - start?).max(0.0) / window)
    };
    let connected_at_end = live.len();
    let mut tail = Histogram::default();
    let mut leaving = Vec::new();
    for p in live {
        let samples = p.connection.drain_samples();
        collector.add(&p.plan.identity, samples, count_video_loss, &mut tail);
        leaving.push(p);
    }
    // A room is lost when none of its members decrypted anything lately.
    let recently = veil_client::session::unix_micros().saturating_sub(SILENT_AFTER_US);
    let silent_rooms: Vec<String> = rooms
        .into_iter()
        .filter(|room| {
            !leaving.iter().filter(|p| &p.plan.room == room).any(|p| {
                collector
                    .last_frame_at_us
                    .iter()
                    .any(|((receiver, _, _), at)| *receiver == p.plan.identity && *at >= recently)
            })
        })
        .collect();
    for p in leaving {
        retire(&mut retired, &mut collector, p, count_video_loss);
    }
    // Let the leaves reach the server before the caller tears it down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    bar.finish_and_clear();

    let (expected, received, jitter_sum, streams) =
        collector
            .streams
            .values()
            .fold((0u64, 0u64, 0.0, 0u64), |(e, r, j, n), s| {
                (
                    e + (s.last - s.first) as u64 + 1,
                    r + s.received,
                    j + s.jitter_us / 1000.0,
                    n + 1,
                )
            });
    let rate = |a: f64, b: f64| (b - a).max(0.0) / elapsed;
    let sfu = SfuFigures {
        source: target.metrics_source(),
        packets_in_per_s: rate(sfu_start.packets_in, sfu_end.packets_in),
        packets_out_per_s: rate(sfu_start.packets_out, sfu_end.packets_out),
        bytes_in_per_s: rate(sfu_start.bytes_in, sfu_end.bytes_in),
        bytes_out_per_s: rate(sfu_start.bytes_out, sfu_end.bytes_out),
        nacks: sfu_end.nacks - sfu_start.nacks,
        cpu_cores: match (sfu_start.cpu_seconds, sfu_end.cpu_seconds) {
            (Some(a), Some(b)) => Some((b - a) / elapsed),
            _ => None,
        },
        steady_cpu_cores: steady_cores(steady_start.and_then(|s| s.1), sfu_end.cpu_seconds),
        resident_bytes: sfu_end.resident_bytes,
        transit_us: crate::report::Transit::between(&sfu_start.transit, &sfu_end.transit),
    };
    let generator_cores = match (generator_start, generator_end) {
        (Some(a), Some(b)) => Some((b - a).max(0.0) / elapsed),
        _ => None,
    };
    let receive_waits = pool.as_ref().zip(waits_start).map(|(p, start)| {
        let end = p.receive_waits();
        let window: Vec<u64> = end.iter().zip(start).map(|(e, s)| e - s).collect();
        window
    });
    let load_generator = crate::report::LoadGenerator {
        cpu_cores: generator_cores,
        steady_cpu_cores: steady_cores(steady_start.and_then(|s| s.2), generator_end),
        participants_per_core: generator_cores
            .filter(|c| *c > 0.0)
            .map(|c| connected_at_end as f64 / c),
        receive_wait_ms: receive_waits.and_then(|w| crate::report::Percentiles::of_log2_us(&w)),
    };
    let mut report = Report {
        scenario: (*scenario).clone(),
        shards: vec![shard],
        participants: collector.attempted,
        join_failures: collector.join_failures,
        duration_s: elapsed,
        frames_expected: expected,
        frames_received: received,
        frames_decrypted: retired.frames_decrypted,
        decrypt_failures: retired.decrypt_failures,
        frames_sent: retired.frames_sent,
        frames_skipped: retired.frames_skipped,
        nack_recoveries: retired.late_packets,
        packets_forwarded_per_s: sfu.packets_out_per_s,
        client_packets_in_per_s: retired.packets_in as f64 / elapsed,
        network: Network {
            datagrams_passed: retired.datagrams_passed,
            datagrams_dropped: retired.datagrams_dropped,
            loss_ratio: 0.0,
        },
        sfu,
        load_generator,
        timeline,
        jitter_streams: (jitter_sum, streams),
        ..Report::default()
    };
    report.histograms.latency_us = collector.latency;
    report.histograms.join_us = collector.join;
    report.histograms.first_frame_us = collector.first_frame;
    report.histograms.interruption_us = collector.interruption;
    report.rejoins = collector.rejoins;
    collector
        .interruptions
        .sort_by(|a, b| b.longest_gap_ms.total_cmp(&a.longest_gap_ms));
    report.interruptions = collector.interruptions;
    report.rooms_silent_at_end = silent_rooms;
    report.finish();
    // No thresholds yet (the caller adds them): failed joins still count.
    report.judge(None, None);
    Ok(report)
}

/// A participant leaves: its last samples and counters go into the totals.
fn retire(retired: &mut Retired, collector: &mut Collector, p: Live, count_video_loss: bool) {
    let samples = p.connection.drain_samples();
    let mut ignore = Histogram::default();
    collector.add(&p.plan.identity, samples, count_video_loss, &mut ignore);
    if let Some(proxy) = &p.proxy {
        let (passed, dropped) = proxy.counts();
        retired.datagrams_passed += passed;
        retired.datagrams_dropped += dropped;
    }
    // Every media session of the connection counts (it may have rejoined).
    let totals = p.connection.totals();
    retired.frames_sent += totals.frames_sent;
    retired.frames_skipped += totals.frames_skipped;
    retired.frames_decrypted += totals.frames_decrypted;
    retired.decrypt_failures += totals.decrypt_failures;
    retired.late_packets += totals.late_packets;
    retired.packets_in += totals.packets_in;
    let rejoins = p.connection.stats().rejoins;
    collector.rejoins += rejoins;
    let gap = collector
        .longest_gap_us
        .get(&p.plan.identity)
        .copied()
        .unwrap_or(0);
    if gap > 0 {
        collector.interruption.record(gap);
    }
    if gap >= INTERRUPTION_US {
        collector.interruptions.push(Interruption {
            participant: p.plan.identity.clone(),
            room: p.plan.room.clone(),
            longest_gap_ms: gap as f64 / 1000.0,
            rejoins,
        });
    }
    // Leave properly (not just drop the socket, which the server would
    // hold for a resume), without holding up the sampling loop.
    tokio::spawn(p.connection.leave());
}

/// CPU seconds this process spent simulating participants: all of it, less
/// the embedded SFU's threads (`sfu_seconds`) when the SFU runs in here.
fn generator_cpu_seconds(embedded: bool, sfu_seconds: Option<f64>) -> Option<f64> {
    let process = sfu::process::cpu_seconds()?;
    if embedded {
        Some(process - sfu_seconds?)
    } else {
        Some(process)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_drained_in_shares_over_the_second_and_all_at_its_end() {
        let ms = Duration::from_millis;
        assert_eq!(drained_by(ms(1000), 2000), 0);
        assert_eq!(drained_by(ms(980), 2000), 40);
        assert_eq!(drained_by(ms(500), 2000), 1000);
        assert_eq!(drained_by(ms(1), 2000), 1998);
        assert_eq!(drained_by(ms(0), 2000), 2000);
        // More than a second left cannot happen, but drains nothing rather
        // than wrapping; with nobody live there is nothing to drain.
        assert_eq!(drained_by(ms(1500), 2000), 0);
        assert_eq!(drained_by(ms(0), 0), 0);
        // Every step drains at least the share of its time, so a loop that
        // wakes every 20 ms spreads 2,000 participants 40 at a time.
        let steps: Vec<usize> = (0..=50)
            .map(|k| drained_by(ms(1000 - 20 * k), 2000))
            .collect();
        assert!(steps.windows(2).all(|w| w[1] - w[0] == 40));
    }

    #[test]
    fn the_plan_fills_rooms_evenly_and_marks_roles() {
        let scenario = Scenario {
            rooms: 2,
            participants: 3,
            publishers: Some(1),
            wrong_key: 1,
            ..Scenario::default()
        };
        let all = plan(&scenario, Shard { index: 0, count: 1 });
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].room, "lt-room-0");
        assert_eq!(all[1].room, "lt-room-1");
        assert_eq!(all.iter().filter(|p| p.publisher).count(), 2);
        assert_eq!(all.iter().filter(|p| p.wrong_key).count(), 2);
        let half: usize = (0..2)
            .map(|i| plan(&scenario, Shard { index: i, count: 2 }).len())
            .sum();
        assert_eq!(half, 6);
    }

    #[test]
    fn publishers_are_heard_by_an_sfu_that_forwards_only_the_loudest() {
        let scenario = Scenario {
            rooms: 1,
            participants: 10,
            publishers: Some(1),
            ..Scenario::default()
        };
        let all = plan(&scenario, Shard { index: 0, count: 1 });
        let secret = RoomSecret::from_passphrase("lt-room-0", "p");
        // The SFU's own detector: fed what the publisher sends, it ranks
        // the publisher as speaking; a listener sends no audio at all.
        let mut detector = sfu::forward::speaker::SpeakerDetector::new(Default::default());
        let t0 = std::time::Instant::now();
        for p in &all {
            let config = client_config(&scenario, p, &p.identity, secret.clone());
            assert_eq!(config.audio, p.publisher);
            if config.audio {
                for i in 0..50 {
                    let at = t0 + Duration::from_millis(20 * i);
                    detector.observe(p.global, config.audio_level, at);
                }
            }
        }
        let publisher = all.iter().find(|p| p.publisher).unwrap();
        assert_eq!(
            detector.ranking(t0 + Duration::from_secs(1)),
            vec![publisher.global]
        );
    }
}
