//! Database connection from a URL (`sqlite://path` or `postgres://…`), migrations under a
//! PostgreSQL advisory lock, and small helpers for portable raw SQL.
//!
//! SQLite writes through one pooled connection: every write is serialised by SQLite
//! anyway, and one connection rules out `SQLITE_BUSY` on read-then-write transactions.
//! Plain reads can use [`read_pool`]: read-only connections beside it. Streams read in
//! keyset pages so they never hold a connection between messages.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use sea_orm_migration::MigratorTrait;

use crate::Error;

pub mod checkpoint;
pub mod copy;
pub mod inplace;
pub mod time;
pub use checkpoint::checkpoints;
pub use copy::{CopyRows, copy_in};
pub use inplace::{Column, InPlace, InPlaceReads, Row};
pub use time::{micros, now_micros, rfc3339, timestamp};

/// Opens a pool for `url`. A SQLite file (and its folder) is created if missing.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        if let Some(path) = sqlite_path(url)
            && let Some(parent) = std::path::Path::new(&path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        // The writer never checkpoints the WAL inside a commit: [`checkpoints`] does it
        // beside it (see `checkpoint`).
        // No ping before each acquire: a file connection cannot go stale, and on SQLite each
        // ping is one more round trip to the connection's thread on every statement.
        options.max_connections(1).min_connections(1).idle_timeout(None::<Duration>).test_before_acquire(false).map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .pragma("wal_autocheckpoint", "0")
        });
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // Statements are prepared and reused, and after five runs PostgreSQL may switch a
        // statement to its generic plan, costed without the parameters' values: a keyset
        // page (`(kind, key) > ($2, $3) … LIMIT $4`) then becomes a scan and sort of the
        // whole group (105 ms against 20 ms a page at 220k entities). Planning each run
        // costs well under a millisecond.
        postgres(&mut options, 16, "force_custom_plan");
    } else {
        return Err(Error::Config(format!("unsupported database url (use sqlite:// or postgres://): {}", redact(url))));
    }
    Ok(Database::connect(options).await?)
}

/// PostgreSQL connections. Memoize is off: the services' joins probe unique keys, so a
/// Memoize node caches nothing it is asked for twice and only adds a hash insert per row
/// (a key-manifest page of 5,000 entries: 14.5 ms with it, 7.2 ms without).
fn postgres(options: &mut ConnectOptions, connections: u32, plan_cache_mode: &'static str) {
    options
        .max_connections(connections)
        .min_connections(1)
        .map_sqlx_postgres_opts(move |o| o.options([("plan_cache_mode", plan_cache_mode), ("enable_memoize", "off")]));
}

/// Where a service runs its hottest reads: one row (and its few children) by primary key.
pub enum PointReads {
    /// A SQLite file: read in place on the calling thread ([`inplace`]), no hop to a
    /// connection's thread.
    InPlace(InPlaceReads),
    /// PostgreSQL: a pool of its own, whose prepared statements may keep PostgreSQL's
    /// generic plan (planned once per connection, not on every run as under `connect`'s
    /// `force_custom_plan`: a primary-key lookup's plan does not depend on the values).
    /// An in-memory SQLite database: its one pool.
    Pool(DatabaseConnection),
}

/// Connections reading PostgreSQL's point reads, beside `connect`'s 16.
const POSTGRES_POINT_READERS: u32 = 8;

/// [`PointReads`] for the database `db` was opened on from `url`.
pub async fn point_reads(url: &str, db: &DatabaseConnection) -> Result<PointReads, Error> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let mut options = ConnectOptions::new(url.to_owned());
            options.sqlx_logging(false).acquire_timeout(Duration::from_secs(30));
            postgres(&mut options, POSTGRES_POINT_READERS, "auto");
            Ok(PointReads::Pool(Database::connect(options).await?))
        }
        _ => match sqlite_path(url) {
            Some(path) if !url.contains("mode=memory") => Ok(PointReads::InPlace(InPlaceReads::open(&path)?)),
            _ => Ok(PointReads::Pool(db.clone())),
        },
    }
}

/// Read-only SQLite connections beside the one writer: plain reads run beside it and
/// beside each other (WAL lets readers see the last commit while a write is under way).
const SQLITE_READERS: u32 = 4;

