//! Sealing-key rotation: several keys with ids, new seals under the newest, the reseal,
//! and the start-up check that every stored value's key is configured.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_proto::integration::v1 as pb;
use integration_control::domain::SnapshotContents;
use integration_control::domain::secrets::{Sealed, Sealer};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::Backend;
use crate::helpers::*;

const KEY_B: &str = "k2 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";

async fn query(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.expect(sql)
}

/// `(id, key id)` of every integration, by id.
async fn integration_keys(db: &DatabaseConnection) -> Vec<(String, Option<String>)> {
    let rows = query(db, "SELECT env || '/' || id, sealing_key_id FROM integrations ORDER BY env, id").await;
    rows.iter().map(|r| (r.try_get_by_index(0).expect("id"), r.try_get_by_index(1).expect("key id"))).collect()
}

/// Every stored credential, opened with `sealer`: `(id, plaintext)`.
async fn opened_credentials(db: &DatabaseConnection, sealer: &Sealer) -> Vec<(String, String)> {
    let rows = query(db, "SELECT id, sealed_key, sealing_key_id FROM integrations WHERE sealed_key IS NOT NULL ORDER BY env, id").await;
    rows.iter()
        .map(|r| {
            let sealed = Sealed { bytes: r.try_get_by_index(1).expect("sealed"), key_id: r.try_get_by_index(2).expect("key id") };
            (r.try_get_by_index(0).expect("id"), String::from_utf8(sealer.open(&sealed).expect("opens")).expect("utf-8"))
        })
        .collect()
}

/// Every credential inside every snapshot, opened with `sealer`: `(snapshot, plaintext)`.
async fn opened_snapshot_credentials(db: &DatabaseConnection, sealer: &Sealer) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in query(db, "SELECT id, contents, sealing_key_id FROM snapshots ORDER BY env, id").await {
        let id: String = r.try_get_by_index(0).expect("id");
        let contents: SnapshotContents = serde_json::from_str(&r.try_get_by_index::<String>(1).expect("contents")).expect("json");
        let key_id: Option<String> = r.try_get_by_index(2).expect("key id");
        for i in contents.integrations.iter().filter_map(|i| i.sealed.as_ref()) {
            let sealed = Sealed { bytes: B64.decode(i).expect("base64"), key_id: key_id.clone().expect("a key id beside sealed values") };
            out.push((id.clone(), String::from_utf8(sealer.open(&sealed).expect("opens")).expect("utf-8")));
        }
    }
    out
}

async fn reseal(app: &TestApp, validate_only: bool, request_id: &str) -> pb::ResealCredentialsResponse {
    app.admin
        .clone()
        .reseal_credentials(pb::ResealCredentialsRequest { validate_only, request_id: request_id.into() })
        .await
        .expect("reseal")
        .into_inner()
}

const WEBHOOK_SECRET: &str = "whsec-rotation-0123456789";

fn counts(r: &pb::ResealCredentialsResponse) -> Vec<(String, i64)> {
    r.resealed.iter().map(|c| (c.kind.clone(), c.count)).collect()
}

fn in_use(r: &pb::ResealCredentialsResponse) -> Vec<(String, String, i64)> {
    r.keys_in_use.iter().map(|u| (u.sealing_key_id.clone(), u.kind.clone(), u.count)).collect()
}

fn kinds(n: [i64; 4]) -> Vec<(String, i64)> {
    ["integration_credentials", "snapshots", "fingerprint_keys", "webhook_secrets"].iter().zip(n).map(|(k, n)| (k.to_string(), n)).collect()
}

async fn snapshot(app: &TestApp, id: &str) -> pb::Snapshot {
    app.admin
        .clone()
        .create_snapshot(pb::CreateSnapshotRequest { parent: "environments/prod".into(), snapshot_id: id.into(), ..Default::default() })
        .await
        .expect("snapshot")
        .into_inner()
}

