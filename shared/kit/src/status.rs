//! The error model: precise `tonic::Status` values carrying google.rpc details
//! (BadRequest, PreconditionFailure, ResourceInfo). Every service's `From<Error> for
//! Status` is built from these, so clients see one shape everywhere.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, PreconditionViolation, StatusExt};

/// Field violations collected while parsing a request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(pub Vec<(String, String)>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Records the error of `result` under `field`, returning the value when it parsed.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }
    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), Violations> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(f, d)| format!("{f}: {d}")).collect();
        write!(f, "{}", parts.join("; "))
    }
}

impl std::error::Error for Violations {}

/// One unmet precondition: `kind` (e.g. "SHARED_ENTITY_LINKED"), the subject it concerns
/// (a resource name) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    pub kind: String,
    pub subject: String,
    pub description: String,
}

impl Precondition {
    pub fn new(kind: impl Into<String>, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Self { kind: kind.into(), subject: subject.into(), description: description.into() }
    }
}

pub fn invalid_argument(violations: &Violations) -> Status {
    let fields = violations.0.iter().map(|(f, d)| FieldViolation::new(f, d)).collect::<Vec<_>>();
    Status::with_error_details(Code::InvalidArgument, format!("invalid request: {violations}"), ErrorDetails::with_bad_request(fields))
}

pub fn failed_precondition(message: impl Into<String>, preconditions: &[Precondition]) -> Status {
    let v = preconditions.iter().map(|p| PreconditionViolation::new(&p.kind, &p.subject, &p.description)).collect::<Vec<_>>();
    Status::with_error_details(Code::FailedPrecondition, message, ErrorDetails::with_precondition_failure(v))
}

fn resource_status(code: Code, message: String, resource_type: &str, name: &str) -> Status {
    Status::with_error_details(code, message, ErrorDetails::with_resource_info(resource_type, name, "", ""))
}

pub fn not_found(resource_type: &str, name: &str) -> Status {
    resource_status(Code::NotFound, format!("{resource_type} {name} not found"), resource_type, name)
}

pub fn already_exists(resource_type: &str, name: &str, message: impl Into<String>) -> Status {
    resource_status(Code::AlreadyExists, message.into(), resource_type, name)
}

pub fn aborted(message: impl Into<String>) -> Status {
    Status::new(Code::Aborted, message)
}

pub fn permission_denied(message: impl Into<String>) -> Status {
    Status::new(Code::PermissionDenied, message)
}

/// An internal failure: logged with its cause chain, answered with a short message.
pub fn internal(error: &(dyn std::error::Error + 'static)) -> Status {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = %chain, "internal error");
    Status::new(Code::Internal, "internal error")
}

/// A dependency (another service, the database) is not reachable right now; retry later.
pub fn unavailable(message: impl Into<String>) -> Status {
    Status::new(Code::Unavailable, message)
}
