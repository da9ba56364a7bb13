//! Domain ⇄ proto for runs of every kind: what every run and step has (states, times,
//! errors, interruptions, progress) once, then each kind's own fields.

use ferry_kit::db::timestamp;
use ferry_kit::status::Violations;
use ferry_proto::common::v1 as cpb;
use ferry_proto::refresh::v1 as pb;

use crate::clients::merge::{counts_pb, pair_pb, preview_pb};
use crate::clients::registry::profile_pb;
use crate::domain::remote::GroupPair;
use crate::domain::{
    Change, CopyCounts, EnvName, ErrorInfo, Interruption, LeaseDrain, MaskingRule, Mode, Options, Plan, PlannedStep, Profile, ProjectName,
    PromotionOptions, PromotionRun, PromotionStep, PromotionStepKind, RefreshRun, Run, RunState, Selector, Step,
};
use crate::engine::{Kind, name_of};
use crate::kinds::{Promotion, Refresh};

pub use ferry_kit::request::request_key;

pub fn run_state(n: i32) -> Result<RunState, String> {
    RunState::from_number(n).ok_or_else(|| format!("{n} is not a run state"))
}

pub(super) fn error_pb(e: &ErrorInfo) -> cpb::ErrorStatus {
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

fn interruption_pb(i: &Interruption) -> pb::RunInterruption {
    pb::RunInterruption {
        holder: i.holder.clone(),
        last_heard_time: (i.last_heard > 0).then(|| timestamp(i.last_heard)),
        resume_time: Some(timestamp(i.resumed_at)),
        resumed_by: i.resumed_by.clone(),
        step: i.step,
    }
}

/// What every run says the same way, whatever its kind.
pub(super) struct Common {
    pub(super) name: String,
    pub(super) state: i32,
    pub(super) current_step: i32,
    pub(super) progress: cpb::Progress,
    pub(super) error: Option<cpb::ErrorStatus>,
    pub(super) abort_reason: String,
    pub(super) aborted_by: String,
    pub(super) create_time: Option<prost_types::Timestamp>,
    pub(super) start_time: Option<prost_types::Timestamp>,
    pub(super) end_time: Option<prost_types::Timestamp>,
    pub(super) interruptions: Vec<pb::RunInterruption>,
}

pub(super) fn common<K: Kind>(r: &Run<K::Spec, K::Detail>, title: impl Fn(&Step<K::Detail>) -> String) -> Common {
    let current = r.steps.iter().find(|s| s.number == r.current_step);
    Common {
        name: name_of::<K>(&r.id),
        state: r.state.number(),
        current_step: if r.state.terminal() { 0 } else { r.current_step },
        progress: cpb::Progress {
            done: r.done_steps() as i64,
            total: r.steps.len() as i64,
            rate_per_second: 0.0,
            phase: current.map(title).unwrap_or_default(),
        },
        error: r.error.as_ref().map(error_pb),
        abort_reason: r.abort.as_ref().map(|a| a.reason.clone()).unwrap_or_default(),
        aborted_by: r.abort.as_ref().map(|a| a.by.clone()).unwrap_or_default(),
        create_time: Some(timestamp(r.create_time)),
        start_time: r.start_time.map(timestamp),
        end_time: r.end_time.map(timestamp),
        interruptions: r.interruptions.iter().map(interruption_pb).collect(),
    }
}

// ---- refresh runs ----

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
        profile: o.profile.map(profile).unwrap_or_default(),
        lease_drain: if o.lease_drain == pb::LeaseDrain::Revoke as i32 { LeaseDrain::Revoke } else { LeaseDrain::Wait },
    }
}

fn profile(p: cpb::CopyProfile) -> Profile {
    let selectors = |s: Vec<cpb::EntitySelector>| -> Vec<Selector> {
        s.into_iter().map(|s| Selector { kind: s.kind, key_pattern: s.key_pattern }).collect()
    };
    Profile {
        preserve_groups: p.preserve_groups,
        preserve_projects: p.preserve_projects,
        preserve_entities: selectors(p.preserve_entities),
        exclude_groups: p.exclude_groups,
        exclude_kinds: p.exclude_kinds,
        exclude_entities: selectors(p.exclude_entities),
        masking: p
            .masking
            .into_iter()
            .map(|m| MaskingRule { kind: m.kind, pointer: m.pointer, action: m.action, value_json: m.value_json })
            .collect(),
    }
}

