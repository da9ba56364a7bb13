//! The suite as `ferry up` runs it: the four services in one process on port 0, called
//! through the generated clients and through the CLI's own entry point.
//!
//! All cross-service tests compile into this one binary; each test starts its own suite
//! with its own data folder.

mod audit;
mod auth;
mod cli;
mod discovery;
mod helpers;
mod identity;
mod migrate;
mod sync_exec;
mod tls;
mod up;
mod webhook_cli;
