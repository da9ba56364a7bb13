//! The coordinator's service layer: planning, the run operations (start, confirm, retry,
//! abort) as transactions with `request_id` replay, and the driver that executes runs.
//! No proto types of this service here (those of the services it calls pass through
//! `remote` and `steps` unchanged).

mod changes;
pub mod driver;
pub(crate) mod metrics;
mod plan;
mod promotion;
mod promotion_driver;
pub mod remote;
pub mod report;
mod runs;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use ferry_kit::idempotency::{self, RequestKey};
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde::{Serialize, de::DeserializeOwned};

pub use remote::Remote;
pub use runs::ListFilter;

use crate::error::{Error, Result};
use crate::store::locks::{self, Held, Lock};

/// How the driver behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This coordinator's identity as a lease owner.
    pub owner: String,
    /// A claimed run stays with this coordinator this long without a renewal.
    pub lease: Duration,
    /// Attempts of a call that fails transiently (UNAVAILABLE, DEADLINE_EXCEEDED) before
    /// the step fails; the first retry waits `retry_base`, each next one twice as long
    /// (at most 10 s), with jitter.
    pub retry_attempts: u32,
    pub retry_base: Duration,
    /// How often an idle driver looks for runs (it is also woken at once by this process).
    pub poll: Duration,
    /// A pause before every step (0 in production; demos and tests use it to watch runs).
    pub step_delay: Duration,
}

/// The coordinator: its database, the services it drives and a bell for the driver.
#[derive(Clone)]
pub struct Coordinator {
    db: DatabaseConnection,
    remote: Remote,
    settings: Arc<Settings>,
    wake: Arc<tokio::sync::Notify>,
    /// Every saved run, for watchers in this process (others poll).
    events: tokio::sync::broadcast::Sender<crate::domain::Run>,
    promotion_events: tokio::sync::broadcast::Sender<crate::domain::PromotionRun>,
}

type BoxFut<'a, T> = idempotency::TxFuture<'a, T, crate::Error>;

impl Coordinator {
    pub fn new(db: DatabaseConnection, remote: Remote, settings: Settings) -> Self {
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let (promotion_events, _) = tokio::sync::broadcast::channel(1024);
        Self { db, remote, settings: Arc::new(settings), wake: Arc::new(tokio::sync::Notify::new()), events, promotion_events }
    }

    /// Every run saved from now on (by this process).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::domain::Run> {
        self.events.subscribe()
    }

    /// Every promotion run saved from now on (by this process).
    pub fn subscribe_promotions(&self) -> tokio::sync::broadcast::Receiver<crate::domain::PromotionRun> {
        self.promotion_events.subscribe()
    }

    pub(crate) fn publish_promotion(&self, run: &crate::domain::PromotionRun) {
        if self.promotion_events.receiver_count() > 0 {
            let _ = self.promotion_events.send(run.clone());
        }
    }

    pub(crate) fn publish(&self, run: &crate::domain::Run) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(run.clone());
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Runs `work` in one transaction as the call `method`, with `request_id` replay.
    async fn write<T, F>(&self, key: Option<&RequestKey>, method: &'static str, work: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFut<'t, T> + Send,
    {
        idempotency::transaction(&self.db, key, method, work).await
    }

    /// The recorded reply of `key`, if this very request was answered before.
    async fn replayed<T: DeserializeOwned>(&self, key: Option<&RequestKey>, method: &str) -> Result<Option<T>> {
        let Some(k) = key else { return Ok(None) };
        match idempotency::lookup(&self.db, &k.request_id, method, &k.fingerprint).await? {
            idempotency::Replay::Done(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            idempotency::Replay::Mismatch => Err(crate::Error::RequestIdReused),
            idempotency::Replay::Fresh => Ok(None),
        }
    }
}

/// FAILED_PRECONDITION naming the run that holds what `lock` needs.
pub(crate) fn locked(held: Held) -> Error {
    let kind = if held.resource.contains("/projects/") { "PROJECT_LOCKED" } else { "ENVIRONMENT_LOCKED" };
    let description = format!("{} is held by {}; wait for it to end, or retry or abort it", held.resource, held.run);
    Error::precondition(kind, held.run, description)
}

impl Coordinator {
    /// FAILED_PRECONDITION when a run holds what any of `wanted` needs (what a plan checks;
    /// the start transaction takes the locks for real).
    pub(crate) async fn check_free(&self, wanted: &[Lock]) -> Result<()> {
        for lock in wanted {
            if let Some(held) = locks::blocking(&self.db, lock).await? {
                return Err(locked(held));
            }
        }
        Ok(())
    }
}
