//! The edges: bad input, retries, paging, auth, destructive guards.

use ferry_proto::registry::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

pub async fn bad_input_is_refused_with_field_violations_and_writes_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let g = group(&app, "dev", "g").await;
    let mut c = app.admin.clone();

    let bad_env = c
        .create_environment(pb::CreateEnvironmentRequest {
            environment_id: "Bad Name".into(),
            environment: None,
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_env.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad_env), vec!["environment_id".to_string(), "environment.tier".to_string()], "every problem at once");

    let cases: Vec<(pb::Entity, &str)> = vec![
        (entity(SERVICE, "", "{}"), "entity.key"),
        (entity(SERVICE, &"k".repeat(201), "{}"), "entity.key"),
        (entity(SERVICE, "tab\tkey", "{}"), "entity.key"),
        (entity(SERVICE, "k", "{not json"), "entity.payload_json"),
        (entity(SERVICE, "k", &format!("\"{}\"", "x".repeat(300 * 1024))), "entity.payload_json"),
        (entity(0, "k", "{}"), "entity.kind"),
        (entity(42, "k", "{}"), "entity.kind"),
        (pb::Entity { sharing: 9, ..entity(SERVICE, "k", "{}") }, "entity.sharing"),
        (
            pb::Entity {
                references: vec![ferry_proto::common::v1::EntityRef { kind: LOOKUP, key: String::new() }],
                ..entity(SERVICE, "k", "{}")
            },
            "entity.references[0].key",
        ),
    ];
    for (e, field) in cases {
        let err = create(&app, &g, e).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(violated_fields(&err), vec![field.to_string()]);
    }
    let no_group = create(&app, "environments/dev/groups/missing", entity(SERVICE, "k", "{}")).await.unwrap_err();
    assert_eq!(no_group.code(), Code::NotFound);
    let bad_parent = create(&app, "groups/g", entity(SERVICE, "k", "{}")).await.unwrap_err();
    assert_eq!(violated_fields(&bad_parent), vec!["parent".to_string()]);
    let bad_name = c.get_entity(pb::GetEntityRequest { name: "environments/dev/entities/abc".into() }).await.unwrap_err();
    assert_eq!(bad_name.code(), Code::InvalidArgument);
    let no_entity = c.get_entity(pb::GetEntityRequest { name: "environments/dev/entities/12345".into() }).await.unwrap_err();
    assert_eq!(no_entity.code(), Code::NotFound);
    let other_env = c.get_entity(pb::GetEntityRequest { name: "environments/other/entities/1".into() }).await.unwrap_err();
    assert_eq!(other_env.code(), Code::NotFound);
    let immutable = c
        .update_entity(pb::UpdateEntityRequest {
            entity: Some(pb::Entity { name: "environments/dev/entities/1".into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["key".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&immutable), vec!["update_mask".to_string()]);
    assert_eq!(keys_of(&app, &g).await.len(), 0, "nothing was written by any refused call");
}

pub async fn request_id_makes_retries_no_ops(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let g = group(&app, "dev", "g").await;
    let mut c = app.admin.clone();
    let req = pb::CreateEntityRequest { parent: g.clone(), entity: Some(entity(SERVICE, "s", "{}")), request_id: "req-create-s".into() };
    let first = c.create_entity(req.clone()).await.expect("create").into_inner();
    let retry = c.create_entity(req.clone()).await.expect("retry answers like the first").into_inner();
    assert_eq!(first, retry);
    assert_eq!(keys_of(&app, &g).await.len(), 1);

    let mut different = req.clone();
    different.entity = Some(entity(SERVICE, "other", "{}"));
    let reused = c.create_entity(different).await.unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&reused), vec!["request_id".to_string()]);

    // A failed call records nothing: the same id can be used once the problem is fixed.
    let dup = pb::CreateEntityRequest { parent: g.clone(), entity: Some(entity(SERVICE, "s", "{}")), request_id: "req-2".into() };
    assert_eq!(c.create_entity(dup).await.unwrap_err().code(), Code::AlreadyExists);
    let fixed = pb::CreateEntityRequest { parent: g.clone(), entity: Some(entity(SERVICE, "s2", "{}")), request_id: "req-2".into() };
    c.create_entity(fixed).await.expect("same id, now valid");

    let del = pb::DeleteEntityRequest { name: first.name.clone(), confirm_all_groups: false, request_id: "req-del".into() };
    let d1 = c.delete_entity(del.clone()).await.expect("delete").into_inner();
    let d2 = c.delete_entity(del).await.expect("retried delete is not NOT_FOUND").into_inner();
    assert_eq!(d1, d2);
    let bad_id =
        pb::CreateGroupRequest { parent: "environments/dev".into(), group_id: "x".into(), group: None, request_id: "has space".into() };
    assert_eq!(violated_fields(&c.create_group(bad_id).await.unwrap_err()), vec!["request_id".to_string()]);
}

pub async fn paging_walks_every_item_once_and_refuses_foreign_tokens(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    env(&app, "uat", false).await;
    for i in 0..25 {
        group(&app, "dev", &format!("g{i:02}")).await;
    }
    let mut c = app.admin.clone();
    let mut token = String::new();
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let page = c
            .list_groups(pb::ListGroupsRequest { parent: "environments/dev".into(), page_size: 10, page_token: token })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        names.extend(page.groups.into_iter().map(|g| g.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((names.len(), sorted), (25, names.clone()));

    let first = c
        .list_groups(pb::ListGroupsRequest { parent: "environments/dev".into(), page_size: 10, page_token: String::new() })
        .await
        .expect("page")
        .into_inner();
    let foreign = c
        .list_groups(pb::ListGroupsRequest { parent: "environments/uat".into(), page_size: 10, page_token: first.next_page_token })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&foreign), vec!["page_token".to_string()]);
    let garbage = c
        .list_groups(pb::ListGroupsRequest { parent: "environments/dev".into(), page_size: 10, page_token: "garbage!".into() })
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::InvalidArgument);
    let negative = c
        .list_groups(pb::ListGroupsRequest { parent: "environments/dev".into(), page_size: -1, page_token: String::new() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&negative), vec!["page_size".to_string()]);
}

