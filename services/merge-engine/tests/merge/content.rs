//! Arrange helpers for the registry's content: environments, groups and entities, made
//! and read through the registry's API. Each panics with context: they set up, they are
//! not under test.

use ferry_proto::registry::v1 as pb;

use crate::helpers::TestApp;

pub async fn env(app: &TestApp, id: &str) {
    app.registry
        .clone()
        .create_environment(pb::CreateEnvironmentRequest {
            environment_id: id.into(),
            environment: Some(pb::Environment { tier: 2, ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create environment");
}

pub async fn group(app: &TestApp, env: &str, id: &str) -> String {
    app.registry
        .clone()
        .create_group(pb::CreateGroupRequest { parent: format!("environments/{env}"), group_id: id.into(), ..Default::default() })
        .await
        .expect("create group")
        .into_inner()
        .name
}

pub fn entity(kind: i32, key: &str, payload: &str) -> pb::Entity {
    pb::Entity { kind, key: key.into(), payload_json: payload.into(), ..Default::default() }
}

pub fn with_refs(mut e: pb::Entity, refs: &[(i32, &str)]) -> pb::Entity {
    e.references = refs.iter().map(|(k, key)| ferry_proto::common::v1::EntityRef { kind: *k, key: (*key).into() }).collect();
    e
}

pub async fn create(app: &TestApp, group: &str, e: pb::Entity) -> pb::Entity {
    app.registry
        .clone()
        .create_entity(pb::CreateEntityRequest { parent: group.into(), entity: Some(e), request_id: String::new() })
        .await
        .expect("create entity")
        .into_inner()
}

pub async fn link(app: &TestApp, entity: &str, group: &str) {
    app.registry
        .clone()
        .link_entity(pb::LinkEntityRequest { name: entity.into(), group: group.into(), request_id: String::new() })
        .await
        .expect("link entity");
}

/// Imports many entities at once.
pub async fn import(app: &TestApp, group: &str, entities: Vec<pb::Entity>) {
    let msgs: Vec<pb::ImportEntitiesRequest> = entities
        .chunks(2000)
        .enumerate()
        .map(|(i, c)| pb::ImportEntitiesRequest {
            parent: if i == 0 { group.to_owned() } else { String::new() },
            entities: c.to_vec(),
            request_id: String::new(),
        })
        .collect();
    app.registry.clone().import_entities(tokio_stream::iter(msgs)).await.expect("import");
}

/// Every entity of a group: (kind, key) → entity.
pub async fn entities_of(app: &TestApp, group: &str) -> Vec<pb::Entity> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .registry
            .clone()
            .list_entities(pb::ListEntitiesRequest { parent: group.into(), page_size: 1000, page_token: token, kinds: vec![] })
            .await
            .expect("list entities")
            .into_inner();
        out.extend(page.entities);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

pub fn find<'a>(entities: &'a [pb::Entity], kind: i32, key: &str) -> Option<&'a pb::Entity> {
    entities.iter().find(|e| e.kind == kind && e.key == key)
}

pub async fn revision(app: &TestApp, group: &str) -> i64 {
    app.registry
        .clone()
        .get_group(pb::GetGroupRequest { name: group.into(), ..Default::default() })
        .await
        .expect("get group")
        .into_inner()
        .revision
}
