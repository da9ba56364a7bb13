//! Errors as the user sees them on stderr: the gRPC code and message, then every
//! google.rpc detail the server attached (field violations, unmet preconditions, the
//! resource concerned), then a hint when one helps.

use std::fmt::Write as _;

use tonic::Code;
use tonic_types::StatusExt;

/// The canonical name of a gRPC code (`NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
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
    let Some(status) = status_of(e) else {
        let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
        let _ = writeln!(s, "error: {}", chain.join(": "));
        return s;
    };
    // Context added around the status (e.g. "line 12"), outermost first.
    let context: Vec<String> = e.chain().take_while(|c| c.downcast_ref::<tonic::Status>().is_none()).map(ToString::to_string).collect();
    let prefix = if context.is_empty() { String::new() } else { format!("{}: ", context.join(": ")) };
    let _ = writeln!(s, "error: {prefix}{}: {}", code_name(status.code()), status.message());
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
    if let Some(h) = hint(status.code()) {
        let _ = writeln!(s, "  hint: {h}");
    }
    s
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
            let _ = writeln!(s, "  precondition {} on {}: {}", v.r#type, v.subject, v.description);
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
        Code::Unavailable => Some("is the suite running (`ferry up`)? check --registry"),
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
    fn renders_plain_errors_as_a_chain() {
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render_error(&e), "error: outer: inner\n");
    }
}
