//! A rollback run's own data: the six steps that put a refreshed destination back as it
//! was before the refresh, and what the plan says will come back and be discarded.

use serde::{Deserialize, Serialize};

use super::EnvName;

/// The six steps; the discriminant is the step number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RollbackStepKind {
    Check = 1,
    FenceDestination = 2,
    KeepCurrent = 3,
    RestoreContent = 4,
    RestoreIntegrations = 5,
    Resume = 6,
}

impl RollbackStepKind {
    pub const ALL: [RollbackStepKind; 6] = [
        RollbackStepKind::Check,
        RollbackStepKind::FenceDestination,
        RollbackStepKind::KeepCurrent,
        RollbackStepKind::RestoreContent,
        RollbackStepKind::RestoreIntegrations,
        RollbackStepKind::Resume,
    ];

    pub fn number(self) -> i32 {
        self as i32
    }

    /// The step's title, as every client shows it.
    pub fn title(self) -> &'static str {
        match self {
            RollbackStepKind::Check => "Check the refresh, its window and the lock",
            RollbackStepKind::FenceDestination => "Destination: fence and pause external jobs",
            RollbackStepKind::KeepCurrent => "Destination: keep what the rollback discards",
            RollbackStepKind::RestoreContent => "Destination: restore groups, entities and projects",
            RollbackStepKind::RestoreIntegrations => "Destination: restore integrations, disable copied mappings",
            RollbackStepKind::Resume => "Resume jobs and lift the fence",
        }
    }

    /// The step's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            RollbackStepKind::Check => "rollback_check",
            RollbackStepKind::FenceDestination => "rollback_fence_destination",
            RollbackStepKind::KeepCurrent => "rollback_keep_current",
            RollbackStepKind::RestoreContent => "rollback_restore_content",
            RollbackStepKind::RestoreIntegrations => "rollback_restore_integrations",
            RollbackStepKind::Resume => "rollback_resume",
        }
    }
}

/// A rollback step's detail: what it was planned to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRollbackStep {
    pub kind: RollbackStepKind,
    pub summary: Vec<String>,
    pub requires_confirmation: bool,
}

/// Counts of a destination's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentCounts {
    pub groups: i64,
    pub entities: i64,
    pub links: i64,
    pub projects: i64,
    pub config_items: i64,
    pub integrations: i64,
    pub mappings: i64,
    pub sync_jobs: i64,
}

/// What rolling a refresh back will do, as things are now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPlan {
    /// The refresh run's id.
    pub refresh_run: String,
    pub source: EnvName,
    pub destination: EnvName,
    pub require_approval: bool,
    pub restore_point: String,
    pub snapshot: String,
    pub put_back: ContentCounts,
    pub discarded: ContentCounts,
    pub changed_groups: Vec<String>,
    pub created_groups: Vec<String>,
    pub deleted_groups: Vec<String>,
    pub not_in_snapshot: Vec<String>,
    /// Microseconds.
    pub window_end: i64,
    pub steps: Vec<PlannedRollbackStep>,
    pub etag: String,
    pub plan_time: i64,
}

impl RollbackPlan {
    /// The etag: a digest of everything the plan says except its time and its etag.
    pub fn compute_etag(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut plain = self.clone();
        (plain.etag, plain.plan_time) = (String::new(), 0);
        let body = serde_json::to_vec(&plain).unwrap_or_default();
        hex::encode(&Sha256::digest(&body)[..12])
    }
}

/// What a rollback run is about, and what it learnt on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackSpec {
    pub plan: RollbackPlan,
    /// What step 3 kept of the destination before the rollback.
    pub kept_snapshot: String,
    pub kept_restore_point: String,
}

/// A rollback run.
pub type RollbackRun = super::Run<RollbackSpec, PlannedRollbackStep>;
