//! Integration-control resources: integrations (a fingerprint, never a key), mappings,
//! sync jobs, snapshots, change sets and sync decisions.

use std::fmt::Write as _;

use ferry_proto::integration::v1::{
    AuthorizeSyncResponse, ChangeSet, CredentialState, Integration, Mapping, ResourceState, ResourceType, Snapshot, SyncDenyReason,
    SyncJob, SyncJobState,
};
use serde_json::{Value, json};

use super::{label, pretty, when, when_json};
use crate::output::{Resource, truncate};
use crate::parse::id_of;

fn credential_label(n: i32) -> String {
    label(n, CredentialState::as_str_name, "CREDENTIAL_STATE_")
}
fn sync_job_state_label(n: i32) -> String {
    label(n, SyncJobState::as_str_name, "SYNC_JOB_STATE_")
}
fn resource_type_label(n: i32) -> String {
    label(n, ResourceType::as_str_name, "RESOURCE_TYPE_")
}
pub fn deny_label(n: i32) -> String {
    label(n, SyncDenyReason::as_str_name, "SYNC_DENY_REASON_")
}

fn yes(b: bool) -> String {
    if b { "yes".to_owned() } else { "no".to_owned() }
}
fn dash(s: &str) -> String {
    if s.is_empty() { "-".to_owned() } else { s.to_owned() }
}

/// `environments/dev` as `dev`, `-` when empty.
fn env_id(name: &str) -> String {
    if name.is_empty() { "-".to_owned() } else { id_of(name).to_owned() }
}

impl Resource for Integration {
    const HEADERS: &'static [&'static str] = &["ID", "SYSTEM", "ACTIVE", "CREDENTIALS", "FINGERPRINT", "FENCED", "BASE URL"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            self.external_system.clone(),
            yes(self.active),
            credential_label(self.credential_state),
            dash(&self.credential_fingerprint),
            yes(self.fenced),
            self.base_url.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("display name", self.display_name.clone()),
            ("external system", self.external_system.clone()),
            ("base url", self.base_url.clone()),
            ("active", yes(self.active)),
            ("credentials", credential_label(self.credential_state)),
            ("fingerprint", dash(&self.credential_fingerprint)),
            ("fenced", yes(self.fenced)),
            ("origin", dash(&self.origin_environment)),
            ("created", when(self.create_time.as_ref())),
            ("updated", when(self.update_time.as_ref())),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "display_name": self.display_name,
            "external_system": self.external_system,
            "base_url": self.base_url,
            "active": self.active,
            "credential_state": credential_label(self.credential_state),
            "credential_fingerprint": self.credential_fingerprint,
            "fenced": self.fenced,
            "origin_environment": self.origin_environment,
            "create_time": when_json(self.create_time.as_ref()),
            "update_time": when_json(self.update_time.as_ref()),
        })
    }
}

/// `environments/dev/integrations/rally/mappings/x` → `rally`.
fn integration_of(mapping: &str) -> String {
    mapping.split('/').nth(3).unwrap_or("-").to_owned()
}

impl Resource for Mapping {
    const HEADERS: &'static [&'static str] = &["ID", "INTEGRATION", "ACTIVE", "TARGET", "BOUND", "FENCED", "FIELDS"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            integration_of(&self.name),
            yes(self.active),
            env_id(&self.target_environment),
            env_id(&self.bound_environment),
            yes(self.fenced),
            truncate(&self.field_mapping_json, 40),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("display name", self.display_name.clone()),
            ("active", yes(self.active)),
            ("target environment", dash(&self.target_environment)),
            ("bound environment", dash(&self.bound_environment)),
            ("fenced", yes(self.fenced)),
            ("origin", dash(&self.origin_environment)),
            ("created", when(self.create_time.as_ref())),
            ("updated", when(self.update_time.as_ref())),
            ("field mapping", pretty(&self.field_mapping_json)),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "display_name": self.display_name,
            "target_environment": self.target_environment,
            "bound_environment": self.bound_environment,
            "active": self.active,
            "field_mapping": crate::parse::json_value(&self.field_mapping_json),
            "fenced": self.fenced,
            "origin_environment": self.origin_environment,
            "create_time": when_json(self.create_time.as_ref()),
            "update_time": when_json(self.update_time.as_ref()),
        })
    }
}

