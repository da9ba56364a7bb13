//! refresh-coordinator: durable refresh and promotion runs across the Ferry services
//!
//! The contract (`ferry.refresh.v1.RefreshService`) is fixed; its behaviour lands with its own
//! issue. Until then the server runs with health and reflection, authenticates like every
//! Ferry service, and answers each RPC with UNIMPLEMENTED.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use ferry_kit::config::CommonArgs;
use ferry_kit::server::{Server, ServerBuilder};
use ferry_proto::refresh::v1::refresh_service_server::{RefreshService, RefreshServiceServer};

/// Settings of refresh-coordinator.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "refresh-coordinator", about = "durable refresh and promotion runs across the Ferry services")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FERRY_REFRESH_LISTEN", default_value = "0.0.0.0:50054")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Config {
    /// The coordinator's settings. It will call the registry, integration-control and
    /// merge-engine at these URLs and keep its runs in `database_url`; until its issue
    /// lands only `listen` and `common` are used.
    pub fn new(
        listen: SocketAddr,
        database_url: impl Into<String>,
        registry_url: impl Into<String>,
        integration_url: impl Into<String>,
        merge_url: impl Into<String>,
        common: CommonArgs,
    ) -> Self {
        let _ = (database_url.into(), registry_url.into(), integration_url.into(), merge_url.into());
        Self { listen, common }
    }
}

/// The service; every RPC takes the generated default (UNIMPLEMENTED) for now.
#[derive(Debug, Clone, Default)]
pub struct Api;

impl RefreshService for Api {}

/// Binds the server (not serving yet).
pub async fn build(config: &Config) -> Result<Server, ferry_kit::Error> {
    ServerBuilder::new().with_service(RefreshServiceServer::new(Api)).bind(config.listen, &config.common).await
}
