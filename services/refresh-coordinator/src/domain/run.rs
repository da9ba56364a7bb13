//! Runs and steps. A run is stored whole (one row, one document) and rewritten after every
//! transition, so what a step did is durable before the next step starts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::names::{EnvName, RunName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Mode {
    #[default]
    Managed,
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Options {
    pub mode: Mode,
    pub suspend_credentials_instead: bool,
    pub require_approval: bool,
}

/// The nine steps; the discriminant is the step number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    Check = 1,
    DeactivateSourceIntegrations = 2,
    PauseJobs = 3,
    SnapshotDestination = 4,
    Copy = 5,
    DisableSourceMappings = 6,
    RestoreDestinationMappings = 7,
    ReactivateSourceIntegrations = 8,
    ResumeJobs = 9,
}

impl StepKind {
    pub const ALL: [StepKind; 9] = [
        StepKind::Check,
        StepKind::DeactivateSourceIntegrations,
        StepKind::PauseJobs,
        StepKind::SnapshotDestination,
        StepKind::Copy,
        StepKind::DisableSourceMappings,
        StepKind::RestoreDestinationMappings,
        StepKind::ReactivateSourceIntegrations,
        StepKind::ResumeJobs,
    ];

    pub fn number(self) -> i32 {
        self as i32
    }

    pub fn title(self) -> &'static str {
        match self {
            StepKind::Check => "Check environments and locks",
            StepKind::DeactivateSourceIntegrations => "Source: deactivate integrations",
            StepKind::PauseJobs => "Pause external jobs",
            StepKind::SnapshotDestination => "Destination: snapshot integrations, mappings and jobs",
            StepKind::Copy => "Copy source over destination",
            StepKind::DisableSourceMappings => "Destination: disable the source's mappings",
            StepKind::RestoreDestinationMappings => "Destination: restore its own mappings",
            StepKind::ReactivateSourceIntegrations => "Source: re-activate integrations",
            StepKind::ResumeJobs => "Resume jobs and lift fences",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepState {
    Pending = 1,
    Running = 2,
    WaitingForConfirmation = 3,
    Succeeded = 4,
    Failed = 5,
    Undone = 6,
    Skipped = 7,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    Pending = 1,
    Running = 2,
    Waiting = 3,
    Succeeded = 4,
    Failed = 5,
    Aborting = 6,
    Aborted = 7,
}

impl RunState {
    pub fn number(self) -> i32 {
        self as i32
    }
    pub fn from_number(n: i32) -> Option<Self> {
        Some(match n {
            1 => RunState::Pending,
            2 => RunState::Running,
            3 => RunState::Waiting,
            4 => RunState::Succeeded,
            5 => RunState::Failed,
            6 => RunState::Aborting,
            7 => RunState::Aborted,
            _ => return None,
        })
    }
    /// A driver has work to do on runs in these states.
    pub fn runnable(self) -> bool {
        matches!(self, RunState::Pending | RunState::Running | RunState::Aborting)
    }
    pub fn terminal(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Aborted)
    }
    /// The run holds its environments (the locks are released at SUCCEEDED and ABORTED).
    pub fn holds_locks(self) -> bool {
        !self.terminal()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CopyCounts {
    pub source_groups: i64,
    pub source_entities: i64,
    pub source_projects: i64,
    pub source_integrations: i64,
    pub source_mappings: i64,
    pub replaced_groups: i64,
    pub replaced_entities: i64,
    pub replaced_projects: i64,
    pub replaced_integrations: i64,
    pub replaced_mappings: i64,
}

/// What one step will change, as planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub kind: StepKind,
    pub summary: Vec<String>,
    pub integrations: Vec<String>,
    pub mappings: Vec<String>,
    pub provisioned_mappings: Vec<String>,
    pub sync_jobs: Vec<String>,
    pub copy: Option<CopyCounts>,
    pub requires_confirmation: bool,
}

impl PlannedStep {
    pub fn new(kind: StepKind) -> Self {
        Self {
            kind,
            summary: Vec::new(),
            integrations: Vec::new(),
            mappings: Vec::new(),
            provisioned_mappings: Vec::new(),
            sync_jobs: Vec::new(),
            copy: None,
            requires_confirmation: false,
        }
    }
}

/// The nine planned steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub source: EnvName,
    pub destination: EnvName,
    pub options: Options,
    pub steps: Vec<PlannedStep>,
    pub etag: String,
    pub plan_time: i64,
}

impl Plan {
    /// The etag: a digest of everything the plan says except its time.
    pub fn compute_etag(source: &EnvName, destination: &EnvName, options: &Options, steps: &[PlannedStep]) -> String {
        use sha2::{Digest, Sha256};
        let body = serde_json::to_vec(&(source, destination, options, steps)).unwrap_or_default();
        hex::encode(&Sha256::digest(&body)[..12])
    }
}

/// One recorded change (resource, field, before, after).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub resource: String,
    pub field: String,
    pub before: String,
    pub after: String,
}

