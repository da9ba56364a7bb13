//! WAL checkpoints off the writer.
//!
//! By default SQLite copies the write-ahead log back into the database file (a checkpoint,
//! ending in an fsync) on the connection whose commit takes the log past 1,000 pages, inside
//! that commit. A service writes through one connection (`super::connect`), so every write
//! queued behind such a commit waited for the copy too. At 1,000 lease calls/s that was
//! 13–20 ms about once a second, and it set the calls' whole p99 (16.8 ms; 3.0 ms without).
//!
//! So a service's writer never checkpoints itself (`wal_autocheckpoint = 0`, set by
//! `super::connect`), and [`checkpoints`] runs beside it on a connection of its own.
//! A PASSIVE checkpoint copies what no reader still needs and never waits for, or blocks,
//! the writer or the readers. The WAL then starts again from its beginning at the writer's
//! next commit, as it did before.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr};

/// How often [`checkpoints`] copies the log back: at 1,000 writes/s, a few hundred pages
/// each time.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints the SQLite file behind `db` every [`CHECKPOINT_EVERY`], for as long as it
/// runs (a server's background work). It returns at once for PostgreSQL or an in-memory
/// database. A file whose writer runs without it keeps its whole log until its last
/// connection closes (which checkpoints it), so every service runs it.
pub async fn checkpoints(db: DatabaseConnection) {
    checkpoints_every(db, CHECKPOINT_EVERY).await
}

async fn checkpoints_every(db: DatabaseConnection, every: Duration) {
    let path = match file_of(&db).await {
        Ok(Some(path)) => path,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot find the SQLite file to checkpoint; the WAL grows until the service stops");
            return;
        }
    };
    let connection = match rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE) {
        Ok(c) => Arc::new(Mutex::new(c)),
        Err(e) => {
            tracing::warn!(path, error = %e, "cannot open the SQLite file to checkpoint; the WAL grows until the service stops");
            return;
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let c = connection.clone();
        match tokio::task::spawn_blocking(move || passive(&c.lock().unwrap_or_else(|p| p.into_inner()))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(path, error = %e, "WAL checkpoint failed; trying again"),
            // The runtime is shutting down.
            Err(_) => return,
        }
    }
}

/// One PASSIVE checkpoint: copies what it can now, waiting for nobody.
fn passive(c: &rusqlite::Connection) -> rusqlite::Result<()> {
    // (busy, frames in the log, frames copied): partial progress is fine; the next tick goes on.
    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// The file of `db`'s main database, if it is a SQLite file.
async fn file_of(db: &DatabaseConnection) -> Result<Option<String>, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let rows = db.query_all_raw(sea_orm::Statement::from_string(DbBackend::Sqlite, "PRAGMA database_list")).await?;
    for row in rows {
        if row.try_get_by_index::<String>(1)? == "main" {
            let file: String = row.try_get_by_index(2)?;
            return Ok((!file.is_empty()).then_some(file));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Size of the database file itself (not its log).
    fn size(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    async fn write(db: &DatabaseConnection, rows: usize) {
        db.execute_unprepared("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)").await.expect("create");
        let body = "x".repeat(2000);
        for _ in 0..rows {
            db.execute_unprepared(&format!("INSERT INTO t (body) VALUES ('{body}')")).await.expect("insert");
        }
    }

    #[tokio::test]
    async fn the_writer_leaves_the_log_to_the_checkpointer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db");
        let db = super::super::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
        // 1,500 commits of a page or more: past the 1,000 pages at which SQLite would
        // checkpoint on its own, yet the file itself does not grow.
        write(&db, 1500).await;
        let before = size(&path);
        assert!(before < 64 * 1024, "the writer checkpointed by itself: the file is {before} bytes");

        let task = tokio::spawn(checkpoints_every(db.clone(), Duration::from_millis(10)));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size(&path) < 1500 * 2000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        assert!(size(&path) >= 1500 * 2000, "nothing was checkpointed: the file is {} bytes", size(&path));
    }

    #[tokio::test]
    async fn an_in_memory_database_has_nothing_to_checkpoint() {
        let db = super::super::connect("sqlite::memory:").await.expect("connect");
        // Returns at once rather than running forever.
        tokio::time::timeout(Duration::from_secs(5), checkpoints_every(db, Duration::from_millis(10))).await.expect("returned");
    }
}
