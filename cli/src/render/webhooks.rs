//! Webhook subscriptions (the secret never: its fingerprint) and their deliveries with
//! every attempt.

use ferry_proto::integration::v1::{WebhookAttempt, WebhookDelivery, WebhookDeliveryState, WebhookSubscription, WebhookSubscriptionState};
use serde_json::{Value, json};

use super::{label, when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

fn state_label(n: i32) -> String {
    label(n, WebhookSubscriptionState::as_str_name, "WEBHOOK_SUBSCRIPTION_STATE_")
}

fn delivery_label(n: i32) -> String {
    label(n, WebhookDeliveryState::as_str_name, "WEBHOOK_DELIVERY_STATE_")
}

fn all_or(list: &[String]) -> String {
    if list.is_empty() { "*".to_owned() } else { list.join(",") }
}

fn millis(a: &WebhookAttempt) -> i64 {
    a.duration.as_ref().map_or(0, |d| d.seconds * 1_000 + i64::from(d.nanos) / 1_000_000)
}

/// One attempt in a line: `2026-12-04T22:50:01Z 200 3 ms` or `… connect: refused 2 ms`.
fn attempt_text(a: &WebhookAttempt) -> String {
    let outcome = if a.error.is_empty() { a.status_code.to_string() } else { a.error.clone() };
    format!("{} {outcome} {} ms", when(a.time.as_ref()), millis(a))
}

impl Resource for WebhookSubscription {
    const HEADERS: &'static [&'static str] = &["ID", "URL", "EVENTS", "ENVIRONMENTS", "STATE", "FAILURES", "REASON"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            self.url.clone(),
            all_or(&self.event_types),
            all_or(&self.environments),
            state_label(self.state),
            self.consecutive_failures.to_string(),
            self.disabled_reason.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("url", self.url.clone()),
            ("event types", all_or(&self.event_types)),
            ("environments", all_or(&self.environments)),
            ("state", state_label(self.state)),
            ("disabled because", self.disabled_reason.clone()),
            ("failures in a row", self.consecutive_failures.to_string()),
            ("secret fingerprint", self.secret_fingerprint.clone()),
            ("created by", self.created_by.clone()),
            ("created", when(self.create_time.as_ref())),
            ("updated", when(self.update_time.as_ref())),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "url": self.url,
            "eventTypes": self.event_types,
            "environments": self.environments,
            "state": state_label(self.state),
            "disabledReason": self.disabled_reason,
            "consecutiveFailures": self.consecutive_failures,
            "secretFingerprint": self.secret_fingerprint,
            "createdBy": self.created_by,
            "createTime": when_json(self.create_time.as_ref()),
            "updateTime": when_json(self.update_time.as_ref()),
        })
    }
}

impl Resource for WebhookDelivery {
    const HEADERS: &'static [&'static str] = &["ID", "EVENT", "RESOURCE", "STATE", "ATTEMPTS", "LAST ATTEMPT"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            self.event_type.clone(),
            self.resource.clone(),
            delivery_label(self.state),
            self.attempts.len().to_string(),
            self.attempts.first().map(attempt_text).unwrap_or_default(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("name", self.name.clone()),
            ("event id", self.event_id.clone()),
            ("event type", self.event_type.clone()),
            ("environment", self.environment.clone()),
            ("resource", self.resource.clone()),
            ("state", delivery_label(self.state)),
            ("created", when(self.create_time.as_ref())),
            ("delivered", when(self.deliver_time.as_ref())),
        ];
        out.extend(self.attempts.iter().map(|a| ("attempt", attempt_text(a))));
        out
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "environment": self.environment,
            "resource": self.resource,
            "state": delivery_label(self.state),
            "createTime": when_json(self.create_time.as_ref()),
            "deliverTime": when_json(self.deliver_time.as_ref()),
            "attempts": self.attempts.iter().map(|a| json!({
                "time": when_json(a.time.as_ref()),
                "statusCode": a.status_code,
                "error": a.error,
                "durationMs": millis(a),
            })).collect::<Vec<_>>(),
        })
    }
}
