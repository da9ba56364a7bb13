//! Page sizes and opaque page tokens. A token is bound to the list it came from (a digest
//! of the request's parent and filters), so a token from another list, or one that is not
//! ours at all, is refused as INVALID_ARGUMENT.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

pub const DEFAULT_PAGE_SIZE: u64 = 100;
pub const MAX_PAGE_SIZE: u64 = 1000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("must not be negative")]
    NegativeSize,
    #[error("is not a page token of this list")]
    ForeignToken,
}

/// AIP-158: 0 means the default, above the maximum is coerced down, negative is an error.
pub fn page_size(requested: i32) -> Result<u64, PageError> {
    match requested {
        n if n < 0 => Err(PageError::NegativeSize),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

fn scope_digest(scope: &str) -> String {
    hex::encode(&Sha256::digest(scope.as_bytes())[..6])
}

/// Encodes `cursor` as a page token for the list identified by `scope`.
pub fn encode<T: Serialize>(scope: &str, cursor: &T) -> String {
    let body = serde_json::to_string(cursor).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("f1.{}.{}", scope_digest(scope), body))
}

/// Decodes a page token; an empty token is the first page (`None`).
pub fn decode<T: DeserializeOwned>(scope: &str, token: &str) -> Result<Option<T>, PageError> {
    if token.is_empty() {
        return Ok(None);
    }
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| PageError::ForeignToken)?;
    let text = String::from_utf8(raw).map_err(|_| PageError::ForeignToken)?;
    let rest = text.strip_prefix("f1.").ok_or(PageError::ForeignToken)?;
    let (digest, body) = rest.split_once('.').ok_or(PageError::ForeignToken)?;
    if digest != scope_digest(scope) {
        return Err(PageError::ForeignToken);
    }
    serde_json::from_str(body).map(Some).map_err(|_| PageError::ForeignToken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_scope_binding() {
        let t = encode("groups:env-a", &(3i64, "k".to_string()));
        assert_eq!(decode::<(i64, String)>("groups:env-a", &t), Ok(Some((3, "k".to_string()))));
        assert_eq!(decode::<(i64, String)>("groups:env-b", &t), Err(PageError::ForeignToken));
        assert_eq!(decode::<(i64, String)>("groups:env-a", "not-a-token"), Err(PageError::ForeignToken));
        assert_eq!(decode::<(i64, String)>("groups:env-a", ""), Ok(None));
    }

    #[test]
    fn sizes() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(5), Ok(5));
        assert_eq!(page_size(100_000), Ok(MAX_PAGE_SIZE));
        assert_eq!(page_size(-1), Err(PageError::NegativeSize));
    }
}

/// One page of a list and the cursor of the next, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// Splits a fetch of `limit + 1` rows into a page of `limit` and the next page's cursor.
pub fn split<T, C>(mut items: Vec<T>, limit: u64, cursor: impl Fn(&T) -> C) -> Page<T, C> {
    let next = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn split_pages() {
        assert_eq!(split(vec![1, 2, 3], 2, |x| *x), Page { items: vec![1, 2], next: Some(2) });
        assert_eq!(split(vec![1, 2], 2, |x| *x), Page { items: vec![1, 2], next: None });
    }
}