pub async fn rotate_reseal_and_remove_a_key(b: Backend) {
    // Arrange: values sealed under the key file `ferry up` writes (one bare line: `default`).
    let Some(mut app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    env(&app, "dev", false).await;
    let legacy_line = std::fs::read_to_string(app.dir.join("sealing.key")).expect("key file");
    let rally = integration(&app, "prod", "rally", "rally-key-1", true).await;
    let jira = integration(&app, "prod", "jira", "jira-key-2", true).await;
    integration(&app, "prod", "nokey", "", false).await;
    snapshot(&app, "before").await;
    let receiver = ferry_testkit::receiver::Receiver::start().await;
    let hook = pb::WebhookSubscription { url: receiver.url(), secret: WEBHOOK_SECRET.into(), ..Default::default() };
    let hook = pb::CreateWebhookSubscriptionRequest {
        webhook_subscription_id: "ops".into(),
        webhook_subscription: Some(hook),
        request_id: String::new(),
    };
    app.admin.clone().create_webhook_subscription(hook).await.expect("subscribe");
    let db = Database::connect(&app.database_url).await.expect("connect");
    assert_eq!(
        integration_keys(&db).await,
        [("prod/jira".into(), Some("default".into())), ("prod/nokey".into(), None), ("prod/rally".into(), Some("default".into()))]
    );

    // Act: restart with the old key and a newer one.
    let both = format!("{}\n{KEY_B}\n", legacy_line.trim());
    app.restart_control(&both).await.expect("restart with both keys");

    // Assert: old values still open, fingerprints unchanged, new seals use the newest key.
    assert_eq!(get_integration(&app, &rally.name).await.credential_fingerprint, rally.credential_fingerprint);
    let github = integration(&app, "dev", "github", "rally-key-1", true).await;
    assert_eq!(github.credential_fingerprint, rally.credential_fingerprint, "the same key has the same fingerprint across a rotation");
    assert!(integration_keys(&db).await.contains(&("dev/github".into(), Some("k2".into()))));
    let old_and_new = opened_credentials(&db, &Sealer::parse(&both).expect("both")).await;
    assert_eq!(old_and_new.len(), 3, "old values open beside new ones");
    snapshot(&app, "during").await;
    let snapshot_keys = query(&db, "SELECT id, sealing_key_id FROM snapshots ORDER BY id").await;
    let snapshot_keys: Vec<(String, String)> =
        snapshot_keys.iter().map(|r| (r.try_get_by_index(0).expect("id"), r.try_get_by_index(1).expect("key id"))).collect();
    assert_eq!(
        snapshot_keys,
        [("before".into(), "default".into()), ("during".into(), "k2".into())],
        "a new snapshot seals under the newest"
    );
    assert_eq!(opened_snapshot_credentials(&db, &Sealer::parse(&both).expect("both")).await.len(), 4);

    // Only the newest key while values are still under the old one: refused, naming it.
    let refused = app.restart_control(KEY_B).await.expect_err("a missing key refuses the start");
    let text = refused.to_string();
    assert!(matches!(refused, ferry_kit::Error::Config(_)), "{text}");
    assert!(text.contains("\"default\"") && text.contains("2 integration_credentials") && text.contains("1 snapshots"), "{text}");
    assert!(text.contains("1 fingerprint_keys") && text.contains("1 webhook_secrets"), "{text}");
    app.restart_control(&both).await.expect("restart with both keys again");

    // The dry run reports, changes nothing; scoped or non-admin callers may not reseal.
    let dry = reseal(&app, true, "").await;
    assert_eq!((dry.sealing_key_id.as_str(), counts(&dry)), ("k2", kinds([2, 1, 1, 1])));
    assert!(in_use(&dry).contains(&("default".into(), "integration_credentials".into(), 2)));
    for c in [app.dev_admin.clone(), app.dev_operator.clone()] {
        let e = c.clone().reseal_credentials(pb::ResealCredentialsRequest::default()).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
    }

    // The reseal moves everything to the newest key; again it reseals nothing.
    let done = reseal(&app, false, "reseal-1").await;
    assert_eq!(counts(&done), kinds([2, 1, 1, 1]));
    assert!(in_use(&done).iter().all(|(k, _, _)| k == "k2"), "{:?}", in_use(&done));
    assert_eq!(reseal(&app, false, "reseal-1").await, done, "a retry replays the reply");
    let e = app.admin.clone().reseal_credentials(pb::ResealCredentialsRequest { validate_only: true, request_id: "reseal-1".into() }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::InvalidArgument, "the same request id with another request");
    assert_eq!(counts(&reseal(&app, false, "").await), kinds([0, 0, 0, 0]));

    // Everything opens with the newest key alone, to the same plaintexts.
    let only_b = Sealer::parse(KEY_B).expect("b");
    let mut creds = opened_credentials(&db, &only_b).await;
    creds.sort();
    assert_eq!(
        creds,
        [("github".into(), "rally-key-1".into()), ("jira".into(), "jira-key-2".into()), ("rally".into(), "rally-key-1".into())]
    );
    let mut in_snapshots = opened_snapshot_credentials(&db, &only_b).await;
    in_snapshots.sort();
    assert_eq!(in_snapshots.len(), 4);
    assert_eq!(in_snapshots.iter().filter(|(_, k)| k == "rally-key-1").count(), 2);

    // The old key removed: the service starts, fingerprints and snapshots hold.
    app.restart_control(KEY_B).await.expect("only the newest key once nothing uses the old one");
    assert_eq!(get_integration(&app, &jira.name).await.credential_fingerprint, jira.credential_fingerprint);
    assert_eq!(integration(&app, "dev", "jira", "jira-key-2", true).await.credential_fingerprint, jira.credential_fingerprint);
    app.admin
        .clone()
        .restore_snapshot(pb::RestoreSnapshotRequest {
            name: "environments/prod/snapshots/before".into(),
            environment: "environments/prod".into(),
            resources: vec![],
            request_id: String::new(),
        })
        .await
        .expect("a resealed snapshot restores (its checksum was renewed)");
    assert_eq!(opened_credentials(&db, &only_b).await.len(), 4);
    // The resealed webhook secret still signs: an event arrives with a valid signature.
    let suspend = pb::SuspendCredentialsRequest { name: jira.name.clone(), request_id: String::new() };
    app.admin.clone().suspend_credentials(suspend).await.expect("suspend");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let signed = loop {
        if let Some(r) = receiver.received().into_iter().find(|r| r.json()["type"] == "credentials.suspended") {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "no event after the reseal");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let verified =
        integration_control::domain::webhooks::verify(WEBHOOK_SECRET.as_bytes(), signed.header("ferry-signature"), &signed.body, now, 300);
    assert_eq!(verified, Ok(()));
    db.close().await.ok();
}
