//! `ferry-bench fuzz` runs end to end on SQLite for a few hundred calls and ends with one
//! parseable JSON line whose figures add up; it exits non-zero exactly when it saw a bad
//! call or a service stopped SERVING. (Whether the services have bad calls is the `fuzz`
//! test's business; this checks the bench reports them.)

use std::process::Command;

#[test]
fn fuzz_runs_briefly_and_prints_a_json_last_line_that_adds_up() {
    // Arrange / Act
    let out = Command::new(env!("CARGO_BIN_EXE_ferry-bench"))
        .args(["fuzz", "--calls", "300", "--concurrency", "4", "--seed", "7"])
        .env("RUST_LOG", "off")
        .output()
        .expect("run ferry-bench"); // ok: test
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    // Assert
    let last = stdout.lines().last().unwrap_or_else(|| panic!("no output; stderr:\n{stderr}"));
    let v: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}\nstderr:\n{stderr}"));
    assert_eq!(v["calls"], 300, "{last}");
    assert_eq!(v["seed"], 7, "{last}");
    let by_code: u64 = v["codes"].as_object().expect("codes").values().map(|n| n.as_u64().expect("a count")).sum(); // ok: test
    assert_eq!(by_code, 300, "every call has a code: {last}");
    let clean = v["bad"] == 0 && v["malformed_replies"] == 0 && v["harness_errors"] == 0 && v["serving"] == true;
    assert_eq!(out.status.success(), clean, "exit {:?} for {last}\nstderr:\n{stderr}", out.status);
}
