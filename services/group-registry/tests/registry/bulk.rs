//! Bulk paths: import, export, key manifests, merge operations, environment copy.

use ferry_proto::registry::v1 as pb;
use pb::merge_operation::Op;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

fn import_msgs(group: &str, request_id: &str, entities: Vec<pb::Entity>, per_message: usize) -> Vec<pb::ImportEntitiesRequest> {
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

async fn import(app: &TestApp, msgs: Vec<pb::ImportEntitiesRequest>) -> Result<pb::ImportEntitiesResponse, tonic::Status> {
    app.admin.clone().import_entities(tokio_stream::iter(msgs)).await.map(|r| r.into_inner())
}

async fn manifest(app: &TestApp, group: &str, chunk: i32) -> (Vec<pb::ManifestEntry>, usize) {
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

pub(crate) fn op(o: Op) -> pb::MergeOperation {
    pb::MergeOperation { op: Some(o) }
}

pub(crate) fn id_of(name: &str) -> i64 {
    name.rsplit('/').next().and_then(|s| s.parse().ok()).expect("entity id")
}

pub(crate) async fn apply(
    app: &TestApp,
    recipient: &str,
    ops: Vec<pb::MergeOperation>,
) -> Result<pb::ApplyMergeOperationsResponse, tonic::Status> {
    app.admin
        .clone()
        .apply_merge_operations(pb::ApplyMergeOperationsRequest { recipient: recipient.into(), operations: ops, request_id: String::new() })
        .await
        .map(|r| r.into_inner())
}

pub async fn merge_operations_apply_once_and_report_outcomes(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let test = group(&app, "dev", "test").await;
    let prod = group(&app, "dev", "prod").await;
    let svc = create(&app, &test, entity(SERVICE, "billing", r#"{"v":"test"}"#)).await.expect("service");
    let lookup = create(&app, &test, entity(LOOKUP, "status", "{}")).await.expect("lookup");
    let clash_src = create(&app, &test, entity(TABLE, "orders", r#"{"cols":2}"#)).await.expect("table");
    let clash_dst = create(&app, &prod, entity(TABLE, "orders", r#"{"cols":1}"#)).await.expect("table");

    let ops = vec![
        op(Op::CopyEntityId(id_of(&svc.name))),
        op(Op::LinkEntityId(id_of(&lookup.name))),
        op(Op::CopyEntityId(id_of(&clash_src.name))),
    ];
    let first = apply(&app, &prod, ops.clone()).await.expect("apply");
    assert_eq!((first.applied, first.already_present, first.conflicts), (2, 0, 1));
    let copy_id = first.results[0].entity_id;
    assert!(copy_id > 0 && copy_id != id_of(&svc.name), "a new duplicated instance");
    assert_eq!(first.results[1].entity_id, id_of(&lookup.name), "the shared instance itself is linked");
    assert_eq!(first.results[2].entity_id, id_of(&clash_dst.name), "the conflict names the recipient's entity");
    let copied = app
        .admin
        .clone()
        .get_entity(pb::GetEntityRequest { name: format!("environments/dev/entities/{copy_id}") })
        .await
        .expect("copy")
        .into_inner();
    assert_eq!((copied.payload_json.as_str(), copied.groups.clone()), (r#"{"v":"test"}"#, vec![prod.clone()]));

    // G11: the same batch again changes nothing.
    let again = apply(&app, &prod, ops).await.expect("apply again");
    assert_eq!((again.applied, again.already_present, again.conflicts), (0, 2, 1));
    assert_eq!(again.revision, first.revision, "no change, no new revision");
    assert_eq!(keys_of(&app, &prod).await.len(), 3);

    // TAKE_SOURCE style overwrite, then revert style remove and unlink.
    let over = apply(
        &app,
        &prod,
        vec![op(Op::Overwrite(pb::OverwritePayload {
            source_entity_id: id_of(&clash_src.name),
            target_entity_id: id_of(&clash_dst.name),
        }))],
    )
    .await
    .expect("overwrite");
    assert_eq!(over.applied, 1);
    let now = app.admin.clone().get_entity(pb::GetEntityRequest { name: clash_dst.name.clone() }).await.expect("get").into_inner();
    assert_eq!(now.payload_json, r#"{"cols":2}"#);
    let undo = apply(&app, &prod, vec![op(Op::RemoveEntityId(copy_id)), op(Op::UnlinkEntityId(id_of(&lookup.name)))]).await.expect("undo");
    assert_eq!(undo.applied, 2);
    assert_eq!(keys_of(&app, &prod).await, vec![(TABLE, "orders".to_string())]);
    assert_eq!(keys_of(&app, &test).await.len(), 3, "the source is untouched");
    let undo_again =
        apply(&app, &prod, vec![op(Op::RemoveEntityId(copy_id)), op(Op::UnlinkEntityId(id_of(&lookup.name)))]).await.expect("undo again");
    assert_eq!(undo_again.already_present, 2);

    // Wrong operations are refused whole.
    let bad = apply(&app, &prod, vec![op(Op::CopyEntityId(id_of(&lookup.name))), op(Op::LinkEntityId(999_999))]).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), vec!["operations[0]".to_string(), "operations[1]".to_string()]);
}

/// A batch of copies and links is written set-based; where two of its operations meet on
/// one key, the answer is still the one of applying them in order.
pub async fn operations_on_one_key_answer_in_order(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let test = group(&app, "dev", "test").await;
    let other = group(&app, "dev", "other").await;
    let a_test = create(&app, &test, entity(SERVICE, "a", r#"{"v":"test"}"#)).await.expect("a");
    let a_other = create(&app, &other, entity(SERVICE, "a", r#"{"v":"other"}"#)).await.expect("a elsewhere");
    let b = create(&app, &test, entity(SERVICE, "b", "{}")).await.expect("b");
    let portal = |sharing, payload: &str| pb::Entity { sharing, ..entity(PORTAL, "p", payload) };
    let p_shared = create(&app, &other, portal(SHARED, r#"{"s":1}"#)).await.expect("shared portal");
    let p_dup = create(&app, &test, portal(DUPLICATED, r#"{"d":1}"#)).await.expect("duplicated portal");
    let outcomes = |r: &pb::ApplyMergeOperationsResponse| r.results.iter().map(|x| x.outcome).collect::<Vec<_>>();
    let (applied, present, conflict) = (1, 2, 3);

    // Two sources under one key: the first is copied, the second conflicts with it.
    let prod = group(&app, "dev", "prod").await;
    let ops = [&a_other, &a_test, &a_test].map(|e| op(Op::CopyEntityId(id_of(&e.name)))).to_vec();
    let r = apply(&app, &prod, ops).await.expect("two sources of one key");
    assert_eq!(outcomes(&r), [applied, conflict, conflict]);
    assert_eq!(r.results[1].entity_id, r.results[0].entity_id, "the conflict names the copy just made");

    // One source twice: copied once, then found there.
    let ops = vec![op(Op::CopyEntityId(id_of(&b.name))), op(Op::CopyEntityId(id_of(&b.name)))];
    let r = apply(&app, &prod, ops).await.expect("one source twice");
    assert_eq!(outcomes(&r), [applied, present]);
    assert_eq!(keys_of(&app, &prod).await.len(), 2);

    // A link before a copy of the same key: the link wins, as it comes first.
    let live = group(&app, "dev", "live").await;
    let ops = vec![op(Op::LinkEntityId(id_of(&p_shared.name))), op(Op::CopyEntityId(id_of(&p_dup.name)))];
    let r = apply(&app, &live, ops).await.expect("link then copy");
    assert_eq!(outcomes(&r), [applied, conflict]);
    assert_eq!(r.results[1].entity_id, id_of(&p_shared.name));

    // An invalid operation after valid ones: named by its place in the batch, nothing written.
    let empty = group(&app, "dev", "empty").await;
    let ops = vec![op(Op::CopyEntityId(id_of(&b.name))), op(Op::CopyEntityId(999_999))];
    let bad = apply(&app, &empty, ops).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), vec!["operations[1]".to_string()]);
    assert!(keys_of(&app, &empty).await.is_empty());
}

pub async fn concurrent_batches_into_one_recipient_never_duplicate_keys(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let src = group(&app, "dev", "src").await;
    let dst = group(&app, "dev", "dst").await;
    // Copies and links: such batches overlap (they lock the recipient only at their end),
    // and those that lose a race on a key run again, locked, and see the winner's work.
    let entities: Vec<pb::Entity> = (0..200)
        .map(|i| entity(SERVICE, &format!("s{i:03}"), "{}"))
        .chain((0..100).map(|i| entity(LOOKUP, &format!("l{i:03}"), "{}")))
        .collect();
    import(&app, import_msgs(&src, "", entities, 300)).await.expect("import");
    let (entries, _) = manifest(&app, &src, 0).await;
    let ops: Vec<pb::MergeOperation> =
        entries.iter().map(|e| op(if e.kind == LOOKUP { Op::LinkEntityId(e.entity_id) } else { Op::CopyEntityId(e.entity_id) })).collect();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut c = app.admin.clone();
        let mut ops = ops.clone();
        ops.rotate_left(i * 37);
        let dst = dst.clone();
        tasks.push(tokio::spawn(async move {
            c.apply_merge_operations(pb::ApplyMergeOperationsRequest { recipient: dst, operations: ops, request_id: String::new() })
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut applied = 0;
    for t in tasks {
        let batch = t.await.expect("task").expect("apply");
        assert_eq!(batch.applied + batch.already_present, 300, "every operation is applied or found done: {batch:?}");
        assert_eq!(batch.conflicts, 0);
        applied += batch.applied;
    }
    assert_eq!(applied, 300, "each key is created or linked exactly once over all concurrent batches");
    assert_eq!(keys_of(&app, &dst).await.len(), 300);
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
