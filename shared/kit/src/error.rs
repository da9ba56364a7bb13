//! The one error model of every service. A service's work returns [`Error`]; its `grpc`
//! module answers it with `Status::from(e)` (the precise code and google.rpc details of
//! [`crate::status`]), and a resource that keeps a failure (a failed job, run or step)
//! records [`Error::info`], what the synchronous call would have answered.

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::status::{self, Precondition, Violations};

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
    PermissionDenied(String),
    /// A concurrent change won, or the work was interrupted: the caller retries.
    #[error("{0}")]
    Aborted(String),
    /// The work must run again another way; the service that raises it retries inside
    /// and never answers with it (if it ever escapes, the caller gets ABORTED).
    #[error("{0}")]
    Again(&'static str),
    /// A dependency is not reachable now.
    #[error("{0}")]
    Unavailable(String),
    /// Stored data is damaged and cannot be used.
    #[error("{0}")]
    DataLoss(String),
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// Another service answered with an error (its status, kept whole).
    #[error("{service}: {status}")]
    Remote { service: &'static str, status: Status },
    /// A failure recorded earlier (a failed child job), answered again as recorded.
    #[error("{context} failed: {}", info.message)]
    Recorded { context: String, info: ErrorInfo },
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("stored data")]
    Codec(#[from] serde_json::Error),
    /// A bug or a broken invariant: logged with its text, answered as "internal error".
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure as a resource keeps it: the gRPC code (never UNKNOWN), the message, and the
/// violations of its details (a field violation has the kind `FIELD` and the field as
/// its subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: Code,
    pub message: String,
    pub violations: Vec<Precondition>,
}

/// The kind a recorded field violation carries.
pub const FIELD: &str = "FIELD";

impl Error {
    pub fn not_found(resource: &'static str, name: impl ToString) -> Self {
        Error::NotFound { resource, name: name.to_string() }
    }

    /// ALREADY_EXISTS saying "`resource` `name` already exists".
    pub fn already_exists(resource: &'static str, name: impl ToString) -> Self {
        let name = name.to_string();
        Error::AlreadyExists { message: format!("{resource} {name} already exists"), resource, name }
    }

    /// INVALID_ARGUMENT with one field violation.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        let mut v = Violations::new();
        v.add(field, description);
        Error::InvalidArgument(v)
    }

    /// FAILED_PRECONDITION with every unmet precondition.
    pub fn precondition(message: impl Into<String>, preconditions: Vec<Precondition>) -> Self {
        Error::FailedPrecondition { message: message.into(), preconditions }
    }

    /// FAILED_PRECONDITION with one unmet precondition whose description is the message.
    pub fn unmet(kind: &str, subject: impl ToString, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::FailedPrecondition { preconditions: vec![Precondition::new(kind, subject.to_string(), message.clone())], message }
    }

    /// Another service's error `status` (answered UNAVAILABLE when it is transient).
    pub fn remote(service: &'static str, status: Status) -> Self {
        Error::Remote { service, status }
    }

    /// Worth retrying later: another service or the database is not reachable now.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Remote { status, .. } => crate::client::is_transient(status),
            Error::Db(e) => matches!(e, sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)),
            _ => false,
        }
    }

    /// The error as a resource records it: what the synchronous call would have answered
    /// (an internal failure keeps only "internal error", as the call answers it).
    pub fn info(&self) -> ErrorInfo {
        let info = |code: Code, message: String, violations| ErrorInfo { code, message, violations };
        match self {
            Error::InvalidArgument(v) => info(
                Code::InvalidArgument,
                self.to_string(),
                v.0.iter().map(|(f, d)| Precondition::new(FIELD, f.clone(), d.clone())).collect(),
            ),
            Error::NotFound { .. } => info(Code::NotFound, self.to_string(), Vec::new()),
            Error::AlreadyExists { message, .. } => info(Code::AlreadyExists, message.clone(), Vec::new()),
            Error::FailedPrecondition { message, preconditions } => info(Code::FailedPrecondition, message.clone(), preconditions.clone()),
            Error::PermissionDenied(m) => info(Code::PermissionDenied, m.clone(), Vec::new()),
            Error::Aborted(m) => info(Code::Aborted, m.clone(), Vec::new()),
            Error::Again(m) => info(Code::Aborted, (*m).to_owned(), Vec::new()),
            Error::Unavailable(m) => info(Code::Unavailable, m.clone(), Vec::new()),
            Error::DataLoss(m) => info(Code::DataLoss, m.clone(), Vec::new()),
            Error::RequestIdReused => info(Code::InvalidArgument, self.to_string(), Vec::new()),
            Error::Remote { service, status } if self.is_transient() => {
                info(Code::Unavailable, format!("{service} unavailable: {}", status.message()), Vec::new())
            }
            Error::Remote { service, status } => {
                let mut violations = Vec::new();
                if let Some(p) = status.get_details_precondition_failure() {
                    violations.extend(p.violations.into_iter().map(|v| Precondition::new(v.r#type, v.subject, v.description)));
                }
                if let Some(b) = status.get_details_bad_request() {
                    violations.extend(b.field_violations.into_iter().map(|v| Precondition::new(FIELD, v.field, v.description)));
                }
                let code = if status.code() == Code::Unknown { Code::Internal } else { status.code() };
                info(code, format!("{service}: {}", status.message()), violations)
            }
            Error::Recorded { info: recorded, .. } => ErrorInfo { message: self.to_string(), ..recorded.clone() },
            Error::Db(_) | Error::Codec(_) | Error::Internal(_) => info(Code::Internal, "internal error".into(), Vec::new()),
        }
    }
}

impl From<Violations> for Error {
    fn from(v: Violations) -> Self {
        Error::InvalidArgument(v)
    }
}

impl crate::idempotency::TxError for Error {
    fn request_id_reused() -> Self {
        Error::RequestIdReused
    }
}

impl From<&Error> for Status {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument(v) => status::invalid_argument(v),
            Error::NotFound { resource, name } => status::not_found(resource, name),
            Error::AlreadyExists { resource, name, message } => status::already_exists(resource, name, message.clone()),
            Error::FailedPrecondition { message, preconditions } => status::failed_precondition(message.clone(), preconditions),
            Error::PermissionDenied(m) => status::permission_denied(m.clone()),
            Error::Aborted(m) => status::aborted(m.clone()),
            Error::Again(m) => status::aborted(format!("{m}; retry the request")),
            Error::Unavailable(m) => status::unavailable(m.clone()),
            Error::DataLoss(m) => Status::data_loss(status::clip(m, status::MAX_MESSAGE_BYTES)),
            Error::RequestIdReused => status::request_id_reused(),
            Error::Remote { service, status: s } => match s.code() {
                _ if e.is_transient() => {
                    tracing::warn!(service, error = %s, "dependency unavailable");
                    status::unavailable(format!("{service} unavailable, retry later"))
                }
                // The caller's own mistake, as the other service put it.
                Code::NotFound | Code::FailedPrecondition | Code::InvalidArgument | Code::Aborted => {
                    let text = status::clip(&format!("{service}: {}", s.message()), status::MAX_MESSAGE_BYTES);
                    Status::with_details(s.code(), text, s.details().to_vec().into())
                }
                _ => status::internal(e),
            },
            Error::Recorded { .. } => {
                let i = e.info();
                Status::new(i.code, status::clip(&i.message, status::MAX_MESSAGE_BYTES))
            }
            Error::Db(d) => status::database(d),
            Error::Codec(_) | Error::Internal(_) => status::internal(e),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        Status::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_error_keeps_the_callers_mistake_and_hides_the_rest() {
        let denied = Status::with_error_details(
            Code::FailedPrecondition,
            "group is locked",
            tonic_types::ErrorDetails::with_precondition_failure(vec![tonic_types::PreconditionViolation::new("LOCKED", "g", "wait")]),
        );
        let e = Error::remote("group-registry", denied);
        let s = Status::from(&e);
        assert_eq!((s.code(), s.message()), (Code::FailedPrecondition, "group-registry: group is locked"));
        assert_eq!(e.info().violations, vec![Precondition::new("LOCKED", "g", "wait")]);

        let s = Status::from(Error::remote("merge-engine", Status::internal("boom")));
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
        let s = Status::from(Error::remote("merge-engine", Status::unavailable("down")));
        assert_eq!((s.code(), s.message()), (Code::Unavailable, "merge-engine unavailable, retry later"));
        assert!(Error::remote("merge-engine", Status::unavailable("down")).is_transient());
    }

    #[test]
    fn info_is_what_the_call_answers() {
        let mut v = Violations::new();
        v.add("name", "is empty");
        let e = Error::from(v);
        let (i, s) = (e.info(), Status::from(&e));
        assert_eq!((i.code, i.message.as_str()), (s.code(), s.message()));
        assert_eq!(i.violations, vec![Precondition::new(FIELD, "name", "is empty")]);

        let child = Error::Recorded { context: "jobs/j1".into(), info: Error::unmet("STALE", "g", "moved").info() };
        assert_eq!(child.info().code, Code::FailedPrecondition);
        assert_eq!(child.info().message, "jobs/j1 failed: moved");
        assert_eq!(Status::from(&child).code(), Code::FailedPrecondition);
        assert_eq!(Error::Internal("x".into()).info().message, "internal error");
        assert_eq!(Status::from(Error::Again("the batch must run in order")).code(), Code::Aborted);
    }
}
