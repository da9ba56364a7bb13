//! integration-control's one error type. `grpc` turns it into a `tonic::Status` with details.
//! No variant ever carries a credential: messages name resources, never values.

use ferry_kit::status::{Precondition, Violations};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {0}")]
    InvalidArgument(Violations),
    #[error("{resource} {name} not found")]
    NotFound { resource: &'static str, name: String },
    #[error("{resource} {name} already exists")]
    AlreadyExists { resource: &'static str, name: String },
    #[error("{message}")]
    FailedPrecondition { message: String, preconditions: Vec<Precondition> },
    #[error("{0}")]
    DataLoss(String),
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    #[error("registry unavailable: {0}")]
    RegistryUnavailable(String),
    #[error("registry: {0}")]
    Registry(String),
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("stored reply")]
    Codec(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(resource: &'static str, name: impl ToString) -> Self {
        Error::NotFound { resource, name: name.to_string() }
    }

    pub fn already_exists(resource: &'static str, name: impl ToString) -> Self {
        Error::AlreadyExists { resource, name: name.to_string() }
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