impl Resource for SyncJob {
    const HEADERS: &'static [&'static str] = &["ID", "STATE", "INTEGRATION", "SCHEDULE", "EXTERNAL", "PAUSED BY"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            sync_job_state_label(self.state),
            if self.integration.is_empty() { "-".to_owned() } else { id_of(&self.integration).to_owned() },
            self.schedule.clone(),
            yes(self.external.unwrap_or(true)),
            dash(&self.paused_by),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("display name", self.display_name.clone()),
            ("state", sync_job_state_label(self.state)),
            ("integration", dash(&self.integration)),
            ("schedule", self.schedule.clone()),
            ("external", yes(self.external.unwrap_or(true))),
            ("paused by", dash(&self.paused_by)),
            ("pause reason", dash(&self.pause_reason)),
            ("paused", when(self.pause_time.as_ref())),
            ("created", when(self.create_time.as_ref())),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "display_name": self.display_name,
            "integration": self.integration,
            "schedule": self.schedule,
            "state": sync_job_state_label(self.state),
            "external": self.external.unwrap_or(true),
            "paused_by": self.paused_by,
            "pause_reason": self.pause_reason,
            "pause_time": when_json(self.pause_time.as_ref()),
            "create_time": when_json(self.create_time.as_ref()),
        })
    }
}

impl Resource for Snapshot {
    const HEADERS: &'static [&'static str] = &["ID", "INTEGRATIONS", "MAPPINGS", "JOBS", "CREATED BY", "CREATED", "CHECKSUM"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            self.integration_count.to_string(),
            self.mapping_count.to_string(),
            self.sync_job_count.to_string(),
            dash(&self.created_by),
            when(self.create_time.as_ref()),
            truncate(&self.checksum, 13),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("name", self.name.clone()),
            ("description", self.description.clone()),
            ("integrations", self.integration_count.to_string()),
            ("mappings", self.mapping_count.to_string()),
            ("sync jobs", self.sync_job_count.to_string()),
            ("checksum", self.checksum.clone()),
            ("created by", dash(&self.created_by)),
            ("created", when(self.create_time.as_ref())),
        ];
        // FULL view: what it holds, one resource per line.
        let names = |v: Vec<String>| v.join("\n");
        if !self.integrations.is_empty() {
            f.push(("held integrations", names(self.integrations.iter().map(|i| i.name.clone()).collect())));
        }
        if !self.mappings.is_empty() {
            f.push(("held mappings", names(self.mappings.iter().map(|m| m.name.clone()).collect())));
        }
        if !self.sync_jobs.is_empty() {
            f.push(("held sync jobs", names(self.sync_jobs.iter().map(|j| j.name.clone()).collect())));
        }
        f
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "integration_count": self.integration_count,
            "mapping_count": self.mapping_count,
            "sync_job_count": self.sync_job_count,
            "checksum": self.checksum,
            "created_by": self.created_by,
            "create_time": when_json(self.create_time.as_ref()),
            "integrations": self.integrations.iter().map(Resource::json).collect::<Vec<_>>(),
            "mappings": self.mappings.iter().map(Resource::json).collect::<Vec<_>>(),
            "sync_jobs": self.sync_jobs.iter().map(Resource::json).collect::<Vec<_>>(),
        })
    }
}

/// The fields of a resource state that say something for its type.
fn state_text(t: i32, s: &ResourceState) -> String {
    if !s.exists {
        return "absent".to_owned();
    }
    let mut parts = Vec::new();
    match ResourceType::try_from(t) {
        Ok(ResourceType::Integration) => {
            parts.push(if s.active { "active" } else { "inactive" }.to_owned());
            parts.push(format!("credentials {}", credential_label(s.credential_state)));
        }
        Ok(ResourceType::Mapping) => {
            parts.push(if s.active { "active" } else { "inactive" }.to_owned());
            parts.push(format!("bound {}", env_id(&s.bound_environment)));
        }
        Ok(ResourceType::SyncJob) => {
            parts.push(sync_job_state_label(s.sync_job_state));
            if !s.paused_by.is_empty() {
                parts.push(format!("by {}", s.paused_by));
            }
        }
        Ok(ResourceType::EnvironmentFence) if !s.fence_holder.is_empty() => parts.push(format!("holder {}", s.fence_holder)),
        _ => {}
    }
    if s.fenced {
        parts.push("fenced".to_owned());
    }
    parts.join(", ")
}

fn state_json(s: &ResourceState) -> Value {
    json!({
        "exists": s.exists,
        "active": s.active,
        "credential_state": credential_label(s.credential_state),
        "sync_job_state": sync_job_state_label(s.sync_job_state),
        "paused_by": s.paused_by,
        "fenced": s.fenced,
        "bound_environment": s.bound_environment,
        "fence_holder": s.fence_holder,
    })
}

