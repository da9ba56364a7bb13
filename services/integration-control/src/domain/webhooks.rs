//! Webhook subscriptions, their deliveries and the events they carry: names, checked
//! values, the event types, the one function that turns a change into events, matching,
//! and the signature receivers check.

use std::fmt;

use ferry_kit::outbox::Event;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

use super::names::segments;
use super::records::{Change, CredentialState, JobState, ResourceType};
use super::values::{ApiKey, MAX_URL_CHARS, ResourceId};

/// Every event type, the CLI's and the API's vocabulary.
pub const EVENT_TYPES: &[&str] = &[
    "integration.activated",
    "integration.deactivated",
    "credentials.suspended",
    "credentials.restored",
    "credentials.rotated",
    "mapping.activated",
    "mapping.disabled",
    "sync_job.paused",
    "sync_job.resumed",
    "environment.fenced",
    "environment.unfenced",
    "sync_lease.revoked",
    "refresh_run.state_changed",
    "refresh_run.step_changed",
    "rollback_run.state_changed",
    "rollback_run.step_changed",
    "promotion_run.state_changed",
    "promotion_run.step_changed",
];

/// Shortest signing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
/// Most event types or environments one subscription lists.
pub const MAX_FILTERS: usize = 64;

/// `webhookSubscriptions/{subscription}`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubscriptionName(pub ResourceId);

impl SubscriptionName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["webhookSubscriptions"])?;
        Ok(Self(ResourceId::parse(p[0])?))
    }
    pub fn id(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for SubscriptionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webhookSubscriptions/{}", self.0)
    }
}

/// `webhookSubscriptions/{subscription}/deliveries/{sequence}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryName {
    pub subscription: SubscriptionName,
    pub sequence: i64,
}

impl DeliveryName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (head, tail) = s
            .rsplit_once("/deliveries/")
            .ok_or_else(|| format!("{s:?} is not a name of the form webhookSubscriptions/{{id}}/deliveries/{{id}}"))?;
        let sequence = tail.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{tail:?} is not a delivery id"))?;
        Ok(Self { subscription: SubscriptionName::parse(head)?, sequence })
    }
}

impl fmt::Display for DeliveryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/deliveries/{}", self.subscription, self.sequence)
    }
}

/// A receiver URL: absolute `http://` or `https://` with a host.
pub fn url(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("is required (an http:// or https:// URL)".into());
    }
    if s.len() > MAX_URL_CHARS {
        return Err(format!("is longer than {MAX_URL_CHARS} characters"));
    }
    let uri: http::Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{s:?} must be an http:// or https:// URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    Ok(s.to_owned())
}

