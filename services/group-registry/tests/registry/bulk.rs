//! Bulk paths: import, export, key manifests, merge operations, environment copy.

use ferry_proto::registry::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

pub(crate) fn import_msgs(group: &str, request_id: &str, entities: Vec<pb::Entity>, per_message: usize) -> Vec<pb::ImportEntitiesRequest> {
    entities
        .chunks(per_message)
        .enumerate()
        .map(|(i, chunk)| pb::ImportEntitiesRequest {
            parent: if i == 0 { group.to_owned() } else { String::new() },
            entities: chunk.to_vec(),
            request_id: if i == 0 { request_id.to_owned() } else { String::new() },
        })
        .collect()
}

pub(crate) async fn import(app: &TestApp, msgs: Vec<pb::ImportEntitiesRequest>) -> Result<pb::ImportEntitiesResponse, tonic::Status> {
    app.admin.clone().import_entities(tokio_stream::iter(msgs)).await.map(|r| r.into_inner())
}

pub(crate) async fn manifest(app: &TestApp, group: &str, chunk: i32) -> (Vec<pb::ManifestEntry>, usize) {
    let mut stream = app
        .admin
        .clone()
        .stream_key_manifest(pb::StreamKeyManifestRequest { group: group.into(), chunk_size: chunk, ..Default::default() })
        .await
        .expect("manifest")
        .into_inner();
    let mut out = Vec::new();
    let mut messages = 0;
    while let Some(m) = stream.message().await.expect("manifest message") {
        messages += 1;
        out.extend(m.entries);
    }
    (out, messages)
}

