//! The macro benchmark in its quick mode, as CI runs it: it must keep
//! building, starting its SFU process, pushing real media through it and
//! printing the figures `BENCHMARKS.md` quotes. Speed is not judged here
//! (that is for the benchmark runs themselves); consistency is.

mod common;

#[test]
fn the_macro_benchmark_runs_and_reports_consistent_figures() {
    let v = common::sfu_throughput(&[
        "--publishers",
        "1",
        "--fanout",
        "3",
        "--seconds",
        "2",
        "--warmup",
        "1",
        // Browser-like publishers; the memory slope below runs unpaced.
        "--pace-video",
        "2.5",
    ]);
    let f = |k: &str| common::number(&v, k);

    assert_eq!(f("subscribers"), 3.0);
    assert_eq!(f("pace_video"), 2.5, "{v}");
    assert_eq!(f("join_failures"), 0.0, "{v}");
    assert_eq!(f("decrypt_failures"), 0.0, "{v}");
    assert!(f("frames_decrypted") > 100.0, "{v}");
    assert!(f("loss_ratio") < 0.05, "{v}");
    // Every packet in goes out to each of the three subscribers.
    let ratio = f("packets_out_per_s") / f("packets_in_per_s");
    assert!((2.4..=3.6).contains(&ratio), "fan-out {ratio}: {v}");
    // One camera at 1.5 Mbit/s is about 160 packets/s plus 50 of audio.
    assert!(f("packets_in_per_s") > 100.0, "{v}");
    // The SFU process did the work and it was measured from outside.
    let cpu = f("sfu_cpu_seconds_per_s");
    assert!(cpu > 0.0 && cpu < 2.5, "{v}");
    let per_core = f("packets_out_per_core_s");
    assert!(
        (per_core - f("packets_out_per_s") / cpu).abs() < 1.0,
        "per-core figure is out per cpu: {v}"
    );
    // The generator's own CPU, measured apart from the SFU's: it encrypts,
    // sends and verifies every frame, so it is busy too.
    let load = f("load_cpu_seconds_per_s");
    assert!(load > 0.0 && load < 2.5, "{v}");
    let latency = &v["added_latency_us"];
    let (p50, p99) = (
        latency["p50"].as_f64().unwrap(),
        latency["p99"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p99 >= p50, "{v}");
    // Paced at 2.5x 1.5 Mbit/s, a 6,250-byte video frame's last packet
    // leaves about 13 ms after its first, and the latency includes that.
    // Audio (unpaced, 50 frames/s against video's 30) makes the median.
    assert!(p99 >= 5_000.0, "video frames were paced: {v}");
    // The node's own transit histogram was recorded and read back for the
    // window: bucket bounds, ordered; the SFU's part of the end-to-end time.
    let transit = &v["sfu_transit_us"];
    let transit_p50 = transit["p50"].as_f64().expect("a transit median");
    assert!(transit_p50 > 0.0, "{v}");
    if let Some(transit_p99) = transit["p99"].as_f64() {
        assert!(transit_p99 >= transit_p50, "{v}");
    }
    assert!(
        f("sfu_resident_bytes") >= f("sfu_resident_bytes_idle"),
        "{v}"
    );
    assert!(f("mean_packet_bytes") > 100.0, "{v}");
}

#[test]
fn the_memory_slope_runs_twice_and_divides_the_difference() {
    let v = common::sfu_throughput(&[
        "--memory-slope",
        "--publishers",
        "1",
        "--fanout",
        "5",
        "--seconds",
        "1",
        "--warmup",
        "1",
    ]);
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{v}");
    let run = |i: usize, k: &str| common::number(&runs[i], k);
    assert_eq!(run(0, "subscribers"), 5.0, "{v}");
    assert_eq!(run(1, "subscribers"), 10.0, "{v}");
    for i in 0..2 {
        assert!(run(i, "loss_ratio") < 0.05, "{v}");
        let average = run(i, "resident_bytes_added") / run(i, "subscribers");
        assert!(
            (average - run(i, "resident_bytes_per_subscriber")).abs() < 1.0,
            "{v}"
        );
    }
    // Five more sessions, each with its own WebRTC state, cost memory.
    let marginal = common::number(&v, "marginal_bytes_per_subscriber");
    assert!(marginal > 0.0, "{v}");
    assert!(
        (marginal - (run(1, "resident_bytes_added") - run(0, "resident_bytes_added")) / 5.0).abs()
            < 1.0,
        "{v}"
    );
    let fixed = common::number(&v, "fixed_bytes");
    assert!(
        (fixed + 5.0 * marginal - run(0, "resident_bytes_added")).abs() < 1.0,
        "{v}"
    );
}

#[test]
fn sink_subscribers_drop_media_unread_and_the_sfu_still_forwards_it() {
    let v = common::sfu_throughput(&[
        "--sink",
        "--publishers",
        "1",
        "--fanout",
        "3",
        "--seconds",
        "2",
        "--warmup",
        "1",
    ]);
    let f = |k: &str| common::number(&v, k);
    assert_eq!(v["sink"], true, "{v}");
    assert_eq!(f("join_failures"), 0.0, "{v}");
    // Nothing was decrypted, so nothing about frames is claimed.
    assert!(v["added_latency_us"].is_null(), "{v}");
    assert!(v["loss_ratio"].is_null(), "{v}");
    assert_eq!(f("decrypt_failures"), 0.0, "{v}");
    assert_eq!(f("frames_decrypted"), 0.0, "{v}");
    // The SFU forwarded every packet in to each of the three subscribers.
    let ratio = f("packets_out_per_s") / f("packets_in_per_s");
    assert!((2.4..=3.6).contains(&ratio), "fan-out {ratio}: {v}");
    assert!(f("packets_in_per_s") > 100.0, "{v}");
    assert!(f("sfu_cpu_seconds_per_s") > 0.0, "{v}");
}
