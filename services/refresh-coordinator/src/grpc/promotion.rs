//! Promotion runs at the proto edge: parsing and conversion (the handlers are in
//! `handlers`, as the generated trait is one impl).

use ferry_kit::db::timestamp;
use ferry_kit::status::Violations;
use ferry_proto::common::v1 as cpb;
use ferry_proto::merge::v1 as mpb;
use ferry_proto::refresh::v1 as pb;

use crate::domain::{ErrorInfo, ProjectName, PromotionOptions, PromotionRun, PromotionStep, PromotionStepKind};

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

pub fn options(o: &Option<pb::PromotionOptions>) -> PromotionOptions {
    let o = o.clone().unwrap_or_default();
    PromotionOptions {
        strategy: o.strategy,
        group_pairs: o.group_pairs.into_iter().map(|p| (p.source, p.recipient)).collect(),
        require_approval: o.require_approval,
        proceed_with_missing_dependencies: o.proceed_with_missing_dependencies,
    }
}

pub fn options_pb(o: &PromotionOptions) -> pb::PromotionOptions {
    pb::PromotionOptions {
        strategy: o.strategy,
        group_pairs: o.group_pairs.iter().map(|(s, r)| mpb::GroupPair { source: s.clone(), recipient: r.clone() }).collect(),
        require_approval: o.require_approval,
        proceed_with_missing_dependencies: o.proceed_with_missing_dependencies,
    }
}

/// A run id from `promotionRuns/{run}`.
pub fn run_id(s: &str) -> Result<String, String> {
    match s.strip_prefix("promotionRuns/") {
        Some(id) if (1..=63).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => Ok(id.to_owned()),
        _ => Err("must be promotionRuns/{run}".into()),
    }
}

fn decode<M: prost::Message + Default>(h: Option<&String>) -> Option<M> {
    h.and_then(|h| hex::decode(h).ok()).and_then(|b| M::decode(b.as_slice()).ok())
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

fn step_pb(s: &PromotionStep) -> pb::PromotionStep {
    let kind = match s.kind {
        PromotionStepKind::Plan => pb::PromotionStepKind::Plan,
        PromotionStepKind::MergeGroup => pb::PromotionStepKind::MergeGroup,
        PromotionStepKind::MergeProject => pb::PromotionStepKind::MergeProject,
    };
    pb::PromotionStep {
        number: s.number,
        kind: kind as i32,
        state: s.state as i32,
        attempts: s.attempts,
        start_time: s.start_time.map(timestamp),
        end_time: s.end_time.map(timestamp),
        actor: s.actor.clone(),
        comment: s.comment.clone(),
        waiting_for: s.waiting_for.clone(),
        source: s.source.clone(),
        recipient: s.recipient.clone(),
        merge_plan: s.merge_plan.clone(),
        job: s.job.clone(),
        counts: decode(s.outputs.get("counts")),
        revert_job: s.revert_job.clone(),
        log: s.log.clone(),
        error: s.error.as_ref().map(error_pb),
        progress: None,
    }
}

pub fn run_pb(r: &PromotionRun) -> pb::PromotionRun {
    let current = r.steps.iter().find(|s| s.number == r.current_step);
    pb::PromotionRun {
        name: r.name(),
        source_project: r.source.to_string(),
        target_project: r.target.to_string(),
        options: Some(options_pb(&r.options)),
        state: r.state.number(),
        steps: r.steps.iter().map(step_pb).collect(),
        current_step: if r.state.terminal() { 0 } else { r.current_step },
        progress: Some(cpb::Progress {
            done: r.done_steps() as i64,
            total: r.steps.len() as i64,
            rate_per_second: 0.0,
            phase: current
                .map(|s| match s.kind {
                    PromotionStepKind::Plan => "plan".to_owned(),
                    PromotionStepKind::MergeGroup => format!("merge {} into {}", s.source, s.recipient),
                    PromotionStepKind::MergeProject => "merge project".to_owned(),
                })
                .unwrap_or_default(),
        }),
        plan: decode(Some(&r.plan)),
        error: r.error.as_ref().map(error_pb),
        created_by: r.created_by.clone(),
        abort_reason: r.abort_reason.clone(),
        aborted_by: r.aborted_by.clone(),
        create_time: Some(timestamp(r.create_time)),
        start_time: r.start_time.map(timestamp),
        end_time: r.end_time.map(timestamp),
        interruptions: r.interruptions.iter().map(super::convert::interruption_pb).collect(),
    }
}
