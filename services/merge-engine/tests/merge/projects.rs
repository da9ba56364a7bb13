//! Projects: G8 (clone, choosing groups) and G9 (merge, groups first).

use ferry_proto::merge::v1 as mpb;
use ferry_proto::registry::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

async fn project(app: &TestApp, id: &str, groups: &[&str]) -> String {
    app.registry
        .clone()
        .create_project(pb::CreateProjectRequest {
            parent: "environments/dev".into(),
            project_id: id.into(),
            project: Some(pb::Project { groups: groups.iter().map(|g| g.to_string()).collect(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create project")
        .into_inner()
        .name
}

async fn item(app: &TestApp, project: &str, id: &str, refs: &[(i32, &str)]) {
    app.registry
        .clone()
        .create_config_item(pb::CreateConfigItemRequest {
            parent: project.into(),
            config_item_id: id.into(),
            config_item: Some(pb::ConfigItem {
                value_json: format!(r#"{{"page":"{id}"}}"#),
                references: refs.iter().map(|(k, key)| ferry_proto::common::v1::EntityRef { kind: *k, key: (*key).into() }).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create config item");
}

async fn item_ids(app: &TestApp, project: &str) -> Vec<String> {
    let page = app
        .registry
        .clone()
        .list_config_items(pb::ListConfigItemsRequest { parent: project.into(), page_size: 1000, page_token: String::new() })
        .await
        .expect("list items")
        .into_inner();
    page.config_items.into_iter().map(|c| c.name.rsplit('/').next().unwrap_or_default().to_owned()).collect()
}

/// test holds lk-1 and svc-1; prod holds neither. ptest's items use them.
async fn fixture(app: &TestApp) -> (String, String, String, String) {
    env(app, "dev").await;
    let test = group(app, "dev", "test").await;
    let prod = group(app, "dev", "prod").await;
    create(app, &test, entity(LOOKUP, "lk-1", "{}")).await;
    create(app, &test, entity(SERVICE, "svc-1", "{}")).await;
    let ptest = project(app, "ptest", &[&test]).await;
    let pprod = project(app, "pprod", &[&prod]).await;
    item(app, &ptest, "home", &[(LOOKUP, "lk-1")]).await;
    item(app, &ptest, "about", &[(SERVICE, "svc-1")]).await;
    (test, prod, ptest, pprod)
}

pub async fn g8_clone_project_resolves_against_chosen_groups(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (test, prod, ptest, _) = fixture(&app).await;
    let clone = |groups: Vec<String>, id: &str| mpb::CloneProjectRequest {
        source: ptest.clone(),
        project_id: id.into(),
        display_name: String::new(),
        groups,
        request_id: String::new(),
    };
    let job = app.merge.clone().clone_project(clone(vec![prod.clone()], "pcopy")).await.expect("clone").into_inner();
    let job = wait_job(&app.merge, &job.name).await;
    assert_eq!(job.state, SUCCEEDED, "{:?}", job.error);
    assert_eq!(job.produced_resources, ["environments/dev/projects/pcopy"]);
    assert_eq!(result(&job).config_items_created, 2);
    assert_eq!(result(&job).unresolved_references, 2, "prod lacks both entities");
    assert_eq!(item_ids(&app, "environments/dev/projects/pcopy").await, ["about", "home"]);
    let p = app.registry.clone().get_project(pb::GetProjectRequest { name: "environments/dev/projects/pcopy".into() }).await.expect("get");
    assert_eq!(p.into_inner().groups, vec![prod.clone()]);

    let job = app.merge.clone().clone_project(clone(vec![test.clone()], "pcopy2")).await.expect("clone").into_inner();
    let job = wait_job(&app.merge, &job.name).await;
    assert_eq!(result(&job).unresolved_references, 0, "test holds both");

    let err = app.merge.clone().clone_project(clone(vec![], "x")).await.expect_err("no groups");
    assert_eq!(violated_fields(&err), ["groups"]);
    let err = app.merge.clone().clone_project(clone(vec![test.clone()], "pcopy")).await.expect_err("exists");
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = app.merge.clone().clone_project(clone(vec!["environments/dev/groups/nope".into()], "y")).await.expect_err("group");
    assert_eq!(err.code(), Code::NotFound);
}

pub async fn g9_project_merge_refused_listing_missing_unless_groups_first(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (test, prod, ptest, pprod) = fixture(&app).await;
    let preview = app
        .merge
        .clone()
        .plan_project_merge(mpb::PlanProjectMergeRequest { source: ptest.clone(), recipient: pprod.clone(), ..Default::default() })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!((preview.config_items_create, preview.config_items_replace, preview.missing_reference_count), (2, 0, 2));
    let pair = mpb::GroupPair { source: test.clone(), recipient: prod.clone() };
    assert!(preview.missing_references.iter().all(|m| m.supplied_by.as_ref() == Some(&pair)));

    let req = mpb::MergeProjectRequest { source: ptest.clone(), recipient: pprod.clone(), ..Default::default() };
    let err = app.merge.clone().merge_project(req.clone()).await.expect_err("missing entities");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&err), ["ENTITY_KIND_LOOKUP:lk-1", "ENTITY_KIND_SERVICE:svc-1"]);
    assert!(err.message().contains("missing"), "{}", err.message());
    {
        use tonic_types::StatusExt;
        let d = err.get_details_precondition_failure().expect("details");
        assert!(d.violations[0].description.contains(&format!("merge {test} into {prod}")), "{:?}", d.violations[0]);
    }
    assert!(item_ids(&app, &pprod).await.is_empty(), "nothing delivered");

    let ahead = app
        .merge
        .clone()
        .plan_project_merge(mpb::PlanProjectMergeRequest {
            source: ptest.clone(),
            recipient: pprod.clone(),
            merge_groups_first: true,
            ..Default::default()
        })
        .await
        .expect("preview with groups")
        .into_inner();
    assert_eq!(ahead.missing_reference_count, 0, "as if the group merges were applied");
    assert_eq!(ahead.group_merges.len(), 1);
    assert_eq!(get_plan(&app, &ahead.group_merges[0].merge_plan).await.created_by, ADMIN_SUBJECT, "the preview's plan");
    assert_eq!(ahead.group_merges[0].counts.map(|c| (c.creates, c.links)), Some((1, 1)));

    // Plans given by the caller are checked for staleness.
    let given = mpb::MergeProjectRequest {
        merge_groups_first: true,
        group_merge_plans: vec![ahead.group_merges[0].merge_plan.clone()],
        ..req.clone()
    };
    create(&app, &prod, entity(TABLE, "moves-prod", "{}")).await;
    let err = app.merge.clone().merge_project(given).await.expect_err("stale plan");
    assert_eq!(err.code(), Code::Aborted);
    // Pairing by position needs as many groups on each side.
    let two = project(&app, "ptwo", &[&test, &prod]).await;
    let err = app
        .merge
        .clone()
        .plan_project_merge(mpb::PlanProjectMergeRequest { source: two, recipient: pprod.clone(), ..Default::default() })
        .await
        .expect_err("group counts differ");
    assert_eq!(err.code(), Code::FailedPrecondition);

    let job =
        app.merge.clone().merge_project(mpb::MergeProjectRequest { merge_groups_first: true, ..req }).await.expect("merge").into_inner();
    let job = wait_job(&app.merge, &job.name).await;
    assert_eq!(job.state, SUCCEEDED, "{:?}", job.error);
    assert_eq!(result(&job).config_items_created, 2);
    assert_eq!(job.child_jobs.len(), 1);
    let child = get_job(&app.merge, &job.child_jobs[0]).await;
    assert_eq!((child.state, child.parent_job.as_str()), (SUCCEEDED, job.name.as_str()));
    // The child job and the plan it made at run time record the parent's creator.
    assert_eq!((job.created_by.as_str(), child.created_by.as_str()), (ADMIN_SUBJECT, ADMIN_SUBJECT));
    assert_eq!(get_plan(&app, &child.plan).await.created_by, ADMIN_SUBJECT);
    assert_eq!((result(&child).created, result(&child).linked), (1, 1));
    assert_eq!(item_ids(&app, &pprod).await, ["about", "home"]);
    let prod_keys: Vec<String> = entities_of(&app, &prod).await.into_iter().map(|e| e.key).collect();
    assert_eq!(prod_keys, ["lk-1", "svc-1", "moves-prod"]);
}
