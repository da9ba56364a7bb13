//! What the user types, turned into proto values: kinds, sharing modes, `KIND:KEY`
//! references, JSON documents, resource names and request ids.

use std::path::Path;

use anyhow::Context;
use ferry_proto::common::v1::{EntityKind, EntityRef, EnvironmentTier, SharingMode};

/// The kind names users may type, for help and error messages.
pub const KIND_NAMES: &str = "data-source, lookup, custom-action, role, theme, portal, service, table, map";

/// An entity kind, in any case, with `-` or `_`: `lookup`, `data-source`, `DATA_SOURCE`,
/// `ENTITY_KIND_TABLE`.
pub fn kind(s: &str) -> Result<EntityKind, String> {
    let norm = s.trim().to_ascii_uppercase().replace('-', "_");
    let norm = norm.strip_prefix("ENTITY_KIND_").unwrap_or(&norm);
    match EntityKind::from_str_name(&format!("ENTITY_KIND_{norm}")) {
        Some(EntityKind::Unspecified) | None => Err(format!("unknown kind {s:?} (one of {KIND_NAMES})")),
        Some(k) => Ok(k),
    }
}

/// A sharing mode in any case: `shared`, `duplicated`.
pub fn sharing(s: &str) -> Result<SharingMode, String> {
    let norm = s.trim().to_ascii_uppercase();
    let norm = norm.strip_prefix("SHARING_MODE_").unwrap_or(&norm);
    match SharingMode::from_str_name(&format!("SHARING_MODE_{norm}")) {
        Some(SharingMode::Unspecified) | None => Err(format!("unknown sharing mode {s:?} (shared or duplicated)")),
        Some(m) => Ok(m),
    }
}

/// A reference `KIND:KEY`; the key is everything after the first `:`.
pub fn entity_ref(s: &str) -> Result<EntityRef, String> {
    let (k, key) = s.split_once(':').ok_or_else(|| format!("{s:?} is not KIND:KEY (e.g. lookup:country-codes)"))?;
    if key.is_empty() {
        return Err(format!("{s:?} has an empty key"));
    }
    Ok(EntityRef { kind: kind(k)? as i32, key: key.to_owned() })
}

/// The short upper-case label of a kind number (`LOOKUP`), or the number when unknown.
pub fn kind_label(n: i32) -> String {
    EntityKind::try_from(n).map_or_else(|_| n.to_string(), |k| k.as_str_name().trim_start_matches("ENTITY_KIND_").to_owned())
}

/// `SHARED` / `DUPLICATED`, or the number when unknown.
pub fn sharing_label(n: i32) -> String {
    SharingMode::try_from(n).map_or_else(|_| n.to_string(), |m| m.as_str_name().trim_start_matches("SHARING_MODE_").to_owned())
}

/// `PRODUCTION` / `NON_PRODUCTION`, or the number when unknown.
pub fn tier_label(n: i32) -> String {
    EnvironmentTier::try_from(n).map_or_else(|_| n.to_string(), |t| t.as_str_name().trim_start_matches("ENVIRONMENT_TIER_").to_owned())
}

/// `LOOKUP:key` for a reference.
pub fn ref_label(r: &EntityRef) -> String {
    format!("{}:{}", kind_label(r.kind), r.key)
}

/// Checks that `text` is one JSON document and returns it compact.
pub fn json_document(text: &str, what: &str) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_str(text).with_context(|| format!("{what} is not valid JSON"))?;
    Ok(value.to_string())
}

/// A JSON document given inline or in a file (`-` reads standard input).
pub fn json_from(inline: Option<&str>, file: Option<&Path>, what: &str) -> anyhow::Result<Option<String>> {
    let text = match (inline, file) {
        (Some(text), _) => text.to_owned(),
        (None, Some(path)) if path == Path::new("-") => std::io::read_to_string(std::io::stdin()).context("reading standard input")?,
        (None, Some(path)) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        (None, None) => return Ok(None),
    };
    json_document(&text, what).map(Some)
}

