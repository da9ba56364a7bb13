//! refresh-coordinator's one error type; `grpc` turns it into a `tonic::Status` with details.

use ferry_kit::status::{Precondition, Violations};

use crate::domain::ErrorInfo;

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
    #[error("{0}")]
    AlreadyExists(String),
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// Another service answered with an error (its status, kept whole).
    #[error("{service}: {status}")]
    Remote { service: &'static str, status: tonic::Status },
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("stored run")]
    Codec(#[from] serde_json::Error),
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

impl Error {
    /// The error as a run records it on a failed step: what a synchronous call would have
    /// answered (code, message, violations).
    pub fn info(&self) -> ErrorInfo {
        use tonic_types::StatusExt;
        let info = |code: tonic::Code, message: String, violations| ErrorInfo { code: code as i32, message, violations };
        match self {
            Error::InvalidArgument(v) => info(
                tonic::Code::InvalidArgument,
                self.to_string(),
                v.0.iter().map(|(f, d)| ("FIELD".to_owned(), f.clone(), d.clone())).collect(),
            ),
            Error::NotFound { .. } => info(tonic::Code::NotFound, self.to_string(), Vec::new()),
            Error::FailedPrecondition { message, preconditions } => info(
                tonic::Code::FailedPrecondition,
                message.clone(),
                preconditions.iter().map(|p| (p.kind.clone(), p.subject.clone(), p.description.clone())).collect(),
            ),
            Error::Aborted(m) => info(tonic::Code::Aborted, m.clone(), Vec::new()),
            Error::AlreadyExists(m) => info(tonic::Code::AlreadyExists, m.clone(), Vec::new()),
            Error::RequestIdReused => info(tonic::Code::InvalidArgument, self.to_string(), Vec::new()),
            Error::Remote { service, status } if self.is_transient() => {
                info(tonic::Code::Unavailable, format!("{service} unavailable: {}", status.message()), Vec::new())
            }
            Error::Remote { service, status } => {
                let mut violations = Vec::new();
                if let Some(p) = status.get_details_precondition_failure() {
                    violations.extend(p.violations.into_iter().map(|v| (v.r#type, v.subject, v.description)));
                }
                if let Some(b) = status.get_details_bad_request() {
                    violations.extend(b.field_violations.into_iter().map(|v| ("FIELD".to_owned(), v.field, v.description)));
                }
                let code = if status.code() == tonic::Code::Unknown { tonic::Code::Internal } else { status.code() };
                info(code, format!("{service}: {}", status.message()), violations)
            }
            Error::Db(_) | Error::Codec(_) | Error::Internal(_) => info(tonic::Code::Internal, "internal error".into(), Vec::new()),
        }
    }

    /// A failure of our own side (the database, a run document that does not read back):
    /// the driver stops and the run resumes later, rather than failing it.
    pub fn interrupts(&self) -> bool {
        matches!(self, Error::Db(_) | Error::Aborted(_))
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
