//! Proto ⇄ domain. Parsing collects every field violation before answering.

use ferry_kit::status::Violations;
use ferry_proto::common::v1 as pc;
use ferry_proto::registry::v1 as pb;

use crate::domain::{self as d, ConfigItemName, EntityKey, EntityRef, Json, Kind, MAX_REFERENCES, NewEntity, Sharing, rules};

pub use ferry_kit::request::{done, mask_paths, next_token, page_size, page_token, request_key};

pub fn kind(n: i32) -> Result<Kind, String> {
    Kind::from_number(n)
}

pub fn kinds(v: &mut Violations, field: &str, ns: &[i32]) -> Option<Vec<Kind>> {
    let mut out = Vec::with_capacity(ns.len());
    for (i, n) in ns.iter().enumerate() {
        out.push(v.check(&format!("{field}[{i}]"), kind(*n))?);
    }
    out.sort();
    out.dedup();
    Some(out)
}

pub fn refs(v: &mut Violations, field: &str, refs: &[pc::EntityRef], max: usize) -> Option<Vec<EntityRef>> {
    if refs.len() > max {
        v.add(field, format!("at most {max} references"));
        return None;
    }
    let mut out = Vec::with_capacity(refs.len());
    let mut ok = true;
    for (i, r) in refs.iter().enumerate() {
        let k = v.check(&format!("{field}[{i}].kind"), kind(r.kind));
        let key = v.check(&format!("{field}[{i}].key"), EntityKey::parse(&r.key));
        match (k, key) {
            (Some(kind), Some(key)) => out.push(EntityRef { kind, key }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

pub fn sharing_of(n: i32) -> Result<Option<Sharing>, String> {
    match n {
        0 => Ok(None),
        n => Sharing::from_number(n).map(Some).ok_or_else(|| format!("unknown sharing mode {n}")),
    }
}

/// A new entity from a create or import request (`field` prefixes violations).
pub fn new_entity(v: &mut Violations, field: &str, e: &pb::Entity) -> Option<NewEntity> {
    let k = v.check(&format!("{field}.kind"), kind(e.kind));
    let key = v.check(&format!("{field}.key"), EntityKey::parse(&e.key));
    let requested = v.check(&format!("{field}.sharing"), sharing_of(e.sharing));
    let payload = v.check(&format!("{field}.payload_json"), Json::parse(&e.payload_json));
    let references = refs(v, &format!("{field}.references"), &e.references, MAX_REFERENCES);
    let sharing = match (k, requested) {
        (Some(k), Some(req)) => v.check(&format!("{field}.sharing"), rules::sharing_for(k, req)),
        _ => None,
    };
    Some(NewEntity { kind: k?, key: key?, sharing: sharing?, payload: payload?, references: references? })
}

pub fn ts(micros: i64) -> Option<prost_types::Timestamp> {
    Some(ferry_kit::db::timestamp(micros))
}

pub fn entity_ref(r: &EntityRef) -> pc::EntityRef {
    pc::EntityRef { kind: r.kind.number(), key: r.key.as_str().to_owned() }
}

pub fn environment(e: d::Environment) -> pb::Environment {
    pb::Environment { name: e.name.to_string(), tier: e.tier.number(), display_name: e.display_name, create_time: ts(e.created_at) }
}

pub fn group(g: d::Group) -> pb::Group {
    pb::Group {
        name: g.name.to_string(),
        display_name: g.display_name,
        revision: g.revision,
        entity_count: g.entity_count,
        create_time: ts(g.created_at),
    }
}

pub fn entity(e: d::Entity) -> pb::Entity {
    pb::Entity {
        name: e.name.to_string(),
        kind: e.kind.number(),
        key: e.key.as_str().to_owned(),
        sharing: e.sharing.number(),
        payload_json: e.payload.into_string(),
        references: e.references.iter().map(entity_ref).collect(),
        groups: e.groups.iter().map(ToString::to_string).collect(),
        content_hash: e.content_hash,
        create_time: ts(e.created_at),
        update_time: ts(e.updated_at),
    }
}

pub fn manifest_entry(m: d::ManifestEntry) -> pb::ManifestEntry {
    pb::ManifestEntry {
        kind: m.kind.number(),
        key: m.key.as_str().to_owned(),
        content_hash: m.content_hash,
        sharing: m.sharing.number(),
        entity_id: m.entity_id,
        references: m.references.iter().map(entity_ref).collect(),
    }
}

pub fn project(p: d::Project) -> pb::Project {
    pb::Project {
        name: p.name.to_string(),
        display_name: p.display_name,
        groups: p.groups.iter().map(ToString::to_string).collect(),
        revision: p.revision,
        create_time: ts(p.created_at),
    }
}

pub fn config_item(c: d::ConfigItem) -> pb::ConfigItem {
    pb::ConfigItem {
        name: c.name.to_string(),
        value_json: c.value.as_str().to_owned(),
        references: c.references.iter().map(entity_ref).collect(),
        update_time: ts(c.updated_at),
    }
}

/// A config item from a request; `name` is the item's full name.
pub fn parse_config_item(v: &mut Violations, field: &str, name: Option<ConfigItemName>, c: &pb::ConfigItem) -> Option<d::ConfigItem> {
    let value = v.check(&format!("{field}.value_json"), Json::parse(&c.value_json));
    let references = refs(v, &format!("{field}.references"), &c.references, MAX_REFERENCES);
    Some(d::ConfigItem { name: name?, value: value?, references: references?, updated_at: 0 })
}

pub fn merge_op(v: &mut Violations, i: usize, op: &pb::MergeOperation) -> Option<d::MergeOp> {
    use pb::merge_operation::Op;
    let positive = |v: &mut Violations, id: i64| {
        if id <= 0 {
            v.add(format!("operations[{i}]"), "entity ids are positive");
            None
        } else {
            Some(id)
        }
    };
    match &op.op {
        Some(Op::CopyEntityId(id)) => positive(v, *id).map(d::MergeOp::Copy),
        Some(Op::LinkEntityId(id)) => positive(v, *id).map(d::MergeOp::Link),
        Some(Op::RemoveEntityId(id)) => positive(v, *id).map(d::MergeOp::Remove),
        Some(Op::UnlinkEntityId(id)) => positive(v, *id).map(d::MergeOp::Unlink),
        Some(Op::Overwrite(o)) => {
            let s = positive(v, o.source_entity_id);
            let t = positive(v, o.target_entity_id);
            Some(d::MergeOp::Overwrite { source: s?, target: t? })
        }
        Some(Op::Restore(r)) => {
            let entity = positive(v, r.entity_id);
            if r.overwritten_hash.is_empty() {
                v.add(format!("operations[{i}].restore.overwritten_hash"), "the content hash the overwrite gave the entity is required");
                return None;
            }
            Some(d::MergeOp::Restore { entity: entity?, overwritten: r.overwritten_hash.clone() })
        }
        None => {
            v.add(format!("operations[{i}]"), "an operation is required");
            None
        }
    }
}

pub fn outcome(o: d::Outcome) -> i32 {
    match o {
        d::Outcome::Applied => pb::OperationOutcome::Applied as i32,
        d::Outcome::AlreadyPresent => pb::OperationOutcome::AlreadyPresent as i32,
        d::Outcome::Conflict => pb::OperationOutcome::Conflict as i32,
    }
}

/// A Group read mask (AIP-157): which fields a Get returns.
#[derive(Debug, Clone, Default)]
pub struct GroupMask {
    /// Empty: every field.
    paths: Vec<String>,
}

const GROUP_FIELDS: [&str; 5] = ["name", "display_name", "revision", "entity_count", "create_time"];

pub fn group_read_mask(v: &mut Violations, mask: &Option<prost_types::FieldMask>) -> Option<GroupMask> {
    let paths = mask_paths(mask);
    let mut ok = true;
    for (i, p) in paths.iter().enumerate() {
        if !GROUP_FIELDS.contains(&p.as_str()) {
            v.add(format!("read_mask.paths[{i}]"), format!("unknown Group field {p:?}; fields: {}", GROUP_FIELDS.join(", ")));
            ok = false;
        }
    }
    ok.then_some(GroupMask { paths })
}

impl GroupMask {
    pub fn wants(&self, field: &str) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| p == field)
    }

    /// Clears the fields the mask leaves out.
    pub fn apply(&self, mut g: pb::Group) -> pb::Group {
        if !self.wants("name") {
            g.name.clear();
        }
        if !self.wants("display_name") {
            g.display_name.clear();
        }
        if !self.wants("revision") {
            g.revision = 0;
        }
        if !self.wants("entity_count") {
            g.entity_count = 0;
        }
        if !self.wants("create_time") {
            g.create_time = None;
        }
        g
    }
}

/// Most entries in one list of a copy profile.
const MAX_PROFILE_ENTRIES: usize = 100;

fn patterns(v: &mut Violations, field: &str, given: &[String]) -> Option<Vec<d::profile::Pattern>> {
    if given.len() > MAX_PROFILE_ENTRIES {
        v.add(field, format!("at most {MAX_PROFILE_ENTRIES} patterns"));
        return None;
    }
    let out: Vec<Option<d::profile::Pattern>> =
        given.iter().enumerate().map(|(i, p)| v.check(&format!("{field}[{i}]"), d::profile::Pattern::parse(p))).collect();
    out.into_iter().collect()
}

fn selectors(v: &mut Violations, field: &str, given: &[pc::EntitySelector]) -> Option<Vec<d::profile::Selector>> {
    if given.len() > MAX_PROFILE_ENTRIES {
        v.add(field, format!("at most {MAX_PROFILE_ENTRIES} selectors"));
        return None;
    }
    let mut out = Vec::with_capacity(given.len());
    let mut ok = true;
    for (i, s) in given.iter().enumerate() {
        let kind = v.check(&format!("{field}[{i}].kind"), kind(s.kind));
        let key = if s.key_pattern.is_empty() {
            Some(d::profile::Pattern::any())
        } else {
            v.check(&format!("{field}[{i}].key_pattern"), d::profile::Pattern::parse(&s.key_pattern))
        };
        match (kind, key) {
            (Some(kind), Some(key)) => out.push(d::profile::Selector { kind, key }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn masking(v: &mut Violations, field: &str, given: &[pc::MaskingRule]) -> Option<Vec<d::profile::MaskRule>> {
    use d::profile::{Mask, MaskRule};
    if given.len() > MAX_PROFILE_ENTRIES {
        v.add(field, format!("at most {MAX_PROFILE_ENTRIES} masking rules"));
        return None;
    }
    let mut out = Vec::with_capacity(given.len());
    let mut ok = true;
    for (i, r) in given.iter().enumerate() {
        let at = |f: &str| format!("{field}[{i}].{f}");
        let kind = v.check(&at("kind"), kind(r.kind));
        let path = v.check(&at("pointer"), MaskRule::parse_pointer(&r.pointer));
        let fixed = |v: &mut Violations| {
            v.check(&at("value_json"), serde_json::from_str::<serde_json::Value>(&r.value_json).map_err(|e| format!("is not JSON: {e}")))
        };
        let mask = match pc::MaskAction::try_from(r.action) {
            Ok(pc::MaskAction::Remove) => Some(Mask::Remove),
            Ok(pc::MaskAction::Fixed) => fixed(v).map(Mask::Fixed),
            Ok(pc::MaskAction::Pseudonym) => Some(Mask::Pseudonym),
            Ok(pc::MaskAction::Fake) => Some(Mask::Fake),
            _ => {
                v.add(at("action"), "must be REMOVE, FIXED, PSEUDONYM or FAKE");
                None
            }
        };
        if r.action != pc::MaskAction::Fixed as i32 && !r.value_json.is_empty() {
            v.add(at("value_json"), "is only for FIXED");
        }
        match (kind, path, mask) {
            (Some(kind), Some(path), Some(mask)) => out.push(MaskRule { kind, path, mask }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// A copy profile; unset is the empty one.
pub fn copy_profile(v: &mut Violations, field: &str, given: Option<&pc::CopyProfile>) -> Option<d::profile::CopyProfile> {
    let Some(p) = given else { return Some(d::profile::CopyProfile::default()) };
    let at = |f: &str| format!("{field}.{f}");
    let preserve_groups = patterns(v, &at("preserve_groups"), &p.preserve_groups);
    let preserve_projects = patterns(v, &at("preserve_projects"), &p.preserve_projects);
    let preserve_entities = selectors(v, &at("preserve_entities"), &p.preserve_entities);
    let exclude_groups = patterns(v, &at("exclude_groups"), &p.exclude_groups);
    let exclude_kinds = kinds(v, &at("exclude_kinds"), &p.exclude_kinds);
    let exclude_entities = selectors(v, &at("exclude_entities"), &p.exclude_entities);
    let masking = masking(v, &at("masking"), &p.masking);
    Some(d::profile::CopyProfile {
        preserve_groups: preserve_groups?,
        preserve_projects: preserve_projects?,
        preserve_entities: preserve_entities?,
        exclude_groups: exclude_groups?,
        exclude_kinds: exclude_kinds?,
        exclude_entities: exclude_entities?,
        masking: masking?,
    })
}

pub fn copied_pb(c: d::Copied) -> pb::CopyEnvironmentResponse {
    let (n, p) = (c.counts, c.profile);
    pb::CopyEnvironmentResponse {
        groups: n.groups,
        entities: n.entities,
        links: n.links,
        projects: n.projects,
        config_items: n.config_items,
        replaced_groups: n.replaced_groups,
        replaced_entities: n.replaced_entities,
        replaced_projects: n.replaced_projects,
        by_kind: p
            .by_kind
            .iter()
            .map(|k| pc::KindCopyCounts { kind: k.kind, copied: k.copied, masked: k.masked, excluded: k.excluded, preserved: k.preserved })
            .collect(),
        preserved_groups: p.preserved_groups,
        preserved_projects: p.preserved_projects,
        excluded_projects: p.excluded_projects,
    }
}
