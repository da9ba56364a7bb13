//! G1–G4 and the sharing defaults.

use ferry_proto::registry::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

pub async fn g1_key_unique_per_group_across_duplicated_and_shared(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let a = group(&app, "dev", "test").await;
    let other = group(&app, "dev", "prod").await;

    // Same key, different kinds: fine. Same (kind, key) twice: refused.
    create(&app, &a, entity(LOOKUP, "k", "{}")).await.expect("lookup k");
    create(&app, &a, entity(SERVICE, "k", "{}")).await.expect("service k: other kind");
    let dup = create(&app, &a, entity(LOOKUP, "k", r#"{"v":2}"#)).await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let dup = create(&app, &a, entity(SERVICE, "k", "{}")).await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);

    // A shared entity linked in counts against the group's keys too.
    let shared_elsewhere = create(&app, &other, entity(LOOKUP, "k", r#"{"other":true}"#)).await.expect("lookup k in other group");
    let link = app
        .admin
        .clone()
        .link_entity(pb::LinkEntityRequest { name: shared_elsewhere.name.clone(), group: a.clone(), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(link.code(), Code::AlreadyExists, "{link:?}");

    // Portals: a duplicated portal in A and a shared portal with the same key elsewhere.
    let mut p = entity(PORTAL, "main", "{}");
    p.sharing = DUPLICATED;
    create(&app, &a, p.clone()).await.expect("duplicated portal");
    p.sharing = SHARED;
    let shared_portal = create(&app, &other, p).await.expect("shared portal");
    let err = app
        .admin
        .clone()
        .link_entity(pb::LinkEntityRequest { name: shared_portal.name, group: a.clone(), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(keys_of(&app, &a).await.len(), 3, "nothing was added by the refused calls");
}

pub async fn g2_deleting_duplicated_leaves_other_groups(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let test = group(&app, "dev", "test").await;
    let prod = group(&app, "dev", "prod").await;
    let s_test = create(&app, &test, entity(SERVICE, "billing", r#"{"url":"t"}"#)).await.expect("service");
    create(&app, &prod, entity(SERVICE, "billing", r#"{"url":"p"}"#)).await.expect("service");
    assert_eq!(s_test.sharing, DUPLICATED);

    let reply = app
        .admin
        .clone()
        .delete_entity(pb::DeleteEntityRequest { name: s_test.name.clone(), confirm_all_groups: false, request_id: String::new() })
        .await
        .expect("a duplicated entity deletes without confirmation")
        .into_inner();
    assert_eq!(reply.affected_groups, vec![test.clone()]);
    assert!(keys_of(&app, &test).await.is_empty());
    assert_eq!(keys_of(&app, &prod).await, vec![(SERVICE, "billing".to_string())]);
    let gone = app.admin.clone().get_entity(pb::GetEntityRequest { name: s_test.name }).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

pub async fn g3_deleting_shared_needs_confirmation_naming_groups(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let test = group(&app, "dev", "test").await;
    let prod = group(&app, "dev", "prod").await;
    let lookup = create(&app, &test, entity(LOOKUP, "countries", "[]")).await.expect("lookup");
    app.admin
        .clone()
        .link_entity(pb::LinkEntityRequest { name: lookup.name.clone(), group: prod.clone(), request_id: String::new() })
        .await
        .expect("link");

    let refused = app
        .admin
        .clone()
        .delete_entity(pb::DeleteEntityRequest { name: lookup.name.clone(), confirm_all_groups: false, request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let mut subjects = precondition_subjects(&refused);
    subjects.sort();
    assert_eq!(subjects, vec![prod.clone(), test.clone()]);
    assert_eq!(keys_of(&app, &test).await.len(), 1, "refusal changed nothing");
    assert_eq!(keys_of(&app, &prod).await.len(), 1);

    let done = app
        .admin
        .clone()
        .delete_entity(pb::DeleteEntityRequest { name: lookup.name, confirm_all_groups: true, request_id: String::new() })
        .await
        .expect("confirmed delete")
        .into_inner();
    let mut affected = done.affected_groups;
    affected.sort();
    assert_eq!(affected, vec![prod.clone(), test.clone()]);
    assert!(keys_of(&app, &test).await.is_empty());
    assert!(keys_of(&app, &prod).await.is_empty());
}

pub async fn g4_unlink_removes_one_link_never_the_last(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let test = group(&app, "dev", "test").await;
    let prod = group(&app, "dev", "prod").await;
    let role = create(&app, &test, entity(4, "admin", "{}")).await.expect("role");
    let mut c = app.admin.clone();
    c.link_entity(pb::LinkEntityRequest { name: role.name.clone(), group: prod.clone(), request_id: String::new() }).await.expect("link");
    let linked = c.get_entity(pb::GetEntityRequest { name: role.name.clone() }).await.expect("get").into_inner();
    assert_eq!(linked.groups, vec![prod.clone(), test.clone()], "every group holding it, by group name");

    let after = c
        .unlink_entity(pb::UnlinkEntityRequest { name: role.name.clone(), group: test.clone(), request_id: String::new() })
        .await
        .expect("unlink one of two")
        .into_inner();
    assert_eq!(after.groups, vec![prod.clone()]);
    assert!(keys_of(&app, &test).await.is_empty());

    let last = c
        .unlink_entity(pb::UnlinkEntityRequest { name: role.name.clone(), group: prod.clone(), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(last.code(), Code::FailedPrecondition, "{last:?}");
    assert_eq!(keys_of(&app, &prod).await.len(), 1, "the last link stays");

    let table = create(&app, &test, entity(TABLE, "orders", "{}")).await.expect("table");
    let dup = c
        .unlink_entity(pb::UnlinkEntityRequest { name: table.name.clone(), group: test.clone(), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::FailedPrecondition);
    let link_dup = c.link_entity(pb::LinkEntityRequest { name: table.name, group: prod, request_id: String::new() }).await.unwrap_err();
    assert_eq!(link_dup.code(), Code::FailedPrecondition, "duplicated entities are copied, never linked");
}

pub async fn sharing_follows_kind_and_portal_must_choose(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let g = group(&app, "dev", "test").await;
    for (kind, want) in [
        (DATA_SOURCE, SHARED),
        (LOOKUP, SHARED),
        (3, SHARED),
        (4, SHARED),
        (5, SHARED),
        (SERVICE, DUPLICATED),
        (TABLE, DUPLICATED),
        (MAP, DUPLICATED),
    ] {
        let e = create(&app, &g, entity(kind, "x", "{}")).await.expect("create");
        assert_eq!(e.sharing, want, "kind {kind}");
    }
    let portal = create(&app, &g, entity(PORTAL, "x", "{}")).await.unwrap_err();
    assert_eq!(portal.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&portal), vec!["entity.sharing".to_string()]);
    for sharing in [SHARED, DUPLICATED] {
        let e = create(&app, &g, pb::Entity { sharing, ..entity(PORTAL, &format!("p{sharing}"), "{}") }).await.expect("portal chooses");
        assert_eq!(e.sharing, sharing);
    }

    // Asking for the other mode is refused, on create and on import; repeating the kind's is fine.
    for (kind, other) in
        [(SERVICE, SHARED), (TABLE, SHARED), (MAP, SHARED), (LOOKUP, DUPLICATED), (DATA_SOURCE, DUPLICATED), (4, DUPLICATED)]
    {
        let refused = create(&app, &g, pb::Entity { sharing: other, ..entity(kind, "y", "{}") }).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "kind {kind}");
        assert_eq!(violated_fields(&refused), vec!["entity.sharing".to_string()], "kind {kind}");
        assert!(refused.message().contains("always"), "{}", refused.message());
    }
    create(&app, &g, pb::Entity { sharing: DUPLICATED, ..entity(SERVICE, "y", "{}") }).await.expect("a service may say duplicated");
    let before = keys_of(&app, &g).await;
    let import = app
        .admin
        .clone()
        .import_entities(tokio_stream::iter(vec![pb::ImportEntitiesRequest {
            parent: g.clone(),
            entities: vec![entity(TABLE, "fine", "{}"), pb::Entity { sharing: SHARED, ..entity(SERVICE, "shared-service", "{}") }],
            request_id: String::new(),
        }]))
        .await
        .unwrap_err();
    assert_eq!(import.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&import), vec!["messages[0].entities[1].sharing".to_string()]);
    assert_eq!(keys_of(&app, &g).await, before, "a refused import writes nothing");
}

/// Rows stored before the rule (a service stored as shared, a lookup as duplicated) are
/// reported by the start-up check and left as they are, and nothing delivers them: not a
/// link, a merge batch or an environment copy.
pub async fn sharing_against_the_kind_is_reported_never_delivered(b: Backend) {
    use sea_orm::ConnectionTrait;
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    env(&app, "sandbox", false).await;
    let test = group(&app, "dev", "test").await;
    let live = group(&app, "dev", "live").await;
    group(&app, "sandbox", "test").await;
    let service = create(&app, &test, entity(SERVICE, "billing", "{}")).await.expect("service");
    let lookup = create(&app, &test, entity(LOOKUP, "countries", "{}")).await.expect("lookup");
    let db = sea_orm::Database::connect(&app.database_url).await.expect("connect");
    assert_eq!(group_registry::sharing_report(&db).await.expect("report"), None, "a clean database reports nothing");
    let id = |e: &pb::Entity| e.name.rsplit('/').next().and_then(|s| s.parse::<i64>().ok()).expect("entity id");
    for (e, sharing) in [(&service, SHARED), (&lookup, DUPLICATED)] {
        db.execute_unprepared(&format!("UPDATE entities SET sharing = {sharing} WHERE id = {}", id(e))).await.expect("legacy row");
    }

    let report = group_registry::sharing_report(&db).await.expect("report").expect("the rows are reported");
    assert!(report.starts_with("2 entities"), "{report}");
    assert!(report.contains(&format!("{} (SERVICE stored as SHARED)", service.name)), "{report}");
    assert!(report.contains(&format!("{} (LOOKUP stored as DUPLICATED)", lookup.name)), "{report}");

    let mut c = app.admin.clone();
    let link = c.link_entity(pb::LinkEntityRequest { name: service.name.clone(), group: live.clone(), request_id: String::new() }).await;
    assert_eq!(link.unwrap_err().code(), Code::FailedPrecondition, "a service stored as shared is not linked to a second group");
    for op in [pb::merge_operation::Op::LinkEntityId(id(&service)), pb::merge_operation::Op::CopyEntityId(id(&lookup))] {
        let batch = c
            .apply_merge_operations(pb::ApplyMergeOperationsRequest {
                recipient: live.clone(),
                operations: vec![pb::MergeOperation { op: Some(op.clone()) }],
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(batch.code(), Code::InvalidArgument, "{op:?}");
        assert_eq!(violated_fields(&batch), vec!["operations[0]".to_string()]);
        assert!(batch.message().contains("does not allow"), "{}", batch.message());
    }
    assert!(keys_of(&app, &live).await.is_empty(), "nothing was delivered");
    let copy = c
        .copy_environment(pb::CopyEnvironmentRequest {
            source: "environments/dev".into(),
            destination: "environments/sandbox".into(),
            request_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(copy.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&copy), vec!["source".to_string()]);
    assert!(copy.message().contains("2 entities"), "{}", copy.message());

    // Left as they are: readable, still reported.
    let got = c.get_entity(pb::GetEntityRequest { name: service.name.clone() }).await.expect("get").into_inner();
    assert_eq!(got.sharing, SHARED);
    assert!(group_registry::sharing_report(&db).await.expect("report").is_some());
}

pub async fn revisions_move_with_every_change_and_only_then(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let a = group(&app, "dev", "a").await;
    let bb = group(&app, "dev", "b").await;
    let mut c = app.admin.clone();
    let r0 = revision(&app, &a).await;
    let lookup = create(&app, &a, entity(LOOKUP, "l", r#"{"v":1}"#)).await.expect("create");
    let r1 = revision(&app, &a).await;
    assert!(r1 > r0, "create bumps");

    let rb = revision(&app, &bb).await;
    c.link_entity(pb::LinkEntityRequest { name: lookup.name.clone(), group: bb.clone(), request_id: String::new() }).await.expect("link");
    assert!(revision(&app, &bb).await > rb, "link bumps the linked group");
    assert_eq!(revision(&app, &a).await, r1, "link leaves the other group alone");

    // An update changes the content of both groups holding the shared entity.
    let (ra, rb) = (revision(&app, &a).await, revision(&app, &bb).await);
    let mut body = lookup.clone();
    body.payload_json = r#"{"v":2}"#.into();
    c.update_entity(pb::UpdateEntityRequest { entity: Some(body.clone()), update_mask: None, request_id: String::new() })
        .await
        .expect("update");
    assert!(revision(&app, &a).await > ra && revision(&app, &bb).await > rb, "content change bumps every holder");

    // The same content again is no change.
    let (ra, rb) = (revision(&app, &a).await, revision(&app, &bb).await);
    body.payload_json = r#"{ "v" : 2 }"#.into();
    c.update_entity(pb::UpdateEntityRequest { entity: Some(body), update_mask: None, request_id: String::new() }).await.expect("update");
    assert_eq!((revision(&app, &a).await, revision(&app, &bb).await), (ra, rb), "no change, no bump");

    c.unlink_entity(pb::UnlinkEntityRequest { name: lookup.name.clone(), group: bb.clone(), request_id: String::new() })
        .await
        .expect("unlink");
    assert!(revision(&app, &bb).await > rb, "unlink bumps");
    let ra = revision(&app, &a).await;
    c.delete_entity(pb::DeleteEntityRequest { name: lookup.name, confirm_all_groups: true, request_id: String::new() })
        .await
        .expect("delete");
    assert!(revision(&app, &a).await > ra, "delete bumps");
}

/// People name entities by key: LookupEntity finds the one a group holds under (kind, key),
/// its own or a shared one linked to it.
pub async fn entities_by_key_within_a_group(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    let test = group(&app, "prod", "test").await;
    let live = group(&app, "prod", "live").await;
    let countries = create(&app, &test, entity(LOOKUP, "countries", r#"{"values":["NL"]}"#)).await.expect("lookup");
    let orders = create(&app, &test, entity(TABLE, "orders", "{}")).await.expect("table");
    let mut c = app.admin.clone();
    c.link_entity(pb::LinkEntityRequest { name: countries.name.clone(), group: live.clone(), request_id: String::new() })
        .await
        .expect("link");
    let lookup = |group: &str, kind: i32, key: &str| pb::LookupEntityRequest { group: group.into(), kind, key: key.into() };

    let found = app.viewer.clone().lookup_entity(lookup(&test, LOOKUP, "countries")).await.expect("lookup by key").into_inner();
    assert_eq!((found.name.as_str(), found.payload_json.as_str()), (countries.name.as_str(), r#"{"values":["NL"]}"#));
    assert_eq!(found.groups, vec![live.clone(), test.clone()], "a shared entity names every group it is in");
    let linked = c.lookup_entity(lookup(&live, LOOKUP, "countries")).await.expect("through the link").into_inner();
    assert_eq!(linked.name, countries.name);
    assert_eq!(c.lookup_entity(lookup(&test, TABLE, "orders")).await.expect("table").into_inner().name, orders.name);

    for (req, code) in [
        (lookup(&live, TABLE, "orders"), Code::NotFound),
        (lookup(&test, SERVICE, "countries"), Code::NotFound),
        (lookup(&test, LOOKUP, "Countries"), Code::NotFound),
        (lookup("environments/prod/groups/nope", LOOKUP, "countries"), Code::NotFound),
        (lookup(&test, 0, "countries"), Code::InvalidArgument),
        (lookup(&test, LOOKUP, ""), Code::InvalidArgument),
        (lookup("prod/test", LOOKUP, "countries"), Code::InvalidArgument),
    ] {
        let status = c.lookup_entity(req.clone()).await.unwrap_err();
        assert_eq!(status.code(), code, "{req:?}: {status:?}");
    }
    let bad = c.lookup_entity(lookup("x", 99, "")).await.unwrap_err();
    assert_eq!(violated_fields(&bad), vec!["group".to_string(), "kind".to_string(), "key".to_string()]);
    let missing = c.lookup_entity(lookup(&live, TABLE, "orders")).await.unwrap_err();
    assert!(missing.message().contains("table:orders"), "{}", missing.message());
    let scoped = app.dev_operator.clone().lookup_entity(lookup(&test, LOOKUP, "countries")).await.unwrap_err();
    assert_eq!(scoped.code(), Code::PermissionDenied, "a token scoped to dev does not read prod");
}
