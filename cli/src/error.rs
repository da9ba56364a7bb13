//! Errors as the user sees them on stderr: the gRPC code and message, then every
//! google.rpc detail the server attached (field violations, unmet preconditions, the
//! resource concerned), then a hint when one helps.
//!
//! Two error types steer this: [`Hint`], context that prints as a hint line instead of a
//! prefix, and [`Exit`], a chosen exit status (`ferry sync check` exits 3 on a deny).

use std::fmt::{self, Write as _};

use tonic::Code;
use tonic_types::StatusExt;

pub use ferry_kit::status::code_name;

/// Context that renders as a `hint:` line under the error rather than as a prefix.
#[derive(Debug)]
pub struct Hint(pub String);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Hint {}

/// End the command with this exit status. The output already said why, so an empty
/// `message` prints nothing on stderr.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() { write!(f, "exit status {}", self.code) } else { f.write_str(&self.message) }
    }
}

impl std::error::Error for Exit {}

/// The exit status for an error: an [`Exit`]'s code, otherwise 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<Exit>().map_or(1, |x| x.code)
}

/// A job's recorded failure as the status the synchronous call would have returned:
/// violations become PreconditionFailure details, or BadRequest ones for INVALID_ARGUMENT.
pub fn job_status(e: &ferry_proto::common::v1::ErrorStatus) -> tonic::Status {
    let code = Code::from_i32(e.code);
    let message = if e.message.is_empty() { code.description().to_owned() } else { e.message.clone() };
    if e.violations.is_empty() {
        return tonic::Status::new(code, message);
    }
    let details = if code == Code::InvalidArgument {
        let v: Vec<_> = e.violations.iter().map(|v| tonic_types::FieldViolation::new(v.subject.clone(), v.description.clone())).collect();
        tonic_types::ErrorDetails::with_bad_request(v)
    } else {
        let v: Vec<_> = e
            .violations
            .iter()
            .map(|v| tonic_types::PreconditionViolation::new(v.violation_type.clone(), v.subject.clone(), v.description.clone()))
            .collect();
        tonic_types::ErrorDetails::with_precondition_failure(v)
    };
    tonic::Status::with_error_details(code, message, details)
}

/// The gRPC status somewhere in an error's chain, if any.
pub fn status_of(e: &anyhow::Error) -> Option<&tonic::Status> {
    e.chain().find_map(|c| c.downcast_ref::<tonic::Status>())
}

/// True when the error is a closed stdout (`ferry entity export … | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// The whole report, one or more lines, ending in a newline.
pub fn render_error(e: &anyhow::Error) -> String {
    let mut s = String::new();
    // A context layer is not its context type in `chain()`; anyhow finds it by downcast,
    // and its text identifies the layer to leave out of the prefix.
    let hints: Vec<String> = e.downcast_ref::<Hint>().map(ToString::to_string).into_iter().collect();
    let not_hint = |c: &&(dyn std::error::Error + 'static)| !hints.contains(&c.to_string());
    let Some(status) = status_of(e) else {
        if let Some(exit) = e.downcast_ref::<Exit>() {
            if !exit.message.is_empty() {
                let _ = writeln!(s, "error: {}", exit.message);
            }
            return s;
        }
        let chain: Vec<String> = e.chain().filter(not_hint).map(ToString::to_string).collect();
        let _ = writeln!(s, "error: {}", chain.join(": "));
        for h in &hints {
            let _ = writeln!(s, "  hint: {h}");
        }
        return s;
    };
    // Context added around the status (e.g. "line 12"), outermost first.
    let context: Vec<String> =
        e.chain().take_while(|c| c.downcast_ref::<tonic::Status>().is_none()).filter(not_hint).map(ToString::to_string).collect();
    let prefix = if context.is_empty() { String::new() } else { format!("{}: ", context.join(": ")) };
    if status.message().is_empty() {
        let _ = writeln!(s, "error: {prefix}{}", code_name(status.code()));
    } else {
        let _ = writeln!(s, "error: {prefix}{}: {}", code_name(status.code()), status.message());
    }
    // Transport errors nest the same words several times; print each cause once.
    let mut seen = vec![status.message().to_owned()];
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        let text = c.to_string();
        if !seen.contains(&text) {
            let _ = writeln!(s, "  caused by: {text}");
            seen.push(text);
        }
        cause = c.source();
    }
    details(&mut s, status);
    for h in &hints {
        let _ = writeln!(s, "  hint: {h}");
    }
    if let Some(h) = hint(status.code()) {
        let _ = writeln!(s, "  hint: {h}");
    }
    s
}

