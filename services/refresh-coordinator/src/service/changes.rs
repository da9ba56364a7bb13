//! A ChangeSet of integration-control as recorded change entries and log lines.

use ferry_proto::integration::v1 as ipb;

use crate::domain::{Change, LeftAlone};

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

/// The resources a change set left as they were, and why.
pub fn left_alone(cs: &ipb::ChangeSet) -> Vec<LeftAlone> {
    cs.skipped.iter().map(|s| LeftAlone { resource: s.resource.clone(), reason: s.reason.clone() }).collect()
}

/// Human lines: how many resources were changed and how many left alone, by reason. The
/// names are in the step's tables (changes, left alone): a step over hundreds of
/// resources logs counts, not hundreds of names.
pub fn lines(what: &str, cs: &ipb::ChangeSet) -> Vec<String> {
    let mut out = Vec::new();
    let n = cs.changes.len();
    if n > 0 {
        out.push(format!("{what}: changed {n} resource{}", if n == 1 { "" } else { "s" }));
    }
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for s in &cs.skipped {
        match reasons.iter_mut().find(|(r, _)| *r == s.reason) {
            Some((_, count)) => *count += 1,
            None => reasons.push((&s.reason, 1)),
        }
    }
    for (reason, count) in reasons {
        out.push(format!("{what}: left {count} alone ({reason})"));
    }
    if cs.changes.is_empty() && cs.skipped.is_empty() {
        out.push(format!("{what}: nothing to change"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_step_logs_counts_not_names() {
        let change = |r: &str| ipb::Change { resource: r.into(), ..Default::default() };
        let skip = |r: &str, why: &str| ipb::SkippedResource { resource: r.into(), reason: why.into() };
        let cs = ipb::ChangeSet {
            changes: (0..300).map(|i| change(&format!("environments/prod/jobs/j{i}"))).collect(),
            skipped: vec![skip("environments/prod/jobs/a", "paused by a person"), skip("environments/prod/jobs/b", "paused by a person")],
            ..Default::default()
        };
        assert_eq!(lines("pause", &cs), ["pause: changed 300 resources", "pause: left 2 alone (paused by a person)"]);
        assert_eq!(left_alone(&cs).len(), 2);
        assert_eq!(lines("pause", &ipb::ChangeSet::default()), ["pause: nothing to change"]);
    }
}
