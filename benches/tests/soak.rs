//! A CI-sized soak: steady media with churn (a participant leaves and a new
//! one joins every second) against the SFU in its own process. Memory and
//! file descriptors stay flat while people come and go, and nothing is left
//! behind once everyone has gone. The long version is in `BENCHMARKS.md`.

mod common;

#[test]
fn churn_leaves_memory_descriptors_and_sessions_flat() {
    let v = common::sfu_throughput(&[
        "--publishers",
        "2",
        "--fanout",
        "3",
        "--seconds",
        "20",
        // Resend buffers and stats windows fill in the first seconds.
        "--warmup",
        "4",
        "--churn",
        "1",
    ]);
    let f = |k: &str| common::number(&v, k);

    // People really came and went, and every join worked.
    assert!(f("churned") >= 10.0, "{v}");
    assert_eq!(f("join_failures"), 0.0, "{v}");
    assert_eq!(f("decrypt_failures"), 0.0, "{v}");
    assert!(f("packets_out_per_s") > 100.0, "{v}");

    // Flat while churning: the same number of people holds the same
    // number of sockets and about the same memory.
    let (fds_start, fds_end) = (f("sfu_fds_window_start"), f("sfu_fds_end"));
    assert!(fds_end <= fds_start + 4.0, "descriptors grew: {v}");
    let (rss_start, rss_end) = (
        f("sfu_resident_bytes_window_start"),
        f("sfu_resident_bytes"),
    );
    assert!(
        rss_end <= rss_start * 1.25 + 4.0 * 1048576.0,
        "memory grew by {:.1} MiB over the window: {v}",
        (rss_end - rss_start) / 1048576.0
    );

    // Nothing left behind: no session, and the sockets are closed again.
    // What may stay open: signalling's idle control connections (at most 4
    // pooled, `RemoteSfu`) and our metrics scrape. A leak of one socket per
    // participant would show 8 more.
    assert_eq!(f("sfu_participants_after_leave"), 0.0, "{v}");
    assert!(
        f("sfu_fds_after_leave") <= f("sfu_fds_idle") + 6.0,
        "descriptors leaked: {v}"
    );
}
