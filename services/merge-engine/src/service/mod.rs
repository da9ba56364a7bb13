//! The engine's service layer: plans ([`plans`], built by [`planner`]), jobs ([`jobs`])
//! and the worker that runs them ([`worker`]). Each mutation is one engine transaction
//! that also records its reply under the caller's `request_id`. No proto types here.

mod jobs;
pub(crate) mod metrics;
mod planner;
mod plans;
mod project_jobs;
mod projects;
pub mod retention;
mod revert;
pub mod worker;

pub use plans::PlanRequest;
pub use projects::ProjectMergeRequest;

use std::sync::Arc;
use std::time::Duration;

use ferry_kit::idempotency::{self, Replay};
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::Notify;

use crate::domain::RequestKey;
use crate::error::{Error, Result};
use crate::registry::Registry;

type BoxFut<'a, T> = idempotency::TxFuture<'a, T, Error>;

/// How this engine runs jobs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Plan items per registry batch (at most 10,000).
    pub chunk_size: i64,
    /// How long a claimed job stays ours without a renewal.
    pub lease: Duration,
    /// This engine's identity in `jobs.lease_owner`.
    pub owner: String,
    /// How long plans' items and ended jobs' effects are kept.
    pub retention: retention::Retention,
}

/// The engine: its database, its registry client, and a bell that wakes the workers.
#[derive(Clone)]
pub struct Engine {
    db: DatabaseConnection,
    registry: Registry,
    settings: Arc<Settings>,
    wake: Arc<Notify>,
}

impl Engine {
    pub fn new(db: DatabaseConnection, registry: Registry, settings: Settings) -> Self {
        Self { db, registry, settings: Arc::new(settings), wake: Arc::new(Notify::new()) }
    }

    /// Resolves when a job was queued by this engine (workers also poll, for other engines' jobs).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// The reply stored for `key`, if the call was made before (a retry).
    async fn replayed<T: DeserializeOwned>(&self, key: &Option<RequestKey>, method: &str) -> Result<Option<T>> {
        let Some(k) = key else { return Ok(None) };
        match idempotency::lookup(&self.db, &k.request_id, method, &k.fingerprint).await? {
            Replay::Done(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Replay::Mismatch => Err(Error::RequestIdReused),
            Replay::Fresh => Ok(None),
        }
    }

    /// Runs `work` in one transaction as the call `method`, with `request_id` replay
    /// (see `ferry_kit::idempotency::transaction`).
    async fn write<T, F>(&self, key: Option<RequestKey>, method: &'static str, work: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFut<'t, T> + Send,
    {
        idempotency::transaction(&self.db, key.as_ref(), method, work).await
    }
}

pub(crate) use ferry_kit::paging::split as page;
