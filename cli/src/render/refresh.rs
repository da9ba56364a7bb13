//! Refresh-coordinator resources: refresh and promotion runs in a table and in JSON,
//! refresh plans step by step, and promotion plans (the checklist lines are in
//! [`super::checklist`]).

use std::fmt::Write as _;

use ferry_proto::merge::v1::ProjectMergePlan;
use ferry_proto::refresh::v1::{
    ChangeEntry, CopyCounts, PlannedStep, PromotionRun, PromotionStepKind, RefreshMode, RefreshPlan, RefreshRun, RunInterruption,
};
use serde_json::{Value, json};

use super::checklist::{error_line, mode_label, promotion_step_line, refresh_step_line, run_state_label, step_state_label, title};
use super::merge::strategy_label;
use super::{error_json, label, opt, when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

fn names_line(label: &str, names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| format!("{label}: {}", names.join(", ")))
}

fn copy_lines(c: &CopyCounts) -> Vec<String> {
    vec![
        format!(
            "copies {} groups, {} entities, {} projects, {} integrations, {} mappings",
            c.source_groups, c.source_entities, c.source_projects, c.source_integrations, c.source_mappings
        ),
        format!(
            "replaces {} groups, {} entities, {} projects, {} integrations, {} mappings",
            c.replaced_groups, c.replaced_entities, c.replaced_projects, c.replaced_integrations, c.replaced_mappings
        ),
    ]
}

/// What one planned step will change, as indented lines.
fn planned_step_lines(step: &PlannedStep) -> Vec<String> {
    let mut lines = step.summary.clone();
    lines.extend(names_line("integrations", &step.integrations));
    lines.extend(names_line("mappings", &step.mappings));
    lines.extend(names_line("provisioned mappings", &step.provisioned_mappings));
    lines.extend(names_line("jobs", &step.sync_jobs));
    if let Some(c) = &step.copy {
        lines.extend(copy_lines(c));
    }
    lines
}

/// The refresh plan: its nine steps, each with what it will change, and how to start it.
pub fn refresh_plan_text(plan: &RefreshPlan) -> String {
    let o = plan.options.clone().unwrap_or_default();
    let mut s = format!("Refresh plan: {} -> {}  (mode {}", id_of(&plan.source), id_of(&plan.destination), mode_label(o.mode));
    if o.suspend_credentials_instead {
        s.push_str(", suspend credentials");
    }
    if o.require_approval {
        s.push_str(", approval required");
    }
    s.push_str(")\n\n");
    for step in &plan.steps {
        let title = title(&[&step.title], step.number);
        let gate = if step.requires_confirmation { "  (waits for confirmation)" } else { "" };
        let _ = writeln!(s, "{}. {title}{gate}", step.number);
        for line in planned_step_lines(step) {
            let _ = writeln!(s, "     {line}");
        }
    }
    let mut flags = String::new();
    if o.mode == RefreshMode::External as i32 {
        flags.push_str(" --external");
    }
    if o.suspend_credentials_instead {
        flags.push_str(" --suspend-credentials");
    }
    if o.require_approval {
        flags.push_str(" --require-approval");
    }
    let _ = write!(
        s,
        "\netag: {}\nNothing changed. To run it: ferry refresh start {} {}{flags}\n",
        plan.etag,
        id_of(&plan.source),
        id_of(&plan.destination)
    );
    s
}

fn planned_step_json(step: &PlannedStep) -> Value {
    json!({
        "number": step.number,
        "title": step.title,
        "summary": step.summary,
        "integrations": step.integrations,
        "mappings": step.mappings,
        "provisioned_mappings": step.provisioned_mappings,
        "sync_jobs": step.sync_jobs,
        "copy": step.copy.as_ref().map(|c| json!({
            "source_groups": c.source_groups, "source_entities": c.source_entities, "source_projects": c.source_projects,
            "source_integrations": c.source_integrations, "source_mappings": c.source_mappings,
            "replaced_groups": c.replaced_groups, "replaced_entities": c.replaced_entities,
            "replaced_projects": c.replaced_projects, "replaced_integrations": c.replaced_integrations,
            "replaced_mappings": c.replaced_mappings,
        })),
        "requires_confirmation": step.requires_confirmation,
    })
}

