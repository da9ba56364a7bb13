//! `ferry-bench load` runs end to end (seed, fixed rate, both maximum-rate phases) at a low
//! rate for a second and ends with one parseable JSON line reporting no errors.

use std::process::Command;

#[test]
fn load_runs_briefly_and_prints_a_json_last_line_without_errors() {
    // Arrange / Act
    let out = Command::new(env!("CARGO_BIN_EXE_ferry-bench"))
        .args(["load", "--rate", "50", "--duration", "1s", "--entities", "200", "--concurrency", "8", "--connections", "2"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ferry-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);

    // Assert
    let last = stdout.lines().last().expect("some output");
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"));
    assert_eq!(v["rate_target"], 50);
    assert_eq!(v["errors"], 0, "{last}");
    assert_eq!(v["getentity_max_errors"], 0, "{last}");
    assert_eq!(v["echo_max_errors"], 0, "{last}");
    let calls: u64 = ["GetEntity", "ListEntities", "UpdateEntity", "CreateEntity"]
        .iter()
        .map(|op| v["ops"][op]["calls"].as_u64().unwrap_or_else(|| panic!("ops.{op}.calls missing: {last}")))
        .sum();
    assert_eq!(calls, 50, "one second at 50 calls/s: {last}");
    let achieved = v["rate_achieved"].as_f64().expect("rate_achieved");
    assert!(achieved > 25.0 && achieved <= 50.0, "achieved {achieved}: {last}");
    for key in ["p50_ms", "p99_ms", "p999_ms", "getentity_max_rps", "echo_max_rps", "ratio"] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} not a positive number: {last}");
    }
}
