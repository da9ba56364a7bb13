//! group-registry's settings.

use std::net::SocketAddr;

use ferry_kit::config::CommonArgs;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "group-registry", about = "Ferry's system of record: environments, groups, entities, projects")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FERRY_REGISTRY_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,
    /// Database URL: sqlite://path/registry.db or postgres://user:pass@host/db.
    #[arg(long, env = "FERRY_REGISTRY_DATABASE_URL", default_value = "sqlite://.ferry/registry.db", hide_env_values = true)]
    pub database_url: String,
    #[command(flatten)]
    pub common: CommonArgs,
}
