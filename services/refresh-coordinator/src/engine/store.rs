//! The runs table (every kind; the run document in `body`), the subjects runs are listed
//! by, and the large parts of each step kept beside the document (`run_step_parts`: what a
//! step changed, so a transition does not rewrite every earlier step's changes).

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use serde::Serialize;

use super::{Kind, RunOf};
use crate::domain::{AbortRequest, Run, RunState, Step};
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
}

impl Stored {
    /// The run document of kind `K`.
    pub fn run<K: Kind>(&self) -> Result<RunOf<K>> {
        Ok(serde_json::from_str(&self.body)?)
    }
}

const COLS: &str = "id, kind, body, version, abort_request, traceparent";

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
    })
}

/// What tells a watcher whether a run changed, without reading it: its version (every
/// save moves it) and whether an abort is waiting for its driver; `None` when it is gone.
pub async fn stamp<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<(i64, bool)>, DbErr> {
    let sql = "SELECT version, CASE WHEN abort_request IS NULL THEN 0 ELSE 1 END FROM runs WHERE id = ?";
    match one(db, sql, vec![id.into()]).await? {
        Some(row) => Ok(Some((row.try_get_by_index(0)?, row.try_get_by_index::<i32>(1)? == 1))),
        None => Ok(None),
    }
}

/// The parts of a step kept beside the run document.
pub const PARTS: [&str; 3] = ["changes", "undo_changes", "left_alone"];

/// How long each part of each step is (what was last written of them, in a driver).
pub type PartLengths = Vec<[usize; 3]>;

/// A part to write: step number, part name, its JSON.
pub type Part = (i32, &'static str, String);

fn lengths<D>(s: &Step<D>) -> [usize; 3] {
    [s.changes.len(), s.undo_changes.len(), s.left_alone.len()]
}

fn part_json<D>(s: &Step<D>, part: usize) -> Result<String> {
    Ok(match part {
        0 => serde_json::to_string(&s.changes)?,
        1 => serde_json::to_string(&s.undo_changes)?,
        _ => serde_json::to_string(&s.left_alone)?,
    })
}

/// A step's parts: changes, undo changes, left alone.
pub type StepParts = (Vec<crate::domain::Change>, Vec<crate::domain::Change>, Vec<crate::domain::LeftAlone>);

/// Takes every step's parts out of `run`.
pub fn take_parts<S, D>(run: &mut Run<S, D>) -> Vec<StepParts> {
    run.steps
        .iter_mut()
        .map(|s| (std::mem::take(&mut s.changes), std::mem::take(&mut s.undo_changes), std::mem::take(&mut s.left_alone)))
        .collect()
}

/// Puts parts taken with [`take_parts`] back.
pub fn put_parts<S, D>(run: &mut Run<S, D>, parts: Vec<StepParts>) {
    for (s, (c, u, l)) in run.steps.iter_mut().zip(parts) {
        (s.changes, s.undo_changes, s.left_alone) = (c, u, l);
    }
}

/// The run document without the steps' parts, and the parts that changed since `written`
/// (step, part, JSON), which it then records as written.
pub fn split<S: Serialize, D: Serialize>(run: &mut Run<S, D>, written: &mut PartLengths) -> Result<(String, Vec<Part>)> {
    written.resize(run.steps.len(), [0; 3]);
    let mut parts = Vec::new();
    for (step, seen) in run.steps.iter().zip(written.iter_mut()) {
        let now = lengths(step);
        for i in 0..3 {
            // Changes and left alone of a step that derives them are in the journal.
            let derived = PARTS[i] != "undo_changes" && !step.derived.is_empty();
            if now[i] != seen[i] && now[i] > 0 && !derived {
                parts.push((step.number, PARTS[i], part_json(step, i)?));
            }
        }
        *seen = now;
    }
    let taken = take_parts(run);
    let body = serde_json::to_string(run);
    put_parts(run, taken);
    Ok((body?, parts))
}

/// Writes parts of run `id`'s steps (replacing what was there).
pub async fn save_parts<C: ConnectionTrait>(db: &C, id: &str, parts: &[Part]) -> Result<(), DbErr> {
    for (step, part, json) in parts {
        exec(
            db,
            "INSERT INTO run_step_parts (run_id, step, part, body) VALUES (?, ?, ?, ?) \
             ON CONFLICT (run_id, step, part) DO UPDATE SET body = excluded.body",
            vec![id.into(), (*step).into(), (*part).into(), json.as_str().into()],
        )
        .await?;
    }
    Ok(())
}

/// Puts the stored parts of `runs`' steps back into them, and derives those that are the
/// results of journaled operations (see `Step::derived`).
pub async fn with_parts<K: Kind>(db: &impl ConnectionTrait, runs: &mut [RunOf<K>]) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let ids: Vec<Value> = runs.iter().map(|r| Value::from(r.id.as_str())).collect();
    let sql = format!("SELECT run_id, step, part, body FROM run_step_parts WHERE run_id IN ({})", ferry_kit::db::placeholders(ids.len()));
    for row in &all(db, &sql, ids).await? {
        let (id, step, part, json): (String, i32, String, String) =
            (row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?, row.try_get_by_index(3)?);
        let Some(s) = runs.iter_mut().find(|r| r.id == id).and_then(|r| r.steps.get_mut(step as usize - 1)) else { continue };
        match part.as_str() {
            "changes" => s.changes = serde_json::from_str(&json)?,
            "undo_changes" => s.undo_changes = serde_json::from_str(&json)?,
            _ => s.left_alone = serde_json::from_str(&json)?,
        }
    }
    derive::<K>(db, runs).await
}

