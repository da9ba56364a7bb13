//! `--migrate-only` (`FERRY_MIGRATE_ONLY=true`): the real binary creates the schema on a
//! fresh database and exits 0 without serving. On PostgreSQL two run at once on the same
//! database, as initContainers of replicas rolling out together do.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use group_registry::store::migrations::Migrator;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;

use crate::helpers::Backend;

pub async fn migrate_only_creates_the_schema_and_exits_without_serving(backend: Backend) {
    let dir = ferry_testkit::temp_dir("migrate_only");
    let Some(url) = ferry_testkit::database(backend, &dir, "registry.db").await else { return };
    let runs = if backend == Backend::Postgres { 2 } else { 1 };

    // A process that served would never exit on its own: the deadline catches it.
    let children: Vec<Child> = (0..runs).map(|_| spawn_migrate_only(&url)).collect();
    for child in children {
        let (code, stderr) = wait_with_deadline(child, Duration::from_secs(60)).await;
        assert_eq!(code, Some(0), "migrate-only exited with {code:?}: {stderr}");
        assert!(!stderr.contains("listening"), "migrate-only must not serve: {stderr}");
    }

    let db = Database::connect(&url).await.expect("open the migrated database");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM seaql_migrations").await, Migrator::migrations().len() as i64);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM memberships").await, 0, "the schema exists and is empty");
    db.close().await.ok();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.expect(sql).expect("one row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

fn spawn_migrate_only(url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_group-registry"))
        .env("FERRY_MIGRATE_ONLY", "true")
        .env("FERRY_REGISTRY_DATABASE_URL", url)
        .env("FERRY_REGISTRY_LISTEN", "127.0.0.1:0")
        .env("FERRY_NO_AUTH", "true")
        .env_remove("FERRY_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start group-registry")
}

/// The exit code and everything the process printed; kills it at the deadline (code `None`).
async fn wait_with_deadline(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("poll the child").is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = child.try_wait().expect("poll the child").is_some();
    if !exited {
        child.kill().ok();
    }
    let out = child.wait_with_output().expect("collect the output");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (if exited { out.status.code() } else { None }, text)
}