/// A JSON string for display: the parsed value, or the raw text when it does not parse.
pub fn json_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// A fresh request id shaped like a random (version 4) UUID.
pub fn request_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The last segment of a resource name: its id.
pub fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Resource names, built from the ids users type.
pub mod names {
    /// `environments/{env}`
    pub fn env(env: &str) -> String {
        format!("environments/{env}")
    }
    /// `environments/{env}/groups/{group}`
    pub fn group(env: &str, group: &str) -> String {
        format!("environments/{env}/groups/{group}")
    }
    /// `environments/{env}/entities/{id}`; a full name is taken as it is.
    pub fn entity(env: &str, id: &str) -> String {
        if id.starts_with("environments/") { id.to_owned() } else { format!("environments/{env}/entities/{id}") }
    }
    /// `environments/{env}/projects/{project}`
    pub fn project(env: &str, project: &str) -> String {
        format!("environments/{env}/projects/{project}")
    }
    /// `mergePlans/{plan}`; a full name is taken as it is.
    pub fn plan(plan: &str) -> String {
        if plan.starts_with("mergePlans/") { plan.to_owned() } else { format!("mergePlans/{plan}") }
    }
    /// `jobs/{job}` (a merge-engine job); a full name is taken as it is.
    pub fn job(job: &str) -> String {
        if job.starts_with("jobs/") { job.to_owned() } else { format!("jobs/{job}") }
    }
    /// `refreshRuns/{run}`; a full name is taken as it is.
    pub fn refresh_schedule(schedule: &str) -> String {
        if schedule.starts_with("refreshSchedules/") { schedule.to_owned() } else { format!("refreshSchedules/{schedule}") }
    }
    /// `refreshRuns/{run}`; a full name is taken as it is.
    pub fn refresh_run(run: &str) -> String {
        if run.starts_with("refreshRuns/") { run.to_owned() } else { format!("refreshRuns/{run}") }
    }
    /// `promotionRuns/{run}`; a full name is taken as it is.
    pub fn promotion_run(run: &str) -> String {
        if run.starts_with("promotionRuns/") { run.to_owned() } else { format!("promotionRuns/{run}") }
    }
    /// `rollbackRuns/{run}`; a full name is taken as it is.
    pub fn rollback_run(run: &str) -> String {
        if run.starts_with("rollbackRuns/") { run.to_owned() } else { format!("rollbackRuns/{run}") }
    }
    /// `environments/{env}/integrations/{integration}`
    pub fn integration(env: &str, integration: &str) -> String {
        format!("environments/{env}/integrations/{integration}")
    }
    /// `environments/{env}/integrations/{integration}/mappings/{mapping}`
    pub fn mapping(env: &str, integration: &str, mapping: &str) -> String {
        format!("environments/{env}/integrations/{integration}/mappings/{mapping}")
    }
    /// A mapping given as a full name or as `ENV/INTEGRATION/MAPPING`.
    pub fn mapping_path(s: &str) -> Result<String, String> {
        if s.starts_with("environments/") {
            return Ok(s.to_owned());
        }
        match s.split('/').collect::<Vec<_>>()[..] {
            [env, integration, id] if !env.is_empty() && !integration.is_empty() && !id.is_empty() => Ok(mapping(env, integration, id)),
            _ => Err(format!("{s:?} is not ENV/INTEGRATION/MAPPING nor environments/…/integrations/…/mappings/…")),
        }
    }
    /// `environments/{env}/jobs/{job}` (an integration-control sync job); a full name is
    /// taken as it is.
    pub fn sync_job(env: &str, job: &str) -> String {
        if job.starts_with("environments/") { job.to_owned() } else { format!("environments/{env}/jobs/{job}") }
    }
    /// `environments/{env}/snapshots/{snapshot}`
    pub fn snapshot(env: &str, snapshot: &str) -> String {
        format!("environments/{env}/snapshots/{snapshot}")
    }
    /// `environments/{env}/projects/{project}/configItems/{item}`
    pub fn config_item(env: &str, project: &str, item: &str) -> String {
        format!("environments/{env}/projects/{project}/configItems/{item}")
    }
}

