//! No reply, log line or database column ever holds a plaintext key.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ferry_proto::integration::v1 as pb;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

use crate::Backend;
use crate::helpers::*;

const KEY_ONE: &str = "PLAINTEXT-one-7f3a9c1e5b";
const KEY_TWO: &str = "PLAINTEXT-two-d41d8cd98f";
/// A webhook subscription's signing secret.
const KEY_HOOK: &str = "PLAINTEXT-hook-0b5e2c77aa";

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn holds_key(bytes: &[u8]) -> bool {
    [KEY_ONE, KEY_TWO, KEY_HOOK].iter().any(|k| bytes.windows(k.len()).any(|w| w == k.as_bytes()))
}

/// Every text and byte value of every table of integration-control's database.
pub async fn every_stored_value(url: &str) -> Vec<(String, Vec<u8>)> {
    let db = Database::connect(url).await.expect("connect");
    let backend = db.get_database_backend();
    let columns: Vec<(String, String, String)> = match backend {
        DbBackend::Postgres => db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = 'public'",
            ))
            .await
            .expect("columns")
            .iter()
            .map(|r| (r.try_get_by_index(0).expect("t"), r.try_get_by_index(1).expect("c"), r.try_get_by_index(2).expect("type")))
            .collect(),
        _ => {
            let tables: Vec<String> = db
                .query_all_raw(Statement::from_string(backend, "SELECT name FROM sqlite_master WHERE type = 'table'"))
                .await
                .expect("tables")
                .iter()
                .map(|r| r.try_get_by_index(0).expect("name"))
                .collect();
            let mut out = Vec::new();
            for t in tables {
                for r in db.query_all_raw(Statement::from_string(backend, format!("PRAGMA table_info({t})"))).await.expect("pragma") {
                    out.push((t.clone(), r.try_get_by_index(1).expect("column"), r.try_get_by_index(2).expect("type")));
                }
            }
            out
        }
    };
    let mut values = Vec::new();
    let mut tables_seen = std::collections::BTreeSet::new();
    for (table, column, ty) in columns {
        let ty = ty.to_lowercase();
        let blob = ty.contains("blob") || ty.contains("bytea");
        let text = ty.contains("text") || ty.contains("char");
        if !blob && !text {
            continue;
        }
        tables_seen.insert(table.clone());
        let sql = format!("SELECT {column} FROM {table}");
        for r in db.query_all_raw(Statement::from_string(backend, sql)).await.expect("read column") {
            let v: Option<Vec<u8>> = if blob {
                r.try_get_by_index(0).expect("bytes")
            } else {
                r.try_get_by_index::<Option<String>>(0).expect("text").map(String::into_bytes)
            };
            if let Some(v) = v {
                values.push((format!("{table}.{column}"), v));
            }
        }
    }
    for t in ["integrations", "mappings", "sync_jobs", "snapshots", "fences", "request_log"] {
        assert!(tables_seen.contains(t), "table {t} was not read");
    }
    db.close().await.ok();
    values
}

