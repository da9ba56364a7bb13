//! Registry restore points: an environment's whole content kept, as a table row, fields
//! and JSON.

use ferry_proto::registry::v1 as pb;
use serde_json::{Value, json};

use super::{when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

fn counts(p: &pb::RestorePoint) -> pb::RestorePointCounts {
    p.counts.unwrap_or_default()
}

fn holds(c: &pb::RestorePointCounts) -> String {
    format!(
        "{} group(s), {} entities, {} link(s), {} project(s), {} config item(s)",
        c.groups, c.entities, c.links, c.projects, c.config_items
    )
}

impl Resource for pb::RestorePoint {
    const HEADERS: &'static [&'static str] = &["ID", "GROUPS", "ENTITIES", "PROJECTS", "BYTES", "CREATED", "EXPIRES", "RESTORED", "RUN"];
    fn row(&self) -> Vec<String> {
        let c = counts(self);
        vec![
            id_of(&self.name).to_owned(),
            c.groups.to_string(),
            c.entities.to_string(),
            c.projects.to_string(),
            self.size_bytes.to_string(),
            when(self.create_time.as_ref()),
            when(self.expire_time.as_ref()),
            when(self.restore_time.as_ref()),
            self.run.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("holds", holds(&counts(self))),
            ("bytes", self.size_bytes.to_string()),
            ("run", self.run.clone()),
            ("integration snapshot", self.integration_snapshot.clone()),
            ("description", self.description.clone()),
            ("created", when(self.create_time.as_ref())),
            ("expires", when(self.expire_time.as_ref())),
            ("restored", when(self.restore_time.as_ref())),
        ]
    }
    fn json(&self) -> Value {
        let c = counts(self);
        json!({
            "name": self.name,
            "run": self.run,
            "integration_snapshot": self.integration_snapshot,
            "description": self.description,
            "counts": {
                "groups": c.groups, "entities": c.entities, "links": c.links,
                "projects": c.projects, "config_items": c.config_items,
            },
            "size_bytes": self.size_bytes,
            "create_time": when_json(self.create_time.as_ref()),
            "expire_time": when_json(self.expire_time.as_ref()),
            "restore_time": when_json(self.restore_time.as_ref()),
        })
    }
}

/// What a restore did, in words.
pub fn restored_text(r: &pb::RestoreEnvironmentResponse) -> String {
    let p = r.restore_point.clone().unwrap_or_default();
    format!(
        "restored {} from {}: {}; replaced {} group(s), {} entities, {} project(s)\n",
        p.name.split("/restorePoints/").next().unwrap_or_default(),
        p.name,
        holds(&counts(&p)),
        r.replaced_groups,
        r.replaced_entities,
        r.replaced_projects
    )
}

pub fn restored_json(r: &pb::RestoreEnvironmentResponse) -> Value {
    json!({
        "restore_point": r.restore_point.as_ref().map(Resource::json),
        "replaced_groups": r.replaced_groups,
        "replaced_entities": r.replaced_entities,
        "replaced_projects": r.replaced_projects,
    })
}
