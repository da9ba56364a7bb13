//! Merge-engine jobs: the table row, the one-job fields view and JSON, and the labels the
//! progress display shares.

use std::fmt::Write as _;

use ferry_proto::common::v1::{ErrorStatus, Progress};
use ferry_proto::merge::v1::{Job, JobKind, JobState};
use serde_json::{Value, json};

use super::{error_json, label, opt, when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

pub fn job_state_label(n: i32) -> String {
    label(n, JobState::as_str_name, "JOB_STATE_")
}
pub fn job_kind_label(n: i32) -> String {
    label(n, JobKind::as_str_name, "JOB_KIND_")
}

/// True once a job can change no more.
pub fn is_terminal(state: i32) -> bool {
    [JobState::Succeeded, JobState::Failed, JobState::Cancelled].iter().any(|s| *s as i32 == state)
}

/// `450/1000` (`450/?` while the total is unknown).
pub fn done_of_total(p: &Progress) -> String {
    if p.total > 0 { format!("{}/{}", p.done, p.total) } else { format!("{}/?", p.done) }
}

/// `CODE: message` and each violation, for a field list.
fn error_text(e: &ErrorStatus) -> String {
    let mut s = format!("{}: {}", crate::error::code_name(tonic::Code::from_i32(e.code)), e.message);
    for v in &e.violations {
        let _ = write!(s, "\n{} {}: {}", v.violation_type, v.subject, v.description);
    }
    s
}

/// The counters of a job result that are set, as `created 3, linked 2`.
fn result_pairs(job: &Job) -> Vec<(&'static str, i64)> {
    let Some(r) = &job.result else { return Vec::new() };
    let all = [
        ("created", r.created),
        ("linked", r.linked),
        ("skipped", r.skipped),
        ("overwritten", r.overwritten),
        ("conflicts_kept", r.conflicts_kept),
        ("missing_dependencies", r.missing_dependencies),
        ("removed", r.removed),
        ("unlinked", r.unlinked),
        ("not_reverted", r.not_reverted),
        ("config_items_created", r.config_items_created),
        ("config_items_replaced", r.config_items_replaced),
        ("config_items_unchanged", r.config_items_unchanged),
        ("unresolved_references", r.unresolved_references),
    ];
    all.into_iter().filter(|(_, n)| *n != 0).collect()
}

impl Resource for Job {
    const HEADERS: &'static [&'static str] = &["ID", "KIND", "STATE", "PROGRESS", "SOURCE", "RECIPIENT", "CREATED"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            job_kind_label(self.kind),
            job_state_label(self.state),
            self.progress.as_ref().map_or_else(|| "-".to_owned(), done_of_total),
            opt(&self.source),
            opt(&self.recipient),
            when(self.create_time.as_ref()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("name", self.name.clone()),
            ("kind", job_kind_label(self.kind)),
            ("state", job_state_label(self.state) + if self.cancel_requested { " (cancel requested)" } else { "" }),
        ];
        if let Some(p) = &self.progress {
            f.push(("progress", format!("{} {}", done_of_total(p), p.phase).trim_end().to_owned()));
        }
        for (k, v) in [
            ("plan", &self.plan),
            ("source", &self.source),
            ("recipient", &self.recipient),
            ("parent job", &self.parent_job),
            ("reverted job", &self.reverted_job),
            ("reverted by", &self.reverted_by),
            ("created by", &self.created_by),
        ] {
            if !v.is_empty() {
                f.push((k, v.clone()));
            }
        }
        if !self.produced_resources.is_empty() {
            f.push(("produced", self.produced_resources.join(", ")));
        }
        if !self.child_jobs.is_empty() {
            f.push(("child jobs", self.child_jobs.join(", ")));
        }
        let result: Vec<String> = result_pairs(self).iter().map(|(k, n)| format!("{} {n}", k.replace('_', " "))).collect();
        if !result.is_empty() {
            f.push(("result", result.join(", ")));
        }
        if let Some(e) = &self.error {
            f.push(("error", error_text(e)));
        }
        f.push(("created", when(self.create_time.as_ref())));
        f.push(("started", when(self.start_time.as_ref())));
        f.push(("ended", when(self.end_time.as_ref())));
        if self.expire_time.is_some() {
            let kept = if self.effects_pruned { "pruned" } else { "revertible until" };
            f.push(("effects", format!("{kept} {}", when(self.expire_time.as_ref()))));
        }
        f
    }
    fn json(&self) -> Value {
        let result: serde_json::Map<String, Value> = result_pairs(self).into_iter().map(|(k, n)| (k.to_owned(), json!(n))).collect();
        json!({
            "name": self.name,
            "kind": job_kind_label(self.kind),
            "state": job_state_label(self.state),
            "progress": self.progress.as_ref().map_or(Value::Null, |p| json!({
                "done": p.done, "total": p.total, "rate_per_second": p.rate_per_second, "phase": p.phase,
            })),
            "result": result,
            "error": error_json(self.error.as_ref()),
            "plan": self.plan,
            "source": self.source,
            "recipient": self.recipient,
            "produced_resources": self.produced_resources,
            "child_jobs": self.child_jobs,
            "parent_job": self.parent_job,
            "reverted_job": self.reverted_job,
            "reverted_by": self.reverted_by,
            "cancel_requested": self.cancel_requested,
            "create_time": when_json(self.create_time.as_ref()),
            "start_time": when_json(self.start_time.as_ref()),
            "end_time": when_json(self.end_time.as_ref()),
            "expire_time": when_json(self.expire_time.as_ref()),
            "effects_pruned": self.effects_pruned,
            "created_by": self.created_by,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_names_who_started_it_in_fields_and_json() {
        let job = Job { name: "jobs/j1".into(), created_by: "ana@example.com".into(), ..Default::default() };
        assert!(job.fields().contains(&("created by", "ana@example.com".to_owned())), "{:?}", job.fields());
        assert_eq!(job.json()["created_by"], "ana@example.com");
        let old = Job { name: "jobs/j0".into(), ..Default::default() };
        assert!(old.fields().iter().all(|(k, _)| *k != "created by"), "an old job's empty creator is left out");
    }

    #[test]
    fn unknown_enum_values_print_as_numbers() {
        assert_eq!(job_state_label(99), "99");
        assert!(is_terminal(JobState::Cancelled as i32) && !is_terminal(JobState::Running as i32));
    }
}
