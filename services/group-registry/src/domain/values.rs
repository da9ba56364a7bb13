//! Checked request values. Each is built with `parse`/`TryFrom` at the edge, so the rest of
//! the service never sees an unchecked string.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest payload or config value accepted, in bytes.
pub const MAX_JSON_BYTES: usize = 256 * 1024;
/// Longest entity key.
pub use ferry_kit::request::MAX_KEY_CHARS;
/// Most references one entity or config item may declare.
pub const MAX_REFERENCES: usize = 100;
/// Longest display name.
pub const MAX_DISPLAY_CHARS: usize = 200;

/// The nine entity kinds. The number is the proto enum value and the stored value, and
/// manifests sort by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    DataSource = 1,
    Lookup = 2,
    CustomAction = 3,
    Role = 4,
    Theme = 5,
    Portal = 6,
    Service = 7,
    Table = 8,
    Map = 9,
}

impl Kind {
    pub const ALL: [Kind; 9] =
        [Kind::DataSource, Kind::Lookup, Kind::CustomAction, Kind::Role, Kind::Theme, Kind::Portal, Kind::Service, Kind::Table, Kind::Map];

    pub fn number(self) -> i32 {
        self as i32
    }

    pub fn from_number(n: i32) -> Result<Kind, String> {
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.number() == n)
            .ok_or_else(|| if n == 0 { "kind is required".to_owned() } else { format!("unknown kind {n}") })
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::DataSource => "DATA_SOURCE",
            Kind::Lookup => "LOOKUP",
            Kind::CustomAction => "CUSTOM_ACTION",
            Kind::Role => "ROLE",
            Kind::Theme => "THEME",
            Kind::Portal => "PORTAL",
            Kind::Service => "SERVICE",
            Kind::Table => "TABLE",
            Kind::Map => "MAP",
        }
    }
}

/// Duplicated (one instance per group) or shared (one instance, many groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sharing {
    Duplicated = 1,
    Shared = 2,
}

impl Sharing {
    pub fn number(self) -> i32 {
        self as i32
    }
    pub fn from_number(n: i32) -> Option<Sharing> {
        match n {
            1 => Some(Sharing::Duplicated),
            2 => Some(Sharing::Shared),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Sharing::Duplicated => "DUPLICATED",
            Sharing::Shared => "SHARED",
        }
    }
    /// What the mode means, in the groups article's words.
    pub fn meaning(self) -> &'static str {
        match self {
            Sharing::Duplicated => "one instance per group",
            Sharing::Shared => "created once and linked to several groups",
        }
    }
}

/// PRODUCTION or NON_PRODUCTION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    Production = 1,
    NonProduction = 2,
}

impl Tier {
    pub fn number(self) -> i32 {
        self as i32
    }
    pub fn from_number(n: i32) -> Result<Tier, String> {
        match n {
            1 => Ok(Tier::Production),
            2 => Ok(Tier::NonProduction),
            0 => Err("tier is required (PRODUCTION or NON_PRODUCTION)".into()),
            n => Err(format!("unknown tier {n}")),
        }
    }
}

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
        let mut chars = s.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
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

/// An entity's key field: 1–200 characters, no control characters, no surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityKey(String);

impl EntityKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        ferry_kit::request::check_entity_key(s)?;
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// For values read back from the database, which were checked on the way in.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Display for EntityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reference to an entity by (kind, key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    pub kind: Kind,
    pub key: EntityKey,
}

impl std::fmt::Display for EntityRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.label(), self.key)
    }
}

/// A JSON document in canonical form (object keys sorted, no insignificant whitespace),
/// so equal content has equal bytes and equal hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Json(String);

