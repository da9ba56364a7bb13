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
    let api = grpc::RegistryApi::new(service::Registry::new(db, reads, points));
    let svc = RegistryServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES);
    ServerBuilder::new().with_service(svc).bind(config.listen, &config.common).await
}

/// Connects the database and runs pending migrations (`--migrate-only`), then closes it.
pub async fn migrate(config: &Config) -> Result<(), ferry_kit::Error> {
    Ok(open_database(config).await?.close().await?)
}

/// Connects the database and runs its pending migrations (under an advisory lock on
/// PostgreSQL, so replicas and migrate-only runs starting together are safe).
async fn open_database(config: &Config) -> Result<sea_orm::DatabaseConnection, ferry_kit::Error> {
    ferry_kit::db::open::<store::migrations::Migrator>(&config.database_url, "group-registry").await
}
