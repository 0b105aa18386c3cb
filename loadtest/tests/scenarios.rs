//! The load tester against its embedded server (real signalling, SFU,
//! WebRTC over loopback UDP, SFrame): small scenarios whose outcome we know.

use std::sync::Arc;

use loadtest::report::Report;
use loadtest::run::{Progress, run};
use loadtest::scenario::{Scenario, Shard};
use loadtest::target::Target;

const WHOLE: Shard = Shard { index: 0, count: 1 };

fn small() -> Scenario {
    Scenario {
        rooms: 2,
        participants: 3,
        duration_s: 4.0,
        video_kbps: 200,
        ..Scenario::default()
    }
}

async fn embedded() -> Arc<Target> {
    Arc::new(Target::embedded().await.expect("embedded server starts"))
}

/// The embedded servers of these tests count into one process-wide metrics
/// recorder, so a test that runs beside another would read the other's
/// packets as its own. One at a time.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_scenario_passes_its_thresholds_and_measures_everything() {
    let _serial = one_at_a_time().await;
    let scenario = Scenario {
        key_rotation_s: Some(1.0),
        ..small()
    };
    let mut report = run(scenario, WHOLE, embedded().await, Progress::Quiet)
        .await
        .unwrap();
    report.judge(Some(0.01), Some(1000.0));
    println!("{}", report.table());
    assert!(report.verdict.passed, "{:?}", report.verdict);
    assert_eq!((report.participants, report.join_failures), (6, 0));
    assert!(report.join_ms.p50 > 0.0);
    assert!(report.first_frame_ms.p50 > 0.0);
    // Everyone hears the two others: audio and video from each.
    assert!(
        report.frames_decrypted > 6 * 2 * 3 * 50,
        "{}",
        report.frames_decrypted
    );
    assert_eq!(report.decrypt_failures, 0, "key rotation loses nothing");
    assert!(report.frames_expected > 0 && report.loss_ratio < 0.01);
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.p99);
    assert!(report.packets_forwarded_per_s > 100.0);
    assert!(
        report.sfu.cpu_cores.is_some_and(|c| c > 0.0),
        "{:?}",
        report.sfu
    );
    // CPU over the steady window too (after the ramp), for both sides.
    assert!(
        report.sfu.steady_cpu_cores.is_some_and(|c| c > 0.0),
        "{:?}",
        report.sfu
    );
    assert!(
        report
            .load_generator
            .steady_cpu_cores
            .is_some_and(|c| c > 0.0),
        "{:?}",
        report.load_generator
    );
    assert!(report.table().contains("steady"));
    // The SFU's own transit time, read from its histogram over the run.
    let transit = report
        .sfu
        .transit_us
        .clone()
        .expect("the SFU's transit time");
    assert!(
        transit
            .p50
            .is_some_and(|p50| p50 > 0.0 && transit.p99.is_none_or(|p99| p99 >= p50)),
        "{transit:?}"
    );
    assert!(report.table().contains("SFU transit"));
    assert!(report.timeline.len() >= 4);
    // The report's documented fields are there, by name.
    let json = serde_json::to_value(&report).unwrap();
    for field in [
        "participants",
        "duration_s",
        "packets_forwarded_per_s",
        "loss_ratio",
        "decrypt_failures",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    for p in ["p50", "p95", "p99"] {
        assert!(json["latency_ms"][p].is_f64(), "latency_ms.{p}");
    }
    for p in ["p50", "p99"] {
        assert!(json["join_ms"][p].is_f64(), "join_ms.{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impaired_scenario_reports_the_loss_it_was_given() {
    let _serial = one_at_a_time().await;
    let scenario = Scenario {
        audio_only: true,
        loss: 5.0,
        delay_s: 0.010,
        jitter_s: 0.005,
        duration_s: 6.0,
        ..small()
    };
    let report = run(scenario, WHOLE, embedded().await, Progress::Quiet)
        .await
        .unwrap();
    println!("{}", report.table());
    let given = 0.05;
    assert!(
        (report.network.loss_ratio - given).abs() < 0.02,
        "the network dropped {:.4} of datagrams, 0.05 was asked",
        report.network.loss_ratio
    );
    // Audio is not retransmitted: frame loss shows through, about as often
    // as a frame crosses two lossy links (publisher's and subscriber's).
    assert!(
        report.loss_ratio > 0.03 && report.loss_ratio < 0.2,
        "frame loss {:.4}",
        report.loss_ratio
    );
    assert!(
        report.latency_ms.p50 >= 20.0,
        "two 10 ms links: {:?}",
        report.latency_ms
    );
    assert!(
        report.latency_ms.p99 < 200.0,
        "no frame waits for a late handshake: {:?}",
        report.latency_ms
    );
    assert!(report.jitter_ms > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_losses_are_nacked_and_recovered() {
    let _serial = one_at_a_time().await;
    // Long enough that a join whose handshake packets were lost (DTLS
    // retries take seconds) still leaves time for video.
    let scenario = Scenario {
        rooms: 1,
        participants: 2,
        loss: 3.0,
        duration_s: 10.0,
        video_kbps: 600,
        ..small()
    };
    let report = run(scenario, WHOLE, embedded().await, Progress::Quiet)
        .await
        .unwrap();
    println!("{}", report.table());
    assert!(report.network.loss_ratio > 0.01);
    assert!(report.sfu.nacks > 0.0, "the SFU got NACKs");
    assert!(report.nack_recoveries > 0, "retransmissions filled gaps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_reported_as_decrypt_failures() {
    let _serial = one_at_a_time().await;
    let scenario = Scenario {
        audio_only: true,
        wrong_key: 1,
        ..small()
    };
    let mut report = run(scenario, WHOLE, embedded().await, Progress::Quiet)
        .await
        .unwrap();
    report.judge(None, None);
    println!("{}", report.table());
    assert!(
        report
            .verdict
            .failures
            .iter()
            .any(|f| f.contains("failed to decrypt")),
        "decrypt failures fail the run: {:?}",
        report.verdict
    );
    // Per room: two with the key hear each other; the third hears noise and
    // makes noise. Its frames fail at two receivers, and it fails on two.
    assert!(
        report.decrypt_failures > 2 * 2 * 2 * 50,
        "{}",
        report.decrypt_failures
    );
    assert!(report.frames_decrypted > 2 * 2 * 50);
    assert_eq!(report.loss_ratio, 0.0, "failures are not hidden as loss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_one_scenario_merge_into_one_report() {
    let _serial = one_at_a_time().await;
    let scenario = Scenario {
        audio_only: true,
        rooms: 2,
        participants: 4,
        duration_s: 3.0,
        ..Scenario::default()
    };
    let target = embedded().await;
    let shard = |i| Shard { index: i, count: 2 };
    let (a, b) = tokio::join!(
        run(scenario.clone(), shard(0), target.clone(), Progress::Quiet),
        run(scenario.clone(), shard(1), target.clone(), Progress::Quiet),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.participants, b.participants), (4, 4));
    // Through JSON files and the CLI, as shards on several machines would.
    let dir = std::env::temp_dir().join(format!("veil-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pa, pb, merged_path) = (dir.join("a.json"), dir.join("b.json"), dir.join("m.json"));
    std::fs::write(&pa, serde_json::to_string(&a).unwrap()).unwrap();
    // Shard b as a Kubernetes Job's log keeps it (`--report -`): log
    // lines, then the report as the last line.
    let log = format!(
        "INFO joined 4 participants\n{}\n",
        serde_json::to_string(&b).unwrap()
    );
    std::fs::write(&pb, log).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["merge"])
        .arg(&pa)
        .arg(&pb)
        .args(["--report", "-"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    std::fs::write(&merged_path, stdout.lines().last().unwrap()).unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("participants"),
        "the table goes to stderr"
    );
    let merged: Report =
        serde_json::from_str(&std::fs::read_to_string(&merged_path).unwrap()).unwrap();
    assert_eq!(merged.participants, 8);
    assert_eq!(merged.shards.len(), 2);
    assert_eq!(
        merged.frames_decrypted,
        a.frames_decrypted + b.frames_decrypted
    );
    assert_eq!(
        merged.histograms.latency_us.count(),
        a.histograms.latency_us.count() + b.histograms.latency_us.count()
    );
    let (lo, hi) = (
        a.latency_ms.p50.min(b.latency_ms.p50),
        a.latency_ms.p50.max(b.latency_ms.p50),
    );
    assert!(merged.latency_ms.p50 >= lo * 0.97 && merged.latency_ms.p50 <= hi * 1.03);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cli_fails_a_run_that_misses_its_threshold() {
    let dir = std::env::temp_dir().join(format!("veil-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (report, plot) = (dir.join("r.json"), dir.join("r.svg"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "run",
            "--embedded",
            "--quiet",
            "--rooms",
            "1",
            "--participants",
            "2",
        ])
        .args(["--audio-only", "--duration", "2s", "--max-p99-ms", "0.001"])
        .arg("--report")
        .arg(&report)
        .arg("--plot")
        .arg(&plot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED: p99 latency"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["verdict"]["passed"], false);
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["run", "--embedded", "--participants", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at least 1"));
    let _ = std::fs::remove_dir_all(&dir);
}
