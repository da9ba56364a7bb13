//! Bad input and retries.

use ferry_proto::audit::v1::audit_service_client::AuditServiceClient;
use ferry_proto::merge::v1 as mpb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

pub async fn bad_input_is_refused_precisely_and_writes_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev").await;
    env(&app, "uat").await;
    let s = group(&app, "dev", "test").await;
    let r = group(&app, "dev", "prod").await;
    let other = group(&app, "uat", "prod").await;
    create(&app, &s, entity(SERVICE, "svc", "{}")).await;
    let m = app.merge.clone();

    let err = m.clone().create_merge_plan(plan_req(&s, &s)).await.expect_err("self-merge");
    assert_eq!((err.code(), violated_fields(&err)), (Code::InvalidArgument, vec!["recipient".to_string()]));
    let err = m.clone().create_merge_plan(plan_req(&s, &other)).await.expect_err("cross-environment");
    assert_eq!((err.code(), violated_fields(&err)), (Code::InvalidArgument, vec!["recipient".to_string()]));
    let err = m.clone().create_merge_plan(plan_req(&s, "environments/dev/groups/nope")).await.expect_err("unknown group");
    assert_eq!(err.code(), Code::NotFound);
    let err = m
        .clone()
        .create_merge_plan(mpb::CreateMergePlanRequest { kinds: vec![0], strategy: 9, ..plan_req("groups/x", &r) })
        .await
        .expect_err("malformed");
    assert_eq!(violated_fields(&err), ["source", "strategy", "kinds[0]"]);
    // Keys are checked by the registry's rule, here at the edge (the fuzzer found the
    // engine letting "\u{2028}" through, and the registry's refusal came back INTERNAL).
    let keys = vec!["ok".into(), "\u{2028}\u{2029}".into(), " padded".into()];
    let err = m.clone().create_merge_plan(mpb::CreateMergePlanRequest { keys, ..plan_req(&s, &r) }).await.expect_err("bad keys");
    assert_eq!((err.code(), violated_fields(&err)), (Code::InvalidArgument, vec!["keys[1]".to_string(), "keys[2]".to_string()]));
    let err = m.clone().get_merge_plan(mpb::GetMergePlanRequest { name: "mergePlans/0123abcd".into() }).await.expect_err("unknown plan");
    assert_eq!(err.code(), Code::NotFound);
    let err = apply(&app, "plans/1", false).await.expect_err("malformed plan name");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = m.clone().get_job(mpb::GetJobRequest { name: "jobs/0123abcd".into() }).await.expect_err("unknown job");
    assert_eq!(err.code(), Code::NotFound);
    let listed = m.clone().list_merge_plans(mpb::ListMergePlansRequest::default()).await.expect("list").into_inner();
    assert!(listed.merge_plans.is_empty(), "refused calls wrote nothing");

    // A cancelled plan cannot be applied; an applied one cannot be cancelled.
    let p = plan(&app, plan_req(&s, &r)).await;
    let c =
        m.clone().cancel_merge_plan(mpb::CancelMergePlanRequest { name: p.name.clone(), request_id: String::new() }).await.expect("cancel");
    assert_eq!(c.into_inner().state, PLAN_CANCELLED);
    let err = apply(&app, &p.name, false).await.expect_err("cancelled plan");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let p = plan(&app, plan_req(&s, &r)).await;
    apply_ok(&app, &p.name).await;
    let err = m
        .clone()
        .cancel_merge_plan(mpb::CancelMergePlanRequest { name: p.name.clone(), request_id: String::new() })
        .await
        .expect_err("applied plan");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = m
        .clone()
        .list_merge_plan_items(mpb::ListMergePlanItemsRequest { parent: p.name, page_token: "junk".into(), ..Default::default() })
        .await
        .expect_err("foreign token");
    assert_eq!(violated_fields(&err), ["page_token"]);
}

