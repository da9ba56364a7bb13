//! `ferry sync exec` with real child processes: the key reaches the command only under a
//! granted lease, the command's status comes back, and a refused renewal stops it.

use std::path::Path;
use std::time::{Duration, Instant};

use ferry_cli::up;

use crate::helpers::{TestSuite, eventually, spawn_suite};

const KEY: &str = "rally-key-42";

async fn arrange(app: &TestSuite) {
    let key_file = app.dir.path().join("rally.key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key file");
    let key_file = key_file.to_str().expect("utf-8 path");
    app.cli_json(&["env", "create", "sandbox", "--tier", "non-production"]).await;
    let rally = ["--system", "rally", "--base-url", "https://rally.example.com", "--active", "--api-key-file", key_file];
    app.cli_json(&[&["integration", "create", "sandbox", "rally"][..], &rally[..]].concat()).await;
    app.cli_json(&["mapping", "create", "sandbox", "rally", "main", "--active"]).await;
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn exists(path: &Path) -> Result<(), String> {
    if path.exists() { Ok(()) } else { Err(format!("{} not yet written", path.display())) }
}

/// `ferry sync exec sandbox/rally/main FLAGS -- sh -c SCRIPT` (the client flags before
/// the `--`: everything after it is the command's).
async fn exec(app: &TestSuite, flags: &[&str], script: &str) -> anyhow::Result<String> {
    let (integration, token) = (app.suite.endpoint(up::INTEGRATION), app.suite.admin_token.clone());
    let client = ["--integration", integration.as_str(), "--token", token.as_str()];
    let args = [&["sync", "exec", "sandbox/rally/main"][..], flags, &client[..], &["--", "sh", "-c", script][..]].concat();
    ferry_cli::run(args).await
}

#[tokio::test]
async fn sync_exec_hands_the_key_only_under_a_lease_and_stops_the_command_when_it_ends() {
    let app = spawn_suite().await;
    arrange(&app).await;
    let dir = app.dir.path().to_path_buf();

    // The key in FERRY_SYNC_API_KEY, the lease named; the command's own status comes back.
    let seen = dir.join("seen");
    let script = format!(r#"printf '%s %s' "$FERRY_SYNC_API_KEY" "$FERRY_SYNC_LEASE" > {}; exit 7"#, seen.display());
    let e = exec(&app, &[], &script).await.expect_err("the command exits 7");
    assert_eq!(ferry_cli::exit_code(&e), 7, "{}", ferry_cli::render_error(&e));
    let text = read(&seen);
    let (key, lease) = text.split_once(' ').expect("key and lease");
    assert_eq!(key, KEY);
    let leases = app.cli_json(&["sync", "leases", "sandbox", "--all"]).await;
    let ours = leases.as_array().expect("list").iter().find(|l| l["name"] == lease).expect("the lease is kept").clone();
    assert_eq!((ours["state"].as_str(), ours["holder"].as_str()), (Some("RELEASED"), Some(ferry_cli::up::LOCAL_ADMIN)), "{ours}");
    assert!(!leases.to_string().contains(KEY), "a list never shows the key");

    // --key-file: a 0600 file named in FERRY_SYNC_API_KEY_FILE, removed after; no key in the environment.
    let script = format!(
        r#"f="$FERRY_SYNC_API_KEY_FILE"; stat -c %a "$f" > {out}; cat "$f" >> {out}; echo >> {out}; echo "$f" >> {out}; test -z "$FERRY_SYNC_API_KEY""#,
        out = seen.display()
    );
    exec(&app, &["--key-file"], &script).await.expect("the command succeeds");
    let text = read(&seen);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["600", KEY], "{text}");
    assert!(!Path::new(lines[2]).exists(), "the key file is removed after: {}", lines[2]);

    // A renewal refused (the mapping deactivated): SIGTERM, which the command honours.
    let (started, terminated) = (dir.join("started"), dir.join("terminated"));
    let script = format!(
        "trap 'echo bye > {t}; exit 0' TERM; echo up > {s}; while :; do sleep 0.1; done",
        t = terminated.display(),
        s = started.display()
    );
    let t0 = Instant::now();
    let (stopped, ()) = tokio::join!(exec(&app, &["--ttl-secs", "5", "--grace-secs", "5"], &script), async {
        eventually("the command started", || exists(&started)).await;
        app.cli_json(&["mapping", "deactivate", "sandbox", "rally", "main"]).await;
    });
    let e = stopped.expect_err("stopped");
    assert_eq!(ferry_cli::exit_code(&e), 124, "{}", ferry_cli::render_error(&e));
    let why = ferry_cli::render_error(&e);
    assert!(why.contains("LEASE_REVOKED") && why.contains("was deactivated"), "{why}");
    assert_eq!(read(&terminated).trim(), "bye", "the command got SIGTERM");
    assert!(t0.elapsed() < Duration::from_secs(15), "stopped at the next renewal, not later: {:?}", t0.elapsed());

    // Never allowed: the mapping is inactive; the command never runs.
    let never = dir.join("never");
    let e = exec(&app, &[], &format!("echo ran > {}", never.display())).await.expect_err("denied");
    assert_eq!(ferry_cli::exit_code(&e), 3);
    assert!(ferry_cli::render_error(&e).contains("MAPPING_INACTIVE"), "{}", ferry_cli::render_error(&e));
    assert!(!never.exists(), "the command did not run");

    // A command that ignores SIGTERM is killed after the grace period.
    app.cli_json(&["mapping", "activate", "sandbox", "rally", "main"]).await;
    let pid_file = dir.join("pid");
    let script = format!("trap '' TERM; echo $$ > {}; while :; do sleep 0.1; done", pid_file.display());
    let (killed, ()) = tokio::join!(exec(&app, &["--ttl-secs", "5", "--grace-secs", "1"], &script), async {
        eventually("the command started", || exists(&pid_file)).await;
        app.cli_json(&["mapping", "deactivate", "sandbox", "rally", "main"]).await;
    });
    assert_eq!(ferry_cli::exit_code(&killed.expect_err("stopped")), 124);
    let pid = read(&pid_file).trim().to_owned();
    assert!(!pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists(), "process {pid} was killed");
    app.stop().await;
}
