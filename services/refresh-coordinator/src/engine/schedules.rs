//! Schedules of runs: the `schedules` table (every kind; the schedule as one JSON
//! document beside its next due time and a lease), their operations, and the scheduler
//! that starts a run when one is due.
//!
//! A due time is claimed with a lease (as runs are: `FOR UPDATE SKIP LOCKED` on PostgreSQL,
//! a conditional UPDATE on SQLite), so one coordinator handles it; the start it makes
//! carries the request id `schedule-{id}-{due}`, so a coordinator that took the due time
//! over from one that stopped mid-start gets the first start's run back instead of a
//! second run. Times missed while no coordinator ran start one run: the oldest is handled
//! and the next due time is the first one after now.

use std::collections::HashMap;
use std::fmt::Debug;

use ferry_kit::db::now_micros;
use ferry_kit::idempotency::RequestKey;
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Engine, Kind};
use crate::domain::Schedule;
use crate::error::{Error, Result, RunError};
use crate::store::{all, exec, one};

/// A run kind that schedules can start.
pub trait Scheduled: Kind {
    /// What a due time starts.
    type Request: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static;
    /// The schedule collection: schedules are named `{SCHEDULES}/{id}`.
    const SCHEDULES: &'static str;
    /// The fields of the request (in its stored JSON) that hold the environment ids a
    /// schedule concerns: a scoped caller lists the schedules whose every one is in scope.
    const ENVIRONMENT_FIELDS: &'static [&'static str];
    /// Starts the run a due time asks for, as `actor`, with `key`; the run's name.
    fn start_scheduled(engine: &Engine, request: Self::Request, actor: String, key: RequestKey) -> BoxFuture<'_, Result<String>>;
}

/// A schedule of kind `K`.
pub type ScheduleOf<K> = Schedule<<K as Scheduled>::Request>;

/// Starts the runs of one kind's schedules (the object-safe face of a [`Scheduled`]).
pub(super) trait Starts: Send + Sync {
    fn start<'a>(&'a self, engine: &'a Engine, body: &'a str, key: RequestKey) -> BoxFuture<'a, Result<String>>;
}

pub(super) struct Starter<K>(pub std::marker::PhantomData<K>);

impl<K: Scheduled> Starts for Starter<K> {
    fn start<'a>(&'a self, engine: &'a Engine, body: &'a str, key: RequestKey) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let schedule: ScheduleOf<K> = serde_json::from_str(body)?;
            let actor = format!("{}/{}", K::SCHEDULES, schedule.id);
            K::start_scheduled(engine, schedule.request, actor, key).await
        })
    }
}

pub(super) type Starters = HashMap<&'static str, Box<dyn Starts>>;

struct Row {
    kind: String,
    body: String,
    version: i64,
}

fn read(row: &QueryResult) -> Result<Row, DbErr> {
    Ok(Row { kind: row.try_get_by_index(0)?, body: row.try_get_by_index(1)?, version: row.try_get_by_index(2)? })
}

async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Row>, DbErr> {
    one(db, "SELECT kind, body, version FROM schedules WHERE id = ?", vec![id.into()]).await?.map(|r| read(&r)).transpose()
}

/// Writes `body` if the row is still at `version`; whether it was written.
async fn save<C: ConnectionTrait, R: Serialize>(db: &C, s: &Schedule<R>, version: i64) -> Result<bool> {
    let n = exec(
        db,
        "UPDATE schedules SET body = ?, next_due = ?, deleted_at = ?, version = version + 1 WHERE id = ? AND version = ?",
        vec![serde_json::to_string(s)?.into(), s.next_due.into(), s.delete_time.into(), s.id.as_str().into(), version.into()],
    )
    .await?;
    Ok(n == 1)
}

/// Claims one schedule whose due time has come, for `owner` until `until`.
async fn claim<C: ConnectionTrait>(db: &C, owner: &str, now: i64, until: i64) -> Result<Option<String>, DbErr> {
    let pick = "SELECT id FROM schedules WHERE next_due <= ? AND lease_until < ? AND deleted_at IS NULL ORDER BY next_due LIMIT 1";
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let sql = format!(
                "WITH pick AS ({pick} FOR UPDATE SKIP LOCKED) UPDATE schedules SET lease_owner = ?, lease_until = ? \
                 FROM pick WHERE schedules.id = pick.id RETURNING schedules.id"
            );
            let row = one(db, &sql, vec![now.into(), now.into(), owner.into(), until.into()]).await?;
            row.map(|r| r.try_get_by_index(0)).transpose()
        }
        _ => {
            let Some(row) = one(db, pick, vec![now.into(), now.into()]).await? else { return Ok(None) };
            let id: String = row.try_get_by_index(0)?;
            let n = exec(
                db,
                "UPDATE schedules SET lease_owner = ?, lease_until = ? WHERE id = ? AND lease_until < ?",
                vec![owner.into(), until.into(), id.as_str().into(), now.into()],
            )
            .await?;
            Ok((n == 1).then_some(id))
        }
    }
}

