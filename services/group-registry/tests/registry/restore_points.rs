//! Restore points: an environment's whole content kept, and given back exactly.

use ferry_proto::registry::v1 as pb;
use sea_orm::ConnectionTrait;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;
use crate::projects::{item, project, r};

/// A sandbox of its own: two groups, a shared lookup linked to both, duplicated entities
/// with references and payloads, a portal, a project with configuration items.
async fn arrange(app: &TestApp) -> (String, String) {
    env(app, "prod", true).await;
    env(app, "sandbox", false).await;
    let test = group(app, "sandbox", "test").await;
    let live = group(app, "sandbox", "live").await;
    let lookup = create(app, &test, entity(LOOKUP, "status", r#"{"values":["a","b"]}"#)).await.expect("lookup");
    app.admin
        .clone()
        .link_entity(pb::LinkEntityRequest { name: lookup.name.clone(), group: live.clone(), request_id: String::new() })
        .await
        .expect("link");
    let mut table = entity(TABLE, "orders", r#"{"columns":["id","email"]}"#);
    table.references = vec![r(LOOKUP, "status")];
    create(app, &test, table).await.expect("table");
    create(app, &live, entity(SERVICE, "sandbox-only", r#"{"url":"https://sbx.example"}"#)).await.expect("service");
    let mut portal = entity(PORTAL, "customers", "{}");
    portal.sharing = DUPLICATED;
    create(app, &live, portal).await.expect("portal");
    let p = project(app, "sandbox", "crm", &[&live, &test]).await.expect("project");
    item(app, &p.name, "home", vec![r(LOOKUP, "status"), r(TABLE, "orders")]).await;
    // Production holds something else, which a copy puts over the sandbox.
    let prod = group(app, "prod", "live").await;
    create(app, &prod, entity(SERVICE, "billing", "{}")).await.expect("prod service");
    (test, live)
}

async fn create_point(app: &TestApp, env: &str, id: &str, request_id: &str) -> Result<pb::RestorePoint, tonic::Status> {
    app.admin
        .clone()
        .create_restore_point(pb::CreateRestorePointRequest {
            parent: format!("environments/{env}"),
            restore_point_id: id.into(),
            restore_point: Some(pb::RestorePoint {
                run: "refreshRuns/r1".into(),
                integration_snapshot: format!("environments/{env}/snapshots/s1"),
                description: "before the refresh".into(),
                ..Default::default()
            }),
            request_id: request_id.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn restore(c: &mut Client, name: &str, request_id: &str) -> Result<pb::RestoreEnvironmentResponse, tonic::Status> {
    c.restore_environment(pb::RestoreEnvironmentRequest { restore_point: name.into(), request_id: request_id.into() })
        .await
        .map(|r| r.into_inner())
}

pub async fn restore_point_gives_back_exactly_what_was_there(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (_, live) = arrange(&app).await;
    let mut admin = app.admin.clone();
    let before = ferry_testkit::content::environment(&mut admin, "environments/sandbox").await;
    assert_eq!(before.len(), 2 + 4 + 1 + 1 + 1, "{before:#?}");

    let point = create_point(&app, "sandbox", "before-refresh", "rp-1").await.expect("create");
    assert_eq!(point.name, "environments/sandbox/restorePoints/before-refresh");
    let counts = point.counts.expect("counts");
    assert_eq!((counts.groups, counts.entities, counts.links, counts.projects, counts.config_items), (2, 4, 5, 1, 1));
    assert!(point.size_bytes > 0);
    let (created, expires) = (point.create_time.expect("created").seconds, point.expire_time.expect("expires").seconds);
    assert_eq!(expires - created, 7 * 24 * 3600, "kept 7 days by default");
    assert!(point.restore_time.is_none());
    assert_eq!(create_point(&app, "sandbox", "before-refresh", "rp-1").await.expect("replayed"), point, "a retry answers alike");
    assert_eq!(create_point(&app, "sandbox", "before-refresh", "").await.unwrap_err().code(), Code::AlreadyExists);
    assert_eq!(create_point(&app, "sandbox", "Bad_Id", "").await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(create_point(&app, "nowhere", "x", "").await.unwrap_err().code(), Code::NotFound);

    // The content it holds is no environment anyone sees.
    let envs = admin.list_environments(pb::ListEnvironmentsRequest::default()).await.expect("list").into_inner();
    let names: Vec<&str> = envs.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["environments/prod", "environments/sandbox"]);

    // A refresh puts production over the sandbox, and someone changes it further.
    admin
        .copy_environment(pb::CopyEnvironmentRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            request_id: String::new(),
            ..Default::default()
        })
        .await
        .expect("copy");
    create(&app, &live, entity(MAP, "after", "{}")).await.expect("changed after the copy");
    let stale = revision(&app, &live).await;
    assert_ne!(ferry_testkit::content::environment(&mut admin, "environments/sandbox").await, before);

    let done = restore(&mut admin, &point.name, "restore-1").await.expect("restore");
    assert_eq!((done.replaced_groups, done.replaced_entities, done.replaced_projects), (1, 2, 0));
    assert!(done.restore_point.as_ref().and_then(|p| p.restore_time).is_some());
    assert_eq!(ferry_testkit::content::environment(&mut admin, "environments/sandbox").await, before, "exactly what was there");
    assert!(revision(&app, &live).await > stale, "a plan made before the restore is stale after it");
    // A retry changes nothing; a restore again gives the same content.
    assert_eq!(restore(&mut admin, &point.name, "restore-1").await.expect("replayed"), done);
    restore(&mut admin, &point.name, "").await.expect("restore again");
    assert_eq!(ferry_testkit::content::environment(&mut admin, "environments/sandbox").await, before);

    // Listed and read; restoring needs an admin; the scope applies.
    let listed = admin
        .list_restore_points(pb::ListRestorePointsRequest { parent: "environments/sandbox".into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.restore_points.len(), 1);
    let got = admin.get_restore_point(pb::GetRestorePointRequest { name: point.name.clone() }).await.expect("get").into_inner();
    assert_eq!((got.run.as_str(), got.integration_snapshot.as_str()), ("refreshRuns/r1", "environments/sandbox/snapshots/s1"));
    let denied = restore(&mut app.dev_operator.clone(), &point.name, "").await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    admin
        .delete_restore_point(pb::DeleteRestorePointRequest { name: point.name.clone(), request_id: String::new() })
        .await
        .expect("delete");
    assert_eq!(restore(&mut admin, &point.name, "").await.unwrap_err().code(), Code::NotFound);
    assert_eq!(admin.get_restore_point(pb::GetRestorePointRequest { name: point.name.clone() }).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(ferry_testkit::content::environment(&mut admin, "environments/sandbox").await, before, "deleting keeps the environment");
    let again = create_point(&app, "sandbox", "before-refresh", "").await.expect("the id is free again");
    assert_eq!(again.counts, point.counts);
}

pub async fn an_expired_restore_point_is_refused_naming_when_then_pruned(b: Backend) {
    let Some(app) = spawn_app_with(b, 0).await else { return };
    arrange(&app).await;
    let point = create_point(&app, "sandbox", "gone", "").await.expect("create");
    let refused = restore(&mut app.admin.clone(), &point.name, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("expired at 20"), "{}", refused.message());
    assert_eq!(precondition_subjects(&refused), vec![point.name.clone()]);

    // Pruned in the background (every second here): gone, with everything it kept.
    let db = ferry_kit::db::connect(&app.database_url).await.expect("database");
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.expect("count").expect("row");
            row.try_get_by_index::<i64>(0).expect("count")
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count("SELECT COUNT(*) FROM restore_points").await > 0 {
        assert!(std::time::Instant::now() < deadline, "not pruned within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let got = app.admin.clone().get_restore_point(pb::GetRestorePointRequest { name: point.name.clone() }).await.unwrap_err();
    assert_eq!(got.code(), Code::NotFound);
    assert_eq!(count("SELECT COUNT(*) FROM environments").await, 2, "the hidden environment is gone");
    assert_eq!(count("SELECT COUNT(*) FROM entities WHERE environment_id NOT IN (SELECT id FROM environments)").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM groups WHERE environment_id NOT IN (SELECT id FROM environments)").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM entities").await, 5, "the sandbox's 4 and production's 1 stay");
}
