//! merge-engine: plans and applies clones and merges of groups and projects by key field
//!
//! The contract (`ferry.merge.v1.MergeService`) is fixed; its behaviour lands with its own
//! issue. Until then the server runs with health and reflection, authenticates like every
//! Ferry service, and answers each RPC with UNIMPLEMENTED.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use ferry_kit::config::CommonArgs;
use ferry_kit::server::{Server, ServerBuilder};
use ferry_proto::merge::v1::merge_service_server::{MergeService, MergeServiceServer};

/// Settings of merge-engine.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "merge-engine", about = "plans and applies clones and merges of groups and projects by key field")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FERRY_MERGE_LISTEN", default_value = "0.0.0.0:50052")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The service; every RPC takes the generated default (UNIMPLEMENTED) for now.
#[derive(Debug, Clone, Default)]
pub struct Api;

impl MergeService for Api {}

/// Binds the server (not serving yet).
pub async fn build(config: &Config) -> Result<Server, ferry_kit::Error> {
    ServerBuilder::new().with_service(MergeServiceServer::new(Api)).bind(config.listen, &config.common).await
}