/// A resource a step left as it was, and why (a job a person had paused stays paused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftAlone {
    pub resource: String,
    pub reason: String,
}

/// A coordinator stopped while it held the run (a crash, `kill -9`), and another (or the
/// same one, restarted) took the run over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interruption {
    /// The coordinator that held the run, and when it last renewed its lease (0: unknown).
    pub holder: String,
    pub last_heard: i64,
    /// When, and by which coordinator, the run was taken over.
    pub resumed_at: i64,
    pub resumed_by: String,
    /// The step that was running (its attempt counts again), 0 when between steps.
    pub step: i32,
}

impl Interruption {
    /// The line a resumed step's log gets.
    pub fn log_line(&self) -> String {
        format!("resumed after an interruption: {} stopped while running this step; taken over by {}", self.holder, self.resumed_by)
    }
}

/// A failure, as google.rpc.Status flattened: code, message, (type, subject, description).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: i32,
    pub message: String,
    pub violations: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    pub state: StepState,
    pub attempts: i32,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub actor: String,
    pub comment: String,
    pub waiting_for: String,
    /// The gate was confirmed (approval, external refresh).
    pub confirmed: bool,
    pub plan: PlannedStep,
    pub log: Vec<String>,
    pub changes: Vec<Change>,
    /// What the step's bulk calls left alone (runs stored before this field have none).
    #[serde(default)]
    pub left_alone: Vec<LeftAlone>,
    pub undo_changes: Vec<Change>,
    pub error: Option<ErrorInfo>,
    /// The replies of the calls this step made (and its undo), by operation, as encoded
    /// bytes in hex: a step re-run after a crash reads them instead of calling again.
    pub outputs: BTreeMap<String, String>,
}

impl Step {
    pub fn new(plan: PlannedStep) -> Self {
        Self {
            kind: plan.kind,
            state: StepState::Pending,
            attempts: 0,
            start_time: None,
            end_time: None,
            actor: String::new(),
            comment: String::new(),
            waiting_for: String::new(),
            confirmed: false,
            plan,
            log: Vec::new(),
            changes: Vec::new(),
            left_alone: Vec::new(),
            undo_changes: Vec::new(),
            error: None,
            outputs: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub name: RunName,
    pub source: EnvName,
    pub destination: EnvName,
    pub options: Options,
    pub state: RunState,
    pub steps: Vec<Step>,
    pub current_step: i32,
    pub snapshot: String,
    pub error: Option<ErrorInfo>,
    pub created_by: String,
    pub abort_reason: String,
    pub aborted_by: String,
    /// The run is undoing (ABORTING, or FAILED while aborting).
    pub aborting: bool,
    pub plan_etag: String,
    pub create_time: i64,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// Every time a coordinator stopped while holding the run (runs stored before this
    /// field have none).
    #[serde(default)]
    pub interruptions: Vec<Interruption>,
}

impl Run {
    pub fn new(name: RunName, plan: Plan, created_by: String, now: i64) -> Self {
        Self {
            name,
            source: plan.source,
            destination: plan.destination,
            options: plan.options,
            state: RunState::Pending,
            steps: plan.steps.into_iter().map(Step::new).collect(),
            current_step: 0,
            snapshot: String::new(),
            error: None,
            created_by,
            abort_reason: String::new(),
            aborted_by: String::new(),
            aborting: false,
            plan_etag: plan.etag,
            create_time: now,
            start_time: None,
            end_time: None,
            interruptions: Vec::new(),
        }
    }

    /// Puts on record that the run was taken over from a coordinator that stopped: the
    /// step it was running gets another attempt.
    pub fn resumed(&mut self, mut interruption: Interruption) {
        if let Some(step) = self.steps.iter_mut().find(|s| s.state == StepState::Running) {
            step.attempts += 1;
            interruption.step = step.kind.number();
            step.log.push(interruption.log_line());
        }
        self.interruptions.push(interruption);
    }

    pub fn step(&self, kind: StepKind) -> &Step {
        &self.steps[kind.number() as usize - 1]
    }

    pub fn step_mut(&mut self, kind: StepKind) -> &mut Step {
        &mut self.steps[kind.number() as usize - 1]
    }

    pub fn done_steps(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s.state, StepState::Succeeded | StepState::Skipped | StepState::Undone)).count()
    }
}
