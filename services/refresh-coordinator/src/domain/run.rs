//! Runs and steps of every kind, as the engine keeps them: a run's state, its steps (each
//! with what it did, in human lines and structured entries), and the kind's own data (the
//! run's `spec`, each step's `detail`). A run is stored whole as one document; what the
//! steps' calls to other services returned is in the run's journal, not here.

use serde::{Deserialize, Serialize};

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

impl StepState {
    /// Done, as far as going forward is concerned.
    pub fn done(self) -> bool {
        matches!(self, StepState::Succeeded | StepState::Skipped | StepState::Undone)
    }
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
    /// A watcher's stream ends after a run in one of these states.
    pub fn settled(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Failed | RunState::Aborted)
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

/// An abort asked of a run: why, by whom, and (promotions) whether reverts may remove
/// entities changed since they were merged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortRequest {
    pub reason: String,
    pub by: String,
    #[serde(default)]
    pub proceed_with_changed: bool,
}

/// One step of a run; `detail` is the kind's (what a refresh step planned, which groups a
/// promotion step merges and its job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step<D> {
    pub number: i32,
    pub state: StepState,
    pub attempts: i32,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub actor: String,
    pub comment: String,
    pub waiting_for: String,
    /// The gate was confirmed (approval, external refresh).
    pub confirmed: bool,
    pub log: Vec<String>,
    /// What the step changed, left alone, and what its undo changed: kept beside the run
    /// document (they grow large), see `engine::store::PARTS`.
    #[serde(default)]
    pub changes: Vec<Change>,
    #[serde(default)]
    pub left_alone: Vec<LeftAlone>,
    #[serde(default)]
    pub undo_changes: Vec<Change>,
    /// The step's journal operations whose results *are* its changes and what it left
    /// alone (in order): those two are derived from the journal when the run is read,
    /// not written a second time (see `engine::Kind::derive`). Empty: they are stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<String>,
    pub error: Option<ErrorInfo>,
    /// An abort has dealt with this step (undone it, or found nothing to undo).
    pub undo_done: bool,
    pub detail: D,
}

impl<D> Step<D> {
    pub fn new(number: i32, detail: D) -> Self {
        Self {
            number,
            state: StepState::Pending,
            attempts: 0,
            start_time: None,
            end_time: None,
            actor: String::new(),
            comment: String::new(),
            waiting_for: String::new(),
            confirmed: false,
            log: Vec::new(),
            changes: Vec::new(),
            left_alone: Vec::new(),
            undo_changes: Vec::new(),
            derived: Vec::new(),
            error: None,
            undo_done: false,
            detail,
        }
    }
}

/// A run of any kind; `spec` is the kind's (what to refresh or promote, with which
/// options, and what the run learnt on the way that later steps need).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run<S, D> {
    pub id: String,
    pub state: RunState,
    pub steps: Vec<Step<D>>,
    /// The step running, waiting or failed (1-based); 0 before the start and after the end.
    pub current_step: i32,
    pub error: Option<ErrorInfo>,
    pub created_by: String,
    /// Set once the run undoes (ABORTING, or FAILED while aborting).
    pub abort: Option<AbortRequest>,
    pub create_time: i64,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub interruptions: Vec<Interruption>,
    pub spec: S,
}

impl<S, D> Run<S, D> {
    pub fn new(id: String, spec: S, details: Vec<D>, created_by: String, now: i64) -> Self {
        Self {
            id,
            state: RunState::Pending,
            steps: details.into_iter().enumerate().map(|(i, d)| Step::new(i as i32 + 1, d)).collect(),
            current_step: 0,
            error: None,
            created_by,
            abort: None,
            create_time: now,
            start_time: None,
            end_time: None,
            interruptions: Vec::new(),
            spec,
        }
    }

    /// The run is undoing.
    pub fn aborting(&self) -> bool {
        self.abort.is_some()
    }

    pub fn done_steps(&self) -> usize {
        self.steps.iter().filter(|s| s.state.done()).count()
    }

    /// Puts on record that the run was taken over from a coordinator that stopped: the
    /// step it was running gets another attempt.
    pub fn resumed(&mut self, mut interruption: Interruption) {
        if let Some(step) = self.steps.iter_mut().find(|s| s.state == StepState::Running) {
            step.attempts += 1;
            interruption.step = step.number;
            step.log.push(interruption.log_line());
        }
        self.interruptions.push(interruption);
    }

    /// The run starts undoing.
    pub fn begin_abort(&mut self, request: AbortRequest) {
        self.abort = Some(request);
        self.state = RunState::Aborting;
        self.error = None;
    }
}
