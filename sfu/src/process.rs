//! CPU time and memory of this process (or some of its threads), read from
//! `/proc`, for the `/metrics` gauges and the load tester. `None` where
//! `/proc` is not there.
//!
//! CPU time comes from each thread's `schedstat` (nanoseconds on a CPU), so
//! no clock-tick guess and no `unsafe` is needed; threads that have exited
//! no longer count, which is fine for long-lived worker threads.
//!
//! ```
//! if let Some(cpu) = sfu::process::cpu_seconds() {
//!     assert!(cpu >= 0.0);
//! }
//! ```

use std::fs;

/// Nanoseconds on a CPU, the first field of a `schedstat` file.
fn schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

fn tasks_cpu_seconds(process: &str, keep: impl Fn(&str) -> bool) -> Option<f64> {
    let mut ns = 0u64;
    for task in fs::read_dir(format!("/proc/{process}/task"))
        .ok()?
        .flatten()
    {
        let path = task.path();
        let name = fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !keep(name.trim_end()) {
            continue;
        }
        if let Some(t) = fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| schedstat_ns(&s))
        {
            ns += t;
        }
    }
    Some(ns as f64 / 1e9)
}

/// CPU seconds the live threads of this process have used.
pub fn cpu_seconds() -> Option<f64> {
    tasks_cpu_seconds("self", |_| true)
}

/// CPU seconds the live threads of another process have used: a benchmark
/// measures the SFU process it started, from outside.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    tasks_cpu_seconds(&pid.to_string(), |_| true)
}

/// Publishes this process's CPU seconds and resident memory as the gauges
/// `veil_sfu_process_cpu_seconds` and `veil_sfu_process_resident_bytes`
/// every `period`, for dashboards and the load tester. Call inside a Tokio
/// runtime; the task runs until the runtime stops.
pub fn spawn_gauges(period: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Some(cpu) = cpu_seconds() {
                metrics::gauge!("veil_sfu_process_cpu_seconds").set(cpu);
            }
            if let Some(rss) = resident_bytes() {
                metrics::gauge!("veil_sfu_process_resident_bytes").set(rss as f64);
            }
            tokio::time::sleep(period).await;
        }
    })
}

/// CPU seconds used by this process's threads whose name starts with
/// `prefix` (the SFU names its threads `sfu-…`), so an SFU embedded in
/// another program can be measured alone.
pub fn threads_cpu_seconds(prefix: &str) -> Option<f64> {
    tasks_cpu_seconds("self", |name| name.starts_with(prefix))
}

/// Resident memory of this process in bytes (`VmRSS`).
pub fn resident_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// Open file descriptors of a process (sockets included): a soak test
/// checks they come back down once everyone has left.
pub fn open_fds_of(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Resident memory of another process in bytes.
pub fn resident_bytes_of(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedstat_and_status() {
        assert_eq!(schedstat_ns("123456789 5000 17\n"), Some(123_456_789));
        assert_eq!(schedstat_ns(""), None);
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t   2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn a_named_thread_is_measured_alone() {
        let worker = std::thread::Builder::new()
            .name("sfu-test-spin".into())
            .spawn(|| {
                let spin = std::time::Instant::now();
                while spin.elapsed().as_millis() < 100 {}
                threads_cpu_seconds("sfu-test-spin").unwrap()
            })
            .unwrap();
        let spun = worker.join().unwrap();
        assert!(spun >= 0.05, "the spinning thread used {spun} s");
        assert_eq!(threads_cpu_seconds("no-such-thread").unwrap(), 0.0);
        assert!(cpu_seconds().unwrap() > 0.0);
        assert!(resident_bytes().unwrap() > 1 << 20);
        // The same figures read from outside, as a benchmark reads its SFU.
        let me = std::process::id();
        assert!(cpu_seconds_of(me).unwrap() > 0.0);
        assert!(resident_bytes_of(me).unwrap() > 1 << 20);
        assert!(cpu_seconds_of(u32::MAX).is_none());
        let fds = open_fds_of(me).unwrap();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            open_fds_of(me).unwrap(),
            fds + 1,
            "a new socket is one more fd"
        );
        drop(socket);
    }
}
