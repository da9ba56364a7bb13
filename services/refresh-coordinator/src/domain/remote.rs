//! What the coordinator reads from the services it drives, as its own types (the typed
//! clients in `clients/` convert to and from their protos). Each is what a step needs and
//! records in the run's journal, and what a later step hands back unchanged (a ChangeSet
//! goes back to integration-control to be undone exactly).

use serde::{Deserialize, Serialize};

/// Whether an environment is production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    Production,
    NonProduction,
}

/// A group's size, for the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    pub entity_count: i64,
    pub revision: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationInfo {
    pub name: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingInfo {
    pub name: String,
    pub active: bool,
    /// The environment it is provisioned for (`environments/…`), empty for its own.
    pub target_environment: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Unspecified,
    Running,
    Paused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncJobInfo {
    pub name: String,
    /// A reply without the field counts as external (the safe reading).
    pub external: bool,
    pub state: JobState,
}

/// A registry restore point: an environment's content kept (what it holds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    pub name: String,
    pub groups: i64,
    pub entities: i64,
    pub links: i64,
    pub projects: i64,
    pub config_items: i64,
    /// Microseconds.
    pub expire_time: i64,
}

/// A registry restore done: what it put back, and what the environment held just before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    pub restore_point: RestorePoint,
    pub replaced_groups: i64,
    pub replaced_entities: i64,
    pub replaced_projects: i64,
}

/// What the registry's environment copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyResult {
    pub groups: i64,
    pub entities: i64,
    pub links: i64,
    pub projects: i64,
    pub config_items: i64,
    pub replaced_groups: i64,
    pub replaced_entities: i64,
    pub replaced_projects: i64,
    /// With a profile: per kind, and the groups and projects kept or left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_kind: Vec<super::KindCounts>,
    #[serde(default)]
    pub preserved_groups: i64,
    #[serde(default)]
    pub preserved_projects: i64,
    #[serde(default)]
    pub excluded_projects: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: String,
    pub integration_count: i64,
    pub mapping_count: i64,
    pub sync_job_count: i64,
    pub checksum: String,
    /// The names of what it holds (a full read; empty in a create's reply).
    pub integrations: Vec<String>,
    pub mappings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialState {
    Unspecified,
    Active,
    Suspended,
    None,
}

/// A resource's state before or after a change (integration-control's ResourceState).
/// Written as an array (see [`ResourceChange`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourceState {
    pub exists: bool,
    pub active: bool,
    pub credential_state: CredentialState,
    pub sync_job_state: JobState,
    pub paused_by: String,
    pub fenced: bool,
    pub bound_environment: String,
    pub fence_holder: String,
}

/// One resource a bulk call changed. A change set holds thousands and is journaled whole,
/// so a change and its states are written as arrays, not objects with their field names
/// (less than half the bytes to write, compress and parse again); reading takes either
/// form, so journals written before still read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourceChange {
    pub resource: String,
    /// integration-control's ResourceType value, kept as it came.
    pub resource_type: i32,
    pub before: Option<ResourceState>,
    pub after: Option<ResourceState>,
}

impl Serialize for ResourceState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ResourceState { exists, active, credential_state, sync_job_state, paused_by, fenced, bound_environment, fence_holder } = self;
        (exists, active, credential_state, sync_job_state, paused_by, fenced, bound_environment, fence_holder).serialize(s)
    }
}

impl Serialize for ResourceChange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ResourceChange { resource, resource_type, before, after } = self;
        (resource, resource_type, before, after).serialize(s)
    }
}

/// Exactly what one bulk call of integration-control changed, so it can be reported and
/// undone exactly (it goes back as it came).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub environment: String,
    pub changes: Vec<ResourceChange>,
    pub skipped: Vec<super::LeftAlone>,
    /// Microseconds; 0 when the reply had none.
    pub change_time: i64,
}

/// A merge-engine job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeJobState {
    Unspecified,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl MergeJobState {
    pub fn ended(self) -> bool {
        matches!(self, MergeJobState::Succeeded | MergeJobState::Failed | MergeJobState::Cancelled)
    }
}