pub fn options_pb(o: &Options) -> pb::RefreshOptions {
    pb::RefreshOptions {
        mode: match o.mode {
            Mode::Managed => pb::RefreshMode::Managed as i32,
            Mode::External => pb::RefreshMode::External as i32,
        },
        suspend_credentials_instead: o.suspend_credentials_instead,
        require_approval: o.require_approval,
        profile: (!o.profile.is_empty()).then(|| profile_pb(&o.profile)),
        lease_drain: match o.lease_drain {
            LeaseDrain::Wait => pb::LeaseDrain::Wait,
            LeaseDrain::Revoke => pb::LeaseDrain::Revoke,
        } as i32,
    }
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
        profile_counts: p
            .profile_counts
            .iter()
            .map(|k| cpb::KindCopyCounts { kind: k.kind, copied: k.copied, masked: k.masked, excluded: k.excluded, preserved: k.preserved })
            .collect(),
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

pub(super) fn change_pb(c: &Change) -> pb::ChangeEntry {
    pb::ChangeEntry { resource: c.resource.clone(), field: c.field.clone(), before: c.before.clone(), after: c.after.clone() }
}

/// A step message of any kind: the fields every step has under the same names, from
/// the engine's `Step`, then the kind's own (`field: value, …`).
macro_rules! step_message {
    ($message:path, $s:expr, kind: $kind:expr, title: $title:expr, $($field:ident: $value:expr),* $(,)?) => {{
        let s = $s;
        $message {
            number: s.number,
            kind: $kind,
            title: $title,
            state: s.state as i32,
            attempts: s.attempts,
            start_time: s.start_time.map(timestamp),
            end_time: s.end_time.map(timestamp),
            actor: s.actor.clone(),
            comment: s.comment.clone(),
            waiting_for: s.waiting_for.clone(),
            log: s.log.clone(),
            error: s.error.as_ref().map(error_pb),
            $($field: $value,)*
        }
    }};
}
pub(super) use step_message;

fn refresh_step_pb(s: &Step<PlannedStep>) -> pb::RefreshStep {
    step_message!(pb::RefreshStep, s, kind: s.detail.kind.number(), title: s.detail.kind.title().into(),
        plan: Some(planned_pb(&s.detail)),
        changes: s.changes.iter().map(change_pb).collect(),
        undo_changes: s.undo_changes.iter().map(change_pb).collect(),
        progress: None,
    )
}

pub fn run_pb(r: &RefreshRun) -> pb::RefreshRun {
    let c = common::<Refresh>(r, |s| s.detail.kind.title().to_owned());
    pb::RefreshRun {
        name: c.name,
        source: r.spec.source.to_string(),
        destination: r.spec.destination.to_string(),
        options: Some(options_pb(&r.spec.options)),
        state: c.state,
        steps: r.steps.iter().map(refresh_step_pb).collect(),
        current_step: c.current_step,
        progress: Some(c.progress),
        snapshot: r.spec.snapshot.clone(),
        restore_point: r.spec.restore_point.clone(),
        error: c.error,
        created_by: r.created_by.clone(),
        abort_reason: c.abort_reason,
        aborted_by: c.aborted_by,
        create_time: c.create_time,
        start_time: c.start_time,
        end_time: c.end_time,
        interruptions: c.interruptions,
    }
}

// ---- promotion runs ----

/// Source and target projects: well-formed, different, in one environment.
pub fn projects(v: &mut Violations, source: &str, target: &str) -> Option<(ProjectName, ProjectName)> {
    let s = v.check("source_project", ProjectName::parse(source));
    let t = v.check("target_project", ProjectName::parse(target));
    let (s, t) = (s?, t?);
    if s == t {
        v.add("target_project", "must differ from source_project");
        return None;
    }
    if s.env != t.env {
        v.add("target_project", "must be in the environment of source_project");
        return None;
    }
    Some((s, t))
}

pub fn promotion_options(o: &Option<pb::PromotionOptions>) -> PromotionOptions {
    let o = o.clone().unwrap_or_default();
    PromotionOptions {
        strategy: o.strategy,
        group_pairs: o.group_pairs.into_iter().map(|p| GroupPair { source: p.source, recipient: p.recipient }).collect(),
        require_approval: o.require_approval,
        proceed_with_missing_dependencies: o.proceed_with_missing_dependencies,
    }
}

pub fn promotion_options_pb(o: &PromotionOptions) -> pb::PromotionOptions {
    pb::PromotionOptions {
        strategy: o.strategy,
        group_pairs: o.group_pairs.iter().map(pair_pb).collect(),
        require_approval: o.require_approval,
        proceed_with_missing_dependencies: o.proceed_with_missing_dependencies,
    }
}

pub fn promotion_plan_pb(
    source: &ProjectName,
    target: &ProjectName,
    options: &PromotionOptions,
    preview: &crate::domain::remote::ProjectMergePreview,
) -> pb::PromotionPlan {
    pb::PromotionPlan {
        source_project: source.to_string(),
        target_project: target.to_string(),
        options: Some(promotion_options_pb(options)),
        project_merge: Some(preview_pb(preview)),
    }
}

fn promotion_step_pb(s: &Step<PromotionStep>) -> pb::PromotionStep {
    let d = &s.detail;
    let kind = match d.kind {
        PromotionStepKind::Plan => pb::PromotionStepKind::Plan,
        PromotionStepKind::MergeGroup => pb::PromotionStepKind::MergeGroup,
        PromotionStepKind::MergeProject => pb::PromotionStepKind::MergeProject,
    };
    step_message!(pb::PromotionStep, s, kind: kind as i32, title: d.title(),
        source: d.source.clone(),
        recipient: d.recipient.clone(),
        merge_plan: d.merge_plan.clone(),
        job: d.job.clone(),
        counts: d.counts.as_ref().map(counts_pb),
        revert_job: d.revert_job.clone(),
        progress: None,
    )
}

pub fn promotion_pb(r: &PromotionRun) -> pb::PromotionRun {
    let c = common::<Promotion>(r, |s| s.detail.title());
    pb::PromotionRun {
        name: c.name,
        source_project: r.spec.source.to_string(),
        target_project: r.spec.target.to_string(),
        options: Some(promotion_options_pb(&r.spec.options)),
        state: c.state,
        steps: r.steps.iter().map(promotion_step_pb).collect(),
        current_step: c.current_step,
        progress: Some(c.progress),
        plan: Some(preview_pb(&r.spec.plan)),
        error: c.error,
        created_by: r.created_by.clone(),
        abort_reason: c.abort_reason,
        aborted_by: c.aborted_by,
        create_time: c.create_time,
        start_time: c.start_time,
        end_time: c.end_time,
        interruptions: c.interruptions,
    }
}
