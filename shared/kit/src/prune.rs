//! Rows past their retention, deleted in the background in bounded batches: one short
//! statement each, never one huge delete. Every service prunes its `request_log`
//! (`idempotency::REPLIES`); integration-control its snapshots.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Value};

use crate::db::{now_micros, stmt};

/// A table whose rows age: its name, its key columns (`request_id`, `env, id`) and the
/// column holding when a row was written (microseconds; indexed).
#[derive(Debug, Clone, Copy)]
pub struct Aged {
    pub table: &'static str,
    pub key: &'static str,
    pub time: &'static str,
}

/// Rows one prune statement deletes at most.
pub const BATCH: u64 = 5_000;

/// Deletes at most `batch` rows of `aged` written before `before`; how many.
pub async fn prune<C: ConnectionTrait>(db: &C, aged: Aged, before: i64, batch: u64) -> Result<u64, DbErr> {
    let Aged { table, key, time } = aged;
    let sql = format!("DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE {time} < ? ORDER BY {time} LIMIT ?)");
    Ok(db.execute_raw(stmt(db.get_database_backend(), &sql, vec![before.into(), Value::from(batch as i64)])).await?.rows_affected())
}

/// Deletes every row of `aged` older than `retention`, `batch` at a time; how many.
pub async fn prune_all(db: &DatabaseConnection, aged: Aged, retention: Duration, batch: u64) -> Result<u64, DbErr> {
    let before = now_micros().saturating_sub(retention.as_micros().min(i64::MAX as u128) as i64);
    let mut rows = 0;
    loop {
        let n = prune(db, aged, before, batch).await?;
        rows += n;
        if n < batch {
            return Ok(rows);
        }
    }
}

/// Prunes `aged` now and then every `interval`, for as long as the server serves
/// (`ServerBuilder::with_background`); logs what it pruned and how fast, and a failure,
/// which is tried again at the next tick.
pub async fn pruner(db: DatabaseConnection, aged: Aged, retention: Duration, interval: Duration, batch: u64) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        match prune_all(&db, aged, retention, batch).await {
            Ok(0) => {}
            Ok(rows) => {
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(table = aged.table, rows, secs, rows_per_sec = (rows as f64 / secs.max(1e-6)) as u64, "pruned");
            }
            Err(e) => tracing::warn!(table = aged.table, error = %e, "pruning failed; trying again later"),
        }
    }
}
