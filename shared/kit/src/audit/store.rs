//! The audit tables every service's database holds: `audit_events`, and `audit_head`, one
//! row with the last event's sequence and hash. Appending moves the head first (an
//! UPDATE … RETURNING, which takes the head's row lock on PostgreSQL and the write lock
//! on SQLite), so concurrent transactions append one after another and the chain never
//! forks; the lock is held from the append, at the end of a mutation, to its commit.

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{Event, GENESIS};
use crate::db::{like_literal, now_micros, stmt};

const CREATE: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS audit_events (
        sequence BIGINT NOT NULL PRIMARY KEY,
        time BIGINT NOT NULL,
        service TEXT NOT NULL,
        subject TEXT NOT NULL,
        on_behalf_of TEXT NOT NULL,
        credential TEXT NOT NULL,
        method TEXT NOT NULL,
        resources TEXT NOT NULL,
        request_id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        run TEXT NOT NULL,
        step TEXT NOT NULL,
        previous_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS audit_events_by_time ON audit_events (time)",
    "CREATE INDEX IF NOT EXISTS audit_events_by_run ON audit_events (run, sequence) WHERE run <> ''",
    "CREATE TABLE IF NOT EXISTS audit_head (id INTEGER NOT NULL PRIMARY KEY, sequence BIGINT NOT NULL, hash TEXT NOT NULL)",
];

/// The migration every service runs: the tables, and the head before any event.
pub struct Migration;

impl sea_orm_migration::MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_900001_audit_log"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for Migration {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in CREATE {
            db.execute_unprepared(sql).await?;
        }
        db.execute_raw(stmt(
            db.get_database_backend(),
            "INSERT INTO audit_head (id, sequence, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING",
            [Value::from(GENESIS)],
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP TABLE IF EXISTS audit_events; DROP TABLE IF EXISTS audit_head").await?;
        Ok(())
    }
}

const COLUMNS: &str = "sequence, time, service, subject, on_behalf_of, credential, method, resources, request_id, trace_id, outcome, run, step, previous_hash, hash";

/// Appends `event` at the head of the chain (its sequence, time and hashes are set here).
pub async fn append<C: ConnectionTrait>(db: &C, mut event: Event) -> Result<Event, DbErr> {
    let backend = db.get_database_backend();
    let head = db
        .query_one_raw(stmt(backend, "UPDATE audit_head SET sequence = sequence + 1 WHERE id = 1 RETURNING sequence, hash", []))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_head: the audit log migration did not run".into()))?;
    event.sequence = head.try_get_by_index(0)?;
    event.previous_hash = head.try_get_by_index(1)?;
    // After the head moved, so times follow the chain's order.
    event.time = now_micros();
    event.hash = event.digest();
    db.execute_raw(stmt(backend, "UPDATE audit_head SET hash = ? WHERE id = 1", [Value::from(event.hash.clone())])).await?;
    let resources = serde_json::to_string(&event.resources).map_err(|e| DbErr::Custom(e.to_string()))?;
    db.execute_raw(stmt(
        backend,
        &format!("INSERT INTO audit_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        [
            Value::BigInt(Some(event.sequence)),
            Value::BigInt(Some(event.time)),
            Value::from(event.service.clone()),
            Value::from(event.subject.clone()),
            Value::from(event.on_behalf_of.clone()),
            Value::from(event.credential.clone()),
            Value::from(event.method.clone()),
            Value::from(resources),
            Value::from(event.request_id.clone()),
            Value::from(event.trace_id.clone()),
            Value::from(event.outcome.clone()),
            Value::from(event.run.clone()),
            Value::from(event.step.clone()),
            Value::from(event.previous_hash.clone()),
            Value::from(event.hash.clone()),
        ],
    ))
    .await?;
    Ok(event)
}

/// Appends `event` in a transaction of its own.
pub async fn append_alone(db: &sea_orm::DatabaseConnection, event: Event) -> Result<Event, DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    let event = append(&txn, event).await?;
    txn.commit().await?;
    Ok(event)
}

/// The last event's sequence and hash (0 and [`GENESIS`] before the first).
pub async fn head<C: ConnectionTrait>(db: &C) -> Result<(i64, String), DbErr> {
    let row = db
        .query_one_raw(stmt(db.get_database_backend(), "SELECT sequence, hash FROM audit_head WHERE id = 1", []))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_head: the audit log migration did not run".into()))?;
    Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?))
}

