//! Test support shared by every Ferry test suite. A behaviour suite is written once and
//! instantiated per [`Backend`]; [`database`] hands each test a fresh database on it
//! (a SQLite file in the test's folder, or a new database on the throwaway PostgreSQL that
//! `scripts/test` starts and names in `FERRY_TEST_PG_URL`).

#![forbid(unsafe_code)]

pub mod content;
pub mod jwt;
pub mod receiver;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, Database};

/// The storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Instantiates each listed behaviour test once per backend, as `sqlite::name` and
/// `postgres::name`: each is an `async fn name(backend: Backend)`, named as
/// `module::name` (a module beside the call) or just `name` (a function beside it).
/// The calling crate needs `tokio` (tests run on a two-thread runtime).
#[macro_export]
macro_rules! per_backend {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$module::$name($crate::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$module::$name($crate::Backend::Postgres).await } )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name($crate::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name($crate::Backend::Postgres).await } )*
        }
    };
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

/// A `/metrics` scrape: HTTP status, content type and body.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Scrape {
    /// Every sample `name` whose labels include every `(label, value)` given.
    fn samples<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = f64> + 'a {
        self.body.lines().filter_map(move |line| {
            let rest = line.strip_prefix(name)?;
            let (set, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let pairs: Vec<&str> = set.split(',').collect();
            labels.iter().all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str())).then(|| value.trim().parse().ok())?
        })
    }

    /// The value of the first sample `name` whose labels include every `(label, value)`
    /// given, e.g. `sample("ferry_grpc_server_handled_total", &[("code", "OK")])`.
    pub fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name, labels).next()
    }

    /// [`Scrape::sample`], 0 when the series is absent (a counter not yet incremented).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.sample(name, labels).unwrap_or(0.0)
    }

    /// The sum of every sample `name` whose labels include every `(label, value)` given.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name, labels).sum()
    }
}

/// `GET http://addr{path}` over HTTP/1.1 (for the services' `/metrics` endpoint).
pub async fn scrape(addr: std::net::SocketAddr, path: &str) -> Result<Scrape, String> {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status().as_u16();
    let content_type = response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
    driver.abort();
    Ok(Scrape { status, content_type, body: String::from_utf8_lossy(&body).into_owned() })
}
