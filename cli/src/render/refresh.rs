//! Refresh-coordinator resources: refresh and promotion runs as a checklist (one line per
//! step with a state mark), refresh plans step by step, promotion plans, and the drawer
//! that renders a run's checklist live while it is watched.

use ferry_proto::common::v1::ErrorStatus;
use std::fmt::Write as _;

use ferry_proto::common::v1::Progress;
use ferry_proto::merge::v1::ProjectMergePlan;
use ferry_proto::refresh::v1::{
    CopyCounts, PlannedStep, PromotionRun, PromotionStep, PromotionStepKind, RefreshMode, RefreshPlan, RefreshRun, RefreshStep,
    RunInterruption, RunState, StepState,
};
use serde_json::{Value, json};

use super::merge::{done_of_total, strategy_label};
use super::{when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

/// An enum value's name without its prefix (`RUNNING`), or the number when unknown.
fn label<E: TryFrom<i32>>(n: i32, name: impl Fn(&E) -> &'static str, prefix: &str) -> String {
    E::try_from(n).map_or_else(|_| n.to_string(), |e| name(&e).trim_start_matches(prefix).to_owned())
}

pub fn run_state_label(n: i32) -> String {
    label(n, RunState::as_str_name, "RUN_STATE_")
}
pub fn step_state_label(n: i32) -> String {
    label(n, StepState::as_str_name, "STEP_STATE_")
}
pub fn mode_label(n: i32) -> String {
    // UNSPECIFIED is treated as MANAGED by the coordinator.
    if n == RefreshMode::Unspecified as i32 {
        return "MANAGED".to_owned();
    }
    label(n, RefreshMode::as_str_name, "REFRESH_MODE_")
}

/// True once a run can change no more on its own (SUCCEEDED, FAILED, ABORTED).
pub fn run_is_terminal(state: i32) -> bool {
    [RunState::Succeeded, RunState::Failed, RunState::Aborted].iter().any(|s| *s as i32 == state)
}

/// The checklist mark of a step state.
pub fn mark(state: i32) -> &'static str {
    match StepState::try_from(state) {
        Ok(StepState::Running) => "[>]",
        Ok(StepState::WaitingForConfirmation) => "[?]",
        Ok(StepState::Succeeded) => "[x]",
        Ok(StepState::Failed) => "[!]",
        Ok(StepState::Undone) => "[~]",
        Ok(StepState::Skipped) => "[-]",
        _ => "[ ]",
    }
}

/// A step's title as the server gave it ("Step N" from a server too old to say).
fn title(given: &[&str], number: i32) -> String {
    given.iter().find(|t| !t.is_empty()).map_or_else(|| format!("Step {number}"), |t| (*t).to_owned())
}

/// `CODE: message`.
fn error_line(e: &ErrorStatus) -> String {
    format!("{}: {}", crate::error::code_name(tonic::Code::from_i32(e.code)), e.message)
}