/// Event types to deliver: each a known one, no repeats (sorted).
pub fn event_types(list: &[String]) -> Result<Vec<String>, String> {
    if list.len() > MAX_FILTERS {
        return Err(format!("lists more than {MAX_FILTERS} event types"));
    }
    let unknown: Vec<&str> = list.iter().map(String::as_str).filter(|t| !EVENT_TYPES.contains(t)).collect();
    if !unknown.is_empty() {
        return Err(format!("unknown event type(s) {} (known: {})", unknown.join(", "), EVENT_TYPES.join(", ")));
    }
    let mut out = list.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Environment ids to deliver (sorted, no repeats).
pub fn environments(list: &[String]) -> Result<Vec<String>, String> {
    if list.len() > MAX_FILTERS {
        return Err(format!("lists more than {MAX_FILTERS} environments"));
    }
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let id = e.strip_prefix("environments/").unwrap_or(e);
        out.push(ResourceId::parse(id).map_err(|m| format!("environment {m}"))?.as_str().to_owned());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A signing secret: at least [`MIN_SECRET_BYTES`] bytes; held as an [`ApiKey`] so it is
/// never printed.
pub fn secret(s: &str) -> Result<ApiKey, String> {
    if s.len() < MIN_SECRET_BYTES {
        return Err(format!("is required: at least {MIN_SECRET_BYTES} bytes"));
    }
    ApiKey::required(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionState {
    Active = 1,
    Disabled = 2,
}

/// A subscription as replies show it (no secret: its fingerprint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub name: SubscriptionName,
    pub url: String,
    pub event_types: Vec<String>,
    pub environments: Vec<String>,
    pub state: SubscriptionState,
    pub disabled_reason: String,
    pub consecutive_failures: i32,
    pub secret_fingerprint: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Subscription {
    /// Whether `event` is for this subscription (its state aside).
    pub fn wants(&self, event: &Event) -> bool {
        (self.event_types.is_empty() || self.event_types.contains(&event.kind))
            && (self.environments.is_empty() || self.environments.contains(&event.environment))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub time: i64,
    pub status_code: i32,
    pub error: String,
    pub duration_micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub name: DeliveryName,
    pub event_id: String,
    pub event_type: String,
    pub environment: String,
    pub resource: String,
    pub delivered: bool,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    /// Newest first.
    pub attempts: Vec<Attempt>,
}

/// The events one change makes: a transition of an existing resource's state. Creations,
/// deletions and copies (the resource did not exist before, or does not after) make none.
pub fn events_of(environment: &str, change: &Change) -> Vec<Event> {
    let (b, a) = (&change.before, &change.after);
    if !b.exists || !a.exists {
        return Vec::new();
    }
    let mut kinds = Vec::new();
    match change.kind {
        ResourceType::Integration => {
            if b.active != a.active {
                kinds.push(if a.active { "integration.activated" } else { "integration.deactivated" });
            }
            match (b.credential_state, a.credential_state) {
                (Some(CredentialState::Active), Some(CredentialState::Suspended)) => kinds.push("credentials.suspended"),
                (Some(CredentialState::Suspended), Some(CredentialState::Active)) => kinds.push("credentials.restored"),
                _ => {}
            }
        }
        ResourceType::Mapping if b.active != a.active => kinds.push(if a.active { "mapping.activated" } else { "mapping.disabled" }),
        ResourceType::SyncJob => match (b.job_state, a.job_state) {
            (Some(JobState::Running), Some(JobState::Paused)) => kinds.push("sync_job.paused"),
            (Some(JobState::Paused), Some(JobState::Running)) => kinds.push("sync_job.resumed"),
            _ => {}
        },
        ResourceType::EnvironmentFence if b.fenced != a.fenced => {
            kinds.push(if a.fenced { "environment.fenced" } else { "environment.unfenced" })
        }
        _ => {}
    }
    let data = serde_json::json!({ "before": b, "after": a });
    kinds.into_iter().map(|k| Event::new(k, environment, change.resource.clone(), data.clone())).collect()
}

/// The `Ferry-Signature` header of `body` sent at `t` (unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so `new_from_slice` cannot fail.
    let Ok(mut m) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret) else { return Vec::new() };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// What a receiver does: parse the header, refuse a timestamp older (or newer) than
/// `tolerance_secs` from `now`, and compare the MAC in constant time.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> Result<(), String> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let t = t.ok_or("no timestamp")?;
    if (now - t).abs() > tolerance_secs {
        return Err(format!("timestamp {t} is more than {tolerance_secs}s from now"));
    }
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).map_err(|e| e.to_string())?;
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    // `verify_slice` compares in constant time.
    if v1.iter().any(|sig| m.clone().verify_slice(sig).is_ok()) { Ok(()) } else { Err("no v1 signature matches".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::records::ResourceState;

    #[test]
    fn signatures_verify_and_old_ones_are_refused() {
        let header = signature(b"0123456789abcdef", 1_000, b"{}");
        assert!(header.starts_with("t=1000,v1="));
        assert_eq!(verify(b"0123456789abcdef", &header, b"{}", 1_100, 300), Ok(()));
        assert!(verify(b"0123456789abcdef", &header, b"{} ", 1_100, 300).is_err());
        assert!(verify(b"another-secret-16", &header, b"{}", 1_100, 300).is_err());
        assert!(verify(b"0123456789abcdef", &header, b"{}", 2_000, 300).is_err());
    }

    #[test]
    fn names_urls_and_filters_parse() {
        assert_eq!(
            DeliveryName::parse("webhookSubscriptions/ops/deliveries/7").map(|d| d.to_string()).as_deref(),
            Ok("webhookSubscriptions/ops/deliveries/7")
        );
        assert!(DeliveryName::parse("webhookSubscriptions/ops/deliveries/x").is_err());
        assert!(url("ftp://h/x").is_err());
        assert!(url("/relative").is_err());
        assert!(url("https://hooks.example.com/ferry").is_ok());
        assert!(event_types(&["integration.deactivated".into(), "nope".into()]).unwrap_err().contains("nope"));
        assert_eq!(environments(&["environments/dev".into(), "dev".into()]), Ok(vec!["dev".to_owned()]));
        assert!(secret("short").is_err());
    }

    #[test]
    fn changes_become_events() {
        let on = ResourceState { exists: true, active: true, credential_state: Some(CredentialState::Active), ..Default::default() };
        let off = ResourceState { active: false, credential_state: Some(CredentialState::Suspended), ..on.clone() };
        let change =
            Change { resource: "environments/dev/integrations/a".into(), kind: ResourceType::Integration, before: on.clone(), after: off };
        let kinds: Vec<String> = events_of("dev", &change).into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["integration.deactivated", "credentials.suspended"]);
        let created = Change { before: ResourceState::default(), after: on, ..change };
        assert!(events_of("dev", &created).is_empty());
    }
}
