//! A ChangeSet of integration-control as a step records it: change entries, what was left
//! alone, and log lines that count rather than name. Shared by the run kinds that call
//! integration-control (refresh, rollback).

use crate::domain::remote::{ChangeSet, CredentialState, JobState, ResourceState};
use crate::domain::{Change, LeftAlone, Step};
use crate::engine::{Cx, Kind};
use crate::error::Result;

/// Sets a step's changes and what it left alone from its operations' change sets: when
/// they come back ([`record`]) and when a run is read again ([`derive`]).
pub fn fill<'a, D>(step: &mut Step<D>, sets: impl Iterator<Item = &'a ChangeSet> + Clone) {
    step.changes = sets.clone().flat_map(entries).collect();
    step.left_alone = sets.flat_map(left_alone).collect();
}

/// Sets step `n`'s changes, what it left alone and its log from the change sets its
/// operations got (what, op, change set). The changes and left alone are the journaled
/// change sets': the step names the operations, and they are derived again when the run is
/// read ([`derive`]) instead of being stored twice.
pub fn record<K: Kind>(cx: &mut Cx<K>, n: i32, sets: &[(&str, &str, ChangeSet)]) {
    let step = cx.step_mut(n);
    fill(step, sets.iter().map(|(_, _, cs)| cs));
    step.derived = sets.iter().map(|(_, op, _)| (*op).to_owned()).collect();
    for (what, _, cs) in sets {
        step.log.extend(lines(what, cs));
    }
}

/// What step `n`'s undo changed (kept beside the run: an undo is rare).
pub fn record_undo<K: Kind>(cx: &mut Cx<K>, n: i32, sets: &[(&str, ChangeSet)]) {
    let step = cx.step_mut(n);
    step.undo_changes.extend(sets.iter().flat_map(|(_, cs)| entries(cs)));
    for (what, cs) in sets {
        step.log.extend(lines(&format!("undo {what}"), cs));
    }
}

/// A step's changes and left alone from the journaled change sets (JSON) `record` named.
pub fn derive<D>(step: &mut Step<D>, results: &[&str]) -> Result<()> {
    let sets = results.iter().map(|json| serde_json::from_str::<ChangeSet>(json)).collect::<Result<Vec<_>, _>>()?;
    fill(step, sets.iter());
    Ok(())
}

fn credential(c: CredentialState) -> &'static str {
    match c {
        CredentialState::Active => "ACTIVE",
        CredentialState::Suspended => "SUSPENDED",
        CredentialState::None => "NONE",
        CredentialState::Unspecified => "-",
    }
}

fn job_state(s: JobState) -> &'static str {
    match s {
        JobState::Running => "RUNNING",
        JobState::Paused => "PAUSED",
        JobState::Unspecified => "-",
    }
}

fn empty() -> ResourceState {
    ResourceState {
        exists: false,
        active: false,
        credential_state: CredentialState::Unspecified,
        sync_job_state: JobState::Unspecified,
        paused_by: String::new(),
        fenced: false,
        bound_environment: String::new(),
        fence_holder: String::new(),
    }
}

/// One entry per field that differs between a change's before and after.
pub fn entries(cs: &ChangeSet) -> Vec<Change> {
    let mut out = Vec::new();
    for c in &cs.changes {
        let b = c.before.clone().unwrap_or_else(empty);
        let a = c.after.clone().unwrap_or_else(empty);
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
pub fn left_alone(cs: &ChangeSet) -> Vec<LeftAlone> {
    cs.skipped.clone()
}

/// Human lines: how many resources were changed and how many left alone, by reason. The
/// names are in the step's tables (changes, left alone): a step over hundreds of
/// resources logs counts, not hundreds of names.
pub fn lines(what: &str, cs: &ChangeSet) -> Vec<String> {
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
    use crate::domain::remote::ResourceChange;

    #[test]
    fn a_bulk_step_logs_counts_not_names() {
        let change = |r: &str| ResourceChange { resource: r.into(), resource_type: 3, before: None, after: None };
        let skip = |r: &str, why: &str| LeftAlone { resource: r.into(), reason: why.into() };
        let cs = ChangeSet {
            changes: (0..300).map(|i| change(&format!("environments/prod/jobs/j{i}"))).collect(),
            skipped: vec![skip("environments/prod/jobs/a", "paused by a person"), skip("environments/prod/jobs/b", "paused by a person")],
            ..Default::default()
        };
        assert_eq!(lines("pause", &cs), ["pause: changed 300 resources", "pause: left 2 alone (paused by a person)"]);
        assert_eq!(left_alone(&cs).len(), 2);
        assert_eq!(lines("pause", &ChangeSet::default()), ["pause: nothing to change"]);
    }

    #[test]
    fn entries_name_each_field_that_moved() {
        let mut before = empty();
        before.exists = true;
        before.sync_job_state = JobState::Running;
        let mut after = before.clone();
        after.sync_job_state = JobState::Paused;
        after.paused_by = "refreshRuns/r".into();
        let cs = ChangeSet {
            changes: vec![ResourceChange { resource: "j".into(), resource_type: 3, before: Some(before), after: Some(after) }],
            ..Default::default()
        };
        let fields: Vec<(String, String, String)> = entries(&cs).into_iter().map(|c| (c.field, c.before, c.after)).collect();
        assert_eq!(
            fields,
            [("state".into(), "RUNNING".into(), "PAUSED".into()), ("paused_by".into(), String::new(), "refreshRuns/r".into())]
        );
    }
}
