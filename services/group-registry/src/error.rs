//! The registry's one error type. `grpc` turns it into a `tonic::Status` with details.

use ferry_kit::status::{Precondition, Violations};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {0}")]
    InvalidArgument(Violations),
    #[error("{resource} {name} not found")]
    NotFound { resource: &'static str, name: String },
    #[error("{message}")]
    AlreadyExists { resource: &'static str, name: String, message: String },
    #[error("{message}")]
    FailedPrecondition { message: String, preconditions: Vec<Precondition> },
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    #[error("{0}")]
    PermissionDenied(String),
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("stored reply")]
    Codec(#[from] serde_json::Error),
    /// A merge batch delivered set-based cannot answer exactly as classifying its
    /// operations in order would; the service runs it again that way (never a reply).
    #[error("the merge batch must be run one operation after the other")]
    InOrder,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(resource: &'static str, name: impl ToString) -> Self {
        Error::NotFound { resource, name: name.to_string() }
    }

    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        let mut v = Violations::new();
        v.add(field, description);
        Error::InvalidArgument(v)
    }

    pub fn precondition(message: impl Into<String>, preconditions: Vec<Precondition>) -> Self {
        Error::FailedPrecondition { message: message.into(), preconditions }
    }
}

impl From<Violations> for Error {
    fn from(v: Violations) -> Self {
        Error::InvalidArgument(v)
    }
}

impl ferry_kit::idempotency::TxError for Error {
    fn request_id_reused() -> Self {
        Error::RequestIdReused
    }
}