/// What a merge job did (merge-engine's JobResult).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeJob {
    pub name: String,
    pub state: MergeJobState,
    pub result: JobResult,
    pub error: Option<super::ErrorInfo>,
}

/// A merge plan's counts (merge-engine's MergePlanCounts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCounts {
    pub creates: i64,
    pub links: i64,
    pub skips: i64,
    pub conflicts: i64,
    pub missing_dependencies: i64,
    pub source_entries: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergePlanInfo {
    pub name: String,
    pub source: String,
    pub recipient: String,
    pub stale: bool,
    pub counts: Option<PlanCounts>,
}

/// A source group and the recipient group it merges into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPair {
    pub source: String,
    pub recipient: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMergeSummary {
    pub pair: GroupPair,
    pub merge_plan: String,
    pub counts: Option<PlanCounts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingReference {
    /// EntityKind value and key.
    pub kind: i32,
    pub key: String,
    pub config_item: String,
    pub supplied_by: Option<GroupPair>,
}

/// A project merge's preview (merge-engine's ProjectMergePlan).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectMergePreview {
    pub source: String,
    pub recipient: String,
    pub source_revision: i64,
    pub recipient_revision: i64,
    pub group_pairs: Vec<GroupPair>,
    pub group_merges: Vec<GroupMergeSummary>,
    pub config_items_create: i64,
    pub config_items_replace: i64,
    pub config_items_unchanged: i64,
    pub missing_references: Vec<MissingReference>,
    pub missing_reference_count: i64,
}

/// An entity kind's name (the registry's EntityKind numbers).
pub fn kind_label(kind: i32) -> String {
    const KINDS: [&str; 9] = ["DATA_SOURCE", "LOOKUP", "CUSTOM_ACTION", "ROLE", "THEME", "PORTAL", "SERVICE", "TABLE", "MAP"];
    usize::try_from(kind)
        .ok()
        .and_then(|k| k.checked_sub(1))
        .and_then(|k| KINDS.get(k))
        .map_or_else(|| format!("kind {kind}"), |k| (*k).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> ResourceChange {
        let state = |active| ResourceState {
            exists: true,
            active,
            credential_state: CredentialState::Active,
            sync_job_state: JobState::Running,
            paused_by: String::new(),
            fenced: false,
            bound_environment: "environments/sandbox".into(),
            fence_holder: String::new(),
        };
        ResourceChange {
            resource: "environments/sandbox/integrations/a/mappings/b".into(),
            resource_type: 2,
            before: Some(state(true)),
            after: Some(state(false)),
        }
    }

    #[test]
    fn a_change_is_written_as_arrays_and_reads_back() {
        let json = serde_json::to_string(&change()).unwrap();
        assert_eq!(
            json,
            r#"["environments/sandbox/integrations/a/mappings/b",2,[true,true,"Active","Running","",false,"environments/sandbox",""],[true,false,"Active","Running","",false,"environments/sandbox",""]]"#
        );
        assert_eq!(serde_json::from_str::<ResourceChange>(&json).unwrap(), change());
        let created = ResourceChange { before: None, ..change() };
        assert_eq!(serde_json::from_str::<ResourceChange>(&serde_json::to_string(&created).unwrap()).unwrap(), created);
    }

    #[test]
    fn a_change_journaled_with_field_names_still_reads() {
        let state = |active: bool| {
            format!(
                r#"{{"exists":true,"active":{active},"credential_state":"Active","sync_job_state":"Running","paused_by":"","fenced":false,"bound_environment":"environments/sandbox","fence_holder":""}}"#
            )
        };
        let named = format!(
            r#"{{"resource":"environments/sandbox/integrations/a/mappings/b","resource_type":2,"before":{},"after":{}}}"#,
            state(true),
            state(false)
        );
        assert_eq!(serde_json::from_str::<ResourceChange>(&named).unwrap(), change());
    }
}
