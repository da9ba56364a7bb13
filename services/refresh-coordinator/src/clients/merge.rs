//! merge-engine: the plans and jobs of a promotion.

use ferry_proto::merge::v1 as mpb;
use ferry_proto::merge::v1::merge_service_client::MergeServiceClient;

use super::{Svc, error_info};
use crate::domain::remote::{
    GroupMergeSummary, GroupPair, JobResult, MergeJob, MergeJobState, MergePlanInfo, MissingReference, PlanCounts, ProjectMergePreview,
};
use crate::domain::{ProjectName, PromotionOptions};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct MergeClient(MergeServiceClient<Svc>);

fn remote(status: tonic::Status) -> Error {
    Error::Remote { service: "merge-engine", status }
}

pub(crate) fn counts(c: mpb::MergePlanCounts) -> PlanCounts {
    PlanCounts {
        creates: c.creates,
        links: c.links,
        skips: c.skips,
        conflicts: c.conflicts,
        missing_dependencies: c.missing_dependencies,
        source_entries: c.source_entries,
    }
}

pub(crate) fn counts_pb(c: &PlanCounts) -> mpb::MergePlanCounts {
    mpb::MergePlanCounts {
        creates: c.creates,
        links: c.links,
        skips: c.skips,
        conflicts: c.conflicts,
        missing_dependencies: c.missing_dependencies,
        source_entries: c.source_entries,
    }
}

fn pair(p: mpb::GroupPair) -> GroupPair {
    GroupPair { source: p.source, recipient: p.recipient }
}

pub(crate) fn pair_pb(p: &GroupPair) -> mpb::GroupPair {
    mpb::GroupPair { source: p.source.clone(), recipient: p.recipient.clone() }
}

pub(crate) fn job(j: mpb::Job) -> MergeJob {
    let state = match mpb::JobState::try_from(j.state) {
        Ok(mpb::JobState::Queued) => MergeJobState::Queued,
        Ok(mpb::JobState::Running) => MergeJobState::Running,
        Ok(mpb::JobState::Succeeded) => MergeJobState::Succeeded,
        Ok(mpb::JobState::Failed) => MergeJobState::Failed,
        Ok(mpb::JobState::Cancelled) => MergeJobState::Cancelled,
        _ => MergeJobState::Unspecified,
    };
    let r = j.result.unwrap_or_default();
    MergeJob {
        name: j.name,
        state,
        result: JobResult {
            created: r.created,
            linked: r.linked,
            skipped: r.skipped,
            overwritten: r.overwritten,
            conflicts_kept: r.conflicts_kept,
            missing_dependencies: r.missing_dependencies,
            removed: r.removed,
            unlinked: r.unlinked,
            not_reverted: r.not_reverted,
            config_items_created: r.config_items_created,
            config_items_replaced: r.config_items_replaced,
            config_items_unchanged: r.config_items_unchanged,
            unresolved_references: r.unresolved_references,
        },
        error: j.error.map(error_info),
    }
}

pub(crate) fn plan_info(p: mpb::MergePlan) -> MergePlanInfo {
    MergePlanInfo {
        stale: p.state == mpb::MergePlanState::Stale as i32,
        name: p.name,
        source: p.source,
        recipient: p.recipient,
        counts: p.counts.map(counts),
    }
}

pub(crate) fn preview(p: mpb::ProjectMergePlan) -> ProjectMergePreview {
    ProjectMergePreview {
        source: p.source,
        recipient: p.recipient,
        source_revision: p.source_revision,
        recipient_revision: p.recipient_revision,
        group_pairs: p.group_pairs.into_iter().map(pair).collect(),
        group_merges: p
            .group_merges
            .into_iter()
            .map(|g| GroupMergeSummary {
                pair: g.pair.map(pair).unwrap_or(GroupPair { source: String::new(), recipient: String::new() }),
                merge_plan: g.merge_plan,
                counts: g.counts.map(counts),
            })
            .collect(),
        config_items_create: p.config_items_create,
        config_items_replace: p.config_items_replace,
        config_items_unchanged: p.config_items_unchanged,
        missing_references: p
            .missing_references
            .into_iter()
            .map(|m| {
                let r = m.reference.unwrap_or_default();
                MissingReference { kind: r.kind, key: r.key, config_item: m.config_item, supplied_by: m.supplied_by.map(pair) }
            })
            .collect(),
        missing_reference_count: p.missing_reference_count,
    }
}

