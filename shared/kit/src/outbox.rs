//! A transactional outbox: a service [`append`]s an [`Event`] inside the transaction of the
//! change it describes, so the event exists exactly when the change committed; [`relay`]
//! (a background task) later hands the unrelayed rows, in sequence order, to a sink and
//! marks them relayed only once the sink succeeded. Delivery is at least once: a sink that
//! fails, or a crash between the sink and the mark, hands the same rows again, so sinks
//! de-duplicate by [`Event::id`].
//!
//! Sequences come from a one-row head moved with `UPDATE … RETURNING` (as the audit log's),
//! which holds the head's row lock (PostgreSQL) or the write lock (SQLite) to the commit:
//! sequence order is commit order, and the relay never passes a row that commits later
//! with a lower sequence. The relay's own transactions are short, never held across the
//! sink's network call (SQLite has one writer connection).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::db::{now_micros, stmt};

/// One state change, as it goes out: the envelope of a webhook body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique (a UUID): receivers de-duplicate by it.
    pub id: String,
    /// `integration.deactivated`, `refresh_run.state_changed`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change was made (microseconds since the epoch).
    pub time: i64,
    /// The environment the change is in (an id; empty when none).
    pub environment: String,
    /// The resource name that changed: events of one resource keep their order.
    pub resource: String,
    /// What changed (event type specific).
    pub data: serde_json::Value,
}

impl Event {
    /// A new event with a fresh id, made now.
    pub fn new(kind: impl Into<String>, environment: impl Into<String>, resource: impl Into<String>, data: serde_json::Value) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.into(),
            time: now_micros(),
            environment: environment.into(),
            resource: resource.into(),
            data,
        }
    }
}

/// An event as stored, with its sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub sequence: i64,
    pub event: Event,
}

const CREATE: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS outbox (
        sequence BIGINT NOT NULL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        relayed_at BIGINT
    )",
    "CREATE INDEX IF NOT EXISTS outbox_unrelayed ON outbox (sequence) WHERE relayed_at IS NULL",
    "CREATE TABLE IF NOT EXISTS outbox_head (id INTEGER NOT NULL PRIMARY KEY, sequence BIGINT NOT NULL)",
    "INSERT INTO outbox_head (id, sequence) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
];

/// The migration a service with an outbox runs: the table and its head.
pub struct Migration;

impl sea_orm_migration::MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261216_900001_outbox"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for Migration {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        crate::db::execute_schema(manager.get_connection(), &CREATE).await
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP TABLE IF EXISTS outbox; DROP TABLE IF EXISTS outbox_head").await?;
        Ok(())
    }
}

/// Relayed rows, as they age (`prune::pruner` deletes them past a retention).
pub const RELAYED: crate::prune::Aged = crate::prune::Aged { table: "outbox", key: "sequence", time: "relayed_at" };

/// Appends `events` in the caller's transaction; returns how many were new (an event whose
/// id is already in the outbox is skipped, so a sink that forwards another outbox is
/// idempotent by id).
pub async fn append<C: ConnectionTrait>(txn: &C, events: &[Event]) -> Result<u64, DbErr> {
    use crate::db::{placeholders, rows_per_chunk};
    let backend = txn.get_database_backend();
    let mut added = 0;
    // Set-based: per chunk, one read of the ids already there, one advance of the head by
    // the chunk's new events, one multi-row insert (a fence revoking 15,000 leases writes
    // their events in a few statements, not three each).
    for chunk in events.chunks(rows_per_chunk(4)) {
        let ids: Vec<Value> = chunk.iter().map(|e| Value::from(e.id.clone())).collect();
        let sql = format!("SELECT id FROM outbox WHERE id IN ({})", placeholders(ids.len()));
        let mut seen = std::collections::HashSet::new();
        for row in txn.query_all_raw(stmt(backend, &sql, ids)).await? {
            seen.insert(row.try_get_by_index::<String>(0)?);
        }
        // An id twice in one call is one event, as it would be across two calls.
        let fresh: Vec<&Event> = chunk.iter().filter(|e| seen.insert(e.id.clone())).collect();
        if fresh.is_empty() {
            continue;
        }
        let head = txn
            .query_one_raw(stmt(
                backend,
                "UPDATE outbox_head SET sequence = sequence + ? WHERE id = 1 RETURNING sequence",
                [Value::BigInt(Some(fresh.len() as i64))],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("outbox_head: the outbox migration did not run".into()))?;
        let last: i64 = head.try_get_by_index(0)?;
        let first = last - fresh.len() as i64 + 1;
        let now = now_micros();
        let mut values = Vec::with_capacity(fresh.len() * 4);
        for (event, sequence) in fresh.iter().zip(first..) {
            let body = serde_json::to_string(event).map_err(|e| DbErr::Custom(e.to_string()))?;
            values.extend([Value::BigInt(Some(sequence)), Value::from(event.id.clone()), Value::from(body), Value::BigInt(Some(now))]);
        }
        let rows = vec!["(?, ?, ?, ?)"; fresh.len()].join(", ");
        txn.execute_raw(stmt(backend, &format!("INSERT INTO outbox (sequence, id, body, created_at) VALUES {rows}"), values)).await?;
        added += fresh.len() as u64;
    }
    Ok(added)
}

/// Up to `limit` unrelayed events, lowest sequence first.
pub async fn unrelayed<C: ConnectionTrait>(db: &C, limit: u64) -> Result<Vec<Stored>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            "SELECT sequence, body FROM outbox WHERE relayed_at IS NULL ORDER BY sequence LIMIT ?",
            [Value::BigInt(Some(limit as i64))],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let body: String = r.try_get_by_index(1)?;
            let event = serde_json::from_str(&body).map_err(|e| DbErr::Custom(format!("outbox row: {e}")))?;
            Ok(Stored { sequence: r.try_get_by_index(0)?, event })
        })
        .collect()
}

