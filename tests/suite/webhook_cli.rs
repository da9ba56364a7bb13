//! `ferry webhook` against the real services and a real receiver: the secret comes from a
//! file and is never printed; a change arrives signed; the delivery log shows it;
//! redelivery sends it again; disable and delete.

use ferry_testkit::receiver::Receiver;
use integration_control::domain::webhooks::verify;

use crate::helpers::{eventually, spawn_suite};

const SECRET: &str = "whsec-cli-test-5d0e77a1";

#[tokio::test]
async fn webhook_commands_subscribe_log_and_redeliver() {
    let app = spawn_suite().await;
    let receiver = Receiver::start().await;
    let secret_file = app.dir.path().join("hook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret file");
    let secret_file = secret_file.to_str().expect("utf-8 path");
    let url = receiver.url();

    let refused = app.cli(&["webhook", "create", &url, "--id", "ops"]).await.expect_err("no secret");
    assert!(ferry_cli::render_error(&refused).contains("--secret-file"), "{}", ferry_cli::render_error(&refused));
    let created =
        app.cli_json(&["webhook", "create", &url, "--id", "ops", "--event", "integration.deactivated", "--secret-file", secret_file]).await;
    assert_eq!((created["name"].as_str(), created["state"].as_str()), (Some("webhookSubscriptions/ops"), Some("ACTIVE")));
    assert_eq!(created["secretFingerprint"].as_str().map(str::len), Some(16));
    assert!(!created.to_string().contains(SECRET));
    let table = app.cli(&["webhook", "list"]).await.expect("list");
    assert!(table.contains("ops") && table.contains("integration.deactivated") && !table.contains(SECRET), "{table}");

    app.cli_json(&["env", "create", "sandbox", "--tier", "non-production"]).await;
    let rally = ["--system", "rally", "--base-url", "https://rally.example.com", "--active"];
    app.cli_json(&[&["integration", "create", "sandbox", "rally"][..], &rally[..]].concat()).await;
    app.cli_json(&["integration", "update", "sandbox", "rally", "--active", "false"]).await;
    let got =
        eventually("the event arrives", || async { receiver.received().into_iter().next().ok_or_else(|| "nothing yet".to_owned()) }).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert_eq!(verify(SECRET.as_bytes(), got.header("ferry-signature"), &got.body, now, 300), Ok(()));
    assert_eq!(got.json()["type"], "integration.deactivated");

    let log = eventually("the delivery is logged", || async {
        let log = app.cli_json(&["webhook", "deliveries", "ops"]).await;
        if log[0]["state"] == "DELIVERED" { Ok(log) } else { Err(log.to_string()) }
    })
    .await;
    assert_eq!(log[0]["attempts"][0]["statusCode"], 200, "{log}");
    let delivery = log[0]["name"].as_str().and_then(|n| n.rsplit('/').next()).expect("delivery id").to_owned();
    app.cli_json(&["webhook", "redeliver", "ops", &delivery]).await;
    eventually("redelivered", || async {
        let n = receiver.received().len();
        if n >= 2 { Ok(()) } else { Err(format!("{n} received")) }
    })
    .await;

    let disabled = app.cli_json(&["webhook", "update", "ops", "--disable"]).await;
    assert_eq!(disabled["state"], "DISABLED");
    app.cli_json(&["webhook", "delete", "ops"]).await;
    assert!(app.cli(&["webhook", "get", "ops"]).await.is_err());
    app.stop().await;
}
