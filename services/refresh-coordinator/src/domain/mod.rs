//! Runs as data: checked names, run and step states of every kind, each kind's own data
//! (the refresh checklist, the promotion steps, the rollback steps), and what the coordinator reads of the
//! services it drives. No proto and no SQL here.

pub mod approval;
mod names;
mod promotion;
mod refresh;
pub mod remote;
mod rollback;
mod run;
mod schedule;

pub use names::{EnvName, ProjectName, new_run_id, run_id};
pub use promotion::{PromotionOptions, PromotionRun, PromotionSpec, PromotionStep, PromotionStepKind};
pub use refresh::{
    CopyCounts, KindCounts, LeaseDrain, MaskingRule, Mode, Options, Plan, PlannedStep, Profile, RefreshRequest, RefreshRun,
    RefreshSchedule, RefreshSpec, Selector, StepKind,
};
pub use rollback::{ContentCounts, PlannedRollbackStep, RollbackPlan, RollbackRun, RollbackSpec, RollbackStepKind};
pub use run::{AbortRequest, Change, ErrorInfo, Interruption, LeftAlone, Run, RunState, Step, StepState};
pub use schedule::{Schedule, When, valid_schedule_id};
