//! The engine's one error type. `grpc` turns it into a `tonic::Status` with details; a
//! failed job records it as a [`JobError`] with the same code and violations.

use ferry_kit::status::{Precondition, Violations};
use tonic::Code;

use crate::domain::{JobError, Violation};

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
    #[error("{0}")]
    Aborted(String),
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    #[error("{0}")]
    Unavailable(String),
    /// The registry answered something the engine did not expect (a bug or misconfiguration).
    #[error("registry: {0}")]
    Registry(tonic::Status),
    /// A child job of this one failed with `error`.
    #[error("{job} failed: {}", error.message)]
    Child { job: crate::domain::JobId, error: JobError },
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("stored data")]
    Codec(#[from] serde_json::Error),
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

    /// Whether a job hitting this error may simply be retried later (it is not the job's fault).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Db(e) => matches!(e, sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)),
            _ => false,
        }
    }

    /// The error as a failed job records it (what the synchronous call would have answered).
    pub fn to_job_error(&self) -> JobError {
        if let Error::Child { error, .. } = self {
            return JobError { message: self.to_string(), ..error.clone() };
        }
        let (code, violations) = match self {
            Error::InvalidArgument(v) => (
                Code::InvalidArgument,
                v.0.iter().map(|(f, d)| Violation { violation_type: String::new(), subject: f.clone(), description: d.clone() }).collect(),
            ),
            Error::NotFound { .. } => (Code::NotFound, vec![]),
            Error::AlreadyExists { .. } => (Code::AlreadyExists, vec![]),
            Error::FailedPrecondition { preconditions, .. } => (
                Code::FailedPrecondition,
                preconditions
                    .iter()
                    .map(|p| Violation { violation_type: p.kind.clone(), subject: p.subject.clone(), description: p.description.clone() })
                    .collect(),
            ),
            Error::Aborted(_) => (Code::Aborted, vec![]),
            Error::RequestIdReused => (Code::InvalidArgument, vec![]),
            Error::Unavailable(_) => (Code::Unavailable, vec![]),
            Error::Registry(_) | Error::Db(_) | Error::Codec(_) | Error::Child { .. } => (Code::Internal, vec![]),
        };
        let message = match code {
            Code::Internal => "internal error".to_owned(),
            _ => self.to_string(),
        };
        JobError { code: code as i32, message, violations }
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