impl Json {
    /// Empty input is the empty object.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_JSON_BYTES {
            return Err(format!("is larger than {MAX_JSON_BYTES} bytes"));
        }
        if s.trim().is_empty() {
            return Ok(Self("{}".into()));
        }
        let value: serde_json::Value = serde_json::from_str(s).map_err(|e| format!("is not JSON: {e}"))?;
        Ok(Self(value.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Encodes references for storage: `[[kind, "key"], …]`.
pub fn refs_to_json(refs: &[EntityRef]) -> String {
    let v: Vec<(i32, &str)> = refs.iter().map(|r| (r.kind.number(), r.key.as_str())).collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

/// Decodes stored references; unreadable ones are dropped (they were checked on write).
pub fn refs_from_json(s: &str) -> Vec<EntityRef> {
    let v: Vec<(i32, String)> = serde_json::from_str(s).unwrap_or_default();
    v.into_iter().filter_map(|(k, key)| Some(EntityRef { kind: Kind::from_number(k).ok()?, key: EntityKey::from_stored(key) })).collect()
}

/// Hex SHA-256 prefix over payload and references: what "same content" means in a merge.
pub fn content_hash(payload: &Json, refs: &[EntityRef]) -> String {
    stored_content_hash(payload.as_str(), &refs_to_json(refs))
}

/// [`content_hash`] of a stored payload and stored references.
pub fn stored_content_hash(payload: &str, refs_json: &str) -> String {
    let mut h = Sha256::new();
    h.update(payload.as_bytes());
    h.update([0]);
    h.update(refs_json.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// A display name: at most 200 characters, no control characters.
pub fn display_name(s: &str) -> Result<String, String> {
    if s.chars().count() > MAX_DISPLAY_CHARS {
        return Err(format!("is longer than {MAX_DISPLAY_CHARS} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

/// Longest note (a restore point's run, snapshot name or description), in bytes.
pub const MAX_NOTE_BYTES: usize = 1024;

/// A note kept with a resource: at most [`MAX_NOTE_BYTES`], no control characters.
pub fn note(s: &str) -> Result<String, String> {
    if s.len() > MAX_NOTE_BYTES {
        return Err(format!("is longer than {MAX_NOTE_BYTES} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

/// A `request_id` and the fingerprint of the request it came with (shared by every service).
pub use ferry_kit::idempotency::RequestKey;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn resource_ids() {
        assert!(ResourceId::parse("prod").is_ok());
        assert!(ResourceId::parse("dev-1").is_ok());
        for bad in ["", "Prod", "1dev", "dev_1", "dev-", &"a".repeat(64)] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys() {
        assert!(EntityKey::parse("customer lookup/v2").is_ok());
        assert!(EntityKey::parse("").is_err());
        assert!(EntityKey::parse(" padded").is_err());
        assert!(EntityKey::parse("tab\tkey").is_err());
        assert!(EntityKey::parse(&"k".repeat(201)).is_err());
        assert!(EntityKey::parse(&"é".repeat(200)).is_ok());
    }

    #[test]
    fn json_is_canonical() {
        let a = Json::parse(r#"{ "b": 1, "a": [1, 2] }"#).unwrap();
        let b = Json::parse(r#"{"a":[1,2],"b":1}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(content_hash(&a, &[]), content_hash(&b, &[]));
        assert!(Json::parse("{not json").is_err());
        assert!(Json::parse(&format!("\"{}\"", "x".repeat(MAX_JSON_BYTES))).is_err());
        assert_eq!(Json::parse("").unwrap().as_str(), "{}");
    }

    proptest! {
        #[test]
        fn refs_round_trip(keys in proptest::collection::vec("[a-z][a-z0-9 ]{0,20}[a-z]", 0..8), kind in 1i32..=9) {
            let refs: Vec<EntityRef> = keys.iter().map(|k| EntityRef { kind: Kind::from_number(kind).unwrap(), key: EntityKey::parse(k).unwrap() }).collect();
            prop_assert_eq!(refs_from_json(&refs_to_json(&refs)), refs);
        }

        #[test]
        fn key_parse_never_panics(s in "\\PC*") {
            let _ = EntityKey::parse(&s);
            let _ = ResourceId::parse(&s);
        }
    }
}
