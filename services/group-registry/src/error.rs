//! The registry fails with the services' one error model (`ferry_kit::error`); `grpc`
//! answers it with `Status::from`.

pub use ferry_kit::error::{Error, Result};

/// A merge batch delivered set-based cannot answer exactly as classifying its operations
/// in order would; the service runs it again that way (never a reply).
pub const IN_ORDER: &str = "the merge batch must be run one operation after the other";
