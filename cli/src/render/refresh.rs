//! Refresh-coordinator resources: refresh and promotion runs in a table and in JSON (the
//! checklist lines are in [`super::checklist`], the plans in [`super::plans`]).

use ferry_proto::refresh::v1::{ChangeEntry, PromotionRun, PromotionStepKind, RefreshRun, RunInterruption};
use serde_json::{Value, json};

use super::checklist::{error_line, mode_label, promotion_step_line, refresh_step_line, run_state_label, step_state_label};
use super::merge::strategy_label;
use super::plans::planned_step_json;
use super::{error_json, label, opt, when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

/// A run message as JSON: the kind's own fields (`{…}`) and its steps' own (`|s| {…}`),
/// joined with what every run and step has under the same names.
macro_rules! run_json {
    ($run:expr, { $($own:tt)* }, |$s:ident| { $($step:tt)* }) => {{
        let mut v = json!({ $($own)* });
        join(&mut v, json!({
            "name": $run.name,
            "state": run_state_label($run.state),
            "current_step": $run.current_step,
            "error": error_json($run.error.as_ref()),
            "created_by": $run.created_by,
            "abort_reason": $run.abort_reason,
            "aborted_by": $run.aborted_by,
            "create_time": when_json($run.create_time.as_ref()),
            "start_time": when_json($run.start_time.as_ref()),
            "end_time": when_json($run.end_time.as_ref()),
            "interruptions": interruptions_json(&$run.interruptions),
            "steps": $run.steps.iter().map(|$s| {
                let mut step = json!({ $($step)* });
                join(&mut step, json!({
                    "number": $s.number,
                    "title": $s.title,
                    "state": step_state_label($s.state),
                    "attempts": $s.attempts,
                    "actor": $s.actor,
                    "comment": $s.comment,
                    "waiting_for": $s.waiting_for,
                    "start_time": when_json($s.start_time.as_ref()),
                    "end_time": when_json($s.end_time.as_ref()),
                    "log": $s.log,
                    "error": error_json($s.error.as_ref()),
                }));
                step
            }).collect::<Vec<_>>(),
        }));
        v
    }};
}
pub(super) use run_json;

/// Adds `more`'s fields to the object `v`.
pub(super) fn join(v: &mut Value, more: Value) {
    if let (Value::Object(v), Value::Object(more)) = (v, more) {
        v.extend(more);
    }
}

/// A change entry as JSON.
pub(super) fn change_json(c: &ChangeEntry) -> Value {
    json!({"resource": c.resource, "field": c.field, "before": c.before, "after": c.after})
}

/// The fields every run message has under the same names, after its own: who started
/// it, when it was created, started and ended, its error, its abort, its interruptions,
/// and its steps (each drawn by `$step_line`).
macro_rules! run_lifecycle_fields {
    ($run:expr, $f:ident, $step_line:expr) => {{
        $f.push(("created_by", opt(&$run.created_by)));
        $f.push(("created", when($run.create_time.as_ref())));
        $f.push(("started", when($run.start_time.as_ref())));
        $f.push(("ended", when($run.end_time.as_ref())));
        if let Some(e) = &$run.error {
            $f.push(("error", error_line(e)));
        }
        if !$run.abort_reason.is_empty() || !$run.aborted_by.is_empty() {
            $f.push(("aborted", format!("{} (by {})", $run.abort_reason, opt(&$run.aborted_by))));
        }
        for i in &$run.interruptions {
            $f.push(("interrupted", interruption_line(i)));
        }
        $f.push(("steps", $run.steps.iter().map($step_line).collect::<Vec<_>>().join("\n")));
    }};
}
pub(super) use run_lifecycle_fields;

pub(super) fn step_of(current: i32, total: usize) -> String {
    if current > 0 { format!("{current}/{total}") } else { "-".to_owned() }
}

impl Resource for RefreshRun {
    const HEADERS: &'static [&'static str] = &["ID", "STATE", "SOURCE", "DESTINATION", "STEP", "CREATED"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            run_state_label(self.state),
            id_of(&self.source).to_owned(),
            id_of(&self.destination).to_owned(),
            step_of(self.current_step, self.steps.len()),
            when(self.create_time.as_ref()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let o = self.options.clone().unwrap_or_default();
        let mut f = vec![
            ("name", self.name.clone()),
            ("state", run_state_label(self.state)),
            ("source", self.source.clone()),
            ("destination", self.destination.clone()),
            ("mode", mode_label(o.mode)),
            ("current_step", step_of(self.current_step, self.steps.len())),
            ("snapshot", opt(&self.snapshot)),
            ("restore_point", opt(&self.restore_point)),
        ];
        run_lifecycle_fields!(self, f, refresh_step_line);
        f
    }
    fn json(&self) -> Value {
        let o = self.options.clone().unwrap_or_default();
        run_json!(self, {
            "source": self.source,
            "destination": self.destination,
            "options": {
                "mode": mode_label(o.mode),
                "suspend_credentials_instead": o.suspend_credentials_instead,
                "require_approval": o.require_approval,
            },
            "snapshot": self.snapshot,
            "restore_point": self.restore_point,
        }, |s| {
            "plan": s.plan.as_ref().map(planned_step_json),
            "changes": s.changes.iter().map(change_json).collect::<Vec<_>>(),
        })
    }
}

/// A takeover of a run from a coordinator that stopped, in one line.
pub(super) fn interruption_line(i: &RunInterruption) -> String {
    let at = if i.step == 0 { "between steps".to_owned() } else { format!("during step {}", i.step) };
    format!(
        "{at}: {} stopped (last heard {}); resumed {} by {}",
        i.holder,
        when(i.last_heard_time.as_ref()),
        when(i.resume_time.as_ref()),
        i.resumed_by
    )
}

pub(super) fn interruptions_json(all: &[RunInterruption]) -> Value {
    all.iter()
        .map(|i| {
            json!({
                "holder": i.holder,
                "last_heard_time": when_json(i.last_heard_time.as_ref()),
                "resume_time": when_json(i.resume_time.as_ref()),
                "resumed_by": i.resumed_by,
                "step": i.step,
            })
        })
        .collect()
}

impl Resource for PromotionRun {
    const HEADERS: &'static [&'static str] = &["ID", "STATE", "SOURCE", "TARGET", "STEP", "CREATED"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            run_state_label(self.state),
            self.source_project.clone(),
            self.target_project.clone(),
            step_of(self.current_step, self.steps.len()),
            when(self.create_time.as_ref()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let o = self.options.clone().unwrap_or_default();
        let mut f = vec![
            ("name", self.name.clone()),
            ("state", run_state_label(self.state)),
            ("source_project", self.source_project.clone()),
            ("target_project", self.target_project.clone()),
            ("strategy", strategy_label(o.strategy)),
            ("current_step", step_of(self.current_step, self.steps.len())),
        ];
        run_lifecycle_fields!(self, f, promotion_step_line);
        f
    }
    fn json(&self) -> Value {
        let o = self.options.clone().unwrap_or_default();
        run_json!(self, {
            "source_project": self.source_project,
            "target_project": self.target_project,
            "options": {"strategy": strategy_label(o.strategy), "require_approval": o.require_approval},
        }, |s| {
            "kind": label(s.kind, PromotionStepKind::as_str_name, "PROMOTION_STEP_KIND_"),
            "source": s.source,
            "recipient": s.recipient,
            "merge_plan": s.merge_plan,
            "job": s.job,
            "revert_job": s.revert_job,
        })
    }
}
