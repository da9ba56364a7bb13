//! The audit log through `ferry up` and the CLI: mutations are recorded and reads are not,
//! unless `--audit-reads`; `ferry audit list` prints a table or Kubernetes-style JSON,
//! `ferry audit export` JSON Lines, and `ferry audit verify` passes on a fresh suite.

use ferry_cli::up;

use crate::helpers::{TempDir, TestSuite, eventually, health_status, options, spawn_suite};

fn verbs(events: &serde_json::Value) -> Vec<String> {
    events.as_array().expect("an array").iter().map(|e| e["verb"].as_str().expect("verb").to_owned()).collect()
}

#[tokio::test]
async fn mutations_are_listed_and_exported_and_reads_only_when_asked() {
    // Arrange
    let app = spawn_suite().await;
    app.cli_json(&["env", "create", "dev", "--tier", "non-production"]).await;
    app.cli_json(&["group", "create", "dev", "core"]).await;
    app.cli_json(&["env", "list"]).await;
    let refused = app.cli(&["group", "create", "nowhere", "core"]).await;
    assert!(refused.is_err(), "a group in a missing environment");

    // Act
    let listed = app.cli_json(&["audit", "list", "--service", "registry"]).await;
    let table = app.cli(&["audit", "list", "--method", "CreateGroup"]).await.expect("table");
    let export = app.cli(&["audit", "export", "--outcome", "NOT_FOUND"]).await.expect("export");
    let verify = app.cli(&["audit", "verify"]).await.expect("verify");

    // Assert
    assert_eq!(verbs(&listed), ["CreateEnvironment", "CreateGroup", "CreateGroup"], "mutations only, failed ones too");
    let created = &listed[1];
    assert_eq!(created["user"]["username"], up::LOCAL_ADMIN);
    assert_eq!(created["user"]["extra"]["credential"][0], "static-token");
    assert_eq!(created["objectRef"]["name"], "environments/dev");
    assert_eq!(created["responseStatus"]["status"], "OK");
    assert_eq!(created["auditID"], "group-registry/2");
    assert_eq!(listed[2]["responseStatus"], serde_json::json!({ "code": 5, "status": "NOT_FOUND" }));
    assert!(table.lines().next().is_some_and(|h| h.starts_with("TIME") && h.contains("OUTCOME")), "{table}");
    assert_eq!(table.lines().filter(|l| l.contains("CreateGroup") && l.contains(up::LOCAL_ADMIN)).count(), 2, "{table}");
    let lines: Vec<serde_json::Value> = export.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 1, "{export}");
    assert_eq!((lines[0]["kind"].as_str(), lines[0]["verb"].as_str()), (Some("Event"), Some("CreateGroup")));
    assert_eq!(verify.matches("chain intact").count(), 4, "{verify}");
    app.stop().await;

    // With --audit-reads, reads are recorded too.
    let dir = TempDir::new();
    let mut opts = options(dir.path());
    opts.common.audit_reads = true;
    let suite = up::start(opts).await.expect("start the suite");
    let app = TestSuite { suite, dir };
    let url = app.suite.endpoint(up::REGISTRY);
    eventually("registry health", || async { health_status(url.clone(), up::REGISTRY).await.map(|_| ()) }).await;
    app.cli_json(&["env", "list"]).await;
    let listed = app.cli_json(&["audit", "list", "--service", "registry"]).await;
    assert_eq!(verbs(&listed), ["ListEnvironments"]);
    app.stop().await;
}
