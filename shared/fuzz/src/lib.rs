//! Ferry's own descriptor-driven gRPC fuzzer. It reads every RPC of the four services from
//! the encoded descriptor set ([`methods`]), builds random well-formed requests for them
//! ([`generate`], [`values`]) with names drawn from a pool seeded with a real world and grown
//! from every reply ([`seed`], [`pool`]), calls the real services by path over raw bytes
//! ([`call`], [`codec`]) and tallies what came back ([`runner`], [`report`]). A request,
//! however odd, must never get UNKNOWN, INTERNAL, UNAVAILABLE or DATA_LOSS: those mean the
//! service failed, not the caller. [`suite`] starts the four services in-process.
//!
//! Used by the `fuzz` test (a bounded run per backend) and by `ferry-bench fuzz` (the long one).

#![forbid(unsafe_code)]

pub mod call;
pub mod codec;
pub mod generate;
pub mod methods;
pub mod pool;
pub mod render;
pub mod report;
pub mod runner;
pub mod seed;
pub mod shapes;
pub mod suite;
pub mod values;

use std::sync::Arc;

pub use report::Report;
pub use runner::FuzzConfig;
pub use suite::{Databases, Suite};

/// A log filter for a fuzz run: warnings and errors (an INTERNAL's cause chain is logged
/// as "internal error"). Refused calls, thousands of them, are INFO and stay out.
pub const LOG_FILTER: &str = "warn";

/// What can stop a run from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("descriptor set: {0}")]
    Descriptor(#[from] prost_reflect::DescriptorError),
    #[error(transparent)]
    Kit(#[from] ferry_kit::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("seeding the world ({what}): {code}: {message}")]
    Seed { what: String, code: String, message: String },
    #[error("{0}")]
    Config(String),
}

/// Seeds the world in `suite`, then fuzzes every method of the descriptor set.
pub async fn fuzz_suite(suite: &Suite, config: &FuzzConfig) -> Result<Report, Error> {
    let descriptors = methods::pool()?;
    let methods = methods::methods(&descriptors);
    let pool = Arc::new(pool::NamePool::new());
    seed::seed(|s| suite.url(s).map(str::to_owned), &suite.tokens.admin, &pool, &descriptors).await?;
    let shapes = Arc::new(shapes::Shapes::new(&descriptors));
    let caller = call::Caller::new(&suite.endpoints, suite.tokens.clone(), config.deadline)?;
    Ok(runner::fuzz(&caller, &methods, shapes, pool, config).await)
}