pub async fn request_id_makes_retries_no_ops(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev").await;
    let s = group(&app, "dev", "test").await;
    let r = group(&app, "dev", "prod").await;
    create(&app, &s, entity(SERVICE, "svc", "{}")).await;
    let req = mpb::CreateMergePlanRequest { request_id: "plan-1".into(), ..plan_req(&s, &r) };
    let first = plan(&app, req.clone()).await;
    let again = plan(&app, req.clone()).await;
    assert_eq!(first.name, again.name, "a retry returns the first plan");
    let err = app
        .merge
        .clone()
        .create_merge_plan(mpb::CreateMergePlanRequest { strategy: TAKE_SOURCE, ..req })
        .await
        .expect_err("same id, other request");
    assert_eq!(violated_fields(&err), ["request_id"]);

    let apply_req =
        mpb::ApplyMergePlanRequest { name: first.name.clone(), proceed_with_missing_dependencies: false, request_id: "apply-1".into() };
    let j1 = app.merge.clone().apply_merge_plan(apply_req.clone()).await.expect("apply").into_inner();
    let j2 = app.merge.clone().apply_merge_plan(apply_req).await.expect("retry").into_inner();
    assert_eq!(j1.name, j2.name);
    let done = wait_job(&app.merge, &j1.name).await;
    assert_eq!(result(&done).created, 1);
    let listed = app.merge.clone().list_jobs(mpb::ListJobsRequest::default()).await.expect("list jobs").into_inner();
    assert_eq!(listed.jobs.len(), 1, "one job for two calls");
}

/// A caller scoped to some environments lists only their plans and jobs, filtered in the
/// query: newer plans and jobs elsewhere do not make its pages short or empty.
pub async fn scoped_lists_are_filtered_in_the_query(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut plans = Vec::new();
    for env_id in ["b", "a"] {
        env(&app, env_id).await;
        let src = group(&app, env_id, "src").await;
        create(&app, &src, entity(SERVICE, "s", "{}")).await;
        let runs = if env_id == "a" { 3 } else { 1 };
        for i in 0..runs {
            let dst = group(&app, env_id, &format!("dst{i}")).await;
            plans.push(plan(&app, plan_req(&src, &dst)).await.name);
        }
    }
    for p in &plans {
        apply_ok(&app, p).await;
    }
    let mut scoped = merge_client(app.engine.as_ref().expect("an engine").addr, SCOPED_TO_B);
    let listed = scoped.list_merge_plans(mpb::ListMergePlansRequest { page_size: 1, ..Default::default() }).await.expect("plans");
    let listed = listed.into_inner();
    assert_eq!(listed.merge_plans.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec![plans[0].as_str()], "a full page");
    let jobs = scoped.list_jobs(mpb::ListJobsRequest { page_size: 1, ..Default::default() }).await.expect("jobs").into_inner();
    assert_eq!(jobs.jobs.len(), 1, "a full page");
    assert!(jobs.jobs[0].recipient.starts_with("environments/b/"), "{:?}", jobs.jobs[0]);
    let admin = app.merge.clone().list_jobs(mpb::ListJobsRequest::default()).await.expect("jobs").into_inner();
    assert_eq!(admin.jobs.len(), 4, "the admin sees all");
    assert_eq!(listed.merge_plans[0].created_by, ADMIN_SUBJECT, "the plan records who made it");
    assert!(admin.jobs.iter().all(|j| j.created_by == ADMIN_SUBJECT), "{:?}", admin.jobs);

    // A plan the scoped operator makes, and the job applying it, record that operator.
    let dst = group(&app, "b", "dst-bea").await;
    let made = scoped.create_merge_plan(plan_req("environments/b/groups/src", &dst)).await.expect("scoped plan").into_inner();
    assert_eq!(made.created_by, SCOPED_SUBJECT);
    let job = scoped
        .apply_merge_plan(mpb::ApplyMergePlanRequest { name: made.name.clone(), ..Default::default() })
        .await
        .expect("scoped apply")
        .into_inner();
    assert_eq!(job.created_by, SCOPED_SUBJECT);
    assert_eq!(wait_job(&app.merge, &job.name).await.created_by, SCOPED_SUBJECT, "as stored");
    assert_eq!(get_plan(&app, &made.name).await.created_by, SCOPED_SUBJECT, "as stored");

    // The job's writes in the registry: the engine's identity, acting for the job's creator.
    let mut audit = AuditServiceClient::with_interceptor(
        ferry_kit::client::channel(app.registry_url()).expect("channel"),
        ferry_kit::client::ClientInterceptor::new(Some(ADMIN)).expect("token"),
    );
    let req = ferry_proto::audit::v1::ListAuditEventsRequest {
        method: "ApplyMergeOperations".into(),
        subject: SCOPED_SUBJECT.into(),
        ..Default::default()
    };
    let events = audit.list_audit_events(req).await.expect("audit").into_inner().audit_events;
    assert!(!events.is_empty(), "the job's writes are in the registry's log");
    assert!(events.iter().all(|e| e.subject == ADMIN_SUBJECT && e.on_behalf_of == SCOPED_SUBJECT && e.outcome == "OK"), "{events:?}");
}
