//! integration-control: integrations, mappings, jobs, sealed credentials, snapshots and sync fencing
//!
//! The contract (`ferry.integration.v1.IntegrationService`) is fixed; its behaviour lands with its own
//! issue. Until then the server runs with health and reflection, authenticates like every
//! Ferry service, and answers each RPC with UNIMPLEMENTED.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use ferry_kit::config::CommonArgs;
use ferry_kit::server::{Server, ServerBuilder};
use ferry_proto::integration::v1::integration_service_server::{IntegrationService, IntegrationServiceServer};

/// Settings of integration-control.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "integration-control", about = "integrations, mappings, jobs, sealed credentials, snapshots and sync fencing")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FERRY_INTEGRATION_LISTEN", default_value = "0.0.0.0:50053")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The service; every RPC takes the generated default (UNIMPLEMENTED) for now.
#[derive(Debug, Clone, Default)]
pub struct Api;

impl IntegrationService for Api {}

/// Binds the server (not serving yet).
pub async fn build(config: &Config) -> Result<Server, ferry_kit::Error> {
    ServerBuilder::new().with_service(IntegrationServiceServer::new(Api)).bind(config.listen, &config.common).await
}
