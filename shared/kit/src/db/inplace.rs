//! Point reads on a SQLite file run in place, on the calling thread.
//!
//! sqlx gives every SQLite connection a thread of its own and passes each statement and
//! each row over channels to it: two thread wake-ups per statement, which on a small
//! machine cost more than the lookup itself (a load profile of GetEntity spent about a
//! third of its time in futex waits and wake-ups, and a fifth in SQLite). For the hottest
//! reads, [`InPlaceReads`] keeps read-only connections of its own and runs the statement
//! right where it is called, without awaiting: a primary-key lookup on a cached page takes
//! microseconds, less than a task switch.
//!
//! Only short, bounded statements belong here (one entity, not a page of a group): the
//! calling async worker is busy while it runs. A reader that finds the database busy
//! (rare under WAL, e.g. while the WAL index is rebuilt) does not wait: the read reports
//! [`InPlace::Busy`] and the caller reads through its pool instead.

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{OpenFlags, types::ToSqlOutput, types::Value as SqlValue};
use sea_orm::{DbErr, QueryResult, TryGetable, Value};

/// A column value both drivers can decode.
pub trait Column: TryGetable + rusqlite::types::FromSql {}
impl<T: TryGetable + rusqlite::types::FromSql> Column for T {}

/// A result row of either driver, so one decoder serves reads through sea-orm and reads in
/// place.
pub trait Row {
    /// Column `i` (from 0).
    fn col<T: Column>(&self, i: usize) -> Result<T, DbErr>;
}

impl Row for QueryResult {
    fn col<T: Column>(&self, i: usize) -> Result<T, DbErr> {
        self.try_get_by_index(i)
    }
}

impl Row for rusqlite::Row<'_> {
    fn col<T: Column>(&self, i: usize) -> Result<T, DbErr> {
        self.get(i).map_err(|e| DbErr::Custom(format!("column {i}: {e}")))
    }
}

/// What a read in place gives when it could not run: the caller reads through its pool.
#[derive(Debug)]
pub enum InPlace {
    /// The database was locked or busy at that moment.
    Busy,
    /// Any other failure.
    Failed(DbErr),
}

impl From<DbErr> for InPlace {
    fn from(e: DbErr) -> Self {
        InPlace::Failed(e)
    }
}

impl From<rusqlite::Error> for InPlace {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => InPlace::Busy,
            _ => InPlace::Failed(DbErr::Custom(format!("sqlite: {e}"))),
        }
    }
}

/// Read-only connections to one SQLite file, used in place. A connection is taken for one
/// statement and put back before the call returns, so there are never more of them than
/// threads reading at once.
pub struct InPlaceReads {
    path: String,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// Statements kept prepared per connection.
const PREPARED: usize = 32;

/// How much of the file each connection maps (address space, not memory).
const MMAP_BYTES: i64 = 1 << 30;

impl InPlaceReads {
    /// Reads in place on the SQLite file `path` (which must exist: the writer created it).
    pub fn open(path: &str) -> Result<Self, DbErr> {
        let reads = Self { path: path.to_owned(), idle: Mutex::new(Vec::new()) };
        // Fail now, at startup, rather than on the first read.
        let first = reads.connect().map_err(|e| DbErr::Custom(format!("sqlite {path}: {e}")))?;
        reads.put_back(first);
        Ok(reads)
    }

    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let c = rusqlite::Connection::open_with_flags(&self.path, flags)?;
        // Never wait for a lock on an async worker: a busy read goes to the pool instead.
        c.busy_timeout(Duration::ZERO)?;
        c.set_prepared_statement_cache_capacity(PREPARED);
        // Pages come from the file's mapping, not copied into each connection's own cache.
        c.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        Ok(c)
    }

