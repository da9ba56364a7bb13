//! Parsing request fields at each service's gRPC edge: every problem is collected as a
//! field violation, then [`done`] answers INVALID_ARGUMENT listing all of them, or hands
//! back the parsed values. The fields every Ferry request shares (`request_id`, paging,
//! update masks) parse here, and the entity key rule, which every service that takes a
//! key applies alike (the registry stores keys; the merge engine selects by them).

use tonic::Status;

use crate::idempotency::{self, RequestKey};
use crate::paging::{self, PageError};
use crate::status::{Violations, invalid_argument};

/// Finishes parsing: INVALID_ARGUMENT listing every violation, or the parsed values.
pub fn done<T>(v: Violations, values: impl FnOnce() -> Option<T>) -> Result<T, Status> {
    if !v.is_empty() {
        return Err(invalid_argument(&v));
    }
    values().ok_or_else(|| Status::internal("request parsing lost a value"))
}

/// The request key of a mutation: its `request_id` and a fingerprint of the request.
/// Also notes the request's resource names and id for the call's audit event.
pub fn request_key<M: prost::Message>(v: &mut Violations, method: &str, request: &M, request_id: &str) -> Option<Option<RequestKey>> {
    // Encoded once for both (an import's batch can be tens of MiB).
    let encoded = request.encode_to_vec();
    crate::audit::note_request(&encoded, request_id);
    v.check("request_id", RequestKey::parse(request_id, idempotency::fingerprint(method, &encoded)))
}

/// `page_size` (AIP-158).
pub fn page_size(v: &mut Violations, n: i32) -> Option<u64> {
    v.check("page_size", paging::page_size(n))
}

/// `page_token` of the list identified by `scope`.
pub fn page_token<T: serde::de::DeserializeOwned>(v: &mut Violations, scope: &str, token: &str) -> Option<Option<T>> {
    v.check("page_token", paging::decode::<T>(scope, token).map_err(|e: PageError| e.to_string()))
}

/// The `next_page_token` of a reply (empty on the last page).
pub fn next_token<T: serde::Serialize>(scope: &str, next: &Option<T>) -> String {
    next.as_ref().map(|c| paging::encode(scope, c)).unwrap_or_default()
}

/// The paths of an update mask (none when absent).
pub fn mask_paths(mask: &Option<prost_types::FieldMask>) -> Vec<String> {
    mask.as_ref().map(|m| m.paths.clone()).unwrap_or_default()
}

/// Longest entity key, in characters.
pub const MAX_KEY_CHARS: usize = 200;

/// The key field of an entity: 1–200 characters, no control characters, no whitespace at
/// either end (Unicode whitespace too: U+2028 is whitespace, like a space).
pub fn check_entity_key(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("key is required".into());
    }
    if s.chars().count() > MAX_KEY_CHARS {
        return Err(format!("key is longer than {MAX_KEY_CHARS} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("key must not contain control characters".into());
    }
    if s.trim() != s {
        return Err("key must not start or end with whitespace".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_reports_every_violation() {
        let mut v = Violations::new();
        let a = page_size(&mut v, -1);
        let b = page_token::<String>(&mut v, "x", "not-ours");
        let err = done(v, || Some((a?, b?))).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("page_size") && err.message().contains("page_token"), "{}", err.message());
        assert_eq!(done(Violations::new(), || Some(1)).ok(), Some(1));
    }

    #[test]
    fn entity_keys() {
        for ok in ["countries", "Äpfel", "a b", &"k".repeat(200)] {
            assert_eq!(check_entity_key(ok), Ok(()), "{ok:?}");
        }
        for bad in ["", " a", "a ", "\u{2028}\u{2029}", "a\u{2028}", "a\tb", "\0", &"k".repeat(201)] {
            assert!(check_entity_key(bad).is_err(), "{bad:?}");
        }
    }
}