/// Gives a claimed schedule back; it may be claimed again from `from`.
async fn release<C: ConnectionTrait>(db: &C, id: &str, owner: &str, from: i64) -> Result<(), DbErr> {
    exec(db, "UPDATE schedules SET lease_until = ? WHERE id = ? AND lease_owner = ?", vec![from.into(), id.into(), owner.into()]).await?;
    Ok(())
}

/// Ends the schedule leases `holder` still holds (see `leases::expire_held_by`).
pub async fn expire_held_by<C: ConnectionTrait>(db: &C, holder: &str) -> Result<u64, DbErr> {
    exec(db, "UPDATE schedules SET lease_until = 0 WHERE lease_owner = ? AND lease_until > 0", vec![holder.into()]).await
}

impl Engine {
    fn schedule_name<K: Scheduled>(id: &str) -> String {
        format!("{}/{id}", K::SCHEDULES)
    }

    /// Creates `schedule` (its next due time computed here), as the call `method`.
    pub async fn create_schedule<K: Scheduled>(
        &self,
        mut schedule: ScheduleOf<K>,
        key: Option<RequestKey>,
        method: &'static str,
    ) -> Result<ScheduleOf<K>> {
        let now = now_micros();
        (schedule.create_time, schedule.update_time, schedule.revision) = (now, now, 1);
        schedule.next_due = schedule.due_after(now);
        let name = Self::schedule_name::<K>(&schedule.id);
        let id = self
            .write(key.as_ref(), method, move |txn| {
                Box::pin(async move {
                    if let Some(existing) = find(txn, &schedule.id).await? {
                        let deleted = serde_json::from_str::<ScheduleOf<K>>(&existing.body).ok().and_then(|s| s.delete_time).is_some();
                        let hint = if deleted { " (deleted: undelete it, or choose another id)" } else { "" };
                        return Err(Error::AlreadyExists { resource: "schedule", message: format!("{name} already exists{hint}"), name });
                    }
                    exec(
                        txn,
                        "INSERT INTO schedules (id, kind, body, next_due, lease_owner, lease_until, version, created_at, deleted_at) \
                         VALUES (?, ?, ?, ?, '', 0, 1, ?, NULL)",
                        vec![
                            schedule.id.as_str().into(),
                            K::KIND.into(),
                            serde_json::to_string(&schedule)?.into(),
                            schedule.next_due.into(),
                            schedule.create_time.into(),
                        ],
                    )
                    .await?;
                    Ok(schedule.id)
                })
            })
            .await?;
        self.get_schedule::<K>(&id).await
    }

    async fn stored_schedule<K: Scheduled>(&self, db: &impl ConnectionTrait, id: &str) -> Result<(ScheduleOf<K>, i64)> {
        match find(db, id).await? {
            Some(row) if row.kind == K::KIND => Ok((serde_json::from_str(&row.body)?, row.version)),
            _ => Err(Error::not_found("schedule", Self::schedule_name::<K>(id))),
        }
    }

    /// A schedule, deleted or not.
    pub async fn schedule_any<K: Scheduled>(&self, id: &str) -> Result<ScheduleOf<K>> {
        Ok(self.stored_schedule::<K>(self.db(), id).await?.0)
    }

    /// A schedule that is not deleted.
    pub async fn get_schedule<K: Scheduled>(&self, id: &str) -> Result<ScheduleOf<K>> {
        let (s, _) = self.stored_schedule::<K>(self.db(), id).await?;
        if s.delete_time.is_some() {
            return Err(Error::not_found("schedule", Self::schedule_name::<K>(id)));
        }
        Ok(s)
    }

    /// A page of schedules of kind `K` by id, after `after`.
    /// A page of schedules by id, only those whose environments are all in `scope`.
    pub async fn list_schedules<K: Scheduled>(
        &self,
        show_deleted: bool,
        after: Option<&str>,
        limit: u64,
        scope: ferry_kit::db::Scope<'_>,
    ) -> Result<Vec<ScheduleOf<K>>> {
        let mut sql = "SELECT kind, body, version FROM schedules WHERE kind = ?".to_owned();
        let mut values: Vec<Value> = vec![K::KIND.into()];
        if !show_deleted {
            sql.push_str(" AND deleted_at IS NULL");
        }
        for field in K::ENVIRONMENT_FIELDS {
            let id = match self.db().get_database_backend() {
                sea_orm::DbBackend::Postgres => format!("(body::jsonb #>> '{{request,{field}}}')"),
                _ => format!("json_extract(body, '$.request.{field}')"),
            };
            ferry_kit::db::and_in_scope(&mut sql, &mut values, ferry_kit::db::ScopedBy::Id(&id), scope);
        }
        if let Some(a) = after {
            sql.push_str(" AND id > ?");
            values.push(a.into());
        }
        sql.push_str(" ORDER BY id LIMIT ?");
        values.push((limit as i64).into());
        let rows = all(self.db(), &sql, values).await?;
        rows.iter().map(|r| Ok(serde_json::from_str(&read(r)?.body)?)).collect()
    }