/// A pool for plain reads (outside transactions) of the database `db` was opened on from
/// `url`. On SQLite: [`SQLITE_READERS`] read-only connections to the same file, so reads
/// do not queue behind the single writer connection's thread; an in-memory database has
/// no file to share and reads through `db`. On PostgreSQL: `db` itself, whose pool
/// already reads in parallel.
pub async fn read_pool(url: &str, db: &DatabaseConnection) -> Result<DatabaseConnection, Error> {
    if db.get_database_backend() != DbBackend::Sqlite || sqlite_path(url).is_none() || url.contains("mode=memory") {
        return Ok(db.clone());
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(30))
        .max_connections(SQLITE_READERS)
        .min_connections(1)
        .idle_timeout(None::<Duration>)
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(|o| o.read_only(true).busy_timeout(Duration::from_secs(30)));
    Ok(Database::connect(options).await?)
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// A URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***@{}", &url[..s], &url[at + 1..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Connects to `url` and runs `M`'s pending migrations: how every service opens its
/// database, to serve or with `--migrate-only`.
pub async fn open<M: MigratorTrait>(url: &str, service: &str) -> Result<DatabaseConnection, Error> {
    let db = connect(url).await?;
    migrate::<M>(&db, service).await?;
    Ok(db)
}

/// Begins a write transaction. On PostgreSQL its statements may use cached generic plans
/// (`plan_cache_mode = auto` for the transaction): `connect` forces custom plans for the
/// keyset pages' sake, but that also re-plans the foreign-key checks PostgreSQL runs for
/// every row written (prepared statements of their own), and a profile of a merge's
/// inserts spent about 30 % of PostgreSQL's time planning them.
pub async fn begin(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL plan_cache_mode = auto").await?;
    }
    Ok(txn)
}

/// Runs `M`'s pending migrations. On PostgreSQL they run in one transaction holding an
/// advisory lock derived from `service`, so replicas starting together do not race.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection, service: &str) -> Result<(), Error> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            let key = advisory_key(service);
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [Value::BigInt(Some(key))],
            ))
            .await?;
            M::up(&txn, None).await?;
            txn.commit().await?;
        }
        _ => M::up(db, None).await?,
    }
    Ok(())
}

fn advisory_key(service: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("ferry-migrations:{service}").as_bytes());
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Builds a statement from SQL written with `?` placeholders, numbering them `$1…` for
/// PostgreSQL. The SQL must not contain `?` anywhere but in placeholders.
pub fn stmt(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 16);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Writes backend-specific DDL from one text: `{SERIAL}` is an auto-increment primary
/// key, `{KEY}` a text column that collates byte-wise on both backends (so keyset pages
/// and sorted streams agree with Rust's byte order), `{BLOB}` a binary column.
pub fn dialect(backend: DbBackend, sql: &str) -> String {
    let (serial, key, blob) = match backend {
        DbBackend::Postgres => ("BIGSERIAL PRIMARY KEY", "TEXT COLLATE \"C\"", "BYTEA"),
        _ => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "BLOB"),
    };
    sql.replace("{SERIAL}", serial).replace("{KEY}", key).replace("{BLOB}", blob)
}

/// Runs schema statements written with [`dialect`]'s placeholders, in order.
pub async fn execute_schema<C: ConnectionTrait>(db: &C, statements: &[&str]) -> Result<(), sea_orm::DbErr> {
    for sql in statements {
        db.execute_unprepared(&dialect(db.get_database_backend(), sql)).await?;
    }
    Ok(())
}

/// Compresses the large values of `columns` (`table.column`) with lz4 on PostgreSQL when
/// the server has it (PostgreSQL 14+ built with lz4; otherwise they keep pglz). A value
/// past about 2 KiB is compressed as it is written: pglz took 2–5 ms for a 420 KiB JSON
/// document (a 1,000-mapping change set), lz4 under 1 ms at the same size on disk. Only
/// values written afterwards change; SQLite does not compress.
pub async fn compress_with_lz4<C: ConnectionTrait>(db: &C, columns: &[&str]) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let has = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
        ))
        .await?
        .is_some();
    if !has {
        tracing::info!("PostgreSQL has no lz4: large values stay compressed with pglz");
        return Ok(());
    }
    for column in columns {
        let (table, column) = column.split_once('.').ok_or_else(|| sea_orm::DbErr::Custom(format!("{column} is not table.column")))?;
        db.execute_unprepared(&format!("ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")).await?;
    }
    Ok(())
}

