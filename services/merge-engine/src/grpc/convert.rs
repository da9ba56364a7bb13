//! Proto ⇄ domain. Parsing collects every field violation before answering.

use ferry_kit::status::Violations;
use ferry_proto::common::v1 as pc;
use ferry_proto::merge::v1 as pb;

use crate::domain::{GroupName, GroupPair, Job, Kind, Plan, PlanItem, ProjectMergePlan};

pub use ferry_kit::request::{done, next_token, page_size, page_token, request_key};

/// Parses a repeated enum field: every value must be known and not UNSPECIFIED.
pub fn enums<T: Ord + Copy>(v: &mut Violations, field: &str, ns: &[i32], from: impl Fn(i32) -> Option<T>) -> Option<Vec<T>> {
    let mut out = Vec::with_capacity(ns.len());
    let mut ok = true;
    for (i, n) in ns.iter().enumerate() {
        match from(*n) {
            Some(x) => out.push(x),
            None => {
                v.add(format!("{field}[{i}]"), if *n == 0 { "must not be UNSPECIFIED".to_owned() } else { format!("unknown value {n}") });
                ok = false;
            }
        }
    }
    out.sort();
    out.dedup();
    ok.then_some(out)
}

pub fn group(v: &mut Violations, field: &str, s: &str) -> Option<GroupName> {
    v.check(field, GroupName::parse(s))
}

/// An optional group filter: empty means any.
pub fn group_filter(v: &mut Violations, field: &str, s: &str) -> Option<Option<GroupName>> {
    if s.is_empty() { Some(None) } else { group(v, field, s).map(Some) }
}

fn ts(micros: i64) -> Option<prost_types::Timestamp> {
    Some(ferry_kit::db::timestamp(micros))
}

pub fn plan(p: Plan) -> pb::MergePlan {
    pb::MergePlan {
        name: p.id.to_string(),
        plan_type: p.plan_type.number(),
        source: p.source.to_string(),
        recipient: p.recipient.to_string(),
        recipient_display_name: p.recipient_display_name,
        strategy: p.strategy.number(),
        kinds: p.selection.kinds.iter().map(|k| k.number()).collect(),
        keys: p.selection.keys,
        source_revision: p.source_revision,
        recipient_revision: p.recipient_revision,
        state: p.state.number(),
        counts: Some(counts(p.counts)),
        job: p.job.map(|j| j.to_string()).unwrap_or_default(),
        create_time: ts(p.created_at),
        expire_time: ts(p.expire_at),
        items_pruned: p.items_pruned,
        created_by: p.created_by,
    }
}

fn entity_ref(kind: Kind, key: String) -> pc::EntityRef {
    pc::EntityRef { kind: kind.number(), key }
}

pub fn item(source: &GroupName, recipient: &GroupName, i: PlanItem) -> pb::MergePlanItem {
    use crate::domain::Outcome;
    let recipient_entity = match i.outcome {
        Outcome::Link => source.entity(i.source_entity_id),
        Outcome::Skip | Outcome::Conflict if i.recipient_entity_id > 0 => recipient.entity(i.recipient_entity_id),
        _ => String::new(),
    };
    pb::MergePlanItem {
        kind: i.kind.number(),
        key: i.key,
        outcome: i.outcome.number(),
        sharing: i.sharing.number(),
        source_entity: source.entity(i.source_entity_id),
        recipient_entity,
        source_content_hash: i.source_hash,
        recipient_content_hash: i.recipient_hash,
        missing_reference: i.missing.map(|(k, key)| entity_ref(k, key)),
    }
}

pub fn job(j: Job) -> pb::Job {
    let elapsed = match (j.started_at, j.ended_at) {
        (Some(s), Some(e)) => e - s,
        (Some(s), None) => ferry_kit::db::now_micros() - s,
        _ => 0,
    };
    let rate = if elapsed > 0 { j.progress.done as f64 / (elapsed as f64 / 1e6) } else { 0.0 };
    pb::Job {
        name: j.id.to_string(),
        kind: j.kind.number(),
        state: j.state.number(),
        progress: Some(pc::Progress { done: j.progress.done, total: j.progress.total, rate_per_second: rate, phase: j.progress.phase }),
        result: Some(pb::JobResult {
            created: j.result.created,
            linked: j.result.linked,
            skipped: j.result.skipped,
            overwritten: j.result.overwritten,
            conflicts_kept: j.result.conflicts_kept,
            missing_dependencies: j.result.missing_dependencies,
            removed: j.result.removed,
            unlinked: j.result.unlinked,
            not_reverted: j.result.not_reverted,
            config_items_created: j.result.config_items_created,
            config_items_replaced: j.result.config_items_replaced,
            config_items_unchanged: j.result.config_items_unchanged,
            unresolved_references: j.result.unresolved_references,
        }),
        error: j.error.map(|e| ferry_proto::common::v1::ErrorStatus {
            code: e.code,
            message: e.message,
            violations: e
                .violations
                .into_iter()
                .map(|v| ferry_proto::common::v1::Violation {
                    violation_type: v.violation_type,
                    subject: v.subject,
                    description: v.description,
                })
                .collect(),
        }),
        create_time: ts(j.created_at),
        start_time: j.started_at.and_then(ts),
        end_time: j.ended_at.and_then(ts),
        plan: j.plan.map(|p| p.to_string()).unwrap_or_default(),
        source: j.source,
        recipient: j.recipient,
        produced_resources: j.produced,
        cancel_requested: j.cancel_requested,
        expire_time: j.expire_at.and_then(ts),
        effects_pruned: j.effects_pruned,
        created_by: j.created_by,
        reverted_job: j.reverted_job.map(|r| r.to_string()).unwrap_or_default(),
        reverted_by: j.reverted_by.map(|r| r.to_string()).unwrap_or_default(),
        child_jobs: j.params.child_jobs.iter().map(ToString::to_string).collect(),
        parent_job: j.params.parent_job.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

fn counts(c: crate::domain::Counts) -> pb::MergePlanCounts {
    pb::MergePlanCounts {
        creates: c.creates,
        links: c.links,
        skips: c.skips,
        conflicts: c.conflicts,
        missing_dependencies: c.missing_dependencies,
        source_entries: c.source_entries,
    }
}

pub fn pair(p: &GroupPair) -> pb::GroupPair {
    pb::GroupPair { source: p.source.to_string(), recipient: p.recipient.to_string() }
}

pub fn project_merge_plan(p: ProjectMergePlan) -> pb::ProjectMergePlan {
    pb::ProjectMergePlan {
        source: p.source.name.to_string(),
        recipient: p.recipient.name.to_string(),
        source_revision: p.source.revision,
        recipient_revision: p.recipient.revision,
        group_pairs: p.pairs.iter().map(pair).collect(),
        group_merges: p
            .group_merges
            .into_iter()
            .map(|g| pb::GroupMergeSummary { pair: Some(pair(&g.pair)), merge_plan: g.plan.to_string(), counts: Some(counts(g.counts)) })
            .collect(),
        config_items_create: p.create,
        config_items_replace: p.replace,
        config_items_unchanged: p.unchanged,
        missing_references: p
            .missing
            .into_iter()
            .map(|m| pb::MissingReference {
                reference: Some(entity_ref(m.reference.0, m.reference.1)),
                config_item: m.config_item,
                supplied_by: m.supplied_by.as_ref().map(pair),
            })
            .collect(),
        missing_reference_count: p.missing_count,
    }
}