/// The preview as merge-engine sent it (PromotionRun.plan, PromotionPlan.project_merge).
pub(crate) fn preview_pb(p: &ProjectMergePreview) -> mpb::ProjectMergePlan {
    mpb::ProjectMergePlan {
        source: p.source.clone(),
        recipient: p.recipient.clone(),
        source_revision: p.source_revision,
        recipient_revision: p.recipient_revision,
        group_pairs: p.group_pairs.iter().map(pair_pb).collect(),
        group_merges: p
            .group_merges
            .iter()
            .map(|g| mpb::GroupMergeSummary {
                pair: Some(pair_pb(&g.pair)),
                merge_plan: g.merge_plan.clone(),
                counts: g.counts.as_ref().map(counts_pb),
            })
            .collect(),
        config_items_create: p.config_items_create,
        config_items_replace: p.config_items_replace,
        config_items_unchanged: p.config_items_unchanged,
        missing_references: p
            .missing_references
            .iter()
            .map(|m| mpb::MissingReference {
                reference: Some(ferry_proto::common::v1::EntityRef { kind: m.kind, key: m.key.clone() }),
                config_item: m.config_item.clone(),
                supplied_by: m.supplied_by.as_ref().map(pair_pb),
            })
            .collect(),
        missing_reference_count: p.missing_reference_count,
    }
}

impl MergeClient {
    pub(super) fn new(svc: Svc) -> Self {
        Self(MergeServiceClient::new(svc))
    }

    fn c(&self) -> MergeServiceClient<Svc> {
        self.0.clone()
    }

    pub async fn get_merge_plan(&self, name: &str) -> Result<MergePlanInfo> {
        let r = self.c().get_merge_plan(mpb::GetMergePlanRequest { name: name.to_owned() }).await.map_err(remote)?;
        Ok(plan_info(r.into_inner()))
    }

    /// A new plan of merging `source` into `recipient` (the whole groups).
    pub async fn create_merge_plan(&self, source: &str, recipient: &str, strategy: i32, request_id: String) -> Result<MergePlanInfo> {
        let req = mpb::CreateMergePlanRequest {
            source: source.to_owned(),
            recipient: recipient.to_owned(),
            strategy,
            kinds: Vec::new(),
            keys: Vec::new(),
            request_id,
        };
        Ok(plan_info(self.c().create_merge_plan(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn apply_merge_plan(&self, plan: &str, proceed_with_missing_dependencies: bool, request_id: String) -> Result<MergeJob> {
        let req = mpb::ApplyMergePlanRequest { name: plan.to_owned(), proceed_with_missing_dependencies, request_id };
        Ok(job(self.c().apply_merge_plan(req).await.map_err(remote)?.into_inner()))
    }

    /// Delivers the project's configuration (its groups were merged by earlier steps).
    pub async fn merge_project(
        &self,
        source: &ProjectName,
        target: &ProjectName,
        options: &PromotionOptions,
        request_id: String,
    ) -> Result<MergeJob> {
        let req = mpb::MergeProjectRequest {
            source: source.to_string(),
            recipient: target.to_string(),
            merge_groups_first: false,
            strategy: options.strategy,
            group_pairs: options.group_pairs.iter().map(pair_pb).collect(),
            group_merge_plans: Vec::new(),
            proceed_with_missing_dependencies: options.proceed_with_missing_dependencies,
            request_id,
        };
        Ok(job(self.c().merge_project(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn revert_merge(&self, job_name: &str, proceed_with_changed: bool, request_id: String) -> Result<MergeJob> {
        let req = mpb::RevertMergeRequest { job: job_name.to_owned(), proceed_with_changed, request_id };
        Ok(job(self.c().revert_merge(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn cancel_job(&self, name: &str, request_id: String) -> Result<MergeJob> {
        let req = mpb::CancelJobRequest { name: name.to_owned(), request_id };
        Ok(job(self.c().cancel_job(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn get_job(&self, name: &str) -> Result<MergeJob> {
        Ok(job(self.c().get_job(mpb::GetJobRequest { name: name.to_owned() }).await.map_err(remote)?.into_inner()))
    }

    /// Previews promoting `source` into `target`: with `merge_groups_first`, a merge plan
    /// per group pair.
    pub async fn plan_project_merge(
        &self,
        source: &ProjectName,
        target: &ProjectName,
        merge_groups_first: bool,
        options: &PromotionOptions,
        request_id: String,
    ) -> Result<ProjectMergePreview> {
        let req = mpb::PlanProjectMergeRequest {
            source: source.to_string(),
            recipient: target.to_string(),
            merge_groups_first,
            strategy: options.strategy,
            group_pairs: options.group_pairs.iter().map(pair_pb).collect(),
            request_id,
        };
        Ok(preview(self.c().plan_project_merge(req).await.map_err(remote)?.into_inner()))
    }
}