    /// Changes schedule `id` (deleted ones too: `change` decides) in one transaction as the
    /// call `method`; `change` says whether it changed anything. The next due time is
    /// computed again after a change.
    pub async fn change_schedule<K, F>(&self, id: &str, key: Option<RequestKey>, method: &'static str, change: F) -> Result<ScheduleOf<K>>
    where
        K: Scheduled,
        F: FnOnce(&mut ScheduleOf<K>) -> Result<bool> + Send + 'static,
    {
        let id_owned = id.to_owned();
        let engine = self.clone();
        let out: ScheduleOf<K> = self
            .write(key.as_ref(), method, move |txn| {
                Box::pin(async move {
                    let (mut s, version) = engine.stored_schedule::<K>(txn, &id_owned).await?;
                    if change(&mut s)? {
                        let now = now_micros();
                        s.update_time = now;
                        s.revision += 1;
                        s.next_due = s.due_after(now);
                        if !save(txn, &s, version).await? {
                            return Err(Error::Aborted("the schedule changed concurrently; retry".into()));
                        }
                    }
                    Ok(s)
                })
            })
            .await?;
        Ok(out)
    }

    /// Handles one due schedule, if one is due: claims it, starts its run (or records why
    /// none started), sets the next due time. Whether one was handled.
    pub(super) async fn handle_due(&self, starters: &Starters) -> Result<bool> {
        let owner = self.settings().owner.clone();
        let now = now_micros();
        let Some(id) = claim(self.db(), &owner, now, now + self.settings().lease.as_micros() as i64).await? else { return Ok(false) };
        let Some(row) = find(self.db(), &id).await? else { return Ok(true) };
        let Some(starter) = starters.get(row.kind.as_str()) else {
            tracing::error!(schedule = %id, kind = %row.kind, "a schedule of a kind this coordinator does not start");
            release(self.db(), &id, &owner, now + 60_000_000).await?;
            return Ok(true);
        };
        let due: Option<i64> = serde_json::from_str::<Schedule<serde_json::Value>>(&row.body)?.next_due;
        let Some(due) = due.filter(|d| *d <= now) else {
            release(self.db(), &id, &owner, 0).await?;
            return Ok(true);
        };
        let key = RequestKey { request_id: format!("schedule-{id}-{due}"), fingerprint: format!("schedule:{}:{id}:{due}", row.kind) };
        let outcome = starter.start(self, &row.body, key).await;
        let (run, skipped) = match outcome {
            Ok(run) => {
                tracing::info!(schedule = %id, run = %run, "scheduled run started");
                (run, String::new())
            }
            Err(e) if e.is_transient() || e.interrupts() => {
                // Not reachable now: the same due time is tried again shortly.
                tracing::warn!(schedule = %id, error = %e, "starting a scheduled run failed; trying again");
                release(self.db(), &id, &owner, now_micros() + 5_000_000).await?;
                return Ok(true);
            }
            Err(e) => {
                let reason = e.info().message;
                tracing::info!(schedule = %id, reason = %reason, "scheduled run skipped");
                (String::new(), reason)
            }
        };
        // Record what came of the due time; a person's change meanwhile (a pause) stays.
        loop {
            let Some(row) = find(self.db(), &id).await? else { return Ok(true) };
            let mut s: Schedule<serde_json::Value> = serde_json::from_str(&row.body)?;
            s.last_due = Some(due);
            if !run.is_empty() {
                s.last_run.clone_from(&run);
            }
            s.last_skip_reason.clone_from(&skipped);
            if s.next_due.is_some_and(|d| d <= due) {
                s.next_due = s.due_after(now_micros().max(due));
            }
            let txn = ferry_kit::db::begin(self.db()).await?;
            if save(&txn, &s, row.version).await? {
                release(&txn, &id, &owner, 0).await?;
                txn.commit().await?;
                return Ok(true);
            }
        }
    }
}

/// The scheduler: handles due schedules until none is due, then waits `poll`.
pub(super) async fn main_loop(engine: Engine, starters: std::sync::Arc<Starters>) {
    loop {
        loop {
            match engine.handle_due(&starters).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "handling due schedules failed");
                    break;
                }
            }
        }
        tokio::time::sleep(engine.settings().poll).await;
    }
}
