//! Rollback runs and their plans, as text and JSON, and as a live checklist.

use std::fmt::Write as _;

use ferry_proto::refresh::v1::{ContentCounts, RollbackPlan, RollbackRun, RollbackStep, StepState};
use serde_json::{Value, json};

use super::checklist::{Frame, checklist_line, confirm_hint, error_line, run_state_label, step_state_label, summary, title};
use super::refresh::{change_json, interruption_line, interruptions_json, join, run_json, run_lifecycle_fields, step_of};
use super::{error_json, opt, when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

fn counts_line(c: &ContentCounts) -> String {
    format!(
        "{} group(s), {} entity memberships, {} project(s), {} integration(s), {} mapping(s), {} job(s)",
        c.groups, c.entities, c.projects, c.integrations, c.mappings, c.sync_jobs
    )
}

fn counts_json(c: Option<&ContentCounts>) -> Value {
    let c = c.cloned().unwrap_or_default();
    json!({
        "groups": c.groups, "entities": c.entities, "links": c.links, "projects": c.projects,
        "config_items": c.config_items, "integrations": c.integrations, "mappings": c.mappings, "sync_jobs": c.sync_jobs,
    })
}

/// The plan as text: what comes back, what is discarded, the six steps, how to start it.
pub fn rollback_plan_text(plan: &RollbackPlan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Rollback plan: {}  ({} back to before the refresh; {} is not touched)",
        plan.refresh_run,
        id_of(&plan.destination),
        id_of(&plan.source)
    );
    let _ = writeln!(s, "  window closes {}", when(plan.window_end_time.as_ref()));
    if let Some(c) = &plan.put_back {
        let _ = writeln!(s, "  puts back     {} (from {} and {})", counts_line(c), plan.restore_point, plan.snapshot);
    }
    if let Some(c) = &plan.discarded {
        let _ = writeln!(s, "  discards      {} (kept by step 3 until it expires)", counts_line(c));
    }
    for (what, groups) in
        [("changed since", &plan.changed_groups), ("created since", &plan.created_groups), ("deleted since", &plan.deleted_groups)]
    {
        if !groups.is_empty() {
            let _ = writeln!(s, "  groups {what}: {}", groups.join(", "));
        }
    }
    s.push('\n');
    for step in &plan.steps {
        let gate = if step.requires_confirmation { "  (waits for confirmation)" } else { "" };
        let _ = writeln!(s, "  {}. {}{gate}", step.number, title(&[&step.title], step.number));
        for line in &step.summary {
            let _ = writeln!(s, "     {line}");
        }
    }
    let approval = if plan.options.is_some_and(|o| o.require_approval) { " --require-approval" } else { "" };
    let _ = writeln!(
        s,
        "\nNothing changed. To run it: ferry refresh rollback {} --plan-etag {}{approval} --yes",
        id_of(&plan.refresh_run),
        plan.etag
    );
    s
}

pub fn rollback_plan_json(plan: &RollbackPlan) -> Value {
    json!({
        "refresh_run": plan.refresh_run,
        "destination": plan.destination,
        "source": plan.source,
        "require_approval": plan.options.is_some_and(|o| o.require_approval),
        "restore_point": plan.restore_point,
        "snapshot": plan.snapshot,
        "put_back": counts_json(plan.put_back.as_ref()),
        "discarded": counts_json(plan.discarded.as_ref()),
        "changed_groups": plan.changed_groups,
        "created_groups": plan.created_groups,
        "deleted_groups": plan.deleted_groups,
        "not_in_snapshot": plan.not_in_snapshot,
        "window_end_time": when_json(plan.window_end_time.as_ref()),
        "steps": plan.steps.iter().map(|s| json!({
            "number": s.number, "title": s.title, "summary": s.summary, "requires_confirmation": s.requires_confirmation,
        })).collect::<Vec<_>>(),
        "etag": plan.etag,
        "plan_time": when_json(plan.plan_time.as_ref()),
    })
}

/// A rollback step as one checklist line.
pub fn rollback_step_line(step: &RollbackStep) -> String {
    let planned = step.plan.as_ref().map(|p| p.summary.as_slice()).unwrap_or_default();
    let summary = summary(step.state, step.error.as_ref(), &step.waiting_for, None, &step.log, planned);
    checklist_line(step.state, step.number, &title(&[&step.title], step.number), &summary)
}

/// A rollback run, for the checklist drawer.
pub fn rollback_frame(run: &RollbackRun) -> Frame {
    let waiting = run.steps.iter().find(|s| s.state == StepState::WaitingForConfirmation as i32).map(|s| s.number);
    Frame {
        header: format!(
            "{}  rollback of {}  {}  {}",
            run.name,
            id_of(&run.refresh_run),
            id_of(&run.destination),
            run_state_label(run.state)
        ),
        run_state: run.state,
        steps: run.steps.iter().map(|s| (s.state, rollback_step_line(s))).collect(),
        footer: confirm_hint("rollback", &run.name, run.state, waiting),
    }
}

impl Resource for RollbackRun {
    const HEADERS: &'static [&'static str] = &["ID", "STATE", "REFRESH", "DESTINATION", "STEP", "CREATED"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            run_state_label(self.state),
            id_of(&self.refresh_run).to_owned(),
            id_of(&self.destination).to_owned(),
            step_of(self.current_step, self.steps.len()),
            when(self.create_time.as_ref()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("name", self.name.clone()),
            ("state", run_state_label(self.state)),
            ("refresh_run", self.refresh_run.clone()),
            ("destination", self.destination.clone()),
            ("restores", format!("{} and {}", self.restore_point, self.snapshot)),
            (
                "kept_before",
                if self.kept_restore_point.is_empty() {
                    "-".into()
                } else {
                    format!("{} and {}", self.kept_restore_point, self.kept_snapshot)
                },
            ),
            ("current_step", step_of(self.current_step, self.steps.len())),
        ];
        run_lifecycle_fields!(self, f, rollback_step_line);
        f
    }
    fn json(&self) -> Value {
        run_json!(self, {
            "refresh_run": self.refresh_run,
            "destination": self.destination,
            "source": self.source,
            "require_approval": self.options.is_some_and(|o| o.require_approval),
            "restore_point": self.restore_point,
            "snapshot": self.snapshot,
            "kept_restore_point": self.kept_restore_point,
            "kept_snapshot": self.kept_snapshot,
        }, |s| {
            "changes": s.changes.iter().map(change_json).collect::<Vec<_>>(),
            "undo_changes": s.undo_changes.iter().map(change_json).collect::<Vec<_>>(),
        })
    }
}
