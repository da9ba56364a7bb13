//! The runs table (every kind; the run document in `body`) and the subjects runs are
//! listed by.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use serde::Serialize;

use super::{Kind, RunOf};
use crate::domain::{AbortRequest, RunState};
use crate::error::Result;
use crate::store::{all, exec, one};

/// A stored run: its document and what is kept beside it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub kind: String,
    pub body: String,
    pub version: i64,
    /// An abort asked while a driver held the run; the driver takes it over.
    pub abort_request: Option<AbortRequest>,
    /// The W3C trace context of the call that started the run.
    pub traceparent: Option<String>,
    pub created_at: i64,
}

impl Stored {
    /// The run document of kind `K`.
    pub fn run<K: Kind>(&self) -> Result<RunOf<K>> {
        Ok(serde_json::from_str(&self.body)?)
    }
}

const COLS: &str = "id, kind, body, version, abort_request, traceparent, created_at";

fn read(row: &QueryResult) -> Result<Stored, DbErr> {
    let abort: Option<String> = row.try_get_by_index(4)?;
    Ok(Stored {
        id: row.try_get_by_index(0)?,
        kind: row.try_get_by_index(1)?,
        body: row.try_get_by_index(2)?,
        version: row.try_get_by_index(3)?,
        abort_request: abort
            .map(|a| serde_json::from_str(&a))
            .transpose()
            .map_err(|e| DbErr::Custom(format!("stored abort request: {e}")))?,
        traceparent: row.try_get_by_index(5)?,
        created_at: row.try_get_by_index(6)?,
    })
}

pub fn body<T: Serialize>(run: &T) -> Result<String> {
    Ok(serde_json::to_string(run)?)
}

/// A run about to be inserted.
pub struct NewRun<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub created_at: i64,
    pub state: RunState,
    pub body: &'a str,
    /// What it is listed by.
    pub subjects: &'a [String],
    pub traceparent: Option<&'a str>,
}

/// Inserts a new run.
pub async fn insert<C: ConnectionTrait>(db: &C, run: NewRun<'_>) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO runs (id, kind, created_at, state, version, lease_owner, lease_until, heartbeat_at, abort_request, body, traceparent) \
         VALUES (?, ?, ?, ?, 1, '', 0, 0, NULL, ?, ?)",
        vec![
            run.id.into(),
            run.kind.into(),
            run.created_at.into(),
            run.state.number().into(),
            run.body.into(),
            run.traceparent.map(str::to_owned).into(),
        ],
    )
    .await?;
    for s in run.subjects {
        exec(db, "INSERT INTO run_subjects (subject, run_id) VALUES (?, ?) ON CONFLICT DO NOTHING", vec![s.as_str().into(), run.id.into()])
            .await?;
    }
    Ok(())
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Stored>, DbErr> {
    one(db, &format!("SELECT {COLS} FROM runs WHERE id = ?"), vec![id.into()]).await?.map(|r| read(&r)).transpose()
}

/// Writes `body` if the row is still at `version`; whether it was written.
pub async fn save<C: ConnectionTrait>(db: &C, id: &str, body: &str, state: RunState, version: i64) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE runs SET body = ?, state = ?, version = version + 1 WHERE id = ? AND version = ?",
        vec![body.into(), state.number().into(), id.into(), version.into()],
    )
    .await?;
    Ok(n == 1)
}

/// Runs of `kind`, newest first, after the cursor `(created_at, id)`.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    kind: &str,
    states: &[RunState],
    subject: Option<&str>,
    after: Option<&(i64, String)>,
    limit: u64,
) -> Result<Vec<Stored>, DbErr> {
    let mut sql = format!("SELECT {COLS} FROM runs WHERE kind = ?");
    let mut values: Vec<Value> = vec![kind.into()];
    if !states.is_empty() {
        sql.push_str(&format!(" AND state IN ({})", ferry_kit::db::placeholders(states.len())));
        values.extend(states.iter().map(|s| Value::from(s.number())));
    }
    if let Some(subject) = subject {
        sql.push_str(" AND id IN (SELECT run_id FROM run_subjects WHERE subject = ?)");
        values.push(subject.into());
    }
    if let Some((t, id)) = after {
        sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        values.extend([Value::from(*t), Value::from(*t), Value::from(id.as_str())]);
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push((limit as i64).into());
    all(db, &sql, values).await?.iter().map(read).collect()
}

/// Records an abort asked of a run a driver holds (the first one asked counts).
pub async fn request_abort<C: ConnectionTrait>(db: &C, id: &str, request: &AbortRequest) -> Result<()> {
    let json = serde_json::to_string(request)?;
    exec(db, "UPDATE runs SET abort_request = ? WHERE id = ? AND abort_request IS NULL", vec![json.into(), id.into()]).await?;
    Ok(())
}
