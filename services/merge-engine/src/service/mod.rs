//! The engine's service layer: plans ([`plans`], built by [`planner`]), jobs ([`jobs`])
//! and the worker that runs them ([`worker`]). Each mutation is one engine transaction
//! that also records its reply under the caller's `request_id`. No proto types here.

mod jobs;
mod planner;
mod plans;
mod project_jobs;
mod projects;
mod revert;
pub mod worker;

pub use plans::PlanRequest;
pub use projects::ProjectMergeRequest;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferry_kit::idempotency::{self, Replay};
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::Notify;

use crate::domain::{Page, RequestKey};
use crate::error::{Error, Result};
use crate::registry::Registry;

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// How this engine runs jobs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Plan items per registry batch (at most 10,000).
    pub chunk_size: i64,
    /// How long a claimed job stays ours without a renewal.
    pub lease: Duration,
    /// This engine's identity in `jobs.lease_owner`.
    pub owner: String,
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

    /// Runs `work` in one transaction as the call `method`. With a request key, a replay
    /// returns the recorded reply and writes nothing.
    async fn write<T, F>(&self, key: Option<RequestKey>, method: &'static str, work: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFut<'t, T> + Send,
    {
        let txn = self.db.begin().await?;
        if let Some(k) = &key {
            match idempotency::lookup(&txn, &k.request_id, method, &k.fingerprint).await? {
                Replay::Done(bytes) => return Ok(serde_json::from_slice(&bytes)?),
                Replay::Mismatch => return Err(Error::RequestIdReused),
                Replay::Fresh => {}
            }
        }
        let out = work(&txn).await?;
        if let Some(k) = &key {
            let recorded = idempotency::record(&txn, &k.request_id, method, &k.fingerprint, serde_json::to_vec(&out)?).await;
            if let Err(e) = recorded {
                // A concurrent retry with the same id committed first: answer with its reply.
                if ferry_kit::db::is_unique_violation(&e) {
                    drop(txn);
                    return match idempotency::lookup(&self.db, &k.request_id, method, &k.fingerprint).await? {
                        Replay::Done(bytes) => Ok(serde_json::from_slice(&bytes)?),
                        _ => Err(Error::RequestIdReused),
                    };
                }
                return Err(e.into());
            }
        }
        txn.commit().await?;
        Ok(out)
    }
}

/// Splits a `limit + 1` fetch into a page and the cursor of the next one.
pub(crate) fn page<T, C>(mut items: Vec<T>, limit: u64, cursor: impl Fn(&T) -> C) -> Page<T, C> {
    let next = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next }
}
