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

// An error travels in HTTP/2 trailers: `grpc-message` (percent-encoded, so a non-ASCII
// character can take nine bytes) and the details in `grpc-status-details-bin` (base64).
// A client's header list is 16 KiB by default (hyper's); past it the client sees INTERNAL
// "h2 protocol error", and past h2's abuse limit the whole connection goes. Refusals quote
// what the client sent, and a client can send a lot, so every error is bounded here:
// the message and each text of the details are cut, and details stop at a budget with a
// last entry saying how many more there were.

/// Longest `grpc-message`, in bytes before encoding.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest field, description, subject or resource name in the details, in bytes.
pub const MAX_DETAIL_TEXT_BYTES: usize = 256;
/// Most bytes of text all details of one error may hold (with the message, which the
/// details repeat, about 7 KiB once encoded; the whole error stays under 12 KiB).
pub const MAX_DETAILS_BYTES: usize = 4 * 1024;

/// `text` cut to at most `max` bytes at a character boundary, with "…" when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Keeps entries (each a list of texts) while their clipped texts fit the details budget;
/// the rest are counted.
fn budgeted<T>(items: impl Iterator<Item = T>, texts: impl Fn(&T) -> usize) -> (Vec<T>, usize) {
    let mut kept = Vec::new();
    let (mut used, mut dropped) = (0, 0);
    for item in items {
        let size = texts(&item);
        if dropped > 0 || used + size > MAX_DETAILS_BYTES {
            dropped += 1;
        } else {
            used += size;
            kept.push(item);
        }
    }
    (kept, dropped)
}

fn message(text: impl Into<String>) -> String {
    clip(&text.into(), MAX_MESSAGE_BYTES)
}

pub fn invalid_argument(violations: &Violations) -> Status {
    let clipped = violations.0.iter().map(|(f, d)| (clip(f, MAX_DETAIL_TEXT_BYTES), clip(d, MAX_DETAIL_TEXT_BYTES)));
    let (kept, more) = budgeted(clipped, |(f, d)| f.len() + d.len());
    let mut fields = kept.iter().map(|(f, d)| FieldViolation::new(f, d)).collect::<Vec<_>>();
    if more > 0 {
        fields.push(FieldViolation::new("…", format!("and {more} more violation(s) not listed")));
    }
    Status::with_error_details(
        Code::InvalidArgument,
        message(format!("invalid request: {violations}")),
        ErrorDetails::with_bad_request(fields),
    )
}

pub fn failed_precondition(text: impl Into<String>, preconditions: &[Precondition]) -> Status {
    let clipped = preconditions.iter().map(|p| {
        (clip(&p.kind, MAX_DETAIL_TEXT_BYTES), clip(&p.subject, MAX_DETAIL_TEXT_BYTES), clip(&p.description, MAX_DETAIL_TEXT_BYTES))
    });
    let (kept, more) = budgeted(clipped, |(k, s, d)| k.len() + s.len() + d.len());
    let mut v = kept.iter().map(|(k, s, d)| PreconditionViolation::new(k, s, d)).collect::<Vec<_>>();
    if more > 0 {
        v.push(PreconditionViolation::new("MORE", "…", format!("and {more} more unmet precondition(s) not listed")));
    }
    Status::with_error_details(Code::FailedPrecondition, message(text), ErrorDetails::with_precondition_failure(v))
}

fn resource_status(code: Code, text: String, resource_type: &str, name: &str) -> Status {
    let name = clip(name, MAX_DETAIL_TEXT_BYTES);
    Status::with_error_details(code, message(text), ErrorDetails::with_resource_info(resource_type, name, "", ""))
}

pub fn not_found(resource_type: &str, name: &str) -> Status {
    resource_status(Code::NotFound, format!("{resource_type} {} not found", clip(name, MAX_DETAIL_TEXT_BYTES)), resource_type, name)
}

pub fn already_exists(resource_type: &str, name: &str, text: impl Into<String>) -> Status {
    resource_status(Code::AlreadyExists, text.into(), resource_type, name)
}

pub fn aborted(text: impl Into<String>) -> Status {
    Status::new(Code::Aborted, message(text))
}

pub fn permission_denied(text: impl Into<String>) -> Status {
    Status::new(Code::PermissionDenied, message(text))
}

/// The canonical name of a gRPC status code (`OK`, `INVALID_ARGUMENT`, ...).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
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

/// INVALID_ARGUMENT on `request_id`: the id was used for a different request (every
/// service answers a reused request id the same way).
pub fn request_id_reused() -> Status {
    let mut v = Violations::new();
    v.add("request_id", "was already used for a different request; use a new request_id for a new request");
    invalid_argument(&v)
}

/// The status of a database error, the same in every service: UNAVAILABLE when the
/// database cannot be reached, ABORTED when a concurrent write won (a unique key or a
/// deadlock: the retry sees the winner's state), INTERNAL otherwise.
pub fn database(e: &sea_orm::DbErr) -> Status {
    if matches!(e, sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)) {
        tracing::warn!(error = %e, "database unavailable");
        unavailable("database unavailable, retry later")
    } else if crate::db::is_write_race(e) {
        aborted("a concurrent change won the race; retry the request")
    } else {
        internal(e)
    }
}

/// A dependency (another service, the database) is not reachable right now; retry later.
pub fn unavailable(text: impl Into<String>) -> Status {
    Status::new(Code::Unavailable, message(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes an error takes in trailers: message (as percent-encoded, worst case) and
    /// the encoded details (as base64).
    fn trailer_bytes(s: &Status) -> usize {
        s.message().bytes().map(|b| if b.is_ascii_graphic() || b == b' ' { 1 } else { 3 }).sum::<usize>() + s.details().len() * 4 / 3
    }

    #[test]
    fn an_error_fits_in_trailers_whatever_the_client_sent() {
        let mut v = Violations::new();
        for i in 0..10_000 {
            v.add(format!("refs[{i}].key"), format!("{:?} is not a key", "é".repeat(5_000)));
        }
        let s = invalid_argument(&v);
        assert!(trailer_bytes(&s) < 12 * 1024, "{} bytes", trailer_bytes(&s));
        let details = s.get_details_bad_request().expect("bad request");
        let last = details.field_violations.last().expect("violations");
        assert!(last.description.contains("more violation(s) not listed"), "{last:?}");
        assert_eq!(details.field_violations[0].field, "refs[0].key", "the first ones are kept");

        let many: Vec<Precondition> = (0..5_000).map(|i| Precondition::new("LOCKED", "x".repeat(100_000), format!("{i}"))).collect();
        let s = failed_precondition("w".repeat(100_000), &many);
        assert!(trailer_bytes(&s) < 12 * 1024, "{} bytes", trailer_bytes(&s));
        assert!(s.message().len() <= MAX_MESSAGE_BYTES);
        let s = not_found("group", &"g".repeat(1_000_000));
        assert!(trailer_bytes(&s) < 2 * 1024, "{} bytes", trailer_bytes(&s));
    }

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcdef", 5), "ab…");
        let cut = clip(&"é".repeat(10), 8);
        assert!(cut.len() <= 8 && cut.ends_with('…'), "{cut}");
        assert!(cut.starts_with('é'));
    }
}
