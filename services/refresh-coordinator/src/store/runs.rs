//! Runs, their leases and the environment locks.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, exec, one};
use crate::domain::{EnvName, Run, RunState};

/// A stored run with the columns kept beside its document.
#[derive(Debug, Clone)]
pub struct Stored {
    pub run: Run,
    pub version: i64,
    pub abort_requested: bool,
    pub abort_reason: String,
    pub aborted_by: String,
    /// The W3C trace context of the call that started the run.
    pub traceparent: Option<String>,
}

const COLS: &str = "body, version, abort_requested, abort_reason, aborted_by, traceparent";

fn read(row: &QueryResult) -> Result<Stored, DbErr> {
    let body: String = row.try_get_by_index(0)?;
    let run = serde_json::from_str(&body).map_err(|e| DbErr::Custom(format!("stored run: {e}")))?;
    Ok(Stored {
        run,
        version: row.try_get_by_index(1)?,
        abort_requested: row.try_get_by_index(2)?,
        abort_reason: row.try_get_by_index(3)?,
        aborted_by: row.try_get_by_index(4)?,
        traceparent: row.try_get_by_index(5)?,
    })
}

fn body(run: &Run) -> Result<String, DbErr> {
    serde_json::to_string(run).map_err(|e| DbErr::Custom(format!("run: {e}")))
}

/// Inserts a new run; `traceparent` is the trace context of the call that started it.
pub async fn insert<C: ConnectionTrait>(db: &C, run: &Run, traceparent: Option<&str>) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO refresh_runs (id, created_at, source, destination, state, version, lease_owner, lease_until, \
         abort_requested, abort_reason, aborted_by, body, traceparent) VALUES (?, ?, ?, ?, ?, 1, '', 0, FALSE, '', '', ?, ?)",
        vec![
            run.name.id().into(),
            run.create_time.into(),
            run.source.id().into(),
            run.destination.id().into(),
            run.state.number().into(),
            body(run)?.into(),
            traceparent.map(str::to_owned).into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Stored>, DbErr> {
    one(db, &format!("SELECT {COLS} FROM refresh_runs WHERE id = ?"), vec![id.into()]).await?.map(|r| read(&r)).transpose()
}

/// Writes `run` if its row is still at `version`; whether it was written. The lease of
/// `owner` (if any) is extended to `lease_until`.
pub async fn save<C: ConnectionTrait>(db: &C, run: &Run, version: i64) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE refresh_runs SET body = ?, state = ?, version = version + 1 WHERE id = ? AND version = ?",
        vec![body(run)?.into(), run.state.number().into(), run.name.id().into(), version.into()],
    )
    .await?;
    Ok(n == 1)
}

/// Newest first, after the cursor `(created_at, id)`.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    states: &[RunState],
    environment: Option<&EnvName>,
    after: Option<&(i64, String)>,
    limit: u64,
) -> Result<Vec<Stored>, DbErr> {
    let mut sql = format!("SELECT {COLS}, created_at, id FROM refresh_runs WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    if !states.is_empty() {
        sql.push_str(&format!(" AND state IN ({})", ferry_kit::db::placeholders(states.len())));
        values.extend(states.iter().map(|s| Value::from(s.number())));
    }
    if let Some(env) = environment {
        sql.push_str(" AND (source = ? OR destination = ?)");
        values.push(env.id().into());
        values.push(env.id().into());
    }
    if let Some((t, id)) = after {
        sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        values.push((*t).into());
        values.push((*t).into());
        values.push(id.as_str().into());
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push((limit as i64).into());
    all(db, &sql, values).await?.iter().map(read).collect()
}

pub async fn request_abort<C: ConnectionTrait>(db: &C, id: &str, reason: &str, by: &str) -> Result<(), DbErr> {
    exec(
        db,
        "UPDATE refresh_runs SET abort_requested = TRUE, abort_reason = ?, aborted_by = ? WHERE id = ? AND abort_requested = FALSE",
        vec![reason.into(), by.into(), id.into()],
    )
    .await?;
    Ok(())
}
