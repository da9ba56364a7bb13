//! How registry resources look in a table and in JSON. Proto types have no serde, so
//! each one is converted here, field by field; JSON keys are the proto field names, except
//! that `payload_json` / `value_json` become `payload` / `value` holding the parsed
//! document.
//!
//! Registry resources are here; merge-engine, integration-control and refresh-coordinator
//! resources are in [`merge`] and [`jobs`], [`integration`] and [`refresh`].

pub mod checklist;
pub mod integration;
pub mod jobs;
pub mod leases;
pub mod merge;
pub mod plans;
pub mod refresh;
pub mod reseal;
pub mod restore_point;
pub mod rollback;
pub mod schedule;
pub mod webhooks;

use ferry_proto::common::v1::EntityRef;
use ferry_proto::registry::v1 as pb;
use prost_types::Timestamp;
use serde_json::{Value, json};

use crate::output::{Resource, truncate};
use crate::parse::{id_of, kind_label, ref_label, sharing_label, tier_label};

/// An enum value's name without its prefix (`READY`), or the number when unknown.
pub(crate) fn label<E: TryFrom<i32>>(n: i32, name: impl Fn(&E) -> &'static str, prefix: &str) -> String {
    E::try_from(n).map_or_else(|_| n.to_string(), |e| name(&e).trim_start_matches(prefix).to_owned())
}

/// The text, or `-` when it is empty (a table cell).
pub(crate) fn opt(s: &str) -> String {
    if s.is_empty() { "-".to_owned() } else { s.to_owned() }
}

/// A recorded error (a failed job or run step) in JSON; `null` when there is none.
pub(crate) fn error_json(e: Option<&ferry_proto::common::v1::ErrorStatus>) -> Value {
    e.map_or(Value::Null, |e| {
        json!({
            "code": crate::error::code_name(tonic::Code::from_i32(e.code)),
            "message": e.message,
            "violations": e.violations.iter().map(|v| json!({
                "violation_type": v.violation_type, "subject": v.subject, "description": v.description,
            })).collect::<Vec<_>>(),
        })
    })
}

/// A timestamp to the second, for tables (`-` when absent).
pub fn when(t: Option<&Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| Timestamp { seconds: t.seconds, nanos: 0 }.to_string())
}

/// A timestamp in RFC 3339, or `null`.
pub fn when_json(t: Option<&Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// `{"kind": "LOOKUP", "key": "…"}`
pub fn ref_json(r: &EntityRef) -> Value {
    json!({ "kind": kind_label(r.kind), "key": r.key })
}

fn refs_json(refs: &[EntityRef]) -> Value {
    Value::Array(refs.iter().map(ref_json).collect())
}

fn refs_text(refs: &[EntityRef]) -> String {
    refs.iter().map(ref_label).collect::<Vec<_>>().join(", ")
}

pub fn ids(names: &[String]) -> String {
    names.iter().map(|n| id_of(n)).collect::<Vec<_>>().join(",")
}

/// A JSON document pretty-printed for a field list.
pub fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text).ok().and_then(|v| serde_json::to_string_pretty(&v).ok()).unwrap_or_else(|| text.to_owned())
}

impl Resource for pb::Environment {
    const HEADERS: &'static [&'static str] = &["ID", "TIER", "DISPLAY NAME", "CREATED"];
    fn row(&self) -> Vec<String> {
        vec![id_of(&self.name).to_owned(), tier_label(self.tier), self.display_name.clone(), when(self.create_time.as_ref())]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("tier", tier_label(self.tier)),
            ("display name", self.display_name.clone()),
            ("created", when(self.create_time.as_ref())),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "tier": tier_label(self.tier),
            "display_name": self.display_name,
            "create_time": when_json(self.create_time.as_ref()),
        })
    }
}