pub async fn auth_roles_and_environment_scopes(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    env(&app, "prod", true).await;
    let dev = group(&app, "dev", "g").await;
    let prod = group(&app, "prod", "g").await;

    let anonymous = client(app.addr, None).list_environments(pb::ListEnvironmentsRequest::default()).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let wrong =
        client(app.addr, Some("not-a-known-token-at-all")).list_environments(pb::ListEnvironmentsRequest::default()).await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);

    let mut viewer = app.viewer.clone();
    viewer.get_group(pb::GetGroupRequest { name: prod.clone(), ..Default::default() }).await.expect("viewers read");
    let write = viewer
        .create_entity(pb::CreateEntityRequest { parent: dev.clone(), entity: Some(entity(SERVICE, "s", "{}")), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(write.code(), Code::PermissionDenied);

    let mut op = app.dev_operator.clone();
    op.create_entity(pb::CreateEntityRequest { parent: dev.clone(), entity: Some(entity(SERVICE, "s", "{}")), request_id: String::new() })
        .await
        .expect("operator writes in scope");
    let out_of_scope = op.get_group(pb::GetGroupRequest { name: prod.clone(), ..Default::default() }).await.unwrap_err();
    assert_eq!(out_of_scope.code(), Code::PermissionDenied);
    let envs = op.list_environments(pb::ListEnvironmentsRequest::default()).await.expect("list").into_inner();
    assert_eq!(envs.environments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), vec!["environments/dev"]);
    // Filtered in the query: environments before dev out of scope do not make short pages.
    for id in ["alpha", "beta", "charlie"] {
        env(&app, id, false).await;
    }
    let first = op.list_environments(pb::ListEnvironmentsRequest { page_size: 1, ..Default::default() }).await.expect("list").into_inner();
    assert_eq!(first.environments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), vec!["environments/dev"], "a full first page");
    let admin_only = op
        .copy_environment(pb::CopyEnvironmentRequest {
            source: "environments/dev".into(),
            destination: "environments/dev".into(),
            request_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(admin_only.code(), Code::PermissionDenied);
}

pub async fn delete_group_guards(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let a = group(&app, "dev", "a").await;
    let other = group(&app, "dev", "b").await;
    create(&app, &a, entity(SERVICE, "s", "{}")).await.expect("service");
    let shared = create(&app, &a, entity(LOOKUP, "l", "{}")).await.expect("lookup");
    let mut c = app.admin.clone();
    let del = |force| pb::DeleteGroupRequest { name: a.clone(), force, request_id: String::new() };

    assert_eq!(c.delete_group(del(false)).await.unwrap_err().code(), Code::FailedPrecondition, "not empty");
    let sole = c.delete_group(del(true)).await.unwrap_err();
    assert_eq!(sole.code(), Code::FailedPrecondition, "would lose the lookup's last link");
    assert_eq!(precondition_subjects(&sole), vec![shared.name.clone()]);

    c.link_entity(pb::LinkEntityRequest { name: shared.name.clone(), group: other.clone(), request_id: String::new() })
        .await
        .expect("link");
    let done = c.delete_group(del(true)).await.expect("forced delete").into_inner();
    assert_eq!((done.deleted_entities, done.unlinked_entities), (1, 1));
    assert_eq!(keys_of(&app, &other).await, vec![(LOOKUP, "l".to_string())], "the shared lookup lives on in the other group");
    assert_eq!(c.get_group(pb::GetGroupRequest { name: a, ..Default::default() }).await.unwrap_err().code(), Code::NotFound);
}

pub async fn concurrent_retries_with_one_request_id_answer_alike(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let g = group(&app, "dev", "g").await;
    let req = pb::CreateEntityRequest { parent: g.clone(), entity: Some(entity(SERVICE, "s", "{}")), request_id: "same-id".into() };
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut c = app.admin.clone();
        let req = req.clone();
        tasks.push(tokio::spawn(async move { c.create_entity(req).await.map(|r| r.into_inner()) }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("task").expect("every retry succeeds with the first reply"));
    }
    assert!(replies.windows(2).all(|w| w[0] == w[1]), "all answers are the one reply");
    assert_eq!(keys_of(&app, &g).await.len(), 1);
}

pub async fn get_group_read_mask_returns_only_the_fields_asked_for(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let g = group(&app, "dev", "g").await;
    create(&app, &g, entity(SERVICE, "s", "{}")).await.expect("entity");
    let mut c = app.admin.clone();
    let get = |paths: &[&str]| pb::GetGroupRequest {
        name: g.clone(),
        read_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
    };
    let full = c.get_group(get(&[])).await.expect("whole group").into_inner();
    assert_eq!(full.entity_count, 1);
    assert!(full.create_time.is_some() && full.revision > 0);

    let part = c.get_group(get(&["name", "revision"])).await.expect("name and revision").into_inner();
    assert_eq!((part.name.as_str(), part.revision), (full.name.as_str(), full.revision));
    assert_eq!((part.entity_count, part.display_name.as_str(), part.create_time), (0, "", None), "fields left out are not set");

    let bad = c.get_group(get(&["revision", "members"])).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("read_mask.paths[1]"), "{}", bad.message());
}
