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

/// Rows that belong to one parent row (a plan's items, an archive's entities): deleted
/// with their parent, a batch at a time, in `order` (an integer key column, indexed after
/// `parent` or on its own).
#[derive(Debug, Clone, Copy)]
pub struct Children {
    pub table: &'static str,
    pub parent: &'static str,
    pub order: &'static str,
}

/// Deletes at most `batch` rows of `children` under `parent` whose `order` is above
/// `after`, lowest first: how many, and the highest `order` deleted (the next batch's
/// `after`). The cursor keeps each batch's scan where the last one stopped, so a million
/// rows cost a million, not the rows deleted so far again at every batch.
pub async fn prune_children<C: ConnectionTrait>(
    db: &C,
    children: Children,
    parent: Value,
    after: i64,
    batch: u64,
) -> Result<(u64, Option<i64>), DbErr> {
    let Children { table, parent: column, order } = children;
    let sql = format!(
        "DELETE FROM {table} WHERE {column} = ? AND {order} IN \
         (SELECT {order} FROM {table} WHERE {column} = ? AND {order} > ? ORDER BY {order} LIMIT ?) RETURNING {order}"
    );
    let values = vec![parent.clone(), parent, after.into(), Value::from(batch as i64)];
    let rows = db.query_all_raw(stmt(db.get_database_backend(), &sql, values)).await?;
    let mut last = None;
    for row in &rows {
        let key: i64 = row.try_get_by_index(0)?;
        last = last.max(Some(key));
    }
    Ok((rows.len() as u64, last))
}

/// Deletes every row of `children` under `parent`, `batch` at a time; how many.
pub async fn prune_all_children<C: ConnectionTrait>(db: &C, children: Children, parent: Value, batch: u64) -> Result<u64, DbErr> {
    let (mut rows, mut after) = (0, i64::MIN);
    loop {
        let (n, last) = prune_children(db, children, parent.clone(), after, batch).await?;
        rows += n;
        match last {
            Some(last) if n >= batch => after = last,
            _ => return Ok(rows),
        }
    }
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

/// Runs `job` now and then every `interval`, for as long as the server serves
/// (`ServerBuilder::with_background`); a failure is logged, naming `what`, and tried again
/// at the next tick.
pub async fn every<F, Fut, T, E>(interval: Duration, what: &'static str, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = job().await {
            tracing::warn!(what, error = %e, "background pass failed (pruning or counting); trying again at the next tick");
        }
    }
}

/// Prunes `aged` now and then every `interval` ([`every`]); logs what it pruned and how
/// fast.
pub async fn pruner(db: DatabaseConnection, aged: Aged, retention: Duration, interval: Duration, batch: u64) {
    every(interval, aged.table, || async {
        let started = Instant::now();
        let rows = prune_all(&db, aged, retention, batch).await?;
        if rows > 0 {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(table = aged.table, rows, secs, rows_per_sec = (rows as f64 / secs.max(1e-6)) as u64, "pruned");
        }
        Ok::<_, DbErr>(())
    })
    .await
}