pub fn refresh_plan_json(plan: &RefreshPlan) -> Value {
    let o = plan.options.clone().unwrap_or_default();
    json!({
        "source": plan.source,
        "destination": plan.destination,
        "options": {
            "mode": mode_label(o.mode),
            "suspend_credentials_instead": o.suspend_credentials_instead,
            "require_approval": o.require_approval,
        },
        "steps": plan.steps.iter().map(planned_step_json).collect::<Vec<_>>(),
        "etag": plan.etag,
        "plan_time": when_json(plan.plan_time.as_ref()),
    })
}

/// The promotion plan: the group merges with their counts, the project merge preview.
pub fn promotion_plan_text(source: &str, target: &str, pm: Option<&ProjectMergePlan>) -> String {
    let mut s = format!("Promotion plan: {} -> {}\n\n", id_of(source), id_of(target));
    let pm = pm.cloned().unwrap_or_default();
    let _ = writeln!(s, "1. Plan");
    let mut n = 2;
    for g in &pm.group_merges {
        let pair = g.pair.clone().unwrap_or_default();
        let c = g.counts.unwrap_or_default();
        let _ = writeln!(s, "{n}. Merge group {} into {}  ({})", id_of(&pair.source), id_of(&pair.recipient), id_of(&g.merge_plan));
        let _ = writeln!(
            s,
            "     {} creates, {} links, {} skips, {} conflicts, {} missing dependencies",
            c.creates, c.links, c.skips, c.conflicts, c.missing_dependencies
        );
        n += 1;
    }
    let _ = writeln!(s, "{n}. Merge project {} into {}", id_of(source), id_of(target));
    let _ = writeln!(
        s,
        "     config items: {} create, {} replace, {} unchanged; {} missing references",
        pm.config_items_create, pm.config_items_replace, pm.config_items_unchanged, pm.missing_reference_count
    );
    s
}

pub fn promotion_plan_json(source: &str, target: &str, pm: Option<&ProjectMergePlan>) -> Value {
    let pm = pm.cloned().unwrap_or_default();
    json!({
        "source_project": source,
        "target_project": target,
        "group_merges": pm.group_merges.iter().map(|g| {
            let pair = g.pair.clone().unwrap_or_default();
            let c = g.counts.unwrap_or_default();
            json!({
                "source": pair.source, "recipient": pair.recipient, "merge_plan": g.merge_plan,
                "counts": {"creates": c.creates, "links": c.links, "skips": c.skips, "conflicts": c.conflicts,
                           "missing_dependencies": c.missing_dependencies},
            })
        }).collect::<Vec<_>>(),
        "config_items_create": pm.config_items_create,
        "config_items_replace": pm.config_items_replace,
        "config_items_unchanged": pm.config_items_unchanged,
        "missing_reference_count": pm.missing_reference_count,
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::refresh::v1::RefreshStepKind;

    #[test]
    fn the_plan_lists_what_each_step_changes() {
        let plan = RefreshPlan {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: Some(ferry_proto::refresh::v1::RefreshOptions {
                mode: RefreshMode::External as i32,
                suspend_credentials_instead: false,
                require_approval: true,
                profile: None,
            }),
            steps: vec![
                PlannedStep {
                    number: 2,
                    kind: RefreshStepKind::DeactivateSourceIntegrations as i32,
                    title: "Deactivate source integrations".into(),
                    integrations: vec!["environments/prod/integrations/rally".into()],
                    ..Default::default()
                },
                PlannedStep {
                    number: 5,
                    kind: RefreshStepKind::Copy as i32,
                    title: "Copy".into(),
                    copy: Some(CopyCounts { source_groups: 3, replaced_groups: 2, ..Default::default() }),
                    requires_confirmation: true,
                    ..Default::default()
                },
            ],
            etag: "e1".into(),
            ..Default::default()
        };
        let text = refresh_plan_text(&plan);
        assert!(text.starts_with("Refresh plan: prod -> sandbox  (mode EXTERNAL, approval required)"), "{text}");
        assert!(text.contains("2. Deactivate source integrations\n     integrations: environments/prod/integrations/rally\n"), "{text}");
        assert!(text.contains("5. Copy  (waits for confirmation)\n     copies 3 groups"), "{text}");
        assert!(text.contains("replaces 2 groups"), "{text}");
        assert!(text.ends_with("ferry refresh start prod sandbox --external --require-approval\n"), "{text}");
    }
}
