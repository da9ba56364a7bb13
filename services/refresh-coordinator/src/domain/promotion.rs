//! A promotion run's own data: PLAN, one MERGE_GROUP per group pair, MERGE_PROJECT.

use serde::{Deserialize, Serialize};

use super::names::ProjectName;
use super::remote::{GroupPair, PlanCounts, ProjectMergePreview};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromotionStepKind {
    Plan = 1,
    MergeGroup = 2,
    MergeProject = 3,
}

impl PromotionStepKind {
    /// The step's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            PromotionStepKind::Plan => "promotion_plan",
            PromotionStepKind::MergeGroup => "promotion_merge_group",
            PromotionStepKind::MergeProject => "promotion_merge_project",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionOptions {
    /// merge-engine's MergeStrategy value.
    pub strategy: i32,
    /// Empty: by position.
    pub group_pairs: Vec<GroupPair>,
    pub require_approval: bool,
    pub proceed_with_missing_dependencies: bool,
}

/// A promotion step's detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionStep {
    pub kind: PromotionStepKind,
    /// MERGE_GROUP: the groups; MERGE_PROJECT: the projects.
    pub source: String,
    pub recipient: String,
    /// MERGE_GROUP: the plan applied (`mergePlans/{plan}`), and its counts.
    pub merge_plan: String,
    pub counts: Option<PlanCounts>,
    /// The merge job, and the revert job of an abort.
    pub job: String,
    pub revert_job: String,
}

impl PromotionStep {
    pub fn new(kind: PromotionStepKind, source: String, recipient: String, merge_plan: String) -> Self {
        Self { kind, source, recipient, merge_plan, counts: None, job: String::new(), revert_job: String::new() }
    }

    /// The step's title, as every client shows it ("Merge group core-test into core").
    pub fn title(&self) -> String {
        let id = |name: &str| name.rsplit('/').next().unwrap_or(name).to_owned();
        match self.kind {
            PromotionStepKind::Plan => "Plan".to_owned(),
            PromotionStepKind::MergeGroup => format!("Merge group {} into {}", id(&self.source), id(&self.recipient)),
            PromotionStepKind::MergeProject => format!("Merge project {} into {}", id(&self.source), id(&self.recipient)),
        }
    }
}

/// What a promotion run is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionSpec {
    pub source: ProjectName,
    pub target: ProjectName,
    pub options: PromotionOptions,
    /// The project merge preview made at the start.
    pub plan: ProjectMergePreview,
}

/// A promotion run.
pub type PromotionRun = super::Run<PromotionSpec, PromotionStep>;
