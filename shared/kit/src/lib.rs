//! Ferry's runtime kit, shared by every service: typed config, telemetry with W3C trace
//! context across gRPC calls, server bootstrap (health, reflection, graceful shutdown),
//! bearer-token auth, a hash-chained audit log, the google.rpc error model, page tokens, `request_id` idempotency
//! and database connection plus migrations, TLS and mutual TLS from PEM files, Prometheus
//! metrics.

#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod db;
mod descriptors;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod outbox;
pub mod paging;
pub mod prune;
pub mod request;
pub mod server;
pub mod status;
pub mod telemetry;
pub mod tls;

/// Errors of the kit itself (start-up, configuration, storage set-up); a service's
/// requests fail with [`error::Error`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("telemetry: {0}")]
    Telemetry(String),
}
