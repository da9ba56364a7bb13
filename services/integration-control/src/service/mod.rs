//! integration-control's service layer: each operation is one transaction that checks the
//! rules, runs the store's queries and, for mutations, records its reply under the
//! caller's `request_id` so a retry is a no-op. No proto types here.

mod authorize;
pub mod bulk;
mod envs;
pub mod events;
mod fences;
mod integrations;
mod jobs;
pub(crate) mod leases;
mod mappings;
pub(crate) mod metrics;
pub mod reseal;
mod snapshots;
mod webhooks;

pub use authorize::Decision;
pub use envs::{Environments, Tier};
pub use integrations::{IntegrationPatch, NewIntegration};
pub use jobs::NewJob;
pub use mappings::{MappingPatch, NewMapping};
pub use reseal::{KeyUse, ResealReport};
pub use webhooks::{NewSubscription, SubscriptionPatch};

use ferry_kit::idempotency::{self, Replay};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};
use serde::{Serialize, de::DeserializeOwned};

use crate::domain::secrets::Sealer;
use crate::domain::{IntegrationName, JobName, Mapping, MappingName, RequestKey, SyncJob};
use crate::error::{Error, Result};
use crate::store::{self, integrations::IntegrationRow};

type BoxFut<'a, T> = idempotency::TxFuture<'a, T, Error>;

/// integration-control: its database, the registry and the sealing key.
#[derive(Clone)]
pub struct Control {
    db: DatabaseConnection,
    /// Plain reads outside transactions on the hot paths (the sync decision, lease
    /// renewals and lists): on SQLite read-only connections beside the one writer
    /// (`ferry_kit::db::read_pool`), else `db`.
    reads: DatabaseConnection,
    envs: Environments,
    sealer: Sealer,
    /// How long a snapshot is kept.
    snapshot_retention: std::time::Duration,
    /// Notified after every committed write: the outbox relay looks at once.
    outbox: std::sync::Arc<tokio::sync::Notify>,
}

impl Control {
    pub fn new(db: DatabaseConnection, envs: Environments, sealer: Sealer) -> Self {
        let snapshot_retention = std::time::Duration::from_secs(crate::config::DEFAULT_SNAPSHOT_RETENTION_HOURS * 3600);
        Self { reads: db.clone(), db, envs, sealer, snapshot_retention, outbox: Default::default() }
    }

    /// Reads the hot paths' facts through `reads` (see [`Control::reads`]).
    pub fn with_reads(mut self, reads: DatabaseConnection) -> Self {
        self.reads = reads;
        self
    }

    /// Notifies `wake` after every committed write (the outbox relay's wake-up).
    pub fn with_outbox_wake(mut self, wake: std::sync::Arc<tokio::sync::Notify>) -> Self {
        self.outbox = wake;
        self
    }

    /// Keeps snapshots for `retention`.
    pub fn with_snapshot_retention(mut self, retention: std::time::Duration) -> Self {
        self.snapshot_retention = retention;
        self
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Runs `work` in one transaction, as the call `method`. With a request key, a replay
    /// returns the recorded reply and writes nothing.
    async fn write<T, F>(&self, key: Option<RequestKey>, method: &'static str, work: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFut<'t, T> + Send,
    {
        let out = idempotency::transaction(&self.db, key.as_ref(), method, work).await?;
        self.outbox.notify_one();
        Ok(out)
    }

    /// Whether `request_id` already answered this very request: replays skip the checks
    /// against the registry that a first call makes before its transaction.
    async fn replayed(&self, key: &Option<RequestKey>, method: &str) -> Result<bool> {
        Ok(match key {
            Some(k) => matches!(idempotency::lookup(&self.db, &k.request_id, method, &k.fingerprint).await?, Replay::Done(_)),
            None => false,
        })
    }
}

pub(crate) use ferry_kit::paging::split as page;

pub(crate) async fn integration_row<C: ConnectionTrait>(db: &C, name: &IntegrationName) -> Result<IntegrationRow> {
    store::integrations::find(db, name).await?.ok_or_else(|| Error::not_found("integration", name))
}

pub(crate) async fn mapping<C: ConnectionTrait>(db: &C, name: &MappingName) -> Result<Mapping> {
    store::mappings::find(db, name).await?.ok_or_else(|| Error::not_found("mapping", name))
}

pub(crate) async fn job<C: ConnectionTrait>(db: &C, name: &JobName) -> Result<SyncJob> {
    store::jobs::find(db, name).await?.ok_or_else(|| Error::not_found("sync job", name))
}
