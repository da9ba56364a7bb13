//! EXTERNAL mode, approval gates, and every refusal.

use ferry_proto::integration::v1 as ipb;
use ferry_proto::refresh::v1 as pb;

use crate::helpers::*;
use crate::scenario::*;

async fn confirm(s: &Suite, run: &str, step: i32, actor: &str, comment: &str) -> Result<pb::RefreshRun, tonic::Status> {
    confirm_with(s.refresh.clone(), run, step, actor, comment).await
}

async fn confirm_with(mut client: Refresh, run: &str, step: i32, actor: &str, comment: &str) -> Result<pb::RefreshRun, tonic::Status> {
    client
        .confirm_refresh_step(pb::ConfirmRefreshStepRequest {
            name: run.into(),
            step,
            actor: actor.into(),
            comment: comment.into(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn external_mode_with_approval_gates(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    let fx = arrange(&s, false).await;
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::External, true)).await.expect("start");
    assert!(run.steps[4].plan.as_ref().is_some_and(|p| p.requires_confirmation));

    // The approval gate: nothing has changed yet.
    let waiting = wait_for(&s, &run.name, 20, |r| r.state == WAITING).await;
    assert_eq!((waiting.current_step, waiting.steps[0].waiting_for.as_str()), (1, "approval"));
    assert!(get_integration(&s, PROD_RALLY).await.active);
    assert!(!fence(&s, "prod").await.fenced);
    let wrong = confirm(&s, &run.name, 5, "alice", "").await.expect_err("step 5 is not waiting");
    assert_eq!(wrong.code(), tonic::Code::FailedPrecondition);
    confirm(&s, &run.name, 1, "alice", "approved in CAB-42").await.expect("approve");

    // The external refresh gate: the source is quiet and both environments fenced.
    let waiting = wait_for(&s, &run.name, 20, |r| r.state == WAITING && r.current_step == 5).await;
    assert_eq!(waiting.steps[4].waiting_for, "external refresh");
    assert!(!get_integration(&s, PROD_RALLY).await.active);
    let denied = authorize(&s, SANDBOX_MAPPING).await.expect("authorize");
    assert_eq!((denied.allowed, denied.reason), (false, ipb::SyncDenyReason::EnvironmentFenced as i32));
    let denied = authorize(&s, PROD_MAPPING).await.expect("authorize");
    assert!(!denied.allowed);
    confirm(&s, &run.name, 5, "bob", "database restored from prod backup").await.expect("confirm external refresh");

    let last = wait_for(&s, &run.name, 30, |r| matches!(r.state, SUCCEEDED | FAILED)).await;
    assert_eq!(last.state, SUCCEEDED, "run ended: {:?}", last.error);
    assert_eq!((last.steps[0].actor.as_str(), last.steps[0].comment.as_str()), ("alice", "approved in CAB-42"));
    assert_eq!((last.steps[4].actor.as_str(), last.steps[4].comment.as_str()), ("bob", "database restored from prod backup"));
    assert!(last.steps[4].changes.iter().any(|c| c.resource == SANDBOX_MAPPING && c.field == "fenced" && c.after == "true"));

    // After the post-refresh steps: the sandbox's mapping re-bound, production active, jobs back.
    let own = get_mapping(&s, SANDBOX_MAPPING).await;
    assert!(own.active && !own.fenced);
    assert!(authorize(&s, SANDBOX_MAPPING).await.expect("authorize").allowed);
    assert!(get_integration(&s, PROD_RALLY).await.active);
    assert!(authorize(&s, PROD_MAPPING).await.expect("authorize").allowed);
    for (name, state, paused_by) in &fx.jobs {
        let j = get_job(&s, name).await;
        assert_eq!((j.state, &j.paused_by), (*state, paused_by), "job {name} back to its prior state");
    }
    let again = confirm(&s, &run.name, 5, "bob", "").await.expect_err("nothing waits");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
}

fn plan_req(source: &str, destination: &str) -> pb::PlanRefreshRequest {
    pb::PlanRefreshRequest { source: source.into(), destination: destination.into(), options: None }
}

pub async fn refusals(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s, false).await;
    env(&s, "uat", false).await;
    let mut rf = s.refresh.clone();

    // Production is never a destination; source and destination differ; names are checked.
    let e = rf.plan_refresh(plan_req("environments/sandbox", "environments/prod")).await.expect_err("production");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&e), vec!["environments/prod"]);
    let e = start(&s, "sandbox", "prod", None).await.expect_err("production");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = rf.plan_refresh(plan_req("environments/prod", "environments/prod")).await.expect_err("same");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = start(&s, "sandbox", "sandbox", None).await.expect_err("same");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = rf.plan_refresh(plan_req("prod", "environments/Sandbox")).await.expect_err("malformed");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = rf.plan_refresh(plan_req("environments/prod", "environments/nowhere")).await.expect_err("unknown");
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = s
        .refresh_viewer
        .clone()
        .start_refresh(pb::StartRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            ..Default::default()
        })
        .await
        .expect_err("viewer");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let e = rf
        .start_refresh(pb::StartRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            plan_etag: "stale".into(),
            ..Default::default()
        })
        .await
        .expect_err("stale plan");
    assert_eq!(e.code(), tonic::Code::Aborted);

    // A run holds both environments; a retry with its request_id returns it.
    let req = pb::StartRefreshRequest {
        source: "environments/prod".into(),
        destination: "environments/sandbox".into(),
        options: options(pb::RefreshMode::Managed, true),
        plan_etag: String::new(),
        request_id: "start-1".into(),
    };
    let run = rf.start_refresh(req.clone()).await.expect("start").into_inner();
    assert_eq!(rf.start_refresh(req.clone()).await.expect("replay").into_inner().name, run.name);
    let e =
        rf.start_refresh(pb::StartRefreshRequest { destination: "environments/uat".into(), ..req.clone() }).await.expect_err("reused id");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    for (src, dst) in [("environments/prod", "environments/uat"), ("environments/uat", "environments/sandbox")] {
        let e = rf.plan_refresh(plan_req(src, dst)).await.expect_err("locked");
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert_eq!(precondition_subjects(&e), vec![run.name.clone()]);
        let e = rf
            .start_refresh(pb::StartRefreshRequest { source: src.into(), destination: dst.into(), ..Default::default() })
            .await
            .expect_err("locked");
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    }
    wait_for(&s, &run.name, 20, |r| r.state == WAITING).await;
    let e = rf
        .retry_refresh_run(pb::RetryRefreshRunRequest { name: run.name.clone(), request_id: String::new() })
        .await
        .expect_err("not failed");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = rf.get_refresh_run(pb::GetRefreshRunRequest { name: "refreshRuns/nope".into() }).await.expect_err("unknown");
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = rf.get_refresh_run(pb::GetRefreshRunRequest { name: "runs/x".into() }).await.expect_err("malformed");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);

    // Aborting at the approval gate changes nothing and frees the environments.
    rf.abort_refresh_run(pb::AbortRefreshRunRequest { name: run.name.clone(), reason: "not today".into(), request_id: String::new() })
        .await
        .expect("abort");
    let aborted = wait_for(&s, &run.name, 20, |r| r.state == ABORTED).await;
    assert!(aborted.steps[1..].iter().all(|st| st.state == pb::StepState::Skipped as i32));
    assert!(get_integration(&s, PROD_RALLY).await.active);
    assert!(!fence(&s, "prod").await.fenced);

    // A finished run cannot be aborted.
    let second = start(&s, "prod", "uat", None).await.expect("start after abort");
    wait_for(&s, &second.name, 30, |r| r.state == SUCCEEDED).await;
    let e = rf
        .abort_refresh_run(pb::AbortRefreshRunRequest { name: second.name.clone(), reason: String::new(), request_id: String::new() })
        .await
        .expect_err("succeeded");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);

    // Lists: newest first, paged, filtered.
    let page = rf.list_refresh_runs(pb::ListRefreshRunsRequest { page_size: 1, ..Default::default() }).await.expect("list").into_inner();
    assert_eq!(page.refresh_runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec![second.name.as_str()]);
    let next = rf
        .list_refresh_runs(pb::ListRefreshRunsRequest { page_size: 1, page_token: page.next_page_token.clone(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(next.refresh_runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec![run.name.as_str()]);
    assert!(next.next_page_token.is_empty());
    let aborted_only =
        rf.list_refresh_runs(pb::ListRefreshRunsRequest { states: vec![ABORTED], ..Default::default() }).await.expect("list").into_inner();
    assert_eq!(aborted_only.refresh_runs.len(), 1);
    let uat = rf
        .list_refresh_runs(pb::ListRefreshRunsRequest { environment: "environments/uat".into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(uat.refresh_runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec![second.name.as_str()]);
    let e = rf
        .list_refresh_runs(pb::ListRefreshRunsRequest {
            environment: "environments/uat".into(),
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .expect_err("foreign token");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
}

/// The four-eyes rule (the prod overlay's `FERRY_REFRESH_FOUR_EYES`): the identity that
/// started a run cannot approve it, even with the approver right; an identity without the
/// right cannot either; another approver can, and the step records who it is.
pub async fn four_eyes_approval(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs { four_eyes: true, ..Knobs::default() }).await else { return };
    arrange(&s, false).await;
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, true)).await.expect("start");
    assert_eq!(run.created_by, ADMIN_SUBJECT);
    let waiting = wait_for(&s, &run.name, 20, |r| r.state == WAITING).await;
    assert_eq!(waiting.steps[0].waiting_for, "approval");

    let own = confirm(&s, &run.name, 1, "", "").await.expect_err("the starter approving");
    assert_eq!(own.code(), tonic::Code::PermissionDenied, "{own:?}");
    assert!(own.message().contains("four-eyes rule: ada@example.com started refreshRuns/"), "{}", own.message());
    let pat = confirm_with(s.refresh_as(PERSON), &run.name, 1, "", "").await.expect_err("no approver right");
    assert_eq!(pat.code(), tonic::Code::PermissionDenied, "{pat:?}");
    assert!(pat.message().contains("needs the approver right, which pat@example.com does not have"), "{}", pat.message());
    let typed = confirm_with(s.refresh_as(APPROVER), &run.name, 1, "alice", "").await.expect_err("another name typed");
    assert_eq!(typed.code(), tonic::Code::InvalidArgument, "{typed:?}");
    assert_eq!(field_violations(&typed), vec!["actor".to_owned()]);
    let still = wait_for(&s, &run.name, 5, |r| r.state == WAITING).await;
    assert!(
        !still.steps[0].log.iter().any(|l| l.contains("confirmed by")),
        "a refused confirmation changes nothing: {:?}",
        still.steps[0].log
    );

    confirm_with(s.refresh_as(APPROVER), &run.name, 1, "", "CAB-7").await.expect("another approver");
    let last = wait_for(&s, &run.name, 30, |r| matches!(r.state, SUCCEEDED | FAILED)).await;
    assert_eq!(last.state, SUCCEEDED, "run ended: {:?}", last.error);
    assert_eq!((last.steps[0].actor.as_str(), last.steps[0].comment.as_str()), (APPROVER_SUBJECT, "CAB-7"));
    assert!(last.steps[0].log.iter().any(|l| l == "approval confirmed by vic@example.com"), "{:?}", last.steps[0].log);
}