/// Rows written at once above which PostgreSQL's statistics are refreshed: after a bulk
/// write the planner otherwise costs queries for the table as it was (empty), and an
/// ordered page (`seq > $1 … ORDER BY seq LIMIT $2`) becomes a scan and sort of it all
/// (150 ms against 4 ms a page at a million plan items).
pub const ANALYZE_AFTER_ROWS: i64 = 10_000;

/// Refreshes the planner statistics of `tables` (comma-separated); PostgreSQL only
/// (SQLite's planner does not need them for these paths).
pub async fn analyze<C: ConnectionTrait>(db: &C, tables: &str) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(&format!("ANALYZE {tables}")).await?;
    }
    Ok(())
}

/// `?, ?, ?` for `n` values.
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// The environments a caller's list is narrowed to (a scoped token's): `None` lists all.
pub type Scope<'a> = Option<&'a std::collections::BTreeSet<String>>;

/// What a list's scope condition compares with the caller's environment ids.
#[derive(Debug, Clone, Copy)]
pub enum ScopedBy<'a> {
    /// An expression that is an environment id.
    Id(&'a str),
    /// A column holding a resource name under `environments/{id}/`.
    Name(&'a str),
}

/// Appends ` AND …` to a list query so only rows of environments in `scope` pass, in the
/// query (so pages stay full): `None` passes every row, an empty scope none.
pub fn and_in_scope(sql: &mut String, values: &mut Vec<Value>, by: ScopedBy<'_>, scope: Scope<'_>) {
    let Some(envs) = scope else { return };
    if envs.is_empty() {
        sql.push_str(" AND 1 = 0");
        return;
    }
    match by {
        ScopedBy::Id(expr) => {
            sql.push_str(&format!(" AND {expr} IN ({})", placeholders(envs.len())));
            values.extend(envs.iter().map(|e| Value::from(e.as_str())));
        }
        ScopedBy::Name(column) => {
            let each = vec![format!("{column} LIKE ? ESCAPE '\\'"); envs.len()];
            sql.push_str(&format!(" AND ({})", each.join(" OR ")));
            values.extend(envs.iter().map(|e| Value::from(format!("environments/{}/%", like_literal(e)))));
        }
    }
}

/// `text` matched literally by LIKE with `\` as the escape character.
pub fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Rows per statement for a bulk insert of `columns` columns, under both backends' bind
/// limits (PostgreSQL 65,535, SQLite 32,766 parameters per statement).
pub fn rows_per_chunk(columns: usize) -> usize {
    (32_000 / columns.max(1)).max(1)
}

/// True when `err` is a unique-constraint violation (either backend).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// True when a transaction lost a race with a concurrent one that wrote the same keys: a
/// unique violation, a foreign key whose row a concurrent transaction deleted after this
/// one looked it up (every write looks up what it refers to first), or a deadlock
/// PostgreSQL broke by aborting this transaction. Run again, it sees what the other
/// committed.
pub fn is_write_race(err: &sea_orm::DbErr) -> bool {
    is_unique_violation(err)
        || matches!(err.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)))
        || sqlstate(err).as_deref() == Some("40P01")
}

/// The SQLSTATE of a database error, when the database gave one.
fn sqlstate(err: &sea_orm::DbErr) -> Option<String> {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match &**e {
            sea_orm::sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_for_postgres() {
        let s = stmt(DbBackend::Postgres, "SELECT a FROM t WHERE x = ? AND y IN (?, ?)", []);
        assert_eq!(s.sql, "SELECT a FROM t WHERE x = $1 AND y IN ($2, $3)");
        let s = stmt(DbBackend::Sqlite, "SELECT ?", []);
        assert_eq!(s.sql, "SELECT ?");
    }

    #[test]
    fn dialects() {
        let sql = "CREATE TABLE t (id {SERIAL}, k {KEY} NOT NULL, b {BLOB})";
        assert_eq!(dialect(DbBackend::Postgres, sql), "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, k TEXT COLLATE \"C\" NOT NULL, b BYTEA)");
        assert_eq!(dialect(DbBackend::Sqlite, sql), "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL, b BLOB)");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