pub async fn import_export_and_manifest_sorted_bytewise(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let g = group(&app, "dev", "big").await;
    // Keys whose byte order differs from most locales' collation.
    let odd = ["Zeta", "alpha", "Äpfel", "_under", "beta", "Beta", "é", "10", "9"];
    let mut entities: Vec<pb::Entity> =
        (0..6000).map(|i| entity(if i % 3 == 0 { LOOKUP } else { SERVICE }, &format!("k{i:05}"), r#"{"n":1}"#)).collect();
    entities.extend(odd.iter().map(|k| entity(TABLE, k, "{}")));
    let total = entities.len();
    let reply = import(&app, import_msgs(&g, "", entities, 2500)).await.expect("import");
    assert_eq!(reply.created as usize, total);

    let (entries, messages) = manifest(&app, &g, 1000).await;
    assert_eq!(entries.len(), total);
    assert!(messages >= total / 1000, "streamed in chunks");
    let keys: Vec<(i32, Vec<u8>)> = entries.iter().map(|e| (e.kind, e.key.as_bytes().to_vec())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "manifest is ordered by (kind, key bytes)");
    assert!(entries.iter().all(|e| e.entity_id > 0 && e.content_hash.len() == 32));

    // A selective manifest (G13 support): one kind, some keys.
    let mut s = app
        .admin
        .clone()
        .stream_key_manifest(pb::StreamKeyManifestRequest {
            group: g.clone(),
            kinds: vec![TABLE],
            keys: vec!["alpha".into(), "Beta".into(), "missing".into()],
            chunk_size: 0,
        })
        .await
        .expect("selective")
        .into_inner();
    let mut picked = Vec::new();
    while let Some(m) = s.message().await.expect("message") {
        picked.extend(m.entries.into_iter().map(|e| e.key));
    }
    assert_eq!(picked, vec!["Beta".to_string(), "alpha".to_string()]);

    let mut export = app
        .admin
        .clone()
        .export_entities(pb::ExportEntitiesRequest { parent: g.clone(), kinds: vec![] })
        .await
        .expect("export")
        .into_inner();
    let mut exported = Vec::new();
    while let Some(m) = export.message().await.expect("export message") {
        exported.extend(m.entities);
    }
    assert_eq!(exported.len(), total);
    assert_eq!(exported[0].groups, vec![g.clone()]);
    assert_eq!(exported.iter().map(|e| (e.kind, e.key.as_bytes().to_vec())).collect::<Vec<_>>(), sorted);
}

pub async fn import_is_all_or_nothing_and_retry_safe(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let g = group(&app, "dev", "g").await;
    create(&app, &g, entity(SERVICE, "taken", "{}")).await.expect("existing");
    let rev = revision(&app, &g).await;

    // A clash in the second message rolls back the first.
    let mut batch: Vec<pb::Entity> = (0..50).map(|i| entity(SERVICE, &format!("s{i}"), "{}")).collect();
    batch.push(entity(SERVICE, "taken", "{}"));
    let err = import(&app, import_msgs(&g, "", batch, 40)).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(keys_of(&app, &g).await.len(), 1, "nothing imported");
    assert_eq!(revision(&app, &g).await, rev);

    // A bad entity anywhere refuses the import with its index.
    let mut bad: Vec<pb::Entity> = (0..5).map(|i| entity(SERVICE, &format!("s{i}"), "{}")).collect();
    bad.push(entity(SERVICE, "s-bad", "{not json"));
    let err = import(&app, import_msgs(&g, "", bad, 3)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), vec!["messages[1].entities[2].payload_json".to_string()], "the message and the entity in it");
    assert_eq!(keys_of(&app, &g).await.len(), 1);

    // Duplicates inside one import are caught too.
    let twice = vec![entity(SERVICE, "d", "{}"), entity(SERVICE, "d", "{}")];
    assert_eq!(import(&app, import_msgs(&g, "", twice, 10)).await.unwrap_err().code(), Code::AlreadyExists);

    // A retried import with the same request_id answers the same and imports nothing more.
    let ok: Vec<pb::Entity> = (0..30).map(|i| entity(SERVICE, &format!("r{i}"), "{}")).collect();
    let first = import(&app, import_msgs(&g, "import-1", ok.clone(), 7)).await.expect("import");
    let again = import(&app, import_msgs(&g, "import-1", ok.clone(), 7)).await.expect("retry");
    assert_eq!(first, again);
    assert_eq!(keys_of(&app, &g).await.len(), 31);
    let other = import(&app, import_msgs(&g, "import-1", ok[..3].to_vec(), 7)).await.unwrap_err();
    assert_eq!(other.code(), Code::InvalidArgument, "same request_id, different import");

    // A request_id another method used first is refused as reused, before anything is read
    // as an import's reply (it answered INTERNAL once).
    app.admin
        .clone()
        .create_entity(pb::CreateEntityRequest {
            parent: g.clone(),
            entity: Some(entity(SERVICE, "c1", "{}")),
            request_id: "used-1".into(),
        })
        .await
        .expect("create with a request_id");
    let reused = import(&app, import_msgs(&g, "used-1", ok[..2].to_vec(), 7)).await.unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument, "{reused:?}");
    assert_eq!(violated_fields(&reused), vec!["request_id".to_string()]);
    // And a later message may repeat the stream's request_id, not change it.
    let fresh: Vec<pb::Entity> = (0..4).map(|i| entity(SERVICE, &format!("n{i}"), "{}")).collect();
    let mut msgs = import_msgs(&g, "import-2", fresh, 2);
    msgs[1].request_id = "import-3".into();
    let changed = import(&app, msgs).await.unwrap_err();
    assert_eq!(violated_fields(&changed), vec!["messages[1].request_id".to_string()]);
}