fn error_json(e: Option<&ErrorStatus>) -> Value {
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

/// The one-line summary of a step: its error, what it waits for, its progress, or what
/// it changed (every log line that changed something; else its last line; else what it
/// will do).
fn summary(
    state: i32,
    error: Option<&ErrorStatus>,
    waiting_for: &str,
    progress: Option<&Progress>,
    log: &[String],
    planned: &[String],
) -> String {
    match StepState::try_from(state) {
        Ok(StepState::Failed) => {
            if let Some(e) = error {
                return error_line(e);
            }
        }
        Ok(StepState::WaitingForConfirmation) => {
            return format!("waiting for {}", if waiting_for.is_empty() { "confirmation" } else { waiting_for });
        }
        Ok(StepState::Running) => {
            if let Some(p) = progress.filter(|p| p.total > 0 || p.done > 0 || !p.phase.is_empty()) {
                let mut s = done_of_total(p);
                if !p.phase.is_empty() {
                    let _ = write!(s, " {}", p.phase);
                }
                return s;
            }
        }
        _ => {}
    }
    let changed: Vec<&str> = log.iter().map(String::as_str).filter(|l| !l.ends_with("nothing to change")).collect();
    if !changed.is_empty() {
        return changed.join("; ");
    }
    log.last().or_else(|| planned.first()).cloned().unwrap_or_default()
}

/// One checklist line: mark, number, title and (when there is one) the summary.
fn checklist_line(state: i32, number: i32, title: &str, summary: &str) -> String {
    let mut s = format!("{} {number}. {title}", mark(state));
    if !summary.is_empty() {
        let _ = write!(s, "  {}", summary.replace(['\n', '\r'], " "));
    }
    s
}

/// A refresh step as one checklist line: `[x] 2. Deactivate source integrations  …`.
pub fn refresh_step_line(step: &RefreshStep) -> String {
    let title = title(&[&step.title, step.plan.as_ref().map_or("", |p| p.title.as_str())], step.number);
    let planned = step.plan.as_ref().map(|p| p.summary.as_slice()).unwrap_or_default();
    let summary = summary(step.state, step.error.as_ref(), &step.waiting_for, step.progress.as_ref(), &step.log, planned);
    checklist_line(step.state, step.number, &title, &summary)
}

/// A promotion step as one checklist line.
pub fn promotion_step_line(step: &PromotionStep) -> String {
    let summary = summary(step.state, step.error.as_ref(), &step.waiting_for, step.progress.as_ref(), &step.log, &[]);
    checklist_line(step.state, step.number, &title(&[&step.title], step.number), &summary)
}

/// The header of a refresh run's checklist: `refreshRuns/r1  prod -> sandbox  RUNNING`.
pub fn refresh_header(run: &RefreshRun) -> String {
    format!("{}  {} -> {}  {}", run.name, id_of(&run.source), id_of(&run.destination), run_state_label(run.state))
}

/// The header of a promotion run's checklist.
pub fn promotion_header(run: &PromotionRun) -> String {
    format!("{}  {} -> {}  {}", run.name, id_of(&run.source_project), id_of(&run.target_project), run_state_label(run.state))
}

/// The command that confirms the step a run waits on, when it waits.
pub fn confirm_hint(what: &str, name: &str, state: i32, waiting_step: Option<i32>) -> Option<String> {
    if state != RunState::Waiting as i32 {
        return None;
    }
    let step = waiting_step.map(|n| format!(" --step {n}")).unwrap_or_default();
    Some(format!("waiting for confirmation: ferry {what} confirm {}{step}", id_of(name)))
}

/// What a watched run looks like in one snapshot, for the [`Checklist`] drawer.
pub struct Frame {
    pub header: String,
    pub run_state: i32,
    /// (state, line) per step.
    pub steps: Vec<(i32, String)>,
    /// The confirm command, while the run waits.
    pub footer: Option<String>,
}

impl Frame {
    pub fn refresh(run: &RefreshRun) -> Self {
        let waiting = run.steps.iter().find(|s| s.state == StepState::WaitingForConfirmation as i32).map(|s| s.number);
        Self {
            header: refresh_header(run),
            run_state: run.state,
            steps: run.steps.iter().map(|s| (s.state, refresh_step_line(s))).collect(),
            footer: confirm_hint("refresh", &run.name, run.state, waiting),
        }
    }
    pub fn promotion(run: &PromotionRun) -> Self {
        let waiting = run.steps.iter().find(|s| s.state == StepState::WaitingForConfirmation as i32).map(|s| s.number);
        Self {
            header: promotion_header(run),
            run_state: run.state,
            steps: run.steps.iter().map(|s| (s.state, promotion_step_line(s))).collect(),
            footer: confirm_hint("promote", &run.name, run.state, waiting),
        }
    }
}

/// Decides what each run snapshot writes: on a terminal the whole checklist, redrawn in
/// place over the previous one (ANSI cursor-up); otherwise one line per transition (the
/// header when the run's state changes, a step line when its step's state changes, the
/// confirm command when the run starts waiting).
pub struct Checklist {
    tty: bool,
    drawn: usize,
    run_state: Option<i32>,
    steps: Vec<i32>,
    footer: Option<String>,
}

impl Checklist {
    pub fn new(tty: bool) -> Self {
        Self { tty, drawn: 0, run_state: None, steps: Vec::new(), footer: None }
    }

    /// The text to write for this snapshot, if any.
    pub fn frame(&mut self, f: &Frame) -> Option<String> {
        let mut s = String::new();
        if self.tty {
            if self.drawn > 0 {
                let _ = write!(s, "\x1b[{}A", self.drawn);
            }
            let lines: Vec<&str> =
                std::iter::once(f.header.as_str()).chain(f.steps.iter().map(|(_, l)| l.as_str())).chain(f.footer.as_deref()).collect();
            for line in &lines {
                let _ = writeln!(s, "\r{line}\x1b[K");
            }
            // Clear what a longer previous block (a footer now gone) left below.
            s.push_str("\x1b[J");
            self.drawn = lines.len();
            return Some(s);
        }
        if self.run_state != Some(f.run_state) {
            let _ = writeln!(s, "{}", f.header);
            self.run_state = Some(f.run_state);
        }
        for (i, (state, line)) in f.steps.iter().enumerate() {
            let before = self.steps.get(i).copied().unwrap_or(StepState::Pending as i32);
            if before != *state {
                let _ = writeln!(s, "{line}");
            }
        }
        self.steps = f.steps.iter().map(|(state, _)| *state).collect();
        if f.footer != self.footer {
            if let Some(footer) = &f.footer {
                let _ = writeln!(s, "{footer}");
            }
            self.footer.clone_from(&f.footer);
        }
        (!s.is_empty()).then_some(s)
    }
}

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
    let o = plan.options.unwrap_or_default();
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
    let o = plan.options.unwrap_or_default();
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

fn opt(s: &str) -> String {
    if s.is_empty() { "-".to_owned() } else { s.to_owned() }
}

fn step_of(current: i32, total: usize) -> String {
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
        let o = self.options.unwrap_or_default();
        let mut f = vec![
            ("name", self.name.clone()),
            ("state", run_state_label(self.state)),
            ("source", self.source.clone()),
            ("destination", self.destination.clone()),
            ("mode", mode_label(o.mode)),
            ("current_step", step_of(self.current_step, self.steps.len())),
            ("snapshot", opt(&self.snapshot)),
            ("created_by", opt(&self.created_by)),
            ("created", when(self.create_time.as_ref())),
            ("started", when(self.start_time.as_ref())),
            ("ended", when(self.end_time.as_ref())),
        ];
        if let Some(e) = &self.error {
            f.push(("error", error_line(e)));
        }
        if !self.abort_reason.is_empty() || !self.aborted_by.is_empty() {
            f.push(("aborted", format!("{} (by {})", self.abort_reason, opt(&self.aborted_by))));
        }
        for i in &self.interruptions {
            f.push(("interrupted", interruption_line(i)));
        }
        f.push(("steps", self.steps.iter().map(refresh_step_line).collect::<Vec<_>>().join("\n")));
        f
    }
    fn json(&self) -> Value {
        let o = self.options.unwrap_or_default();
        json!({
            "name": self.name,
            "state": run_state_label(self.state),
            "source": self.source,
            "destination": self.destination,
            "options": {
                "mode": mode_label(o.mode),
                "suspend_credentials_instead": o.suspend_credentials_instead,
                "require_approval": o.require_approval,
            },
            "current_step": self.current_step,
            "snapshot": self.snapshot,
            "error": error_json(self.error.as_ref()),
            "created_by": self.created_by,
            "abort_reason": self.abort_reason,
            "aborted_by": self.aborted_by,
            "create_time": when_json(self.create_time.as_ref()),
            "start_time": when_json(self.start_time.as_ref()),
            "end_time": when_json(self.end_time.as_ref()),
            "interruptions": interruptions_json(&self.interruptions),
            "steps": self.steps.iter().map(|s| json!({
                "number": s.number,
                "title": s.title,
                "state": step_state_label(s.state),
                "attempts": s.attempts,
                "actor": s.actor,
                "comment": s.comment,
                "waiting_for": s.waiting_for,
                "start_time": when_json(s.start_time.as_ref()),
                "end_time": when_json(s.end_time.as_ref()),
                "plan": s.plan.as_ref().map(planned_step_json),
                "log": s.log,
                "changes": s.changes.iter().map(|c| json!({
                    "resource": c.resource, "field": c.field, "before": c.before, "after": c.after,
                })).collect::<Vec<_>>(),
                "error": error_json(s.error.as_ref()),
            })).collect::<Vec<_>>(),
        })
    }
}

