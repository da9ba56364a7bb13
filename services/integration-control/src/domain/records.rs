//! What integration-control keeps, as the service layer sees it. Replies recorded for
//! `request_id` replay are these records serialised; none of them holds a credential
//! (sealed credentials live only in [`IntegrationRow`](crate::store::integrations::IntegrationRow)
//! and in snapshot contents).

use serde::{Deserialize, Serialize};

use super::names::{EnvName, IntegrationName, JobName, MappingName, SnapshotName};

/// Whether an integration has a key, and whether it is released to runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialState {
    Active = 1,
    Suspended = 2,
    None = 3,
}

impl CredentialState {
    pub fn number(self) -> i32 {
        self as i32
    }
    pub fn from_number(n: i32) -> Option<Self> {
        match n {
            1 => Some(Self::Active),
            2 => Some(Self::Suspended),
            3 => Some(Self::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    pub name: IntegrationName,
    pub display_name: String,
    pub external_system: String,
    pub base_url: String,
    pub active: bool,
    pub credential_state: CredentialState,
    /// Empty when the state is `None`.
    pub fingerprint: String,
    pub fenced: bool,
    pub origin: Option<EnvName>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub name: MappingName,
    pub display_name: String,
    pub target: EnvName,
    pub bound: EnvName,
    pub active: bool,
    pub field_mapping_json: String,
    pub fenced: bool,
    pub origin: Option<EnvName>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Running = 1,
    Paused = 2,
}

impl JobState {
    pub fn number(self) -> i32 {
        self as i32
    }
    pub fn from_number(n: i32) -> Option<Self> {
        match n {
            1 => Some(Self::Running),
            2 => Some(Self::Paused),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncJob {
    pub name: JobName,
    pub display_name: String,
    /// The id of an integration of the same environment.
    pub integration: Option<String>,
    pub schedule: String,
    pub state: JobState,
    pub external: bool,
    pub paused_by: String,
    pub pause_reason: String,
    pub pause_time: Option<i64>,
    pub created_at: i64,
}

/// Whether a new sync job talks to an external system: yes unless its creator says no,
/// because a refresh pauses only external jobs, and one taken for internal by mistake
/// keeps syncing through the refresh. A job that uses an integration always does.
pub fn job_is_external(requested: Option<bool>, uses_integration: bool) -> Result<bool, String> {
    match requested {
        Some(false) if uses_integration => {
            Err("a job that uses an integration talks to its external system: leave external unset or true".into())
        }
        Some(external) => Ok(external),
        None => Ok(true),
    }
}

/// An environment fence (a refresh holds it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub holder: String,
    pub reason: String,
    pub fence_time: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceType {
    Integration = 1,
    Mapping = 2,
    SyncJob = 3,
    EnvironmentFence = 4,
}

impl ResourceType {
    pub fn number(self) -> i32 {
        self as i32
    }
}

/// The state a bulk step reads and writes (the proto's `ResourceState`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    pub exists: bool,
    pub active: bool,
    pub credential_state: Option<CredentialState>,
    pub job_state: Option<JobState>,
    pub paused_by: String,
    pub fenced: bool,
    pub bound: Option<EnvName>,
    pub fence_holder: String,
}

impl ResourceState {
    pub fn of_integration(i: &Integration) -> Self {
        Self { exists: true, active: i.active, credential_state: Some(i.credential_state), fenced: i.fenced, ..Self::default() }
    }
    pub fn of_mapping(m: &Mapping) -> Self {
        Self { exists: true, active: m.active, fenced: m.fenced, bound: Some(m.bound.clone()), ..Self::default() }
    }
    pub fn of_job(j: &SyncJob) -> Self {
        Self { exists: true, job_state: Some(j.state), paused_by: j.paused_by.clone(), ..Self::default() }
    }
    pub fn of_fence(f: Option<&Fence>) -> Self {
        match f {
            Some(f) => Self { exists: true, fenced: true, fence_holder: f.holder.clone(), ..Self::default() },
            None => Self { exists: true, ..Self::default() },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub resource: String,
    pub kind: ResourceType,
    pub before: ResourceState,
    pub after: ResourceState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub resource: String,
    pub reason: String,
}

/// Exactly what one call changed, in the order applied, and what it left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub environment: EnvName,
    pub changes: Vec<Change>,
    pub skipped: Vec<Skipped>,
    pub change_time: i64,
}

impl ChangeSet {
    pub fn new(environment: EnvName, change_time: i64) -> Self {
        Self { environment, changes: Vec::new(), skipped: Vec::new(), change_time }
    }
    pub fn change(&mut self, resource: impl ToString, kind: ResourceType, before: ResourceState, after: ResourceState) {
        self.changes.push(Change { resource: resource.to_string(), kind, before, after });
    }
    pub fn skip(&mut self, resource: impl ToString, reason: impl Into<String>) {
        self.skipped.push(Skipped { resource: resource.to_string(), reason: reason.into() });
    }
}

/// A snapshot's metadata; `contents` only in the FULL view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: SnapshotName,
    pub description: String,
    pub integration_count: i64,
    pub mapping_count: i64,
    pub sync_job_count: i64,
    pub checksum: String,
    pub created_by: String,
    pub created_at: i64,
    /// When it is pruned (created_at plus the retention).
    #[serde(default)]
    pub expire_at: i64,
    pub contents: Option<SnapshotContents>,
}

/// An integration as snapshotted: its record and its sealed credentials (base64 of
/// nonce||ciphertext), still sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotIntegration {
    pub integration: Integration,
    pub sealed: Option<String>,
}

/// Everything a snapshot holds, ordered by name. Its canonical JSON is what the checksum
/// covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotContents {
    pub integrations: Vec<SnapshotIntegration>,
    pub mappings: Vec<Mapping>,
    pub sync_jobs: Vec<SyncJob>,
}

/// One page of a list and the cursor of the next, if any.
pub use ferry_kit::paging::Page;
