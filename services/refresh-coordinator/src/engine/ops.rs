//! The run operations every kind shares: start, get, list, confirm, retry, abort, each a
//! transaction with `request_id` replay. A run's locks are taken in the transaction that
//! creates it.

use ferry_kit::idempotency::{self, RequestKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::store::{self, Stored};
use super::{Engine, Kind, RunOf, audit_step, locks, name_of};
use crate::domain::approval::{self, Confirmer};
use crate::domain::{AbortRequest, RunState, StepState};
use crate::error::{Error, Result};

/// FAILED_PRECONDITION naming the run that holds what a start needs.
pub fn locked(held: locks::Held) -> Error {
    let kind = if held.resource.contains("/projects/") { "PROJECT_LOCKED" } else { "ENVIRONMENT_LOCKED" };
    let description = format!("{} is held by {}; wait for it to end, or retry or abort it", held.resource, held.run);
    Error::unmet(kind, held.run, description)
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<RunState>,
    /// An environment or project name the runs concern.
    pub subject: Option<String>,
    /// Only runs whose environments are all among these ids (a scoped caller's).
    pub scope: Option<std::collections::BTreeSet<String>>,
}

/// A run as clients see it: an abort asked of a run a driver holds shows as ABORTING
/// until the driver reaches a safe point and takes it over.
fn view<K: Kind>(stored: &Stored) -> Result<RunOf<K>> {
    let mut run = stored.run::<K>()?;
    if let Some(request) = &stored.abort_request
        && !run.aborting()
        && matches!(run.state, RunState::Pending | RunState::Running)
    {
        run.state = RunState::Aborting;
        run.abort = Some(request.clone());
    }
    Ok(run)
}

impl Engine {
    /// Runs `work` in one transaction as the call `method`, with `request_id` replay.
    pub async fn write<T, F>(&self, key: Option<&RequestKey>, method: &'static str, work: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: for<'t> FnOnce(&'t sea_orm::DatabaseTransaction) -> idempotency::TxFuture<'t, T, Error> + Send,
    {
        idempotency::transaction(self.db(), key, method, work).await
    }

    /// The recorded reply of `key`, if this very request was answered before.
    pub async fn replayed<T: DeserializeOwned>(&self, key: Option<&RequestKey>, method: &str) -> Result<Option<T>> {
        let Some(k) = key else { return Ok(None) };
        match idempotency::lookup(self.db(), &k.request_id, method, &k.fingerprint).await? {
            idempotency::Replay::Done(bytes) => {
                ferry_kit::audit::replayed();
                Ok(Some(serde_json::from_slice(&bytes)?))
            }
            idempotency::Replay::Mismatch => Err(Error::RequestIdReused),
            idempotency::Replay::Fresh => Ok(None),
        }
    }

    /// FAILED_PRECONDITION when a run holds what any of `wanted` needs (what a plan
    /// checks; the start transaction takes the locks for real).
    pub async fn check_free(&self, wanted: &[locks::Lock]) -> Result<()> {
        for lock in wanted {
            if let Some(held) = locks::blocking(self.db(), lock).await? {
                return Err(locked(held));
            }
        }
        Ok(())
    }

    /// Creates `run` and takes its locks, in one transaction as the call `method`.
    pub async fn start<K: Kind>(&self, run: RunOf<K>, key: Option<RequestKey>, method: &'static str) -> Result<RunOf<K>> {
        if let Some(id) = self.replayed::<String>(key.as_ref(), method).await? {
            return self.get::<K>(&id).await;
        }
        ferry_kit::audit::run(&name_of::<K>(&run.id), "");
        // The driver executes the steps later, as children of this call's trace.
        let traceparent = ferry_kit::telemetry::current_traceparent();
        let body = store::body(&run)?;
        let events = super::events::of::<K>(&super::events::Seen::default(), &run);
        let id = self
            .write(key.as_ref(), method, move |txn| {
                Box::pin(async move {
                    locks::take(txn, &name_of::<K>(&run.id), &K::locks(&run.spec)).await?.map_err(locked)?;
                    let subjects = K::subjects(&run.spec);
                    let row = store::NewRun {
                        kind: K::KIND,
                        id: &run.id,
                        created_at: run.create_time,
                        state: run.state,
                        body: &body,
                        subjects: &subjects,
                        traceparent: traceparent.as_deref(),
                    };
                    store::insert(txn, row).await?;
                    ferry_kit::outbox::append(txn, &events).await?;
                    Ok(run.id)
                })
            })
            .await?;
        self.wake();
        self.get::<K>(&id).await
    }

    async fn stored<K: Kind>(&self, id: &str) -> Result<Stored> {
        match store::find(self.db(), id).await? {
            Some(s) if s.kind == K::KIND => Ok(s),
            _ => Err(Error::not_found(K::NOUN, name_of::<K>(id))),
        }
    }

    /// The audit events of run `id` in this coordinator's log, oldest first: the calls on
    /// it (refused ones too) and the driver's writes.
    pub async fn audit_of<K: Kind>(&self, id: &str) -> Result<Vec<ferry_kit::audit::Event>> {
        let filter = ferry_kit::audit::store::Filter { run: Some(name_of::<K>(id)), ..Default::default() };
        Ok(ferry_kit::audit::store::all(self.db(), &filter).await?)
    }

    pub async fn get<K: Kind>(&self, id: &str) -> Result<RunOf<K>> {
        let mut run = [view::<K>(&self.stored::<K>(id).await?)?];
        store::with_parts::<K>(self.db(), &mut run).await?;
        let [run] = run;
        Ok(run)
    }

    /// A page of runs of kind `K`, newest first, after the cursor `(create_time, id)`.
    pub async fn list<K: Kind>(&self, filter: &ListFilter, after: Option<&(i64, String)>, limit: u64) -> Result<Vec<RunOf<K>>> {
        let rows = store::list(self.db(), K::KIND, filter, after, limit).await?;
        let mut runs = rows.iter().map(view::<K>).collect::<Result<Vec<_>>>()?;
        store::with_parts::<K>(self.db(), &mut runs).await?;
        Ok(runs)
    }

    /// Changes a run that no driver holds (waiting, failed) in one transaction; `change`
    /// says whether it changed the document. When the run's driver wrote it between the
    /// read and the write, the whole transaction is done again on the newer document (a
    /// few times), so a caller's abort or confirmation never fails for a lost race.
    async fn update<K, F>(&self, id: &str, key: Option<&RequestKey>, method: &'static str, change: F) -> Result<RunOf<K>>
    where
        K: Kind,
        F: Fn(&mut RunOf<K>, &mut Option<AbortRequest>) -> Result<bool> + Clone + Send + 'static,
    {
        const RACED: &str = "the run changed concurrently; retry";
        const ATTEMPTS: usize = 8;
        for attempt in 1..=ATTEMPTS {
            let id_owned = id.to_owned();
            let change = change.clone();
            let done = self
                .write(key, method, move |txn| {
                    Box::pin(async move {
                        let stored = match store::find(txn, &id_owned).await? {
                            Some(s) if s.kind == K::KIND => s,
                            _ => return Err(Error::not_found(K::NOUN, name_of::<K>(&id_owned))),
                        };
                        let mut run = stored.run::<K>()?;
                        ferry_kit::audit::run(&name_of::<K>(&run.id), &audit_step::<K>(&run));
                        let mut abort_request = None;
                        let before = super::events::Seen::of::<K>(&run);
                        if change(&mut run, &mut abort_request)? {
                            if !store::save(txn, &run.id, &store::body(&run)?, run.state, stored.version).await? {
                                return Err(Error::Aborted(RACED.into()));
                            }
                            ferry_kit::outbox::append(txn, &super::events::of::<K>(&before, &run)).await?;
                        }
                        if let Some(request) = abort_request
                            && !store::request_abort(txn, &run.id, stored.version, &request).await?
                        {
                            return Err(Error::Aborted(RACED.into()));
                        }
                        Ok(())
                    })
                })
                .await;
            match done {
                Err(Error::Aborted(m)) if m == RACED && attempt < ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        self.wake();
        self.publish(id);
        self.get::<K>(id).await
    }

    /// Confirms step `number`, which the run waits on (an approval, an outside refresh).
    pub async fn confirm<K: Kind>(
        &self,
        id: &str,
        number: i32,
        who: Confirmer,
        comment: String,
        key: Option<RequestKey>,
        method: &'static str,
    ) -> Result<RunOf<K>> {
        let name = name_of::<K>(id);
        let four_eyes = self.settings().four_eyes;
        self.update::<K, _>(id, key.as_ref(), method, move |run, _| {
            let waiting = run.steps.iter().position(|s| s.state == StepState::WaitingForConfirmation);
            match waiting {
                Some(i) if i as i32 + 1 == number && run.state == RunState::Waiting => {
                    approval::may_confirm(four_eyes, &run.steps[i].waiting_for, &name, &run.created_by, &who)?;
                    let s = &mut run.steps[i];
                    s.confirmed = true;
                    s.state = StepState::Running;
                    s.actor = who.actor.clone();
                    s.comment = comment.clone();
                    s.log.push(format!("{} confirmed by {}", s.waiting_for, s.actor));
                    s.waiting_for.clear();
                    run.state = RunState::Running;
                    Ok(true)
                }
                Some(i) => Err(Error::unmet(
                    "STEP_NOT_WAITING",
                    format!("{name}/steps/{number}"),
                    format!("step {number} is not waiting for confirmation; step {} is", i + 1),
                )),
                None => Err(Error::unmet(
                    "STEP_NOT_WAITING",
                    format!("{name}/steps/{number}"),
                    format!("no step of {name} is waiting for confirmation"),
                )),
            }
        })
        .await
    }

    /// Resumes a FAILED run from its failed step, or its abort where it failed.
    pub async fn retry<K: Kind>(&self, id: &str, key: Option<RequestKey>, method: &'static str) -> Result<RunOf<K>> {
        let name = name_of::<K>(id);
        self.update::<K, _>(id, key.as_ref(), method, move |run, _| {
            if run.state != RunState::Failed {
                return Err(Error::unmet("RUN_NOT_FAILED", &name, format!("{name} is not FAILED")));
            }
            run.state = if run.aborting() { RunState::Aborting } else { RunState::Running };
            run.error = None;
            if !run.aborting() {
                for s in run.steps.iter_mut().filter(|s| s.state == StepState::Failed) {
                    s.state = StepState::Pending;
                    s.log.push("retried".into());
                }
            }
            Ok(true)
        })
        .await
    }

    /// Aborts a run: one that waits or failed starts undoing at once; one a driver holds
    /// is taken over by its driver at the next safe point.
    pub async fn abort<K: Kind>(&self, id: &str, request: AbortRequest, key: Option<RequestKey>, method: &'static str) -> Result<RunOf<K>> {
        let name = name_of::<K>(id);
        self.update::<K, _>(id, key.as_ref(), method, move |run, asked| match run.state {
            RunState::Succeeded => Err(Error::unmet("RUN_SUCCEEDED", &name, format!("{name} succeeded; there is nothing to abort"))),
            RunState::Aborted => Ok(false),
            // An abort that failed (say, a revert refused for changed entities): asking
            // again with `proceed_with_changed` resumes it, allowing that.
            RunState::Failed if run.abort.as_ref().is_some_and(|a| !a.proceed_with_changed) && request.proceed_with_changed => {
                if let Some(a) = run.abort.as_mut() {
                    a.proceed_with_changed = true;
                }
                run.state = RunState::Aborting;
                run.error = None;
                Ok(true)
            }
            _ if run.aborting() => Ok(false),
            RunState::Aborting => Ok(false),
            RunState::Waiting | RunState::Failed => {
                K::check_abort(run)?;
                run.begin_abort(request.clone());
                Ok(true)
            }
            RunState::Pending | RunState::Running => {
                K::check_abort(run)?;
                *asked = Some(request.clone());
                Ok(false)
            }
        })
        .await
    }
}