    fn take(&self) -> Option<rusqlite::Connection> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_back(&self, c: rusqlite::Connection) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }

    /// Runs `sql` (`?` placeholders) with `values` and maps every row with `map`.
    pub fn all<T>(
        &self,
        sql: &str,
        values: &[Value],
        mut map: impl FnMut(&rusqlite::Row<'_>) -> Result<T, DbErr>,
    ) -> Result<Vec<T>, InPlace> {
        let c = match self.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = (|| {
            let mut st = c.prepare_cached(sql)?;
            let params = values.iter().map(param).collect::<Result<Vec<_>, _>>()?;
            let mut rows = st.query(rusqlite::params_from_iter(params))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(map(row)?);
            }
            Ok(out)
        })();
        self.put_back(c);
        out
    }
}

/// A sea-orm value as a SQLite parameter (the kinds the services bind).
fn param(v: &Value) -> Result<ToSqlOutput<'static>, InPlace> {
    let v = match v {
        Value::Bool(b) => b.map(|b| SqlValue::Integer(b.into())),
        Value::TinyInt(n) => n.map(|n| SqlValue::Integer(n.into())),
        Value::SmallInt(n) => n.map(|n| SqlValue::Integer(n.into())),
        Value::Int(n) => n.map(|n| SqlValue::Integer(n.into())),
        Value::BigInt(n) => n.map(SqlValue::Integer),
        Value::Double(x) => x.map(SqlValue::Real),
        Value::String(s) => s.clone().map(SqlValue::Text),
        Value::Bytes(b) => b.clone().map(SqlValue::Blob),
        other => return Err(InPlace::Failed(DbErr::Custom(format!("cannot bind {other:?} in place")))),
    };
    Ok(ToSqlOutput::Owned(v.unwrap_or(SqlValue::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file with two rows, in WAL mode as the services run it or not.
    fn file(dir: &tempfile::TempDir, wal: bool) -> String {
        let path = dir.path().join("t.db").to_string_lossy().into_owned();
        let c = rusqlite::Connection::open(&path).expect("create");
        if wal {
            c.execute_batch("PRAGMA journal_mode=WAL").expect("wal");
        }
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two');")
            .expect("schema");
        path
    }

    #[test]
    fn reads_rows_with_bound_values_and_decodes_through_the_row_trait() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file(&dir, true);
        let reads = InPlaceReads::open(&path).expect("open");
        let got = reads
            .all("SELECT id, name FROM t WHERE id >= ? ORDER BY id", &[Value::BigInt(Some(2))], |r| {
                Ok((r.col::<i64>(0)?, r.col::<String>(1)?))
            })
            .expect("read");
        assert_eq!(got, vec![(2, "two".to_owned())]);
        let none = reads.all("SELECT id FROM t WHERE name = ?", &[Value::String(Some("three".into()))], |r| r.col::<i64>(0)).expect("read");
        assert!(none.is_empty());
    }

    #[test]
    fn is_read_only_and_reports_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file(&dir, true);
        let reads = InPlaceReads::open(&path).expect("open");
        let err = reads.all("INSERT INTO t VALUES (3, 'three') RETURNING id", &[], |r| r.col::<i64>(0)).expect_err("read-only");
        assert!(matches!(err, InPlace::Failed(_)), "{err:?}");
        assert!(InPlaceReads::open(&format!("{path}.missing")).is_err(), "a missing file is refused at open");
    }

    #[test]
    fn a_locked_database_is_busy_not_a_wait() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file(&dir, false);
        let reads = InPlaceReads::open(&path).expect("open");
        // An exclusive lock held by a writer in rollback-journal mode blocks readers.
        let w = rusqlite::Connection::open(&path).expect("writer");
        w.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        let err = reads.all("SELECT id FROM t", &[], |r| r.col::<i64>(0)).expect_err("busy");
        assert!(matches!(err, InPlace::Busy), "{err:?}");
        w.execute_batch("COMMIT").expect("unlock");
        assert_eq!(reads.all("SELECT count(*) FROM t", &[], |r| r.col::<i64>(0)).expect("read"), vec![2]);
    }
}
