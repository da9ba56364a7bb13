//! refresh-coordinator's one error type; `grpc` turns it into a `tonic::Status` with details.

use ferry_kit::status::{Precondition, Violations};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {0}")]
    InvalidArgument(Violations),
    #[error("{resource} {name} not found")]
    NotFound { resource: &'static str, name: String },
    #[error("{message}")]
    FailedPrecondition { message: String, preconditions: Vec<Precondition> },
    #[error("{0}")]
    Aborted(String),
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// Another service answered with an error (its status, kept whole).
    #[error("{service}: {status}")]
    Remote { service: &'static str, status: tonic::Status },
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("stored run")]
    Codec(#[from] serde_json::Error),
    #[error("stored reply")]
    Decode(#[from] prost::DecodeError),
    #[error("stored reply")]
    Hex(#[from] hex::FromHexError),
    #[error("{0}")]
    Internal(String),
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

    pub fn precondition(kind: &str, subject: impl ToString, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::FailedPrecondition { preconditions: vec![Precondition::new(kind, subject.to_string(), message.clone())], message }
    }

    /// Worth retrying later: the other service or the database is not reachable now.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Remote { status, .. } => ferry_kit::client::is_transient(status),
            Error::Db(e) => matches!(e, sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)),
            _ => false,
        }
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