/// A takeover of a run from a coordinator that stopped, in one line.
fn interruption_line(i: &RunInterruption) -> String {
    let at = if i.step == 0 { "between steps".to_owned() } else { format!("during step {}", i.step) };
    format!(
        "{at}: {} stopped (last heard {}); resumed {} by {}",
        i.holder,
        when(i.last_heard_time.as_ref()),
        when(i.resume_time.as_ref()),
        i.resumed_by
    )
}

fn interruptions_json(all: &[RunInterruption]) -> Value {
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
            ("created_by", opt(&self.created_by)),
            ("created", when(self.create_time.as_ref())),
            ("started", when(self.start_time.as_ref())),
            ("ended", when(self.end_time.as_ref())),
        ];
        if let Some(e) = &self.error {
            f.push(("error", error_line(e)));
        }
        if !self.abort_reason.is_empty() || !self.aborted_by.is_empty() {
            f.push(("aborted", format!("{} (by {})", self.abort_reason, opt(&self.aborted_by))));
        }
        for i in &self.interruptions {
            f.push(("interrupted", interruption_line(i)));
        }
        f.push(("steps", self.steps.iter().map(promotion_step_line).collect::<Vec<_>>().join("\n")));
        f
    }
    fn json(&self) -> Value {
        let o = self.options.clone().unwrap_or_default();
        json!({
            "name": self.name,
            "state": run_state_label(self.state),
            "source_project": self.source_project,
            "target_project": self.target_project,
            "options": {"strategy": strategy_label(o.strategy), "require_approval": o.require_approval},
            "current_step": self.current_step,
            "error": error_json(self.error.as_ref()),
            "created_by": self.created_by,
            "abort_reason": self.abort_reason,
            "aborted_by": self.aborted_by,
            "create_time": when_json(self.create_time.as_ref()),
            "start_time": when_json(self.start_time.as_ref()),
            "end_time": when_json(self.end_time.as_ref()),
            "interruptions": interruptions_json(&self.interruptions),
            "steps": self.steps.iter().map(|s| json!({
                "number": s.number,
                "title": s.title,
                "kind": label(s.kind, PromotionStepKind::as_str_name, "PROMOTION_STEP_KIND_"),
                "state": step_state_label(s.state),
                "attempts": s.attempts,
                "actor": s.actor,
                "comment": s.comment,
                "waiting_for": s.waiting_for,
                "source": s.source,
                "recipient": s.recipient,
                "merge_plan": s.merge_plan,
                "job": s.job,
                "revert_job": s.revert_job,
                "log": s.log,
                "error": error_json(s.error.as_ref()),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::refresh::v1::RefreshStepKind;

    /// Titles as the server gives them.
    const TITLES: [&str; 9] = [
        "Check",
        "Deactivate source integrations",
        "Pause jobs",
        "Snapshot destination",
        "Copy",
        "Disable source mappings",
        "Restore destination mappings",
        "Reactivate source integrations",
        "Resume jobs",
    ];

    fn step(number: i32, kind: RefreshStepKind, state: StepState) -> RefreshStep {
        let title = TITLES[number as usize - 1].into();
        RefreshStep { number, kind: kind as i32, state: state as i32, title, ..Default::default() }
    }

    fn run(state: RunState, states: [StepState; 9]) -> RefreshRun {
        let kinds = [
            RefreshStepKind::Check,
            RefreshStepKind::DeactivateSourceIntegrations,
            RefreshStepKind::PauseJobs,
            RefreshStepKind::SnapshotDestination,
            RefreshStepKind::Copy,
            RefreshStepKind::DisableSourceMappings,
            RefreshStepKind::RestoreDestinationMappings,
            RefreshStepKind::ReactivateSourceIntegrations,
            RefreshStepKind::ResumeJobs,
        ];
        let steps = (1..).zip(kinds).zip(states).map(|((n, k), st)| step(n, k, st)).collect();
        RefreshRun {
            name: "refreshRuns/r1".into(),
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            state: state as i32,
            steps,
            ..Default::default()
        }
    }

    #[test]
    fn every_state_has_its_mark() {
        assert_eq!(mark(StepState::Pending as i32), "[ ]");
        assert_eq!(mark(StepState::Running as i32), "[>]");
        assert_eq!(mark(StepState::WaitingForConfirmation as i32), "[?]");
        assert_eq!(mark(StepState::Succeeded as i32), "[x]");
        assert_eq!(mark(StepState::Failed as i32), "[!]");
        assert_eq!(mark(StepState::Undone as i32), "[~]");
        assert_eq!(mark(StepState::Skipped as i32), "[-]");
    }

    #[test]
    fn the_checklist_has_a_line_per_step_with_mark_and_summary() {
        use StepState::{Failed, Pending, Skipped, Succeeded, Undone};
        let mut r = run(RunState::Failed, [Succeeded, Undone, Skipped, Succeeded, Failed, Pending, Pending, Pending, Pending]);
        r.steps[0].log = vec!["checks passed".into(), "approved by ann".into()];
        r.steps[1].title = String::new();
        r.steps[1].plan = Some(PlannedStep { title: "Deactivate prod integrations".into(), ..Default::default() });
        r.steps[2].title = String::new();
        r.steps[4].error = Some(ErrorStatus { code: tonic::Code::Unavailable as i32, message: "registry down".into(), violations: vec![] });
        r.steps[5].plan = Some(PlannedStep { summary: vec!["disables 2 mappings".into()], ..Default::default() });
        let f = Frame::refresh(&r);
        assert_eq!(f.header, "refreshRuns/r1  prod -> sandbox  FAILED");
        let lines: Vec<&str> = f.steps.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "[x] 1. Check  checks passed; approved by ann",
                "[~] 2. Deactivate prod integrations",
                "[-] 3. Step 3",
                "[x] 4. Snapshot destination",
                "[!] 5. Copy  UNAVAILABLE: registry down",
                "[ ] 6. Disable source mappings  disables 2 mappings",
                "[ ] 7. Restore destination mappings",
                "[ ] 8. Reactivate source integrations",
                "[ ] 9. Resume jobs",
            ]
        );
        assert_eq!(f.footer, None);
    }

    #[test]
    fn a_waiting_run_names_the_confirm_command_and_running_steps_show_progress() {
        use StepState::{Pending, Running, Succeeded, WaitingForConfirmation};
        let mut r =
            run(RunState::Waiting, [WaitingForConfirmation, Pending, Pending, Pending, Pending, Pending, Pending, Pending, Pending]);
        r.steps[0].waiting_for = "approval".into();
        let f = Frame::refresh(&r);
        assert_eq!(f.steps[0].1, "[?] 1. Check  waiting for approval");
        assert_eq!(f.footer.as_deref(), Some("waiting for confirmation: ferry refresh confirm r1 --step 1"));
        let mut r = run(RunState::Running, [Succeeded, Succeeded, Succeeded, Succeeded, Running, Pending, Pending, Pending, Pending]);
        r.steps[4].progress = Some(Progress { done: 40, total: 100, phase: "entities".into(), ..Default::default() });
        assert_eq!(Frame::refresh(&r).steps[4].1, "[>] 5. Copy  40/100 entities");
    }

    #[test]
    fn off_a_terminal_each_transition_is_one_line() {
        use StepState::{Pending, Running, Succeeded, WaitingForConfirmation};
        let p = Pending;
        let mut c = Checklist::new(false);
        let first = c.frame(&Frame::refresh(&run(RunState::Running, [Running, p, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert_eq!(first, "refreshRuns/r1  prod -> sandbox  RUNNING\n[>] 1. Check\n");
        assert_eq!(c.frame(&Frame::refresh(&run(RunState::Running, [Running, p, p, p, p, p, p, p, p]))), None, "nothing changed");
        let waiting =
            c.frame(&Frame::refresh(&run(RunState::Waiting, [WaitingForConfirmation, p, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert_eq!(
            waiting,
            "refreshRuns/r1  prod -> sandbox  WAITING\n[?] 1. Check  waiting for confirmation\n\
             waiting for confirmation: ferry refresh confirm r1 --step 1\n"
        );
        let next = c.frame(&Frame::refresh(&run(RunState::Running, [Succeeded, Running, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert_eq!(next, "refreshRuns/r1  prod -> sandbox  RUNNING\n[x] 1. Check\n[>] 2. Deactivate source integrations\n");
    }

    #[test]
    fn on_a_terminal_the_block_is_redrawn_in_place() {
        use StepState::{Pending, Running, Succeeded};
        let p = Pending;
        let mut c = Checklist::new(true);
        let first = c.frame(&Frame::refresh(&run(RunState::Running, [Running, p, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert!(first.starts_with("\rrefreshRuns/r1"), "the first block moves nothing up: {first:?}");
        assert_eq!(first.matches('\n').count(), 10);
        let second = c.frame(&Frame::refresh(&run(RunState::Running, [Succeeded, Running, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert!(second.starts_with("\x1b[10A\r"), "{second:?}");
        assert!(second.contains("\r[x] 1. Check\x1b[K\n"), "{second:?}");
        assert!(c.frame(&Frame::refresh(&run(RunState::Running, [Succeeded, Running, p, p, p, p, p, p, p]))).is_some());
    }

    #[test]
    fn promotion_steps_show_the_titles_the_server_gave() {
        let r = PromotionRun {
            name: "promotionRuns/p1".into(),
            source_project: "environments/dev/projects/test".into(),
            target_project: "environments/dev/projects/prod".into(),
            state: RunState::Running as i32,
            steps: vec![
                PromotionStep {
                    number: 1,
                    kind: PromotionStepKind::Plan as i32,
                    title: "Plan".into(),
                    state: StepState::Succeeded as i32,
                    ..Default::default()
                },
                PromotionStep {
                    number: 2,
                    kind: PromotionStepKind::MergeGroup as i32,
                    state: StepState::Running as i32,
                    source: "environments/dev/groups/core-test".into(),
                    recipient: "environments/dev/groups/core".into(),
                    title: "Merge group core-test into core".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let f = Frame::promotion(&r);
        assert_eq!(f.header, "promotionRuns/p1  test -> prod  RUNNING");
        assert_eq!(f.steps[0].1, "[x] 1. Plan");
        assert_eq!(f.steps[1].1, "[>] 2. Merge group core-test into core");
    }

    #[test]
    fn the_plan_lists_what_each_step_changes() {
        let plan = RefreshPlan {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: Some(ferry_proto::refresh::v1::RefreshOptions {
                mode: RefreshMode::External as i32,
                suspend_credentials_instead: false,
                require_approval: true,
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

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn a_step_summary_names_every_change_not_just_the_last_call() {
        let log = vec!["pause: changed 1 resource".to_string(), "pause: nothing to change".to_string()];
        let s = summary(StepState::Succeeded as i32, None, "", None, &log, &[]);
        assert_eq!(s, "pause: changed 1 resource");
        let idle = vec!["pause: nothing to change".to_string()];
        assert_eq!(summary(StepState::Succeeded as i32, None, "", None, &idle, &[]), "pause: nothing to change");
    }
}
