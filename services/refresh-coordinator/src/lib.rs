//! refresh-coordinator: durable refresh runs across the Ferry services, served as
//! `ferry.refresh.v1.RefreshService`. A refresh is the refresh article's nine-step
//! checklist run as a durable, resumable, undoable run: each step records what it did
//! (the ChangeSets integration-control returns, the registry's copy counts) before the
//! next starts, every call it makes carries a request id derived from run, step and
//! operation, and a driver claims runs with a lease and resumes them after a crash.
//!
//! Layers: [`grpc`] (proto edge) → [`kinds`] (each run kind as one definition: refresh,
//! promotion) → [`engine`] (runs, locks, journal, driver, Watch: knows no kind and no
//! proto) and [`clients`] (typed clients of the services runs call; their protos stop
//! there); [`domain`] holds names, runs and steps and knows neither proto nor SQL;
//! [`store`] the schema.

#![forbid(unsafe_code)]

pub mod clients;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod kinds;
pub(crate) mod metrics;
pub mod store;

/// This service's name in its audit events and logs.
pub const SERVICE: &str = "refresh-coordinator";

pub use config::Config;
pub use engine::driver::Driver;
pub use error::Error;

use std::time::Duration;

use ferry_kit::server::{Server, ServerBuilder};
use ferry_proto::refresh::v1::refresh_service_server::RefreshServiceServer;

/// Connects and migrates the coordinator's database, starts the run driver (which resumes
/// runs found mid-step) and binds the server (not serving yet). The driver runs for the
/// life of the process; use [`start`] to hold it.
pub async fn build(config: &Config) -> Result<Server, ferry_kit::Error> {
    let (server, driver) = start(config).await?;
    driver.detach();
    Ok(server)
}

/// [`build`], also returning the driver (tests stop it to simulate a crash).
pub async fn start(config: &Config) -> Result<(Server, Driver), ferry_kit::Error> {
    metrics::init();
    let db = open_database(config).await?;
    let clients = clients::Clients::connect(
        &config.registry_url,
        &config.integration_url,
        &config.merge_url,
        config.common.service_credential()?,
        &config.common.client_tls()?,
    )?;
    let owner = match config.holder_id.as_deref().map(str::trim) {
        Some("") => return Err(ferry_kit::Error::Config("--holder-id (FERRY_REFRESH_HOLDER_ID) is empty".into())),
        Some(id) => id.to_owned(),
        None => format!("coordinator-{}", uuid::Uuid::new_v4().simple()),
    };
    // Runs this holder id still leases were left by the process before this one.
    let taken_back = engine::leases::expire_held_by(&db, &owner).await?;
    engine::schedules::expire_held_by(&db, &owner).await?;
    if taken_back > 0 {
        tracing::info!(holder = %owner, runs = taken_back, "taking back runs this holder left running");
    }
    let settings = engine::Settings {
        owner,
        lease: Duration::from_secs(config.lease_secs.max(1)),
        retry_attempts: config.retry_attempts.max(1),
        retry_base: Duration::from_millis(config.retry_base_ms.max(1)),
        poll: Duration::from_millis(500),
        step_delay: Duration::from_millis(config.step_delay_ms),
        op_delay: Duration::from_millis(config.op_delay_ms),
        rollback_window: Duration::from_secs(config.rollback_window_hours.saturating_mul(3600)),
        four_eyes: config.four_eyes,
    };
    let request_log = config.common.request_log_pruner(&db);
    let audit = db.clone();
    // Run and step events go to integration-control, which delivers them as webhooks.
    let publisher = clients.integration.clone();
    // Polled (every 100 ms when idle): the driver's writes do not notify it.
    let relay = ferry_kit::outbox::relay(db.clone(), SERVICE, ferry_kit::outbox::Pace::default(), Default::default(), move |rows| {
        let publisher = publisher.clone();
        async move { publisher.publish_events(rows.into_iter().map(|r| r.event).collect()).await }
    });
    let relayed = ferry_kit::prune::pruner(
        db.clone(),
        ferry_kit::outbox::RELAYED,
        Duration::from_secs(24 * 3600),
        config.common.prune_interval(),
        ferry_kit::prune::BATCH,
    );
    let engine = engine::EngineBuilder::new()
        .kind::<kinds::Refresh>()
        .kind::<kinds::Promotion>()
        .kind::<kinds::Rollback>()
        .scheduled::<kinds::Refresh>()
        .build(db, clients, settings);
    let server = ServerBuilder::new()
        .with_background(request_log)
        .with_background(relay)
        .with_background(relayed)
        .with_service(RefreshServiceServer::new(grpc::RefreshApi::new(engine.clone())))
        .with_audit(&audit, SERVICE)
        .with_background(ferry_kit::db::checkpoints(audit.clone()))
        .bind(config.listen, &config.common)
        .await?;
    let driver = engine::driver::spawn(engine);
    Ok((server, driver))
}

/// Connects the database and runs pending migrations (`--migrate-only`), then closes it.
pub async fn migrate(config: &Config) -> Result<(), ferry_kit::Error> {
    Ok(open_database(config).await?.close().await?)
}

/// Connects the database and runs its pending migrations (under an advisory lock on
/// PostgreSQL, so replicas and migrate-only runs starting together are safe).
async fn open_database(config: &Config) -> Result<sea_orm::DatabaseConnection, ferry_kit::Error> {
    ferry_kit::db::open::<store::migrations::Migrator>(&config.database_url, "refresh-coordinator").await
}
