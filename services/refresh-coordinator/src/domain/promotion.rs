//! Promotion runs: PLAN, one MERGE_GROUP per group pair, MERGE_PROJECT. Stored whole, like
//! refresh runs. What merge-engine returned (plans, jobs, counts) is kept as encoded bytes
//! in `outputs`, as refresh steps keep ChangeSets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::names::ProjectName;
use super::run::{ErrorInfo, Interruption, RunState, StepState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromotionStepKind {
    Plan = 1,
    MergeGroup = 2,
    MergeProject = 3,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionOptions {
    /// merge-engine's MergeStrategy value.
    pub strategy: i32,
    /// (source group, recipient group); empty: by position.
    pub group_pairs: Vec<(String, String)>,
    pub require_approval: bool,
    pub proceed_with_missing_dependencies: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionStep {
    pub number: i32,
    pub kind: PromotionStepKind,
    pub state: StepState,
    pub attempts: i32,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub actor: String,
    pub comment: String,
    pub waiting_for: String,
    pub confirmed: bool,
    /// MERGE_GROUP: the groups; MERGE_PROJECT: the projects.
    pub source: String,
    pub recipient: String,
    /// MERGE_GROUP: the plan applied (`mergePlans/{plan}`).
    pub merge_plan: String,
    /// The merge job, and the revert job of an abort.
    pub job: String,
    pub revert_job: String,
    pub log: Vec<String>,
    pub error: Option<ErrorInfo>,
    /// Encoded replies of merge-engine by operation (hex), for replay after a crash.
    pub outputs: BTreeMap<String, String>,
}

impl PromotionStep {
    pub fn new(number: i32, kind: PromotionStepKind, source: String, recipient: String, merge_plan: String) -> Self {
        Self {
            number,
            kind,
            state: StepState::Pending,
            attempts: 0,
            start_time: None,
            end_time: None,
            actor: String::new(),
            comment: String::new(),
            waiting_for: String::new(),
            confirmed: false,
            source,
            recipient,
            merge_plan,
            job: String::new(),
            revert_job: String::new(),
            log: Vec::new(),
            error: None,
            outputs: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionRun {
    /// The run id (`promotionRuns/{id}`).
    pub id: String,
    pub source: ProjectName,
    pub target: ProjectName,
    pub options: PromotionOptions,
    pub state: RunState,
    pub steps: Vec<PromotionStep>,
    pub current_step: i32,
    /// The project merge preview (merge-engine's ProjectMergePlan, encoded, hex).
    pub plan: String,
    pub error: Option<ErrorInfo>,
    pub created_by: String,
    pub abort_reason: String,
    pub aborted_by: String,
    pub proceed_with_changed: bool,
    pub aborting: bool,
    pub create_time: i64,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    #[serde(default)]
    pub interruptions: Vec<Interruption>,
}

impl PromotionRun {
    /// As [`super::Run::resumed`].
    pub fn resumed(&mut self, mut interruption: Interruption) {
        if let Some(step) = self.steps.iter_mut().find(|s| s.state == StepState::Running) {
            step.attempts += 1;
            interruption.step = step.number;
            step.log.push(interruption.log_line());
        }
        self.interruptions.push(interruption);
    }

    pub fn name(&self) -> String {
        format!("promotionRuns/{}", self.id)
    }

    pub fn done_steps(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s.state, StepState::Succeeded | StepState::Skipped | StepState::Undone)).count()
    }
}
