//! group-registry: Ferry's system of record. Environments, groups, entities (duplicated
//! or shared), the links between them, projects and their configuration, served as
//! `ferry.registry.v1.RegistryService`. Bulk paths (import, export, key manifests, merge
//! operations, environment copy) serve the merge engine and the refresh coordinator.
//!
//! Layers: [`grpc`] (proto edge) → [`service`] (transactions, rules, idempotency) →
//! [`store`] (SQL); [`domain`] holds values and rules and knows neither proto nor SQL.

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod service;
pub mod store;

pub use config::Config;
pub use error::Error;

use ferry_kit::server::{Server, ServerBuilder};
use ferry_proto::registry::v1::registry_service_server::RegistryServiceServer;

/// Largest message accepted (imports and merge batches are large).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Connects the database, runs migrations and binds the server (not serving yet).
pub async fn build(config: &Config) -> Result<Server, ferry_kit::Error> {
    let db = open_database(config).await?;
    let reads = ferry_kit::db::read_pool(&config.database_url, &db).await?;
    let points = ferry_kit::db::point_reads(&config.database_url, &db).await?;
    let retention = std::time::Duration::from_secs(config.restore_point_retention_hours.saturating_mul(3600));
    let interval = config.common.prune_interval();
    let request_log = config.common.request_log_pruner(&db);
    let prior_retention = std::time::Duration::from_secs(config.prior_content_retention_hours.saturating_mul(3600));
    let priors = ferry_kit::prune::pruner(db.clone(), store::prior::AGED, prior_retention, interval, ferry_kit::prune::BATCH);
    let audit = db.clone();
    let registry = service::Registry::new(db, reads, points).with_restore_point_retention(retention);
    let pruner = service::pruner(registry.clone(), interval);
    let api = grpc::RegistryApi::new(registry);
    let svc = RegistryServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES);
    ServerBuilder::new()
        .with_service(svc)
        .with_audit(&audit, "group-registry")
        .with_background(ferry_kit::db::checkpoints(audit.clone()))
        .with_background(pruner)
        .with_background(request_log)
        .with_background(priors)
        .bind(config.listen, &config.common)
        .await
}

/// Connects the database and runs pending migrations (`--migrate-only`), then closes it.
pub async fn migrate(config: &Config) -> Result<(), ferry_kit::Error> {
    Ok(open_database(config).await?.close().await?)
}

/// Connects the database and runs its pending migrations (under an advisory lock on
/// PostgreSQL, so replicas and migrate-only runs starting together are safe).
/// Reports, once, entities whose stored sharing their kind does not allow (rows from before
/// the rule was enforced): they keep working, but nothing delivers them. Nothing changes
/// them behind their owner's back.
async fn open_database(config: &Config) -> Result<sea_orm::DatabaseConnection, ferry_kit::Error> {
    let db = ferry_kit::db::open::<store::migrations::Migrator>(&config.database_url, "group-registry").await?;
    match sharing_report(&db).await {
        Ok(Some(report)) => tracing::warn!(%report, "entities with a sharing their kind does not allow"),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "checking stored sharing failed"),
    }
    Ok(db)
}

/// What the start-up check says about stored sharing: `None` when every entity's sharing
/// is its kind's (or a portal's choice), else how many are not and the first 20 of them.
pub async fn sharing_report(db: &sea_orm::DatabaseConnection) -> Result<Option<String>, Error> {
    let (n, first) = store::sharing::disallowed_sharing(db, None, 20).await?;
    if n == 0 {
        return Ok(None);
    }
    let shown: Vec<String> = first.iter().map(ToString::to_string).collect();
    Ok(Some(format!(
        "{n} entities have a sharing their kind does not allow (services, tables and maps are duplicated; data sources, \
         lookups, custom actions, roles and themes are shared): {}{}. They stay as they are and can be read, updated and \
         deleted, but merges, clones, links and environment copies refuse them: delete each and create it again with its \
         kind's sharing",
        shown.join(", "),
        if n > 20 { ", ..." } else { "" }
    )))
}
