//! A refresh run's own data: its options, the nine steps of the refresh article's
//! checklist, and what each was planned to change.

use serde::{Deserialize, Serialize};

use super::EnvName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Mode {
    #[default]
    Managed,
    External,
}

/// How step 3 stops the syncs running under a lease: waits for them (the default), or
/// revokes and goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LeaseDrain {
    #[default]
    Wait,
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Options {
    pub mode: Mode,
    pub suspend_credentials_instead: bool,
    pub require_approval: bool,
    /// What the copy preserves, excludes and masks; the registry checks and applies it.
    #[serde(default, skip_serializing_if = "Profile::is_empty")]
    pub profile: Profile,
    #[serde(default)]
    pub lease_drain: LeaseDrain,
}

/// A refresh profile as the run keeps it and passes it to the registry's copy (which
/// owns its rules: patterns, pointers, masks). Kinds are the registry's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Profile {
    pub preserve_groups: Vec<String>,
    pub preserve_projects: Vec<String>,
    pub preserve_entities: Vec<Selector>,
    pub exclude_groups: Vec<String>,
    pub exclude_kinds: Vec<i32>,
    pub exclude_entities: Vec<Selector>,
    pub masking: Vec<MaskingRule>,
}

impl Profile {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Entities of a kind whose key matches a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub kind: i32,
    pub key_pattern: String,
}

/// A masked payload field: kind, JSON pointer, the registry's MaskAction number, and the
/// FIXED value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskingRule {
    pub kind: i32,
    pub pointer: String,
    pub action: i32,
    pub value_json: String,
}

/// What a copy with a profile does to one kind (the registry's counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KindCounts {
    pub kind: i32,
    pub copied: i64,
    pub masked: i64,
    pub excluded: i64,
    pub preserved: i64,
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

    /// The step's title, as every client shows it (the CLI takes it from the replies).
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

    /// The step's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            StepKind::Check => "check",
            StepKind::DeactivateSourceIntegrations => "deactivate_source_integrations",
            StepKind::PauseJobs => "pause_jobs",
            StepKind::SnapshotDestination => "snapshot_destination",
            StepKind::Copy => "copy",
            StepKind::DisableSourceMappings => "disable_source_mappings",
            StepKind::RestoreDestinationMappings => "restore_destination_mappings",
            StepKind::ReactivateSourceIntegrations => "reactivate_source_integrations",
            StepKind::ResumeJobs => "resume_jobs",
        }
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

/// What one step will change, as planned (a refresh step's detail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub kind: StepKind,
    pub summary: Vec<String>,
    pub integrations: Vec<String>,
    pub mappings: Vec<String>,
    pub provisioned_mappings: Vec<String>,
    pub sync_jobs: Vec<String>,
    pub copy: Option<CopyCounts>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile_counts: Vec<KindCounts>,
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
            profile_counts: Vec::new(),
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

/// What a scheduled refresh starts at each due time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    pub source: EnvName,
    pub destination: EnvName,
    pub options: Options,
}

/// A schedule of refreshes.
pub type RefreshSchedule = super::Schedule<RefreshRequest>;

/// What a refresh run is about, and what it learnt on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshSpec {
    pub source: EnvName,
    pub destination: EnvName,
    pub options: Options,
    pub plan_etag: String,
    /// The destination snapshot step 4 took.
    pub snapshot: String,
    /// The registry restore point of the destination step 4 took (MANAGED).
    #[serde(default)]
    pub restore_point: String,
    /// The destination's groups and their revisions right after the copy (MANAGED): what a
    /// rollback's plan compares with to name the groups changed since.
    #[serde(default)]
    pub copied_groups: Vec<(String, i64)>,
}

/// A refresh run.
pub type RefreshRun = super::Run<RefreshSpec, PlannedStep>;