/// Marks events `first..=last` relayed.
pub async fn mark_relayed<C: ConnectionTrait>(db: &C, first: i64, last: i64) -> Result<u64, DbErr> {
    Ok(db
        .execute_raw(stmt(
            db.get_database_backend(),
            "UPDATE outbox SET relayed_at = ? WHERE sequence >= ? AND sequence <= ? AND relayed_at IS NULL",
            [Value::BigInt(Some(now_micros())), Value::BigInt(Some(first)), Value::BigInt(Some(last))],
        ))
        .await?
        .rows_affected())
}

/// How the relay paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Rows handed to the sink at once.
    pub batch: u64,
    /// The wait when nothing is waiting.
    pub idle: Duration,
    /// The first wait after a failure; doubled per failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Self { batch: 100, idle: Duration::from_millis(100), min_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(30) }
    }
}

/// The relay, forever: unrelayed events in sequence order go to `sink` a batch at a time;
/// a batch is marked relayed once `sink` returned `Ok`. On a failure (the sink's, or the
/// database's) it waits with exponential backoff and hands the same batch again. Idle, it
/// looks again after `pace.idle`, or at once when `wake` is notified (after a commit that
/// appended, in this process).
pub async fn relay<S, F, E>(db: DatabaseConnection, name: &'static str, pace: Pace, wake: Arc<Notify>, sink: S)
where
    S: Fn(Vec<Stored>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let mut failures: u32 = 0;
    loop {
        let wait = match relay_once(&db, pace.batch, &sink).await {
            Ok(0) => {
                failures = 0;
                idle(&wake, pace.idle).await;
                continue;
            }
            Ok(_) => {
                failures = 0;
                continue;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = backoff(pace.min_backoff, pace.max_backoff, failures);
                tracing::warn!(outbox = name, failures, error = %e, retry_in_ms = wait.as_millis() as u64, "outbox relay failed");
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Waits `d`, or less when `wake` is notified (a notification while nobody waits is kept
/// for the next wait, so none is lost).
pub async fn idle(wake: &Notify, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = wake.notified() => {}
    }
}

/// One batch: how many events were relayed.
pub async fn relay_once<S, F, E>(db: &DatabaseConnection, batch: u64, sink: &S) -> Result<usize, String>
where
    S: Fn(Vec<Stored>) -> F,
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let rows = unrelayed(db, batch).await.map_err(|e| format!("read: {e}"))?;
    let (Some(first), Some(last)) = (rows.first().map(|r| r.sequence), rows.last().map(|r| r.sequence)) else {
        return Ok(0);
    };
    let n = rows.len();
    sink(rows).await.map_err(|e| format!("sink: {e}"))?;
    mark_relayed(db, first, last).await.map_err(|e| format!("mark: {e}"))?;
    Ok(n)
}

/// `min · 2^(failures−1)`, at most `max`.
pub fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.saturating_sub(1).min(30)).unwrap_or(u32::MAX);
    min.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(backoff(min, max, 1), min);
        assert_eq!(backoff(min, max, 2), Duration::from_millis(200));
        assert_eq!(backoff(min, max, 4), Duration::from_millis(800));
        assert_eq!(backoff(min, max, 5), max);
        assert_eq!(backoff(min, max, 500), max);
    }
}