/// A change set as a table of changes (`BEFORE -> AFTER`) and the resources left alone.
pub fn change_set_text(c: &ChangeSet) -> String {
    let rows = c.changes.iter().map(|ch| {
        let before = ch.before.as_ref().map(|b| state_text(ch.resource_type, b)).unwrap_or_default();
        let after = ch.after.as_ref().map(|a| state_text(ch.resource_type, a)).unwrap_or_default();
        vec![ch.resource.clone(), resource_type_label(ch.resource_type), before, after]
    });
    let mut buf = Vec::new();
    let _ = crate::output::table(&mut buf, &["RESOURCE", "TYPE", "BEFORE", "AFTER"], rows);
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    let _ = writeln!(s, "\n{} changed in {}, {} left alone", c.changes.len(), c.environment, c.skipped.len());
    for sk in &c.skipped {
        let _ = writeln!(s, "  skipped {}: {}", sk.resource, sk.reason);
    }
    s
}

pub fn change_set_json(c: &ChangeSet) -> Value {
    json!({
        "environment": c.environment,
        "changes": c.changes.iter().map(|ch| json!({
            "resource": ch.resource,
            "resource_type": resource_type_label(ch.resource_type),
            "before": ch.before.as_ref().map_or(Value::Null, state_json),
            "after": ch.after.as_ref().map_or(Value::Null, state_json),
        })).collect::<Vec<_>>(),
        "skipped": c.skipped.iter().map(|s| json!({ "resource": s.resource, "reason": s.reason })).collect::<Vec<_>>(),
        "change_time": when_json(c.change_time.as_ref()),
    })
}

/// `ALLOWED`, or `DENIED` with the message and every failing check.
pub fn decision_text(mapping: &str, r: &AuthorizeSyncResponse) -> String {
    if r.allowed {
        return format!("ALLOWED  {mapping} may sync now\n");
    }
    let mut s = format!("DENIED   {mapping}");
    if !r.message.is_empty() {
        let _ = write!(s, ": {}", r.message);
    }
    s.push('\n');
    let mut reasons: Vec<i32> = r.reasons.clone();
    if reasons.is_empty() && r.reason != SyncDenyReason::Unspecified as i32 {
        reasons.push(r.reason);
    }
    for n in reasons {
        let _ = writeln!(s, "  - {}", deny_label(n));
    }
    s
}

pub fn decision_json(mapping: &str, r: &AuthorizeSyncResponse) -> Value {
    json!({
        "mapping": mapping,
        "allowed": r.allowed,
        "reason": if r.allowed { Value::Null } else { Value::String(deny_label(r.reason)) },
        "reasons": r.reasons.iter().map(|n| deny_label(*n)).collect::<Vec<_>>(),
        "message": r.message,
    })
}

#[cfg(test)]
mod tests {
    use ferry_proto::integration::v1::Change;

    use super::*;

    #[test]
    fn a_denial_lists_every_reason() {
        let r = AuthorizeSyncResponse {
            allowed: false,
            reason: SyncDenyReason::EnvironmentFenced as i32,
            reasons: vec![SyncDenyReason::EnvironmentFenced as i32, SyncDenyReason::JobPaused as i32],
            message: "environments/dev is fenced by refreshRuns/1".into(),
        };
        let text = decision_text("environments/dev/integrations/r/mappings/m", &r);
        assert_eq!(
            text,
            "DENIED   environments/dev/integrations/r/mappings/m: environments/dev is fenced by refreshRuns/1\n  - ENVIRONMENT_FENCED\n  - JOB_PAUSED\n"
        );
        assert_eq!(decision_json("m", &r)["reasons"][1], "JOB_PAUSED");
        let ok = AuthorizeSyncResponse { allowed: true, ..Default::default() };
        assert!(decision_text("m", &ok).starts_with("ALLOWED"));
    }

    #[test]
    fn change_sets_show_before_and_after() {
        let c = ChangeSet {
            environment: "environments/dev".into(),
            changes: vec![Change {
                resource: "environments/dev/jobs/nightly".into(),
                resource_type: ResourceType::SyncJob as i32,
                before: Some(ResourceState { exists: true, sync_job_state: SyncJobState::Running as i32, ..Default::default() }),
                after: Some(ResourceState {
                    exists: true,
                    sync_job_state: SyncJobState::Paused as i32,
                    paused_by: "ann".into(),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        };
        let text = change_set_text(&c);
        assert!(text.contains("environments/dev/jobs/nightly  SYNC_JOB  RUNNING  PAUSED, by ann\n"), "{text}");
        assert!(text.contains("1 changed in environments/dev, 0 left alone"), "{text}");
    }
}
