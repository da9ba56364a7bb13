//! The `ferry` command line end to end, in-process through `ferry_cli::run`, against the
//! suite: output parsed from `-o json`, errors read from the returned status.

use std::fmt::Write as _;

use serde_json::Value;
use tonic::Code;

use crate::helpers::{TestSuite, spawn_suite};

async fn env_and_group(app: &TestSuite, env: &str, groups: &[&str]) {
    app.cli_json(&["env", "create", env, "--tier", "non-production"]).await;
    for g in groups {
        app.cli_json(&["group", "create", env, g]).await;
    }
}

fn keys(list: &Value) -> Vec<&str> {
    list.as_array().expect("a JSON array").iter().map(|e| e["key"].as_str().expect("key")).collect()
}

#[tokio::test]
async fn cli_creates_and_lists_entities() {
    // Arrange
    let app = spawn_suite().await;
    let env = app.cli_json(&["env", "create", "dev", "--tier", "non-production", "--display-name", "Dev"]).await;
    assert_eq!((env["name"].as_str(), env["tier"].as_str()), (Some("environments/dev"), Some("NON_PRODUCTION")));
    let group = app.cli_json(&["group", "create", "dev", "core"]).await;
    assert_eq!(group["name"], "environments/dev/groups/core");

    // Act
    let lookup = app
        .cli_json(&["entity", "create", "dev", "core", "--kind", "lookup", "--key", "countries", "--payload", r#"{"codes":["NL"]}"#])
        .await;
    app.cli_json(&["entity", "create", "dev", "core", "--kind", "TABLE", "--key", "orders", "--ref", "lookup:countries"]).await;
    let list = app.cli_json(&["entity", "list", "dev", "core"]).await;
    let tables = app.cli_json(&["entity", "list", "dev", "core", "--kind", "table"]).await;
    let table_text = app.cli(&["entity", "list", "dev", "core"]).await.expect("table output");
    let by_key = app.cli_json(&["entity", "get", "dev", "core", "lookup:countries"]).await;
    let by_id = app.cli_json(&["entity", "get", "dev", lookup["name"].as_str().expect("name")]).await;
    let no_key = app.cli(&["entity", "get", "dev", "core", "table:countries"]).await.expect_err("no table under that key");

    // Assert
    assert_eq!(lookup["sharing"], "SHARED", "a lookup is shared by default");
    assert_eq!(lookup["payload"]["codes"][0], "NL");
    assert_eq!(keys(&list), ["countries", "orders"], "ordered by (kind, key)");
    let orders = &list[1];
    assert_eq!((orders["kind"].as_str(), orders["sharing"].as_str()), (Some("TABLE"), Some("DUPLICATED")));
    assert_eq!(orders["references"][0]["key"], "countries");
    assert_eq!(orders["groups"][0], "environments/dev/groups/core");
    assert_eq!(keys(&tables), ["orders"]);
    assert_eq!(by_key["name"], lookup["name"], "entity get ENV GROUP KIND:KEY finds it by its key field");
    assert_eq!(by_id["name"], lookup["name"]);
    assert_eq!(ferry_cli::status_of(&no_key).map(tonic::Status::code), Some(Code::NotFound));
    let mut lines = table_text.lines();
    assert!(lines.next().is_some_and(|h| h.starts_with("ID") && h.contains("KIND")), "{table_text}");
    assert_eq!(lines.count(), 2, "{table_text}");
    app.stop().await;
}

#[tokio::test]
async fn cli_reports_grpc_codes_and_details() {
    // Arrange
    let app = spawn_suite().await;
    env_and_group(&app, "dev", &["core", "extra"]).await;
    let shared = app.cli_json(&["entity", "create", "dev", "core", "--kind", "role", "--key", "reader"]).await;
    let id = shared["name"].as_str().expect("name").rsplit('/').next().expect("id").to_owned();
    app.cli_json(&["entity", "link", "dev", &id, "extra"]).await;

    // Act
    let missing = app.cli(&["group", "get", "dev", "nope"]).await.expect_err("no such group");
    let invalid = app.cli(&["entity", "create", "dev", "core", "--kind", "map", "--key", " padded "]).await.expect_err("bad key");
    let unconfirmed = app.cli(&["entity", "delete", "dev", &id]).await.expect_err("shared delete needs confirmation");
    let confirmed = app.cli_json(&["entity", "delete", "dev", &id, "--confirm-all-groups"]).await;
    let bad_token = ferry_cli::run([
        "env",
        "list",
        "--registry",
        &app.suite.endpoint(ferry_cli::up::REGISTRY),
        "--token",
        "wrong-token-0123456789abcdef",
    ])
    .await
    .expect_err("unknown token");

    // Assert
    let code = |e: &anyhow::Error| ferry_cli::status_of(e).map(tonic::Status::code);
    assert_eq!(code(&missing), Some(Code::NotFound));
    assert_eq!(code(&invalid), Some(Code::InvalidArgument));
    assert!(ferry_cli::render_error(&invalid).contains("  field entity.key: "), "{}", ferry_cli::render_error(&invalid));
    assert_eq!(code(&unconfirmed), Some(Code::FailedPrecondition));
    let report = ferry_cli::render_error(&unconfirmed);
    for g in ["environments/dev/groups/core", "environments/dev/groups/extra"] {
        assert!(report.contains(&format!("SHARED_ENTITY_LINKED on {g}")), "{report}");
    }
    assert_eq!(confirmed["affected_groups"].as_array().map(Vec::len), Some(2));
    assert_eq!(code(&bad_token), Some(Code::Unauthenticated));
    assert!(ferry_cli::render_error(&bad_token).starts_with("error: UNAUTHENTICATED: "));
    app.stop().await;
}

fn jsonl(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let _ = writeln!(text, r#"{{"kind":"table","key":"t-{i:05}","payload":{{"n":{i}}},"references":["lookup:l-1"]}}"#);
    }
    text.push_str("\n{\"kind\":\"lookup\",\"key\":\"l-1\",\"sharing\":\"shared\"}\n");
    text
}

#[tokio::test]
async fn cli_import_pages_and_export_round_trip() {
    // Arrange: 2500 entities, so the import streams three batches and lists page.
    let app = spawn_suite().await;
    env_and_group(&app, "dev", &["a", "b"]).await;
    let file = app.dir.path().join("a.jsonl");
    std::fs::write(&file, jsonl(2500)).expect("write jsonl");
    let path = file.to_str().expect("utf-8 path");

    // Act
    let imported = app.cli_json(&["entity", "import", "dev", "a", path]).await;
    let all = app.cli_json(&["entity", "list", "dev", "a"]).await;
    let some = app.cli_json(&["entity", "list", "dev", "a", "--limit", "1200"]).await;
    let exported = app.cli(&["entity", "export", "dev", "a"]).await.expect("export");
    let copy = app.dir.path().join("b.jsonl");
    std::fs::write(&copy, &exported).expect("write export");
    app.cli_json(&["entity", "import", "dev", "b", copy.to_str().expect("utf-8 path")]).await;
    let exported_b = app.cli(&["entity", "export", "dev", "b"]).await.expect("export b");

    // Assert
    assert_eq!(imported["created"], 2501);
    assert_eq!(all.as_array().map(Vec::len), Some(2501));
    assert_eq!(some.as_array().map(Vec::len), Some(1200));
    assert_eq!(exported.lines().count(), 2501);
    let first: Value = serde_json::from_str(exported.lines().next().expect("a line")).expect("JSON line");
    assert_eq!((first["kind"].as_str(), first["key"].as_str()), (Some("LOOKUP"), Some("l-1")));
    assert_eq!(exported_b, exported, "export → import → export is stable");
    app.stop().await;
}

#[tokio::test]
async fn cli_import_with_a_bad_line_imports_nothing() {
    // Arrange: the bad line comes after two full batches were already streamed.
    let app = spawn_suite().await;
    env_and_group(&app, "dev", &["a"]).await;
    let mut text = jsonl(2500);
    text.push_str("{\"kind\":\"no-such-kind\",\"key\":\"x\"}\n");
    let file = app.dir.path().join("bad.jsonl");
    std::fs::write(&file, text).expect("write jsonl");

    // Act
    let err =
        app.cli(&["entity", "import", "dev", "a", file.to_str().expect("utf-8 path")]).await.expect_err("a bad line fails the import");
    let group = app.cli_json(&["group", "get", "dev", "a"]).await;

    // Assert
    let report = ferry_cli::render_error(&err);
    assert!(report.contains("line 2503") && report.contains("no-such-kind"), "{report}");
    assert_eq!(group["entity_count"], 0, "all or nothing");
    app.stop().await;
}

#[tokio::test]
async fn cli_projects_resolve_through_their_groups() {
    // Arrange
    let app = spawn_suite().await;
    env_and_group(&app, "dev", &["core"]).await;
    app.cli_json(&["entity", "create", "dev", "core", "--kind", "data-source", "--key", "crm"]).await;
    let project = app.cli_json(&["project", "create", "dev", "web", "--group", "core"]).await;

    // Act
    app.cli_json(&["project", "item", "add", "dev", "web", "home", "--value", "{}", "--ref", "DATA_SOURCE:crm", "--ref", "lookup:gone"])
        .await;
    let items = app.cli_json(&["project", "item", "list", "dev", "web"]).await;
    let all = app.cli_json(&["project", "resolve", "dev", "web"]).await;
    let missing = app.cli_json(&["project", "resolve", "dev", "web", "--missing-only"]).await;

    // Assert
    assert_eq!(project["groups"][0], "environments/dev/groups/core");
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!(all["resolutions"].as_array().map(Vec::len), Some(2));
    assert_eq!(missing["missing_count"], 1);
    let gone = &missing["resolutions"][0];
    assert_eq!((gone["reference"]["key"].as_str(), gone["entity"].as_str()), (Some("gone"), Some("")));
    app.stop().await;
}

#[tokio::test]
async fn cli_sync_jobs_are_external_unless_said_otherwise() {
    let app = spawn_suite().await;
    env_and_group(&app, "dev", &[]).await;
    let unsaid = app.cli_json(&["job", "create", "dev", "nightly", "--schedule", "0 2 * * *"]).await;
    let internal = app.cli_json(&["job", "create", "dev", "compact", "--schedule", "0 3 * * *", "--internal"]).await;
    let both = app.cli(&["job", "create", "dev", "x", "--schedule", "0 3 * * *", "--internal", "--integration-id", "rally"]).await;
    assert_eq!(unsaid["external"], true, "a job created without saying is external: a refresh pauses it");
    assert_eq!(internal["external"], false, "--internal opts out");
    assert!(both.is_err(), "--internal and --integration-id exclude each other");
    app.stop().await;
}

#[tokio::test]
async fn cli_refreshes_with_the_server_titles_and_schedules_refreshes() {
    // Arrange: production and a sandbox.
    let app = spawn_suite().await;
    app.cli_json(&["env", "create", "prod", "--tier", "production"]).await;
    app.cli_json(&["env", "create", "sandbox", "--tier", "non-production"]).await;
    app.cli_json(&["group", "create", "prod", "core"]).await;

    // Act: a refresh watched to its end; a schedule created, listed, paused, deleted.
    let run = app.cli_json(&["refresh", "start", "prod", "sandbox"]).await;
    let created = app
        .cli_json(&["refresh", "schedule", "create", "nightly", "prod", "sandbox", "--cron", "0 3 * * MON", "--tz", "Europe/Berlin"])
        .await;
    let listed = app.cli(&["refresh", "schedule", "list"]).await.expect("list");
    let paused = app.cli_json(&["refresh", "schedule", "pause", "nightly"]).await;
    let bad =
        app.cli(&["refresh", "schedule", "create", "weekly", "prod", "sandbox", "--cron", "every monday"]).await.expect_err("bad cron");
    app.cli_json(&["refresh", "schedule", "delete", "nightly"]).await;
    let gone = app.cli(&["refresh", "schedule", "get", "nightly"]).await.expect_err("deleted");
    let back = app.cli_json(&["refresh", "schedule", "undelete", "nightly"]).await;

    // Assert
    assert_eq!(run["state"], "SUCCEEDED", "{run}");
    let titles: Vec<&str> = run["steps"].as_array().expect("steps").iter().map(|s| s["title"].as_str().unwrap_or_default()).collect();
    assert_eq!(titles.len(), 9);
    assert_eq!(titles[2], "Pause external jobs", "the server's titles");
    assert_eq!((created["state"].as_str(), created["time_zone"].as_str()), (Some("active"), Some("Europe/Berlin")));
    assert!(created["next_run_time"].is_string(), "{created}");
    assert!(listed.lines().nth(1).is_some_and(|l| l.starts_with("nightly") && l.contains("0 3 * * MON")), "{listed}");
    assert_eq!((paused["state"].as_str(), paused["next_run_time"].is_null()), (Some("paused"), true), "{paused}");
    assert_eq!(ferry_cli::status_of(&bad).map(tonic::Status::code), Some(Code::InvalidArgument));
    assert_eq!(ferry_cli::status_of(&gone).map(tonic::Status::code), Some(Code::NotFound));
    assert_eq!(back["state"], "paused", "undeleted as it was");
    app.stop().await;
}

#[tokio::test]
async fn cli_rolls_a_refresh_back() {
    // Arrange: a sandbox with a group of its own, refreshed from production.
    let app = spawn_suite().await;
    app.cli_json(&["env", "create", "prod", "--tier", "production"]).await;
    app.cli_json(&["env", "create", "sandbox", "--tier", "non-production"]).await;
    app.cli_json(&["group", "create", "prod", "core"]).await;
    app.cli_json(&["group", "create", "sandbox", "own"]).await;
    let refresh = app.cli_json(&["refresh", "start", "prod", "sandbox"]).await;
    let name = refresh["name"].as_str().expect("run name").to_owned();

    // Act: the plan (nothing changes), then the rollback with --yes, watched to its end.
    let plan = app.cli_json(&["refresh", "rollback", &name]).await;
    let groups_after_plan = app.cli_json(&["group", "list", "sandbox"]).await;
    let run = app.cli_json(&["refresh", "rollback", &name, "--yes", "--plan-etag", plan["etag"].as_str().unwrap_or_default()]).await;
    let groups = app.cli_json(&["group", "list", "sandbox"]).await;
    let report = app.cli(&["rollback", "report", run["name"].as_str().unwrap_or_default()]).await.expect("report");
    let listed = app.cli(&["rollback", "list", "--refresh-run", &name]).await.expect("list");
    let again = app.cli(&["refresh", "rollback", &name]).await.expect_err("rolled back already");

    // Assert
    assert_eq!(refresh["state"], "SUCCEEDED", "{refresh}");
    assert_eq!(plan["put_back"]["groups"], 1, "{plan}");
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(6), "{plan}");
    assert_eq!(group_names(&groups_after_plan), ["environments/sandbox/groups/core"], "a plan changes nothing");
    assert_eq!(run["state"], "SUCCEEDED", "{run}");
    let titles: Vec<&str> = run["steps"].as_array().expect("steps").iter().map(|s| s["title"].as_str().unwrap_or_default()).collect();
    assert_eq!(titles.len(), 6, "{titles:?}");
    assert_eq!(group_names(&groups), ["environments/sandbox/groups/own"], "the sandbox's own group is back");
    assert!(report.starts_with(&format!("# Rollback of {name}")), "{report}");
    assert!(listed.contains(run["name"].as_str().unwrap_or("?").trim_start_matches("rollbackRuns/")), "{listed}");
    assert_eq!(ferry_cli::status_of(&again).map(tonic::Status::code), Some(Code::FailedPrecondition));
    app.stop().await;
}

fn group_names(list: &Value) -> Vec<&str> {
    list.as_array().map(|a| a.iter().filter_map(|g| g["name"].as_str()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn cli_keeps_and_restores_an_environments_content() {
    // Arrange
    let app = spawn_suite().await;
    env_and_group(&app, "sbx", &["core"]).await;
    app.cli_json(&["entity", "create", "sbx", "core", "--kind", "lookup", "--key", "countries"]).await;

    // Act
    let point = app.cli_json(&["restore-point", "create", "sbx", "before", "--description", "before the change"]).await;
    app.cli_json(&["entity", "create", "sbx", "core", "--kind", "table", "--key", "orders"]).await;
    let unconfirmed = app.cli(&["restore-point", "restore", "sbx", "before"]).await.expect_err("needs --yes");
    let restored = app.cli_json(&["restore-point", "restore", "sbx", "before", "--yes"]).await;
    let after = app.cli_json(&["entity", "list", "sbx", "core"]).await;
    let listed = app.cli(&["restore-point", "list", "sbx"]).await.expect("table output");
    app.cli_json(&["restore-point", "delete", "sbx", "before"]).await;
    let gone = app.cli(&["restore-point", "get", "sbx", "before"]).await.expect_err("deleted");

    // Assert
    assert_eq!(point["name"], "environments/sbx/restorePoints/before");
    assert_eq!((point["counts"]["groups"].as_i64(), point["counts"]["entities"].as_i64()), (Some(1), Some(1)));
    assert!(point["expire_time"].is_string(), "{point}");
    assert!(unconfirmed.to_string().contains("--yes"), "{unconfirmed}");
    assert_eq!(restored["replaced_entities"], 2);
    assert!(restored["restore_point"]["restore_time"].is_string(), "{restored}");
    assert_eq!(keys(&after), ["countries"], "the table made after the restore point is gone");
    assert!(listed.lines().nth(1).is_some_and(|l| l.starts_with("before")), "{listed}");
    assert_eq!(ferry_cli::status_of(&gone).map(tonic::Status::code), Some(Code::NotFound));
    app.stop().await;
}
