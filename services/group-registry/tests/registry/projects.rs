//! Projects: G7 resolution, group checks, config items.

use ferry_proto::common::v1::EntityRef;
use ferry_proto::registry::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

pub(crate) fn r(kind: i32, key: &str) -> EntityRef {
    EntityRef { kind, key: key.into() }
}

pub(crate) async fn project(app: &TestApp, env: &str, id: &str, groups: &[&str]) -> Result<pb::Project, tonic::Status> {
    app.admin
        .clone()
        .create_project(pb::CreateProjectRequest {
            parent: format!("environments/{env}"),
            project_id: id.into(),
            project: Some(pb::Project { groups: groups.iter().map(|g| g.to_string()).collect(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn item(app: &TestApp, project: &str, id: &str, refs: Vec<EntityRef>) {
    app.admin
        .clone()
        .create_config_item(pb::CreateConfigItemRequest {
            parent: project.into(),
            config_item_id: id.into(),
            config_item: Some(pb::ConfigItem { value_json: r#"{"x":1}"#.into(), references: refs, ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create config item");
}

pub async fn g7_references_resolve_through_project_groups_in_order(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let first = group(&app, "dev", "first").await;
    let second = group(&app, "dev", "second").await;
    let in_first = create(&app, &first, entity(LOOKUP, "status", "{}")).await.expect("lookup in first");
    create(&app, &second, entity(LOOKUP, "status", r#"{"shadowed":true}"#)).await.expect("lookup in second");
    let table = create(&app, &second, entity(TABLE, "orders", "{}")).await.expect("table in second");
    let p = project(&app, "dev", "crm", &[&first, &second]).await.expect("project");
    item(&app, &p.name, "home", vec![r(LOOKUP, "status"), r(TABLE, "orders")]).await;
    item(&app, &p.name, "report", vec![r(MAP, "regions")]).await;

    let res = app
        .admin
        .clone()
        .resolve_project(pb::ResolveProjectRequest { name: p.name.clone(), page_size: 0, page_token: String::new(), missing_only: false })
        .await
        .expect("resolve")
        .into_inner();
    assert_eq!(res.missing_count, 1);
    let got: Vec<(String, String, String)> =
        res.resolutions.iter().map(|x| (x.config_item.clone(), x.entity.clone(), x.group.clone())).collect();
    assert_eq!(
        got,
        vec![
            (format!("{}/configItems/home", p.name), in_first.name.clone(), first.clone()),
            (format!("{}/configItems/home", p.name), table.name.clone(), second.clone()),
            (format!("{}/configItems/report", p.name), String::new(), String::new()),
        ],
        "the first group in the project's order wins; unresolved references are reported"
    );

    let missing = app
        .admin
        .clone()
        .resolve_project(pb::ResolveProjectRequest { name: p.name.clone(), page_size: 0, page_token: String::new(), missing_only: true })
        .await
        .expect("resolve missing")
        .into_inner();
    assert_eq!(missing.resolutions.len(), 1);
    assert_eq!(missing.resolutions[0].reference, Some(r(MAP, "regions")));

    // Paging through resolutions one at a time sees each exactly once.
    let mut token = String::new();
    let mut seen = 0;
    loop {
        let page = app
            .admin
            .clone()
            .resolve_project(pb::ResolveProjectRequest { name: p.name.clone(), page_size: 1, page_token: token, missing_only: false })
            .await
            .expect("page")
            .into_inner();
        seen += page.resolutions.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, 3);
}

pub async fn projects_validate_groups_and_bump_on_change(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    env(&app, "uat", false).await;
    let a = group(&app, "dev", "a").await;
    let other_env = group(&app, "uat", "a").await;
    let none = project(&app, "dev", "p", &[]).await.unwrap_err();
    assert_eq!(none.code(), Code::InvalidArgument);
    let unknown = project(&app, "dev", "p", &["environments/dev/groups/nope"]).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let cross = project(&app, "dev", "p", &[&other_env]).await.unwrap_err();
    assert_eq!(cross.code(), Code::InvalidArgument);
    let twice = project(&app, "dev", "p", &[&a, &a]).await.unwrap_err();
    assert_eq!(twice.code(), Code::InvalidArgument);

    let p = project(&app, "dev", "p", &[&a]).await.expect("project");
    assert_eq!(project(&app, "dev", "p", &[&a]).await.unwrap_err().code(), Code::AlreadyExists);
    let b2 = group(&app, "dev", "b").await;
    let updated = app
        .admin
        .clone()
        .update_project(pb::UpdateProjectRequest {
            project: Some(pb::Project { name: p.name.clone(), groups: vec![b2.clone(), a.clone()], ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["groups".into()] }),
            request_id: String::new(),
        })
        .await
        .expect("update groups")
        .into_inner();
    assert_eq!(updated.groups, vec![b2, a.clone()]);
    assert!(updated.revision > p.revision);

    // A group in use by a project cannot be deleted.
    let refused = app
        .admin
        .clone()
        .delete_group(pb::DeleteGroupRequest { name: a.clone(), force: true, request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&refused), vec![p.name.clone()]);

    let deleted = app.admin.clone().delete_project(pb::DeleteProjectRequest { name: p.name.clone(), request_id: String::new() }).await;
    assert!(deleted.is_ok());
    let gone = app.admin.clone().get_project(pb::GetProjectRequest { name: p.name }).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

pub async fn upsert_config_items_counts_and_is_idempotent(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let a = group(&app, "dev", "a").await;
    let p = project(&app, "dev", "p", &[&a]).await.expect("project");
    let items = |v: &str| -> Vec<pb::ConfigItem> {
        (0..3)
            .map(|i| pb::ConfigItem {
                name: format!("{}/configItems/i{i}", p.name),
                value_json: v.into(),
                references: vec![r(LOOKUP, "l")],
                ..Default::default()
            })
            .collect()
    };
    let mut c = app.admin.clone();
    let first = c
        .upsert_config_items(pb::UpsertConfigItemsRequest { parent: p.name.clone(), config_items: items("1"), request_id: "up-1".into() })
        .await
        .expect("upsert")
        .into_inner();
    assert_eq!((first.created, first.updated, first.unchanged), (3, 0, 0));
    let again = c
        .upsert_config_items(pb::UpsertConfigItemsRequest { parent: p.name.clone(), config_items: items("1"), request_id: String::new() })
        .await
        .expect("upsert same")
        .into_inner();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 3));
    assert_eq!(again.revision, first.revision, "nothing changed, no new revision");
    let changed = c
        .upsert_config_items(pb::UpsertConfigItemsRequest { parent: p.name.clone(), config_items: items("2"), request_id: String::new() })
        .await
        .expect("upsert changed")
        .into_inner();
    assert_eq!((changed.created, changed.updated), (0, 3));
    let foreign = vec![pb::ConfigItem { name: "environments/dev/projects/other/configItems/x".into(), ..Default::default() }];
    let err = c
        .upsert_config_items(pb::UpsertConfigItemsRequest { parent: p.name.clone(), config_items: foreign, request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let listed = c
        .list_config_items(pb::ListConfigItemsRequest { parent: p.name.clone(), page_size: 2, page_token: String::new() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.config_items.len(), 2);
    assert!(!listed.next_page_token.is_empty());
}

/// Items written while their project is deleted, and project updates while a group is
/// deleted: every call is answered OK, NOT_FOUND or FAILED_PRECONDITION, never INTERNAL
/// (a foreign key caught mid-race), and the project is gone at the end.
pub async fn writes_racing_a_delete_are_answered_not_internal(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let main = group(&app, "dev", "main").await;
    for round in 0..6 {
        let spare = group(&app, "dev", &format!("spare-{round}")).await;
        let p = project(&app, "dev", &format!("p{round}"), &[&main]).await.expect("project");
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..12 {
            let (mut c, parent) = (app.admin.clone(), p.name.clone());
            calls.spawn(async move {
                c.create_config_item(pb::CreateConfigItemRequest {
                    parent,
                    config_item_id: format!("item-{i}"),
                    config_item: Some(pb::ConfigItem { value_json: "{}".into(), ..Default::default() }),
                    request_id: String::new(),
                })
                .await
                .map(|_| ())
            });
        }
        let (mut c, project_name, groups) = (app.admin.clone(), p.name.clone(), vec![main.clone(), spare.clone()]);
        calls.spawn(async move {
            c.update_project(pb::UpdateProjectRequest {
                project: Some(pb::Project { name: project_name, groups, ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["groups".into()] }),
                request_id: String::new(),
            })
            .await
            .map(|_| ())
        });
        let (mut c, name) = (app.admin.clone(), spare.clone());
        calls.spawn(
            async move { c.delete_group(pb::DeleteGroupRequest { name, force: false, request_id: String::new() }).await.map(|_| ()) },
        );
        let (mut c, name) = (app.admin.clone(), p.name.clone());
        calls.spawn(async move { c.delete_project(pb::DeleteProjectRequest { name, request_id: String::new() }).await.map(|_| ()) });
        while let Some(done) = calls.join_next().await {
            if let Err(s) = done.expect("call task") {
                assert!(
                    matches!(s.code(), Code::NotFound | Code::FailedPrecondition | Code::Aborted),
                    "round {round}: {:?} {}",
                    s.code(),
                    s.message()
                );
            }
        }
        let gone = app.admin.clone().get_project(pb::GetProjectRequest { name: p.name.clone() }).await;
        assert_eq!(gone.map(|_| ()).map_err(|s| s.code()), Err(Code::NotFound), "round {round}");
    }
}