/// The missing (kind, key) references a FAILED_PRECONDITION names, with what supplies each
/// (the violation's description), from violations of type `MISSING_DEPENDENCY`.
pub fn missing_dependencies(status: &tonic::Status) -> Vec<(String, String)> {
    let d = status.get_error_details();
    let Some(pf) = d.precondition_failure() else { return Vec::new() };
    pf.violations.iter().filter(|v| v.r#type == MISSING_DEPENDENCY).map(|v| (subject_label(&v.subject), v.description.clone())).collect()
}

const MISSING_DEPENDENCY: &str = "MISSING_DEPENDENCY";

/// `ENTITY_KIND_LOOKUP:countries` as `LOOKUP countries`.
fn subject_label(subject: &str) -> String {
    match subject.split_once(':') {
        Some((kind, key)) => format!("{} {key}", kind.trim_start_matches("ENTITY_KIND_")),
        None => subject.to_owned(),
    }
}

fn details(s: &mut String, status: &tonic::Status) {
    let d = status.get_error_details();
    if let Some(br) = d.bad_request() {
        for v in &br.field_violations {
            let _ = writeln!(s, "  field {}: {}", v.field, v.description);
        }
    }
    if let Some(pf) = d.precondition_failure() {
        for v in &pf.violations {
            if v.r#type == MISSING_DEPENDENCY {
                let _ = writeln!(s, "  missing {}: {}", subject_label(&v.subject), v.description);
            } else {
                let _ = writeln!(s, "  precondition {} on {}: {}", v.r#type, v.subject, v.description);
            }
        }
    }
    if let Some(ri) = d.resource_info() {
        let _ = writeln!(s, "  resource: {} {}", ri.resource_type, ri.resource_name);
    }
    if let Some(ei) = d.error_info() {
        let _ = writeln!(s, "  reason: {} ({})", ei.reason, ei.domain);
    }
    if let Some(help) = d.help() {
        for l in &help.links {
            let _ = writeln!(s, "  see: {} {}", l.description, l.url);
        }
    }
}

fn hint(code: Code) -> Option<&'static str> {
    match code {
        Code::Unauthenticated => Some("pass --token, set FERRY_TOKEN, or point --token-file at the admin.token `ferry up` wrote"),
        Code::Unavailable => Some("is the suite running (`ferry up`)? check --registry, --merge, --integration or --refresh"),
        Code::Unimplemented => Some(
            "the server there does not implement this call (yet); do --merge, --integration and --refresh point at the right services?",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn renders_code_message_and_field_violations() {
        let status = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "invalid request",
            ErrorDetails::with_bad_request(vec![FieldViolation::new("key", "is required")]),
        );
        let e = anyhow::Error::new(status).context("line 3");
        let text = render_error(&e);
        assert!(text.starts_with("error: line 3: INVALID_ARGUMENT: invalid request\n"), "{text}");
        assert!(text.contains("  field key: is required\n"), "{text}");
    }

    #[test]
    fn renders_missing_dependencies_and_hints() {
        let v = tonic_types::PreconditionViolation::new(
            "MISSING_DEPENDENCY",
            "ENTITY_KIND_LOOKUP:countries",
            "used by config item x; merge environments/e/groups/test into environments/e/groups/prod",
        );
        let status =
            tonic::Status::with_error_details(Code::FailedPrecondition, "missing", ErrorDetails::with_precondition_failure(vec![v]));
        assert_eq!(missing_dependencies(&status).len(), 1);
        let e = anyhow::Error::new(status).context(Hint("add --merge-groups-first".into()));
        let text = render_error(&e);
        assert!(text.starts_with("error: FAILED_PRECONDITION: missing\n"), "{text}");
        assert!(text.contains("  missing LOOKUP countries: used by config item x; merge environments/e/groups/test"), "{text}");
        assert!(text.contains("  hint: add --merge-groups-first\n"), "{text}");
    }

    #[test]
    fn job_errors_become_statuses_and_exit_codes_carry_through() {
        use ferry_proto::common::v1::{ErrorStatus, Violation};
        let err = ErrorStatus {
            code: Code::Aborted as i32,
            message: "stale".into(),
            violations: vec![Violation { violation_type: "STALE".into(), subject: "g".into(), description: "moved".into() }],
        };
        let status = job_status(&err);
        assert_eq!(status.code(), Code::Aborted);
        assert!(render_error(&anyhow::Error::new(status)).contains("  precondition STALE on g: moved"));
        let quiet = anyhow::Error::new(Exit { code: 3, message: String::new() });
        assert_eq!((exit_code(&quiet), render_error(&quiet).as_str()), (3, ""));
        assert_eq!(exit_code(&anyhow::anyhow!("x")), 1);
    }

    #[test]
    fn renders_plain_errors_as_a_chain() {
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render_error(&e), "error: outer: inner\n");
    }
}