pub async fn plaintext_key_never_in_replies_logs_or_database(b: Backend) {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    env(&app, "dev", false).await;
    let mut c = app.admin.clone();
    let mut replies: Vec<String> = Vec::new();

    let create = pb::CreateIntegrationRequest {
        parent: "environments/prod".into(),
        integration_id: "rally".into(),
        integration: Some(new_integration(true)),
        api_key: KEY_ONE.into(),
        request_id: "leak-create".into(),
    };
    let rally = c.create_integration(create.clone()).await.expect("create").into_inner();
    replies.push(format!("{rally:?}"));
    replies.push(format!("{:?}", c.create_integration(create.clone()).await.expect("replay").into_inner()));
    let rotate = pb::RotateCredentialsRequest { name: rally.name.clone(), api_key: KEY_TWO.into(), request_id: "leak-rotate".into() };
    replies.push(format!("{:?}", c.rotate_credentials(rotate).await.expect("rotate").into_inner()));
    mapping(&app, &rally.name, "main", "", true).await;
    replies.push(format!(
        "{:?}",
        c.suspend_credentials(pb::SuspendCredentialsRequest { name: rally.name.clone(), request_id: "leak-s".into() })
            .await
            .expect("suspend")
            .into_inner()
    ));
    let snap = c
        .create_snapshot(pb::CreateSnapshotRequest { parent: "environments/prod".into(), snapshot_id: "s1".into(), ..Default::default() })
        .await
        .expect("snapshot")
        .into_inner();
    replies.push(format!(
        "{:?}",
        c.get_snapshot(pb::GetSnapshotRequest { name: snap.name.clone(), view: 2 }).await.expect("full").into_inner()
    ));
    let copy = pb::CopyIntegrationsRequest {
        source: "environments/prod".into(),
        destination: "environments/dev".into(),
        request_id: "leak-copy".into(),
    };
    replies.push(format!("{:?}", c.copy_integrations(copy).await.expect("copy").into_inner()));
    replies.push(format!(
        "{:?}",
        c.restore_snapshot(pb::RestoreSnapshotRequest {
            name: snap.name.clone(),
            environment: "environments/prod".into(),
            resources: vec![],
            request_id: "leak-restore".into()
        })
        .await
        .expect("restore")
        .into_inner()
    ));
    replies.push(format!("{:?}", authorize(&app, "environments/dev/integrations/rally/mappings/main", "").await));
    // A webhook subscription whose receiver is down: its secret signs every failed attempt.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let hook = pb::WebhookSubscription { url: format!("http://{dead}/hook"), secret: KEY_HOOK.into(), ..Default::default() };
    let subscribe = pb::CreateWebhookSubscriptionRequest {
        webhook_subscription_id: "ops".into(),
        webhook_subscription: Some(hook),
        request_id: "leak-hook".into(),
    };
    let sub = c.create_webhook_subscription(subscribe.clone()).await.expect("subscribe").into_inner();
    replies.push(format!("{sub:?}"));
    replies.push(format!("{:?}", c.create_webhook_subscription(subscribe.clone()).await.expect("replay").into_inner()));
    let rotate = pb::UpdateWebhookSubscriptionRequest {
        webhook_subscription: Some(pb::WebhookSubscription { name: sub.name.clone(), secret: KEY_HOOK.into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["secret".into()] }),
        request_id: "leak-hook-rotate".into(),
    };
    replies.push(format!("{:?}", c.update_webhook_subscription(rotate).await.expect("rotate secret").into_inner()));
    c.restore_credentials(pb::RestoreCredentialsRequest { name: rally.name.clone(), request_id: String::new() }).await.expect("restore");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = pb::ListWebhookDeliveriesRequest { parent: sub.name.clone(), page_size: 10, page_token: String::new() };
        let log = c.list_webhook_deliveries(log).await.expect("deliveries").into_inner();
        replies.push(format!("{log:?}"));
        if log.webhook_deliveries.iter().any(|d| d.attempts.len() >= 2) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no failed attempts: {log:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Failing calls that carry a key: the errors must not repeat it.
    let reused = pb::CreateIntegrationRequest { api_key: KEY_TWO.into(), ..create.clone() };
    let errors = vec![
        c.create_integration(reused).await.unwrap_err(),
        c.create_integration(pb::CreateIntegrationRequest { request_id: String::new(), ..create.clone() }).await.unwrap_err(),
        c.create_integration(pb::CreateIntegrationRequest {
            integration_id: "Bad".into(),
            parent: "environments/nowhere".into(),
            request_id: String::new(),
            ..create.clone()
        })
        .await
        .unwrap_err(),
        c.create_webhook_subscription(pb::CreateWebhookSubscriptionRequest {
            webhook_subscription_id: "Bad".into(),
            webhook_subscription: Some(pb::WebhookSubscription { url: "ftp://x".into(), secret: KEY_HOOK.into(), ..Default::default() }),
            request_id: "leak-hook".into(),
        })
        .await
        .unwrap_err(),
        c.rotate_credentials(pb::RotateCredentialsRequest {
            name: "environments/prod/integrations/missing".into(),
            api_key: KEY_ONE.into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err(),
    ];
    for e in &errors {
        replies.push(format!("{e:?} {}", String::from_utf8_lossy(e.details())));
    }

    for r in &replies {
        assert!(!holds_key(r.as_bytes()), "a reply holds a plaintext key: {r}");
    }
    assert!(replies.iter().any(|r| r.contains(&rally.credential_fingerprint)), "replies carry fingerprints");

    let stored = every_stored_value(&app.database_url).await;
    assert!(stored.iter().any(|(col, _)| col == "integrations.sealed_key"), "sealed keys were read");
    assert!(stored.iter().any(|(col, _)| col == "request_log.response"), "recorded replies were read");
    for (col, v) in &stored {
        assert!(!holds_key(v), "{col} holds a plaintext key");
    }
    if matches!(b, Backend::Sqlite) {
        for file in ["integration.db", "integration.db-wal"] {
            if let Ok(bytes) = std::fs::read(app.dir.join(file)) {
                assert!(!holds_key(&bytes), "{file} holds a plaintext key");
            }
        }
    }
    drop(app);

    let captured = logs.0.lock().map(|l| l.clone()).unwrap_or_default();
    let text = String::from_utf8_lossy(&captured);
    assert!(text.contains("environments/prod/integrations/rally"), "the log capture works and names resources");
    assert!(text.contains("create_integration"), "handler spans are captured");
    assert!(text.contains("webhook delivery failed"), "the delivery worker's lines are captured");
    assert!(!holds_key(&captured), "a log line holds a plaintext key");
}
