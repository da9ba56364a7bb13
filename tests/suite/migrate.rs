//! `migrate(config)` of every service, as `--migrate-only` runs it: a fresh SQLite file
//! gets that service's whole schema. integration-control migrates without its sealing key
//! (the migrate initContainer does not mount it) and the callers' services need not be up.

use std::net::SocketAddr;

use ferry_kit::config::CommonArgs;
use sea_orm::{ConnectionTrait, Database, Statement};
use sea_orm_migration::MigratorTrait;

use crate::helpers::TempDir;

#[tokio::test]
async fn every_service_migrates_a_fresh_sqlite_file() {
    let dir = TempDir::new();
    let url = |file: &str| format!("sqlite://{}/{file}", dir.path().display());
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let nowhere = "http://127.0.0.1:1"; // nothing listens: migrating calls no other service
    let common = CommonArgs::default();

    group_registry::migrate(&group_registry::Config::new(listen, url("registry.db"), common.clone())).await.expect("registry migrates");
    merge_engine::migrate(&merge_engine::Config::new(listen, url("merge.db"), nowhere, common.clone())).await.expect("engine migrates");
    let absent_key = dir.path().join("no-such-sealing.key");
    integration_control::migrate(&integration_control::Config {
        listen,
        database_url: url("integration.db"),
        registry_url: nowhere.into(),
        sealing_key_file: absent_key.clone(),
        snapshot_retention_hours: integration_control::config::DEFAULT_SNAPSHOT_RETENTION_HOURS,
        webhooks: integration_control::config::WebhookArgs::default(),
        common: common.clone(),
    })
    .await
    .expect("integration-control migrates without its sealing key");
    refresh_coordinator::migrate(&refresh_coordinator::Config::new(listen, url("refresh.db"), nowhere, nowhere, nowhere, common))
        .await
        .expect("coordinator migrates");

    assert_eq!(applied(&url("registry.db")).await, group_registry::store::migrations::Migrator::migrations().len());
    assert_eq!(applied(&url("merge.db")).await, merge_engine::store::migrations::Migrator::migrations().len());
    assert_eq!(applied(&url("integration.db")).await, integration_control::store::migrations::Migrator::migrations().len());
    assert_eq!(applied(&url("refresh.db")).await, refresh_coordinator::store::migrations::Migrator::migrations().len());
    assert!(!absent_key.exists(), "migrating must not create a sealing key");
}

/// Migrations recorded as applied in the database at `url`.
async fn applied(url: &str) -> usize {
    let db = Database::connect(url).await.expect("open the migrated file");
    let stmt = Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) FROM seaql_migrations");
    let row = db.query_one_raw(stmt).await.expect("the migrations table").expect("one row");
    let n = row.try_get_by_index::<i64>(0).expect("a count");
    db.close().await.ok();
    usize::try_from(n).expect("a count is not negative")
}