impl Resource for pb::Group {
    const HEADERS: &'static [&'static str] = &["ID", "ENTITIES", "REVISION", "DISPLAY NAME", "CREATED"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            self.entity_count.to_string(),
            self.revision.to_string(),
            self.display_name.clone(),
            when(self.create_time.as_ref()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("display name", self.display_name.clone()),
            ("entities", self.entity_count.to_string()),
            ("revision", self.revision.to_string()),
            ("created", when(self.create_time.as_ref())),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "display_name": self.display_name,
            "revision": self.revision,
            "entity_count": self.entity_count,
            "create_time": when_json(self.create_time.as_ref()),
        })
    }
}

impl Resource for pb::Entity {
    const HEADERS: &'static [&'static str] = &["ID", "KIND", "KEY", "SHARING", "GROUPS", "HASH"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            kind_label(self.kind),
            self.key.clone(),
            sharing_label(self.sharing),
            ids(&self.groups),
            self.content_hash.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("kind", kind_label(self.kind)),
            ("key", self.key.clone()),
            ("sharing", sharing_label(self.sharing)),
            ("groups", ids(&self.groups)),
            ("references", refs_text(&self.references)),
            ("content hash", self.content_hash.clone()),
            ("created", when(self.create_time.as_ref())),
            ("updated", when(self.update_time.as_ref())),
            ("payload", pretty(&self.payload_json)),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "kind": kind_label(self.kind),
            "key": self.key,
            "sharing": sharing_label(self.sharing),
            "payload": crate::parse::json_value(&self.payload_json),
            "references": refs_json(&self.references),
            "groups": self.groups,
            "content_hash": self.content_hash,
            "create_time": when_json(self.create_time.as_ref()),
            "update_time": when_json(self.update_time.as_ref()),
        })
    }
}

impl Resource for pb::Project {
    const HEADERS: &'static [&'static str] = &["ID", "GROUPS", "REVISION", "DISPLAY NAME", "CREATED"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            ids(&self.groups),
            self.revision.to_string(),
            self.display_name.clone(),
            when(self.create_time.as_ref()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("display name", self.display_name.clone()),
            ("groups", ids(&self.groups)),
            ("revision", self.revision.to_string()),
            ("created", when(self.create_time.as_ref())),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "display_name": self.display_name,
            "groups": self.groups,
            "revision": self.revision,
            "create_time": when_json(self.create_time.as_ref()),
        })
    }
}

impl Resource for pb::ConfigItem {
    const HEADERS: &'static [&'static str] = &["ID", "REFERENCES", "VALUE", "UPDATED"];
    fn row(&self) -> Vec<String> {
        vec![id_of(&self.name).to_owned(), refs_text(&self.references), truncate(&self.value_json, 60), when(self.update_time.as_ref())]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("references", refs_text(&self.references)),
            ("updated", when(self.update_time.as_ref())),
            ("value", pretty(&self.value_json)),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "value": crate::parse::json_value(&self.value_json),
            "references": refs_json(&self.references),
            "update_time": when_json(self.update_time.as_ref()),
        })
    }
}

impl Resource for pb::Resolution {
    const HEADERS: &'static [&'static str] = &["ITEM", "REFERENCE", "ENTITY", "GROUP"];
    fn row(&self) -> Vec<String> {
        let (entity, group) = if self.entity.is_empty() {
            ("MISSING".to_owned(), "-".to_owned())
        } else {
            (id_of(&self.entity).to_owned(), id_of(&self.group).to_owned())
        };
        vec![id_of(&self.config_item).to_owned(), self.reference.as_ref().map(ref_label).unwrap_or_default(), entity, group]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("config item", self.config_item.clone()),
            ("reference", self.reference.as_ref().map(ref_label).unwrap_or_default()),
            ("entity", self.entity.clone()),
            ("group", self.group.clone()),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "config_item": self.config_item,
            "reference": self.reference.as_ref().map_or(Value::Null, ref_json),
            "entity": self.entity,
            "group": self.group,
        })
    }
}
