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
