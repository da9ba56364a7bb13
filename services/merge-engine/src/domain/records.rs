//! What the engine holds and answers with, as plain data. Replies recorded for
//! `request_id` replay are these, serialised.

use serde::{Deserialize, Serialize};

use super::{GroupName, JobId, JobKind, JobState, Kind, Outcome, PlanId, PlanState, PlanType, ProjectName, Sharing, Strategy};

/// One line of a group's key manifest, as the registry streams it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub kind: Kind,
    pub key: String,
    pub content_hash: String,
    pub sharing: Sharing,
    pub entity_id: i64,
    pub references: Vec<(Kind, String)>,
}

/// What a merge covers (G13): empty lists mean everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub kinds: Vec<Kind>,
    pub keys: Vec<String>,
}

impl Selection {
    pub fn contains(&self, kind: Kind, key: &str) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind)) && (self.keys.is_empty() || self.keys.iter().any(|k| k == key))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub creates: i64,
    pub links: i64,
    pub skips: i64,
    pub conflicts: i64,
    pub missing_dependencies: i64,
    pub source_entries: i64,
}

impl Counts {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Create => self.creates += 1,
            Outcome::Link => self.links += 1,
            Outcome::Skip => self.skips += 1,
            Outcome::Conflict => self.conflicts += 1,
            Outcome::MissingDependency => self.missing_dependencies += 1,
        }
    }
}

/// A group merge or clone plan (G10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: PlanId,
    pub plan_type: PlanType,
    pub source: GroupName,
    pub recipient: GroupName,
    pub recipient_display_name: String,
    pub strategy: Strategy,
    pub selection: Selection,
    pub source_revision: i64,
    pub recipient_revision: i64,
    pub state: PlanState,
    pub counts: Counts,
    pub job: Option<JobId>,
    pub created_at: i64,
    /// When its items are pruned (created_at plus the plan retention); a READY plan past
    /// it reads EXPIRED.
    pub expire_at: i64,
    /// Its items were pruned.
    pub items_pruned: bool,
    /// Who made it: the caller's subject, or the original caller's when a service passed
    /// one on. `""` for plans from before it was recorded (and in replies recorded then).
    #[serde(default)]
    pub created_by: String,
}

/// One item of a plan. `seq` orders items by (kind, key) then outcome: an entity's item
/// has `seq = n * 128` and its missing dependencies follow it at `n * 128 + 1 + i`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    pub seq: i64,
    pub kind: Kind,
    pub key: String,
    pub outcome: Outcome,
    pub sharing: Sharing,
    pub source_entity_id: i64,
    /// 0 when the recipient has no entity under this (kind, key).
    pub recipient_entity_id: i64,
    pub source_hash: String,
    pub recipient_hash: String,
    pub missing: Option<(Kind, String)>,
}

/// Room for an entity's missing dependencies after its item (at most 100 references).
pub const SEQ_STRIDE: i64 = 128;

/// How far a job got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: i64,
    pub total: i64,
    pub phase: String,
}

/// What a job did (only the counters of its kind are set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobResult {
    pub created: i64,
    pub linked: i64,
    pub skipped: i64,
    pub overwritten: i64,
    pub conflicts_kept: i64,
    pub missing_dependencies: i64,
    pub removed: i64,
    pub unlinked: i64,
    pub not_reverted: i64,
    pub config_items_created: i64,
    pub config_items_replaced: i64,
    pub config_items_unchanged: i64,
    pub unresolved_references: i64,
}

/// One violation of a failed job: (type, subject, description), or a field violation
/// with the field path as subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub violation_type: String,
    pub subject: String,
    pub description: String,
}

/// Why a job failed or was cancelled: a gRPC code (never UNKNOWN), message, violations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: i32,
    pub message: String,
    pub violations: Vec<Violation>,
}

/// What a job was asked to do, beyond its plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobParams {
    pub proceed_with_missing_dependencies: bool,
    /// CLONE_GROUP, CLONE_PROJECT: the new resource's display name.
    pub display_name: String,
    /// CLONE_PROJECT: the new project's groups, in resolution order.
    pub groups: Vec<String>,
    /// MERGE_PROJECT: the group pairs, in order, and whether to merge them first.
    pub pairs: Vec<GroupPair>,
    pub merge_groups_first: bool,
    pub strategy: Option<Strategy>,
    /// MERGE_PROJECT: plans given by the caller, one per pair (empty: plan at run time).
    pub plans: Vec<PlanId>,
    /// MERGE_PROJECT with merge_groups_first: its APPLY_MERGE jobs, in order.
    pub child_jobs: Vec<JobId>,
    /// A child APPLY_MERGE job: the MERGE_PROJECT job that started it.
    pub parent_job: Option<JobId>,
}

/// Which recipient group a source group merges into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPair {
    pub source: GroupName,
    pub recipient: GroupName,
}

/// A project as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInfo {
    pub name: ProjectName,
    pub groups: Vec<GroupName>,
    pub revision: i64,
}

/// One configuration item (`id` is the last segment of its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigItem {
    pub id: String,
    pub value_json: String,
    pub references: Vec<(Kind, String)>,
}

/// A reference a delivered config item makes that the recipient's groups lack (G9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRef {
    pub reference: (Kind, String),
    /// The first config item (by name) that references it.
    pub config_item: String,
    /// The group merge that would supply it.
    pub supplied_by: Option<GroupPair>,
}

/// One group merge of a project merge: its pair, plan and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMergeSummary {
    pub pair: GroupPair,
    pub plan: PlanId,
    pub counts: Counts,
}

/// A preview of a project merge (not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectMergePlan {
    pub source: ProjectInfo,
    pub recipient: ProjectInfo,
    pub pairs: Vec<GroupPair>,
    pub group_merges: Vec<GroupMergeSummary>,
    pub create: i64,
    pub replace: i64,
    pub unchanged: i64,
    pub missing: Vec<MissingRef>,
    pub missing_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    pub state: JobState,
    pub plan: Option<PlanId>,
    pub source: String,
    pub recipient: String,
    pub params: JobParams,
    pub progress: Progress,
    pub result: JobResult,
    pub error: Option<JobError>,
    pub produced: Vec<String>,
    pub cancel_requested: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub updated_at: i64,
    /// REVERT_MERGE: the APPLY_MERGE job it reverts.
    pub reverted_job: Option<JobId>,
    /// APPLY_MERGE: the REVERT_MERGE job that reverted it, once one succeeded.
    pub reverted_by: Option<JobId>,
    /// Once ended: when its effects (what a revert needs) are pruned.
    pub expire_at: Option<i64>,
    /// Its effects were pruned.
    pub effects_pruned: bool,
    /// Who started it (as [`Plan::created_by`]); a child job, its parent's.
    #[serde(default)]
    pub created_by: String,
}

/// One page of a list and the cursor of the next, if any.
pub use ferry_kit::paging::Page;
