//! Running `sfu-throughput` from a test and reading its JSON line.

use std::process::Command;

/// Runs the macro benchmark with `args` (plus `--json`) and returns its
/// result object, failing the test with its output if it did not succeed.
pub fn sfu_throughput(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_sfu-throughput"))
        .args(args)
        .arg("--json")
        .output()
        .expect("sfu-throughput runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().expect("one JSON line");
    serde_json::from_str(line).expect("JSON")
}

/// A number field of the result, failing the test when it is missing.
pub fn number(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}
