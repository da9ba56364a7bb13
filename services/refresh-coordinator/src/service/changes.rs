//! A ChangeSet of integration-control as recorded change entries and log lines.

use ferry_proto::integration::v1 as ipb;

use crate::domain::Change;

fn credential(n: i32) -> &'static str {
    match ipb::CredentialState::try_from(n) {
        Ok(ipb::CredentialState::Active) => "ACTIVE",
        Ok(ipb::CredentialState::Suspended) => "SUSPENDED",
        Ok(ipb::CredentialState::None) => "NONE",
        _ => "-",
    }
}

fn job_state(n: i32) -> &'static str {
    match ipb::SyncJobState::try_from(n) {
        Ok(ipb::SyncJobState::Running) => "RUNNING",
        Ok(ipb::SyncJobState::Paused) => "PAUSED",
        _ => "-",
    }
}

/// One entry per field that differs between a change's before and after.
pub fn entries(cs: &ipb::ChangeSet) -> Vec<Change> {
    let mut out = Vec::new();
    for c in &cs.changes {
        let b = c.before.clone().unwrap_or_default();
        let a = c.after.clone().unwrap_or_default();
        let mut push = |field: &str, before: String, after: String| {
            if before != after {
                out.push(Change { resource: c.resource.clone(), field: field.into(), before, after });
            }
        };
        push("exists", b.exists.to_string(), a.exists.to_string());
        push("active", b.active.to_string(), a.active.to_string());
        push("credential_state", credential(b.credential_state).into(), credential(a.credential_state).into());
        push("state", job_state(b.sync_job_state).into(), job_state(a.sync_job_state).into());
        push("paused_by", b.paused_by, a.paused_by);
        push("fenced", b.fenced.to_string(), a.fenced.to_string());
        push("bound_environment", b.bound_environment, a.bound_environment);
        push("fence_holder", b.fence_holder, a.fence_holder);
    }
    out
}

/// Human lines: what was changed (the entries themselves are in the step's changes), then
/// each resource left alone and why.
pub fn lines(what: &str, cs: &ipb::ChangeSet) -> Vec<String> {
    let mut out = Vec::new();
    if !cs.changes.is_empty() {
        let names: Vec<&str> = cs.changes.iter().map(|c| c.resource.as_str()).collect();
        out.push(format!("{what}: changed {}", names.join(", ")));
    }
    for s in &cs.skipped {
        out.push(format!("{what}: left {} alone ({})", s.resource, s.reason));
    }
    if cs.changes.is_empty() && cs.skipped.is_empty() {
        out.push(format!("{what}: nothing to change"));
    }
    out
}
