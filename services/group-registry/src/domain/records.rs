//! What the registry holds and answers with, as plain domain data. These are also what a
//! `request_id` replay returns, so they serialise.

use serde::{Deserialize, Serialize};

use super::{
    ConfigItemName, EntityKey, EntityName, EntityRef, EnvName, GroupName, Json, Kind, ProjectName, RestorePointName, Sharing, Tier,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub name: EnvName,
    pub tier: Tier,
    pub display_name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: GroupName,
    pub display_name: String,
    pub revision: i64,
    pub entity_count: i64,
    pub created_at: i64,
}

/// An entity as created or imported, before it has an id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEntity {
    pub kind: Kind,
    pub key: EntityKey,
    pub sharing: Sharing,
    pub payload: Json,
    pub references: Vec<EntityRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub name: EntityName,
    pub kind: Kind,
    pub key: EntityKey,
    pub sharing: Sharing,
    pub payload: Json,
    pub references: Vec<EntityRef>,
    pub groups: Vec<GroupName>,
    pub content_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub name: ProjectName,
    pub display_name: String,
    pub groups: Vec<GroupName>,
    pub revision: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigItem {
    pub name: ConfigItemName,
    pub value: Json,
    pub references: Vec<EntityRef>,
    pub updated_at: i64,
}

/// One line of a group's key manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub kind: Kind,
    pub key: EntityKey,
    pub content_hash: String,
    pub sharing: Sharing,
    pub entity_id: i64,
    pub references: Vec<EntityRef>,
}

/// One merge operation against a recipient group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeOp {
    /// New duplicated instance in the recipient, copied from this source entity.
    Copy(i64),
    /// Link this shared entity to the recipient.
    Link(i64),
    /// Overwrite the target's payload and references with the source's.
    Overwrite { source: i64, target: i64 },
    /// Delete this duplicated entity of the recipient.
    Remove(i64),
    /// Unlink this shared entity from the recipient.
    Unlink(i64),
    /// Put back what the overwrite that gave `entity` the content hash `overwritten` replaced.
    Restore { entity: i64, overwritten: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied,
    AlreadyPresent,
    Conflict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResult {
    pub outcome: Outcome,
    pub entity_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MergeBatch {
    pub results: Vec<OpResult>,
    pub revision: i64,
}

impl MergeBatch {
    pub fn count(&self, outcome: Outcome) -> i64 {
        self.results.iter().filter(|r| r.outcome == outcome).count() as i64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CopyCounts {
    pub groups: i64,
    pub entities: i64,
    pub links: i64,
    pub projects: i64,
    pub config_items: i64,
    pub replaced_groups: i64,
    pub replaced_entities: i64,
    pub replaced_projects: i64,
}

/// What a copy did to entities of one kind (see `domain::profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KindCounts {
    pub kind: i32,
    pub copied: i64,
    pub masked: i64,
    pub excluded: i64,
    pub preserved: i64,
}

/// What a copy's profile did: per kind, and the groups and projects it kept or left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProfileCounts {
    pub by_kind: Vec<KindCounts>,
    pub preserved_groups: i64,
    pub preserved_projects: i64,
    pub excluded_projects: i64,
}

/// A copy's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Copied {
    pub counts: CopyCounts,
    pub profile: ProfileCounts,
}

/// What an environment's content holds (a restore point's counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContentCounts {
    pub groups: i64,
    pub entities: i64,
    pub links: i64,
    pub projects: i64,
    pub config_items: i64,
}

impl From<CopyCounts> for ContentCounts {
    fn from(c: CopyCounts) -> Self {
        Self { groups: c.groups, entities: c.entities, links: c.links, projects: c.projects, config_items: c.config_items }
    }
}

/// An environment's whole content kept at one moment (see `store::restore_points`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    pub name: RestorePointName,
    pub run: String,
    pub integration_snapshot: String,
    pub description: String,
    pub counts: ContentCounts,
    pub size_bytes: i64,
    pub created_at: i64,
    pub expire_at: i64,
    pub restored_at: Option<i64>,
}

/// What a caller gives of a new restore point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRestorePoint {
    pub name: RestorePointName,
    pub run: String,
    pub integration_snapshot: String,
    pub description: String,
}

/// A restore done: the restore point as it is now, and what the environment held before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    pub restore_point: RestorePoint,
    pub replaced: CopyCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub config_item: ConfigItemName,
    pub reference: EntityRef,
    pub entity: Option<EntityName>,
    pub group: Option<GroupName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UpsertCounts {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub revision: i64,
}

/// One page of a list and the cursor of the next, if any.
pub use ferry_kit::paging::Page;