pub async fn environment_copy_replaces_destination_and_refuses_production(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    env(&app, "sandbox", false).await;
    let test = group(&app, "prod", "test").await;
    let live = group(&app, "prod", "live").await;
    let shared = create(&app, &test, entity(LOOKUP, "status", "{}")).await.expect("lookup");
    app.admin
        .clone()
        .link_entity(pb::LinkEntityRequest { name: shared.name.clone(), group: live.clone(), request_id: String::new() })
        .await
        .expect("link");
    create(&app, &live, entity(SERVICE, "billing", "{}")).await.expect("service");
    app.admin
        .clone()
        .create_project(pb::CreateProjectRequest {
            parent: "environments/prod".into(),
            project_id: "crm".into(),
            project: Some(pb::Project { groups: vec![live.clone()], ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("project");
    // The sandbox holds its own things, which the copy replaces.
    let old = group(&app, "sandbox", "live").await;
    create(&app, &old, entity(SERVICE, "sandbox-only", "{}")).await.expect("sandbox service");
    for _ in 0..3 {
        create(&app, &old, entity(MAP, &format!("m{}", revision(&app, &old).await), "{}")).await.expect("map");
    }
    let old_rev = revision(&app, &old).await;

    let mut c = app.admin.clone();
    let copy = |src: &str, dst: &str| pb::CopyEnvironmentRequest {
        source: format!("environments/{src}"),
        destination: format!("environments/{dst}"),
        request_id: String::new(),
        ..Default::default()
    };
    let refused = c.copy_environment(copy("sandbox", "prod")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "production is never a destination");
    assert_eq!(c.copy_environment(copy("prod", "prod")).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(c.copy_environment(copy("prod", "nowhere")).await.unwrap_err().code(), Code::NotFound);

    let n = c.copy_environment(copy("prod", "sandbox")).await.expect("copy").into_inner();
    assert_eq!((n.groups, n.entities, n.links, n.projects), (2, 2, 3, 1));
    assert_eq!((n.replaced_groups, n.replaced_entities), (1, 4));
    let sb_live = "environments/sandbox/groups/live".to_string();
    let sb_test = "environments/sandbox/groups/test".to_string();
    assert_eq!(keys_of(&app, &sb_live).await, vec![(LOOKUP, "status".to_string()), (SERVICE, "billing".to_string())]);
    assert!(revision(&app, &sb_live).await > old_rev, "revisions only grow, so older plans go stale");
    // The shared lookup is one instance linked to both copied groups.
    let listed = app
        .admin
        .clone()
        .list_entities(pb::ListEntitiesRequest { parent: sb_test.clone(), page_size: 10, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.entities[0].groups, vec![sb_live.clone(), sb_test.clone()]);
    assert!(listed.entities[0].name.starts_with("environments/sandbox/entities/"));
    let p = app
        .admin
        .clone()
        .get_project(pb::GetProjectRequest { name: "environments/sandbox/projects/crm".into() })
        .await
        .expect("project copied")
        .into_inner();
    assert_eq!(p.groups, vec![sb_live]);
    // The source is untouched.
    assert_eq!(keys_of(&app, &live).await.len(), 2);
}

/// An import holds the writer's transaction for the whole client stream; plain reads go
/// through the read pool and are answered meanwhile (on SQLite, whose writer is one
/// connection, they used to queue behind the import until it ended).
pub async fn reads_are_answered_while_an_import_is_open(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let g = group(&app, "dev", "g").await;
    let existing = create(&app, &g, entity(SERVICE, "before", "{}")).await.expect("entity");

    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ImportEntitiesRequest>(4);
    let mut first = import_msgs(&g, "open-import", vec![entity(SERVICE, "imported", "{}")], 1);
    tx.send(first.remove(0)).await.expect("first import message");
    let mut client = app.admin.clone();
    let importing = tokio::spawn(async move { client.import_entities(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!importing.is_finished(), "the import waits for the rest of its stream");

    let read = async {
        let mut c = app.viewer.clone();
        let got = c.get_entity(pb::GetEntityRequest { name: existing.name.clone() }).await?.into_inner();
        let groups = c.list_groups(pb::ListGroupsRequest { parent: "environments/dev".into(), ..Default::default() }).await?.into_inner();
        Ok::<_, tonic::Status>((got, groups))
    };
    let (got, groups) = tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .expect("reads answered while the import is open")
        .expect("reads");
    assert_eq!(got.key, "before");
    assert_eq!(groups.groups.len(), 1);

    drop(tx);
    let done = importing.await.expect("import task").expect("import").into_inner();
    assert_eq!(done.created, 1);
    assert_eq!(keys_of(&app, &g).await, vec![(SERVICE, "before".to_string()), (SERVICE, "imported".to_string())]);
}