/// Derives the changes and left alone of the steps that name journal operations.
async fn derive<K: Kind>(db: &impl ConnectionTrait, runs: &mut [RunOf<K>]) -> Result<()> {
    let deriving: Vec<Value> =
        runs.iter().filter(|r| r.steps.iter().any(|s| !s.derived.is_empty())).map(|r| Value::from(r.id.as_str())).collect();
    if deriving.is_empty() {
        return Ok(());
    }
    let mut ops: Vec<&str> = runs.iter().flat_map(|r| r.steps.iter().flat_map(|s| s.derived.iter().map(String::as_str))).collect();
    ops.sort_unstable();
    ops.dedup();
    let sql = format!(
        "SELECT run_id, step, op, result FROM journal WHERE run_id IN ({}) AND op IN ({})",
        ferry_kit::db::placeholders(deriving.len()),
        ferry_kit::db::placeholders(ops.len())
    );
    let values = deriving.into_iter().chain(ops.iter().map(|o| Value::from(*o))).collect();
    let mut results: HashMap<(String, i32, String), String> = HashMap::new();
    for row in &all(db, &sql, values).await? {
        results.insert((row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?), row.try_get_by_index(3)?);
    }
    for run in runs.iter_mut() {
        for step in run.steps.iter_mut().filter(|s| !s.derived.is_empty()) {
            let found: Vec<&str> =
                step.derived.iter().filter_map(|op| results.get(&(run.id.clone(), step.number, op.clone())).map(String::as_str)).collect();
            K::derive(step, &found)?;
        }
    }
    Ok(())
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
    filter: &super::ops::ListFilter,
    after: Option<&(i64, String)>,
    limit: u64,
) -> Result<Vec<Stored>, DbErr> {
    let mut sql = format!("SELECT {COLS} FROM runs WHERE kind = ?");
    let mut values: Vec<Value> = vec![kind.into()];
    if !filter.states.is_empty() {
        sql.push_str(&format!(" AND state IN ({})", ferry_kit::db::placeholders(filter.states.len())));
        values.extend(filter.states.iter().map(|s| Value::from(s.number())));
    }
    if let Some(subject) = &filter.subject {
        sql.push_str(" AND id IN (SELECT run_id FROM run_subjects WHERE subject = ?)");
        values.push(subject.as_str().into());
    }
    if let Some(scope) = &filter.scope {
        // Every environment a run concerns is one of its subjects, named
        // `environments/{id}` (projects and runs it names have more after that).
        let outside =
            if scope.is_empty() { String::new() } else { format!(" AND subject NOT IN ({})", ferry_kit::db::placeholders(scope.len())) };
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM run_subjects WHERE run_id = runs.id AND subject LIKE 'environments/%' AND subject NOT LIKE 'environments/%/%'{outside})"
        ));
        values.extend(scope.iter().map(|e| Value::from(format!("environments/{e}"))));
    }
    if let Some((t, id)) = after {
        sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        values.extend([Value::from(*t), Value::from(*t), Value::from(id.as_str())]);
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push((limit as i64).into());
    all(db, &sql, values).await?.iter().map(read).collect()
}

/// Records an abort asked of a run a driver holds (the first one asked counts), if the
/// run is still at `version`: false when its driver moved it on meanwhile (it may have
/// stopped driving it, and would never see the request).
pub async fn request_abort<C: ConnectionTrait>(db: &C, id: &str, version: i64, request: &AbortRequest) -> Result<bool> {
    let json = serde_json::to_string(request)?;
    let sql = "UPDATE runs SET abort_request = COALESCE(abort_request, ?) WHERE id = ? AND version = ?";
    Ok(exec(db, sql, vec![json.into(), id.into(), version.into()]).await? > 0)
}
