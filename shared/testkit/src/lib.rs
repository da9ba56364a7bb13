//! Test support shared by every Ferry test suite. A behaviour suite is written once and
//! instantiated per [`Backend`]; [`database`] hands each test a fresh database on it
//! (a SQLite file in the test's folder, or a new database on the throwaway PostgreSQL that
//! `scripts/test` starts and names in `FERRY_TEST_PG_URL`).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, Database};

/// The storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests run against (`FERRY_TEST_PG_URL`, set by scripts/test).
/// Without it the PostgreSQL half is skipped loudly, except under CI=true where it must run.
pub fn postgres_url() -> Option<String> {
    match std::env::var("FERRY_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but FERRY_TEST_PG_URL is not set: run the tests with scripts/test")
        }
        _ => {
            eprintln!("!!! SKIPPING PostgreSQL test: FERRY_TEST_PG_URL is not set (run scripts/test)");
            None
        }
    }
}

/// A name no other test of this run uses: `prefix`, the process id, time and a counter.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{:x}{}", std::process::id(), t & 0xffff_ffff, N.fetch_add(1, Ordering::Relaxed))
}

/// A new, empty folder under the system's temporary folder.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).expect("create a temporary folder"); // ok: test setup, no request data
    dir
}

/// The URL of a fresh database on `backend`: the SQLite file `file` in `dir`, or a new
/// PostgreSQL database. `None` when PostgreSQL is not available here (the test skips).
pub async fn database(backend: Backend, dir: &Path, file: &str) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}/{file}", dir.display())),
        Backend::Postgres => {
            let admin = postgres_url()?;
            let name = unique("ferry_t");
            let db = Database::connect(&admin).await.expect("connect to the test PostgreSQL"); // ok: test setup
            db.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create a test database"); // ok: test setup
            db.close().await.ok();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
            Some(format!("{base}/{name}"))
        }
    }
}