/// A refresh profile file (JSON): the fields of `ferry.common.v1.CopyProfile`, kinds and
/// actions by name, a FIXED rule's `value` as any JSON value.
pub fn profile(text: &str) -> Result<ferry_proto::common::v1::CopyProfile, String> {
    use ferry_proto::common::v1 as pc;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Selector {
        kind: String,
        #[serde(default)]
        key_pattern: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        kind: String,
        pointer: String,
        action: String,
        #[serde(default)]
        value: Option<serde_json::Value>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct File {
        preserve_groups: Vec<String>,
        preserve_projects: Vec<String>,
        preserve_entities: Vec<Selector>,
        exclude_groups: Vec<String>,
        exclude_kinds: Vec<String>,
        exclude_entities: Vec<Selector>,
        masking: Vec<Rule>,
    }
    let f: File = serde_json::from_str(text).map_err(|e| format!("not a refresh profile: {e}"))?;
    let selectors = |s: Vec<Selector>| -> Result<Vec<pc::EntitySelector>, String> {
        s.into_iter().map(|s| Ok(pc::EntitySelector { kind: kind(&s.kind)? as i32, key_pattern: s.key_pattern })).collect()
    };
    let action = |a: &str| -> Result<pc::MaskAction, String> {
        match pc::MaskAction::from_str_name(&format!("MASK_ACTION_{}", a.trim().to_ascii_uppercase())) {
            Some(pc::MaskAction::Unspecified) | None => Err(format!("unknown masking action {a:?} (remove, fixed, pseudonym or fake)")),
            Some(a) => Ok(a),
        }
    };
    Ok(pc::CopyProfile {
        preserve_groups: f.preserve_groups,
        preserve_projects: f.preserve_projects,
        preserve_entities: selectors(f.preserve_entities)?,
        exclude_groups: f.exclude_groups,
        exclude_kinds: f.exclude_kinds.iter().map(|k| kind(k).map(|k| k as i32)).collect::<Result<_, _>>()?,
        exclude_entities: selectors(f.exclude_entities)?,
        masking: f
            .masking
            .into_iter()
            .map(|r| {
                Ok(pc::MaskingRule {
                    kind: kind(&r.kind)? as i32,
                    pointer: r.pointer,
                    action: action(&r.action)? as i32,
                    value_json: r.value.map(|v| v.to_string()).unwrap_or_default(),
                })
            })
            .collect::<Result<_, String>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_in_any_spelling() {
        for s in ["data-source", "DATA_SOURCE", "Data_Source", "entity_kind_data_source"] {
            assert_eq!(kind(s), Ok(EntityKind::DataSource), "{s}");
        }
        assert_eq!(kind("lookup"), Ok(EntityKind::Lookup));
        assert!(kind("unspecified").is_err());
        assert!(kind("lookups").is_err());
        assert_eq!(kind_label(EntityKind::CustomAction as i32), "CUSTOM_ACTION");
        assert_eq!(kind_label(42), "42");
    }

    #[test]
    fn references_split_at_the_first_colon() {
        let r = entity_ref("lookup:a:b").unwrap();
        assert_eq!((r.kind, r.key.as_str()), (EntityKind::Lookup as i32, "a:b"));
        assert!(entity_ref("lookup").is_err());
        assert!(entity_ref("lookup:").is_err());
        assert!(entity_ref("nope:x").is_err());
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, request_id());
    }

    #[test]
    fn merge_and_mapping_names() {
        assert_eq!(names::plan("p1"), "mergePlans/p1");
        assert_eq!(names::job("jobs/7"), "jobs/7");
        assert_eq!(names::mapping_path("dev/rally/stories").as_deref(), Ok("environments/dev/integrations/rally/mappings/stories"));
        assert!(names::mapping_path("dev/rally").is_err());
        assert!(names::mapping_path("dev//x").is_err());
    }

    #[test]
    fn entity_names_accept_ids_and_full_names() {
        assert_eq!(names::entity("dev", "7"), "environments/dev/entities/7");
        assert_eq!(names::entity("dev", "environments/uat/entities/7"), "environments/uat/entities/7");
    }

    #[test]
    fn profile_files_name_kinds_and_actions() {
        let p = profile(
            r#"{"preserve_groups":["sandbox-*"],"exclude_kinds":["map"],
                "preserve_entities":[{"kind":"lookup","key_pattern":"local-*"}],
                "masking":[{"kind":"data-source","pointer":"/contact/email","action":"fake"},
                           {"kind":"table","pointer":"/owner","action":"FIXED","value":"redacted"}]}"#,
        )
        .expect("profile");
        assert_eq!(p.preserve_groups, vec!["sandbox-*"]);
        assert_eq!(p.exclude_kinds, vec![EntityKind::Map as i32]);
        assert_eq!(p.preserve_entities[0].kind, EntityKind::Lookup as i32);
        assert_eq!(p.masking[0].action, ferry_proto::common::v1::MaskAction::Fake as i32);
        assert_eq!(p.masking[1].value_json, r#""redacted""#);
        assert!(profile(r#"{"preserve":[]}"#).unwrap_err().contains("unknown field"));
        assert!(profile(r#"{"masking":[{"kind":"table","pointer":"/a","action":"scramble"}]}"#).unwrap_err().contains("scramble"));
    }
}
