//! Domain ⇄ proto for refresh runs.

use ferry_kit::db::timestamp;
use ferry_kit::status::Violations;
use ferry_proto::common::v1 as cpb;
use ferry_proto::refresh::v1 as pb;

use crate::domain::{
    Change, CopyCounts, EnvName, ErrorInfo, Interruption, Mode, Options, Plan, PlannedStep, Run, RunState, Step, StepState,
};

pub use ferry_kit::request::request_key;

/// Source and destination, checked together: both well-formed and different.
pub fn environments(v: &mut Violations, source: &str, destination: &str) -> Option<(EnvName, EnvName)> {
    let s = v.check("source", EnvName::parse(source));
    let d = v.check("destination", EnvName::parse(destination));
    let (s, d) = (s?, d?);
    if s == d {
        v.add("destination", "must differ from source");
        return None;
    }
    Some((s, d))
}

pub fn options(o: Option<pb::RefreshOptions>) -> Options {
    let o = o.unwrap_or_default();
    Options {
        mode: if o.mode == pb::RefreshMode::External as i32 { Mode::External } else { Mode::Managed },
        suspend_credentials_instead: o.suspend_credentials_instead,
        require_approval: o.require_approval,
    }
}

fn options_pb(o: &Options) -> pb::RefreshOptions {
    pb::RefreshOptions {
        mode: match o.mode {
            Mode::Managed => pb::RefreshMode::Managed as i32,
            Mode::External => pb::RefreshMode::External as i32,
        },
        suspend_credentials_instead: o.suspend_credentials_instead,
        require_approval: o.require_approval,
    }
}

pub fn run_state(n: i32) -> Result<RunState, String> {
    RunState::from_number(n).ok_or_else(|| format!("{n} is not a run state"))
}

fn copy_pb(c: &CopyCounts) -> pb::CopyCounts {
    pb::CopyCounts {
        source_groups: c.source_groups,
        source_entities: c.source_entities,
        source_projects: c.source_projects,
        source_integrations: c.source_integrations,
        source_mappings: c.source_mappings,
        replaced_groups: c.replaced_groups,
        replaced_entities: c.replaced_entities,
        replaced_projects: c.replaced_projects,
        replaced_integrations: c.replaced_integrations,
        replaced_mappings: c.replaced_mappings,
    }
}

fn planned_pb(p: &PlannedStep) -> pb::PlannedStep {
    pb::PlannedStep {
        number: p.kind.number(),
        kind: p.kind.number(),
        title: p.kind.title().into(),
        summary: p.summary.clone(),
        integrations: p.integrations.clone(),
        mappings: p.mappings.clone(),
        provisioned_mappings: p.provisioned_mappings.clone(),
        sync_jobs: p.sync_jobs.clone(),
        copy: p.copy.as_ref().map(copy_pb),
        requires_confirmation: p.requires_confirmation,
    }
}

pub fn plan_pb(p: &Plan) -> pb::RefreshPlan {
    pb::RefreshPlan {
        source: p.source.to_string(),
        destination: p.destination.to_string(),
        options: Some(options_pb(&p.options)),
        steps: p.steps.iter().map(planned_pb).collect(),
        etag: p.etag.clone(),
        plan_time: Some(timestamp(p.plan_time)),
    }
}

fn change_pb(c: &Change) -> pb::ChangeEntry {
    pb::ChangeEntry { resource: c.resource.clone(), field: c.field.clone(), before: c.before.clone(), after: c.after.clone() }
}

fn error_pb(e: &ErrorInfo) -> cpb::ErrorStatus {
    cpb::ErrorStatus {
        code: e.code,
        message: e.message.clone(),
        violations: e
            .violations
            .iter()
            .map(|(t, s, d)| cpb::Violation { violation_type: t.clone(), subject: s.clone(), description: d.clone() })
            .collect(),
    }
}

fn step_state(s: StepState) -> i32 {
    s as i32
}

fn step_pb(s: &Step) -> pb::RefreshStep {
    pb::RefreshStep {
        number: s.kind.number(),
        kind: s.kind.number(),
        state: step_state(s.state),
        attempts: s.attempts,
        start_time: s.start_time.map(timestamp),
        end_time: s.end_time.map(timestamp),
        actor: s.actor.clone(),
        comment: s.comment.clone(),
        waiting_for: s.waiting_for.clone(),
        plan: Some(planned_pb(&s.plan)),
        log: s.log.clone(),
        changes: s.changes.iter().map(change_pb).collect(),
        undo_changes: s.undo_changes.iter().map(change_pb).collect(),
        error: s.error.as_ref().map(error_pb),
        progress: None,
    }
}

pub fn run_pb(r: &Run) -> pb::RefreshRun {
    let current = r.steps.iter().find(|s| s.kind.number() == r.current_step);
    pb::RefreshRun {
        name: r.name.to_string(),
        source: r.source.to_string(),
        destination: r.destination.to_string(),
        options: Some(options_pb(&r.options)),
        state: r.state.number(),
        steps: r.steps.iter().map(step_pb).collect(),
        current_step: if r.state.terminal() { 0 } else { r.current_step },
        progress: Some(cpb::Progress {
            done: r.done_steps() as i64,
            total: 9,
            rate_per_second: 0.0,
            phase: current.map(|s| s.kind.title().to_owned()).unwrap_or_default(),
        }),
        snapshot: r.snapshot.clone(),
        error: r.error.as_ref().map(error_pb),
        created_by: r.created_by.clone(),
        abort_reason: r.abort_reason.clone(),
        aborted_by: r.aborted_by.clone(),
        create_time: Some(timestamp(r.create_time)),
        start_time: r.start_time.map(timestamp),
        end_time: r.end_time.map(timestamp),
        interruptions: r.interruptions.iter().map(interruption_pb).collect(),
    }
}

pub fn interruption_pb(i: &Interruption) -> pb::RunInterruption {
    pb::RunInterruption {
        holder: i.holder.clone(),
        last_heard_time: (i.last_heard > 0).then(|| timestamp(i.last_heard)),
        resume_time: Some(timestamp(i.resumed_at)),
        resumed_by: i.resumed_by.clone(),
        step: i.step,
    }
}
