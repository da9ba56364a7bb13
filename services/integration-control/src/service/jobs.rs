//! Sync jobs: create, pause (recording who), resume.

use ferry_kit::db::now_micros;

use super::events::emit_change;
use super::{Control, integration_row, job, page};
use crate::domain::{EnvName, IntegrationName, JobName, JobState, Page, RequestKey, ResourceState, ResourceType, SyncJob};
use crate::error::{Error, Result};
use crate::store;

#[derive(Debug)]
pub struct NewJob {
    pub name: JobName,
    pub display_name: String,
    /// Of the same environment (checked at the edge).
    pub integration: Option<IntegrationName>,
    pub schedule: String,
    pub paused: bool,
    /// Decided at the edge ([`crate::domain::job_is_external`]).
    pub external: bool,
}

impl Control {
    pub async fn create_job(&self, key: Option<RequestKey>, new: NewJob, actor: String) -> Result<SyncJob> {
        const M: &str = "CreateSyncJob";
        if !self.replayed(&key, M).await? {
            self.envs.exists(&new.name.env).await?;
        }
        self.write(key, M, move |txn| {
            Box::pin(async move {
                if let Some(i) = &new.integration {
                    integration_row(txn, i).await?;
                }
                if store::jobs::find(txn, &new.name).await?.is_some() {
                    return Err(Error::already_exists("sync job", &new.name));
                }
                let now = now_micros();
                let j = SyncJob {
                    name: new.name,
                    display_name: new.display_name,
                    external: new.external,
                    integration: new.integration.map(|i| i.id.as_str().to_owned()),
                    schedule: new.schedule,
                    state: if new.paused { JobState::Paused } else { JobState::Running },
                    paused_by: if new.paused { actor } else { String::new() },
                    pause_reason: String::new(),
                    pause_time: new.paused.then_some(now),
                    created_at: now,
                };
                store::jobs::insert(txn, &j).await?;
                Ok(j)
            })
        })
        .await
    }

    pub async fn get_job(&self, name: &JobName) -> Result<SyncJob> {
        job(&self.db, name).await
    }

    pub async fn list_jobs(
        &self,
        env: &EnvName,
        state: Option<JobState>,
        after: Option<String>,
        limit: u64,
    ) -> Result<Page<SyncJob, String>> {
        let rows = store::jobs::list(&self.db, env, state, after.as_deref(), Some(limit + 1)).await?;
        if rows.is_empty() && after.is_none() {
            self.envs.exists(env).await?;
        }
        Ok(page(rows, limit, |j| j.name.id.as_str().to_owned()))
    }

    pub async fn delete_job(&self, key: Option<RequestKey>, name: JobName) -> Result<()> {
        self.write(key, "DeleteSyncJob", move |txn| {
            Box::pin(async move {
                job(txn, &name).await?;
                store::jobs::delete(txn, &name).await?;
                Ok(())
            })
        })
        .await
    }

    /// Pauses a job as `actor`; a paused job keeps its `paused_by`.
    pub async fn pause_job(&self, key: Option<RequestKey>, name: JobName, reason: String, actor: String) -> Result<SyncJob> {
        self.write(key, "PauseSyncJob", move |txn| {
            Box::pin(async move {
                let mut j = job(txn, &name).await?;
                if j.state == JobState::Running {
                    let before = ResourceState::of_job(&j);
                    pause(&mut j, actor, reason, now_micros());
                    store::jobs::save(txn, &j).await?;
                    emit_change(txn, name.env.id(), &name, ResourceType::SyncJob, before, ResourceState::of_job(&j)).await?;
                    super::leases::revoke_for_job(txn, &j).await?;
                }
                Ok(j)
            })
        })
        .await
    }

    pub async fn resume_job(&self, key: Option<RequestKey>, name: JobName) -> Result<SyncJob> {
        self.write(key, "ResumeSyncJob", move |txn| {
            Box::pin(async move {
                let mut j = job(txn, &name).await?;
                if j.state == JobState::Paused {
                    let before = ResourceState::of_job(&j);
                    resume(&mut j);
                    store::jobs::save(txn, &j).await?;
                    emit_change(txn, name.env.id(), &name, ResourceType::SyncJob, before, ResourceState::of_job(&j)).await?;
                }
                Ok(j)
            })
        })
        .await
    }
}

pub(crate) fn pause(j: &mut SyncJob, actor: String, reason: String, now: i64) {
    j.state = JobState::Paused;
    j.paused_by = actor;
    j.pause_reason = reason;
    j.pause_time = Some(now);
}

pub(crate) fn resume(j: &mut SyncJob) {
    j.state = JobState::Running;
    j.paused_by.clear();
    j.pause_reason.clear();
    j.pause_time = None;
}
