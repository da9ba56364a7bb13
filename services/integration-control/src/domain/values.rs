//! Checked request values. Each is built with `parse` at the edge, so the rest of the
//! service never sees an unchecked string.

use serde::{Deserialize, Serialize};

/// Longest API key accepted, in bytes.
pub const MAX_API_KEY_BYTES: usize = 4096;
/// Largest field-mapping document, in bytes.
pub const MAX_FIELD_MAPPING_BYTES: usize = 256 * 1024;
/// Longest display name, description, reason or actor.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest base URL.
pub const MAX_URL_CHARS: usize = 2048;

/// A resource id segment (AIP-122): a lowercase letter, then lowercase letters, digits or
/// '-', at most 63 characters, not ending in '-'.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceId(String);

impl ResourceId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("is required".into());
        }
        if s.len() > 63 {
            return Err("is longer than 63 characters".into());
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(format!("{s:?} must start with a lowercase letter"));
        }
        if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(format!("{s:?} may hold only lowercase letters, digits and '-'"));
        }
        if s.ends_with('-') {
            return Err(format!("{s:?} must not end with '-'"));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// For values read back from the database, which were checked on the way in.
    pub fn from_stored(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An API key in clear. Never printed: `Debug` shows `***` and there is no `Display`, so
/// a key cannot reach a log line, an error or a trace by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// `None` for an empty key (no credentials); the error never repeats the value.
    pub fn parse(s: &str) -> Result<Option<Self>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        if s.len() > MAX_API_KEY_BYTES {
            return Err(format!("is longer than {MAX_API_KEY_BYTES} bytes"));
        }
        if s.chars().any(char::is_control) || s.trim() != s {
            return Err("must not contain control characters or surrounding whitespace".into());
        }
        Ok(Some(Self(s.to_owned())))
    }
    /// Like [`ApiKey::parse`], but the key is required.
    pub fn required(s: &str) -> Result<Self, String> {
        Self::parse(s)?.ok_or_else(|| "is required (a non-empty API key)".to_owned())
    }
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A short free text (display name, description, reason): at most 200 characters, no
/// control characters.
pub fn text(s: &str) -> Result<String, String> {
    if s.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("is longer than {MAX_TEXT_CHARS} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

/// The external system's name, lowercase: `rally`, `jira`, `generic`, ...
pub fn external_system(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("is required (e.g. rally, jira, generic)".into());
    }
    if s.len() > 63 || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err(format!("{s:?} must be 1-63 lowercase letters, digits, '-' or '_'"));
    }
    Ok(s.to_owned())
}

/// An absolute http(s) URL with a host.
pub fn base_url(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err("must be an absolute http(s) URL".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("must be an absolute http(s) URL with a host".into());
    }
    if s.len() > MAX_URL_CHARS || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be an absolute http(s) URL without whitespace".into());
    }
    Ok(s.to_owned())
}

/// A field-mapping document: a JSON object (empty input is `{}`), at most 256 KiB,
/// stored in canonical form.
pub fn field_mapping(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Ok("{}".into());
    }
    if s.len() > MAX_FIELD_MAPPING_BYTES {
        return Err(format!("is larger than {MAX_FIELD_MAPPING_BYTES} bytes"));
    }
    let v: serde_json::Value = serde_json::from_str(s).map_err(|e| format!("is not JSON: {e}"))?;
    if !v.is_object() {
        return Err("must be a JSON object".into());
    }
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

/// A 5-field cron expression (minute hour day-of-month month day-of-week), UTC.
pub fn schedule(s: &str) -> Result<String, String> {
    const FIELDS: [(&str, u32, u32); 5] =
        [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)];
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 5 {
        return Err("must be a 5-field cron expression (minute hour day-of-month month day-of-week)".into());
    }
    for (i, (part, (what, lo, hi))) in parts.iter().zip(FIELDS).enumerate() {
        let value = |v: &str| -> Result<u32, String> {
            let lower = v.to_ascii_lowercase();
            let named = match i {
                3 => MONTHS.iter().position(|m| *m == lower).map(|p| p as u32 + 1),
                4 => DAYS.iter().position(|d| *d == lower).map(|p| p as u32),
                _ => None,
            };
            let n = match named {
                Some(n) => n,
                None => v.parse::<u32>().map_err(|_| format!("{what} {v:?} is not a number"))?,
            };
            if n < lo || n > hi {
                return Err(format!("{what} {n} is outside {lo}-{hi}"));
            }
            Ok(n)
        };
        for item in part.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, st)) => (r, Some(st)),
                None => (item, None),
            };
            if let Some(st) = step
                && st.parse::<u32>().ok().filter(|n| *n > 0).is_none()
            {
                return Err(format!("{what} step {st:?} is not a positive number"));
            }
            if range == "*" {
                continue;
            }
            match range.split_once('-') {
                Some((a, b)) => {
                    if value(a)? > value(b)? {
                        return Err(format!("{what} range {range:?} is reversed"));
                    }
                }
                None => {
                    value(range)?;
                }
            }
        }
    }
    Ok(parts.join(" "))
}

/// The `request_id` of a mutation and a fingerprint of its request (shared by every service).
pub use ferry_kit::idempotency::RequestKey;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_never_print() {
        let k = ApiKey::required("s3cret-value").unwrap();
        assert_eq!(format!("{k:?}"), "***");
        assert!(ApiKey::required("").is_err());
        let long = "x".repeat(MAX_API_KEY_BYTES + 1);
        let err = ApiKey::required(&long).unwrap_err();
        assert!(!err.contains("xxx"));
    }

    #[test]
    fn cron_expressions() {
        for ok in ["* * * * *", "*/5 0-6 1,15 jan-mar mon-fri", "0 3 * * 7", "30 2 1 12 sun"] {
            assert!(schedule(ok).is_ok(), "{ok}");
        }
        for bad in ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "5-1 * * * *", "* * * foo *", "* * * * * *"] {
            assert!(schedule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_and_json() {
        assert!(base_url("https://rally.example.com/api").is_ok());
        for bad in ["", "rally.example.com", "ftp://x", "https://", "https:///x", "https://a b"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        assert_eq!(field_mapping("").unwrap(), "{}");
        assert_eq!(field_mapping("{ \"b\": 1, \"a\": 2 }").unwrap(), "{\"a\":2,\"b\":1}");
        assert!(field_mapping("[1]").is_err());
        assert!(field_mapping("{").is_err());
    }
}