/// Which events a list returns; every filter set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Filter {
    /// Microseconds, inclusive.
    pub start_time: Option<i64>,
    /// Microseconds, exclusive.
    pub end_time: Option<i64>,
    /// The subject, or the caller a service acted for.
    pub subject: Option<String>,
    pub resource_prefix: Option<String>,
    /// The full method (with a `/`) or its last part.
    pub method: Option<String>,
    pub outcome: Option<String>,
    /// The first sequence to return.
    pub start_sequence: i64,
    /// A run's name.
    pub run: Option<String>,
}

/// Every event that passes `filter`, oldest first, read in pages of 1,000 (for a run's
/// events, which are few).
pub async fn all<C: ConnectionTrait>(db: &C, filter: &Filter) -> Result<Vec<Event>, DbErr> {
    let mut out: Vec<Event> = Vec::new();
    loop {
        let page = list(db, filter, out.last().map_or(0, |e| e.sequence), 1000).await?;
        let done = page.len() < 1000;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// Up to `limit` events after sequence `after` that pass `filter`, oldest first.
pub async fn list<C: ConnectionTrait>(db: &C, filter: &Filter, after: i64, limit: u64) -> Result<Vec<Event>, DbErr> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE sequence > ?");
    let mut values = vec![Value::BigInt(Some(after.max(filter.start_sequence - 1)))];
    if let Some(t) = filter.start_time {
        sql.push_str(" AND time >= ?");
        values.push(Value::BigInt(Some(t)));
    }
    if let Some(t) = filter.end_time {
        sql.push_str(" AND time < ?");
        values.push(Value::BigInt(Some(t)));
    }
    if let Some(s) = &filter.subject {
        sql.push_str(" AND (subject = ? OR on_behalf_of = ?)");
        values.extend([Value::from(s.clone()), Value::from(s.clone())]);
    }
    if let Some(p) = &filter.resource_prefix {
        // The resources are a JSON array of names: a name starting with the prefix is
        // `"` and the prefix, JSON-escaped, somewhere in it.
        let quoted = serde_json::to_string(p).map_err(|e| DbErr::Custom(e.to_string()))?;
        let open = &quoted[..quoted.len() - 1];
        sql.push_str(" AND resources LIKE ? ESCAPE '\\'");
        values.push(Value::from(format!("%{}%", like_literal(open))));
    }
    match filter.method.as_deref() {
        Some(m) if m.contains('/') => {
            sql.push_str(" AND method = ?");
            values.push(Value::from(m));
        }
        Some(m) => {
            sql.push_str(" AND method LIKE ? ESCAPE '\\'");
            values.push(Value::from(format!("%/{}", like_literal(m))));
        }
        None => {}
    }
    if let Some(r) = &filter.run {
        sql.push_str(" AND run = ?");
        values.push(Value::from(r.clone()));
    }
    if let Some(o) = &filter.outcome {
        sql.push_str(" AND outcome = ?");
        values.push(Value::from(o.clone()));
    }
    sql.push_str(&format!(" ORDER BY sequence LIMIT {limit}"));
    let rows = db.query_all_raw(stmt(db.get_database_backend(), &sql, values)).await?;
    rows.iter()
        .map(|r| {
            let resources: String = r.try_get_by_index(7)?;
            Ok(Event {
                sequence: r.try_get_by_index(0)?,
                time: r.try_get_by_index(1)?,
                service: r.try_get_by_index(2)?,
                subject: r.try_get_by_index(3)?,
                on_behalf_of: r.try_get_by_index(4)?,
                credential: r.try_get_by_index(5)?,
                method: r.try_get_by_index(6)?,
                resources: serde_json::from_str(&resources).map_err(|e| DbErr::Custom(format!("audit event resources: {e}")))?,
                request_id: r.try_get_by_index(8)?,
                trace_id: r.try_get_by_index(9)?,
                outcome: r.try_get_by_index(10)?,
                run: r.try_get_by_index(11)?,
                step: r.try_get_by_index(12)?,
                previous_hash: r.try_get_by_index(13)?,
                hash: r.try_get_by_index(14)?,
            })
        })
        .collect()
}
