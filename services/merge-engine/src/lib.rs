//! merge-engine: plans and applies merges and clones of groups by key field
//! (`ferry.merge.v1.MergeService`). Plans merge-join the registry's sorted key manifests
//! in constant memory; apply runs as a job whose worker sends the registry batches of
//! operations naming entity ids (payloads never pass through the engine), checkpointing
//! after each batch so a job resumes after a crash without applying anything twice.
//!
//! Layers: [`grpc`] (proto edge) → [`service`] (transactions, rules, idempotency, jobs) →
//! [`store`] (SQL); [`registry`] is the client of the group registry; [`domain`] holds
//! values and rules and knows neither proto nor SQL.

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod registry;
pub mod service;
pub mod store;

pub use config::Config;
pub use error::Error;
pub use service::worker::Workers;

use std::time::Duration;

use ferry_kit::server::{Server, ServerBuilder};
use ferry_proto::merge::v1::merge_service_server::MergeServiceServer;

/// How often the pending-work gauges are counted (an autoscaler polls every 15 s or so).
const PENDING_EVERY: Duration = Duration::from_secs(5);

/// Connects and migrates the engine's database, starts its job workers on the tokio
/// runtime and binds the server (not serving yet). The workers run for the life of the
/// process; use [`start`] to hold them.
pub async fn build(config: &Config) -> Result<Server, ferry_kit::Error> {
    let (server, _workers) = start(config).await?;
    Ok(server)
}

/// [`build`], also returning the workers (tests stop them to simulate a crash).
pub async fn start(config: &Config) -> Result<(Server, Workers), ferry_kit::Error> {
    if !(1..=10_000).contains(&config.chunk_size) {
        return Err(ferry_kit::Error::Config("chunk size must be between 1 and 10000".into()));
    }
    service::metrics::init();
    let db = open_database(config).await?;
    let registry = registry::Registry::connect(&config.registry_url, config.common.service_credential()?, &config.common.client_tls()?)?;
    let settings = service::Settings {
        chunk_size: config.chunk_size,
        lease: Duration::from_secs(config.lease_secs.max(1)),
        owner: format!("engine-{}", uuid::Uuid::new_v4().simple()),
        retention: config.retention(),
    };
    let request_log = config.common.request_log_pruner(&db);
    let pruner = service::retention::pruner(db.clone(), config.common.prune_interval());
    let audit = db.clone();
    let pending = service::metrics::count_pending(db.clone(), PENDING_EVERY);
    let engine = service::Engine::new(db, registry, settings);
    let server = ServerBuilder::new()
        .with_audit(&audit, "merge-engine")
        .with_background(ferry_kit::db::checkpoints(audit.clone()))
        .with_background(request_log)
        .with_background(pruner)
        .with_background(pending)
        .with_service(MergeServiceServer::new(grpc::MergeApi::new(engine.clone())))
        .bind(config.listen, &config.common)
        .await?;
    let workers = service::worker::spawn(engine, config.workers);
    Ok((server, workers))
}

/// Connects the database and runs pending migrations (`--migrate-only`), then closes it.
pub async fn migrate(config: &Config) -> Result<(), ferry_kit::Error> {
    Ok(open_database(config).await?.close().await?)
}

/// Connects the database and runs its pending migrations (under an advisory lock on
/// PostgreSQL, so replicas and migrate-only runs starting together are safe).
async fn open_database(config: &Config) -> Result<sea_orm::DatabaseConnection, ferry_kit::Error> {
    ferry_kit::db::open::<store::migrations::Migrator>(&config.database_url, "merge-engine").await
}
