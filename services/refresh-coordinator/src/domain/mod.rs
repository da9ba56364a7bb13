//! The refresh run as data: checked names, the nine steps, run and step states, what a
//! step planned and what it changed. No proto and no SQL here.

mod names;
mod promotion;
mod run;

pub use names::{EnvName, ProjectName, RunName};
pub use promotion::{PromotionOptions, PromotionRun, PromotionStep, PromotionStepKind};
pub use run::{
    Change, CopyCounts, ErrorInfo, Interruption, LeftAlone, Mode, Options, Plan, PlannedStep, Run, RunState, Step, StepKind, StepState,
};
