//! integration-control: integrations to external systems, their sealed credentials,
//! mappings and sync jobs, snapshots of them, the refresh coordinator's bulk steps, and the
//! sync authorisation (fencing) integration runtimes ask before every sync and the sync
//! leases that are their only way to a credential, served as
//! `ferry.integration.v1.IntegrationService`.
//!
//! Layers: [`grpc`] (proto edge) → [`service`] (transactions, rules, idempotency) →
//! [`store`] (SQL); [`domain`] holds values, records, sealing and the sync decision and
//! knows neither proto nor SQL. Environments and their tiers come from the registry.

#![forbid(unsafe_code)]

pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod service;
pub mod store;

pub use config::Config;
pub use error::Error;

use ferry_kit::server::{Server, ServerBuilder};
use ferry_proto::integration::v1::integration_service_server::IntegrationServiceServer;

use crate::domain::secrets::Sealer;

/// Reads the sealing key file: 64 hex digits alone (the key `default`), or `ID HEX` lines,
/// oldest first; the newest (last) seals.
pub fn load_sealing_key(path: &std::path::Path) -> Result<Sealer, ferry_kit::Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ferry_kit::Error::Config(format!("sealing key file {}: {e} (FERRY_SEALING_KEY_FILE)", path.display())))?;
    Sealer::parse(&text).map_err(|e| ferry_kit::Error::Config(format!("sealing key file {}: {e}", path.display())))
}

/// Writes a new random sealing key to `path` (mode 0600, its folder created) unless the
/// file exists. Returns whether it wrote one. `ferry up` calls this before `build`.
pub fn generate_sealing_key(path: &std::path::Path) -> Result<bool, ferry_kit::Error> {
    Ok(domain::secrets::generate_key_file(path)?)
}

/// Loads the sealing keys, connects the database, runs migrations, checks that every stored
/// sealed value's key is configured (`service::reseal::prepare`) and binds the server
/// (not serving yet). The registry is reached lazily, on first use.
pub async fn build(config: &Config) -> Result<Server, ferry_kit::Error> {
    service::metrics::init();
    let sealer = load_sealing_key(&config.sealing_key_file)?;
    let envs = service::Environments::connect(&config.registry_url, config.common.service_credential()?, &config.common.client_tls()?)?;
    let db = open_database(config).await?;
    let sealer = service::reseal::prepare(&db, sealer, &config.sealing_key_file).await?;
    let request_log = config.common.request_log_pruner(&db);
    let retention = std::time::Duration::from_secs(config.snapshot_retention_hours.saturating_mul(3600));
    let snapshots = ferry_kit::prune::pruner(
        db.clone(),
        store::snapshots::AGED,
        retention,
        config.common.prune_interval(),
        store::snapshots::PRUNE_BATCH,
    );
    let leases = ferry_kit::prune::pruner(
        db.clone(),
        store::leases::AGED,
        store::leases::RETENTION,
        config.common.prune_interval(),
        ferry_kit::prune::BATCH,
    );
    let outstanding = service::metrics::count_outstanding(db.clone(), std::time::Duration::from_secs(5));
    let outbox_retention = std::time::Duration::from_secs(config.webhooks.outbox_retention_hours.saturating_mul(3600));
    let relayed = ferry_kit::prune::pruner(
        db.clone(),
        ferry_kit::outbox::RELAYED,
        outbox_retention,
        config.common.prune_interval(),
        ferry_kit::prune::BATCH,
    );
    // Writes wake the relay; a fan-out wakes the delivery worker.
    let (outbox_wake, delivery_wake) = (std::sync::Arc::new(tokio::sync::Notify::new()), std::sync::Arc::new(tokio::sync::Notify::new()));
    let (fan_out_db, queued) = (db.clone(), delivery_wake.clone());
    let relay =
        ferry_kit::outbox::relay(db.clone(), "integration-control", ferry_kit::outbox::Pace::default(), outbox_wake.clone(), move |rows| {
            let (db, queued) = (fan_out_db.clone(), queued.clone());
            async move {
                service::events::fan_out(db, rows).await?;
                queued.notify_one();
                Ok::<_, sea_orm::DbErr>(())
            }
        });
    let client =
        delivery::http::Client::new(config.webhooks.ca_file.as_deref(), std::time::Duration::from_millis(config.webhooks.timeout_ms))?;
    let deliveries = delivery::run(db.clone(), sealer.clone(), client, config.webhooks.policy(), delivery_wake);
    let log_retention = std::time::Duration::from_secs(config.webhooks.log_retention_hours.saturating_mul(3600));
    let delivery_log = delivery::pruner(db.clone(), log_retention, config.common.prune_interval());
    let audit = db.clone();
    let reads = ferry_kit::db::read_pool(&config.database_url, &db).await?;
    let control =
        service::Control::new(db, envs, sealer).with_snapshot_retention(retention).with_reads(reads).with_outbox_wake(outbox_wake);
    let api = grpc::IntegrationApi::new(control);
    ServerBuilder::new()
        .with_service(IntegrationServiceServer::new(api))
        .with_audit(&audit, "integration-control")
        .with_background(ferry_kit::db::checkpoints(audit.clone()))
        .with_background(request_log)
        .with_background(snapshots)
        .with_background(leases)
        .with_background(outstanding)
        .with_background(relayed)
        .with_background(relay)
        .with_background(deliveries)
        .with_background(delivery_log)
        .bind(config.listen, &config.common)
        .await
}

/// Connects the database and runs pending migrations (`--migrate-only`), then closes it.
pub async fn migrate(config: &Config) -> Result<(), ferry_kit::Error> {
    Ok(open_database(config).await?.close().await?)
}

/// Connects the database and runs its pending migrations (under an advisory lock on
/// PostgreSQL, so replicas and migrate-only runs starting together are safe).
async fn open_database(config: &Config) -> Result<sea_orm::DatabaseConnection, ferry_kit::Error> {
    ferry_kit::db::open::<store::migrations::Migrator>(&config.database_url, "integration-control").await
}
