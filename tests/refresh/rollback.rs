//! A finished refresh rolled back: the destination gets back what it held before the
//! refresh (registry content from the refresh's restore point, integrations and mappings
//! from its snapshot), the copied production mappings stay denied, the source is never
//! touched; the rollback is refused after its window, while another run holds the
//! destination, or twice; an abort of a rollback gives back what it replaced.

use ferry_proto::refresh::v1 as pb;
use tonic_types::StatusExt;

use crate::helpers::*;
use crate::scenario::*;

async fn content(s: &Suite, env: &str) -> Vec<String> {
    ferry_testkit::content::environment(&mut s.registry.clone(), &format!("environments/{env}")).await
}

fn opts(require_approval: bool) -> Option<pb::RollbackOptions> {
    Some(pb::RollbackOptions { require_approval })
}

async fn plan_rollback(s: &Suite, refresh: &str) -> Result<pb::RollbackPlan, tonic::Status> {
    s.refresh
        .clone()
        .plan_rollback(pb::PlanRollbackRequest { refresh_run: refresh.into(), options: opts(false) })
        .await
        .map(|r| r.into_inner())
}

pub async fn start_rollback(s: &Suite, refresh: &str, require_approval: bool, plan_etag: &str) -> Result<pb::RollbackRun, tonic::Status> {
    s.refresh
        .clone()
        .start_rollback(pb::StartRollbackRequest {
            refresh_run: refresh.into(),
            options: opts(require_approval),
            plan_etag: plan_etag.into(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Polls rollback run `name` until `done` holds, for at most `secs` seconds.
async fn wait_rollback(s: &Suite, name: &str, secs: u64, done: impl Fn(&pb::RollbackRun) -> bool) -> pb::RollbackRun {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let run =
            s.refresh.clone().get_rollback_run(pb::GetRollbackRunRequest { name: name.into() }).await.expect("get rollback").into_inner();
        if done(&run) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollback {name} did not get there in {secs}s; state {} steps {:?}",
            run.state,
            run.steps.iter().map(|s| (s.number, s.state, s.log.clone())).collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn ended(run: &pb::RollbackRun) -> bool {
    matches!(run.state, SUCCEEDED | FAILED | ABORTED)
}

/// The reason kinds of a FAILED_PRECONDITION.
fn reasons(status: &tonic::Status) -> Vec<String> {
    status.get_details_precondition_failure().map(|p| p.violations.into_iter().map(|v| v.r#type).collect()).unwrap_or_default()
}

/// A MANAGED refresh of the sandbox from production, run to SUCCEEDED.
async fn refreshed(s: &Suite) -> String {
    let run = start(s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start the refresh");
    let done = wait_for(s, &run.name, 60, terminal).await;
    assert_eq!(done.state, SUCCEEDED, "{:?}", done.error);
    run.name
}

/// The sandbox's integrations side as people see it: its own mapping and integration,
/// every job's state and who paused it.
async fn integrations_side(s: &Suite, fx: &Fixture) -> Vec<String> {
    let own = get_mapping(s, SANDBOX_MAPPING).await;
    let mut lines = vec![
        format!("mapping {} active={} fenced={}", own.name, own.active, own.fenced),
        format!("integration {SANDBOX_RALLY} active={}", get_integration(s, SANDBOX_RALLY).await.active),
    ];
    for (job, _, _) in &fx.jobs {
        let j = get_job(s, job).await;
        lines.push(format!("job {job} state={} paused_by={}", j.state, j.paused_by));
    }
    lines
}

/// Refreshed, then changed by hand, then rolled back: the sandbox reads exactly as before
/// the refresh, production as it was, and the plan named what was discarded.
pub async fn rollback_gives_the_destination_back(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    let fx = arrange(&s, false).await;
    let own = group(&s, "sandbox", "own", &["lookup-a", "lookup-b"]).await;
    let (before, source) = (content(&s, "sandbox").await, content(&s, "prod").await);
    let side_before = integrations_side(&s, &fx).await;
    assert!(before.iter().any(|l| l.starts_with(&format!("group {own}"))), "{before:#?}");

    let refresh = refreshed(&s).await;
    assert_ne!(content(&s, "sandbox").await, before, "the refresh copied production over the sandbox");
    // Someone works in the refreshed sandbox: a group of their own, which the rollback discards.
    let made_after = group(&s, "sandbox", "made-after", &["tmp"]).await;

    let plan = plan_rollback(&s, &refresh).await.expect("plan the rollback");
    assert_eq!((plan.refresh_run.as_str(), plan.destination.as_str()), (refresh.as_str(), "environments/sandbox"));
    assert_eq!(plan.source, "environments/prod");
    let put_back = plan.put_back.expect("put back");
    assert_eq!(put_back.groups, 2, "the sandbox had two groups before the refresh: {put_back:?}");
    assert_eq!(put_back.projects, 1);
    let discarded = plan.discarded.expect("discarded");
    assert_eq!(discarded.groups, 2, "core (copied) and made-after: {discarded:?}");
    assert_eq!(plan.created_groups, vec![made_after.clone()]);
    assert!(plan.changed_groups.is_empty() && plan.deleted_groups.is_empty(), "{plan:?}");
    assert!(plan.window_end_time.is_some() && !plan.etag.is_empty());
    assert_eq!(plan.steps.len(), 6);
    assert!(plan.steps[3].summary.iter().any(|l| l.contains("created since") && l.contains(&made_after)), "{:?}", plan.steps[3]);

    let run = start_rollback(&s, &refresh, false, &plan.etag).await.expect("start the rollback");
    assert!(run.name.starts_with("rollbackRuns/"), "{}", run.name);
    let done = wait_rollback(&s, &run.name, 60, ended).await;
    assert_eq!(done.state, SUCCEEDED, "{:?} {:?}", done.error, done.steps.iter().map(|s| s.log.clone()).collect::<Vec<_>>());
    assert!(done.steps.iter().all(|st| st.state == STEP_SUCCEEDED), "{:?}", done.steps);

    assert_eq!(content(&s, "sandbox").await, before, "the sandbox's own content is back");
    assert_eq!(content(&s, "prod").await, source, "the source is never touched");
    assert_eq!(integrations_side(&s, &fx).await, side_before, "integrations, mappings and jobs as before the refresh");
    let copied = get_mapping(&s, COPIED_PROD_MAPPING).await;
    assert!(!copied.active, "the copied production mapping stays disabled: {copied:?}");
    assert!(!authorize(&s, COPIED_PROD_MAPPING).await.expect("authorize").allowed, "and is never allowed");
    assert!(authorize(&s, SANDBOX_MAPPING).await.expect("authorize").allowed, "the sandbox's own mapping syncs again");
    assert!(!fence(&s, "sandbox").await.fenced, "the fence is lifted");
    // Step 3 kept what the rollback replaced.
    assert!(done.steps[2].changes.iter().any(|c| c.resource.contains("/restorePoints/rollback-")), "{:?}", done.steps[2]);

    // Once is enough; the report says what happened.
    let again = start_rollback(&s, &refresh, false, "").await.expect_err("a second rollback");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");
    assert_eq!(reasons(&again), vec!["ALREADY_ROLLED_BACK"], "{again:?}");
    let report = s
        .refresh
        .clone()
        .get_rollback_report(pb::GetRollbackReportRequest { name: format!("{}/report", run.name) })
        .await
        .expect("report")
        .into_inner();
    assert!(report.markdown.starts_with(&format!("# Rollback of {refresh}")), "{}", report.markdown);
    let listed = s
        .refresh
        .clone()
        .list_rollback_runs(pb::ListRollbackRunsRequest { refresh_run: refresh.clone(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.rollback_runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec![run.name.as_str()]);
}

/// Refused with FAILED_PRECONDITION naming why: the window closed (naming when), the
/// destination held by another run (naming it), the refresh not SUCCEEDED; NOT_FOUND for
/// a refresh that does not exist.
pub async fn rollback_refusals(backend: Backend) {
    let Some(mut s) = spawn_suite(backend, Knobs { rollback_window_hours: 0, ..Knobs::default() }).await else { return };
    arrange(&s, false).await;
    let refresh = refreshed(&s).await;
    let late = plan_rollback(&s, &refresh).await.expect_err("the window of 0 hours closed");
    assert_eq!(late.code(), tonic::Code::FailedPrecondition, "{late:?}");
    assert_eq!(reasons(&late), vec!["ROLLBACK_WINDOW_PASSED"]);
    assert!(late.message().contains("closed at 20"), "names when: {}", late.message());
    assert_eq!(start_rollback(&s, &refresh, false, "").await.expect_err("start").code(), tonic::Code::FailedPrecondition);

    s.crash_coordinator().await;
    s.set_knobs(Knobs::default());
    s.start_coordinator().await;
    // Another run holds the sandbox (it waits for an approval).
    let holder = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, true)).await.expect("a refresh that waits");
    let held = start_rollback(&s, &refresh, false, "").await.expect_err("the sandbox is held");
    assert_eq!(held.code(), tonic::Code::FailedPrecondition, "{held:?}");
    assert_eq!(precondition_subjects(&held), vec![holder.name.clone()], "names the run that holds it: {held:?}");
    s.refresh
        .clone()
        .abort_refresh_run(pb::AbortRefreshRunRequest { name: holder.name.clone(), reason: "test".into(), request_id: String::new() })
        .await
        .expect("abort");
    assert_eq!(wait_for(&s, &holder.name, 60, terminal).await.state, ABORTED);
    let not_succeeded = plan_rollback(&s, &holder.name).await.expect_err("an aborted refresh");
    assert_eq!(reasons(&not_succeeded), vec!["REFRESH_NOT_SUCCEEDED"], "{not_succeeded:?}");
    let missing = plan_rollback(&s, "refreshRuns/nope").await.expect_err("no such refresh");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let bad = plan_rollback(&s, "promotionRuns/x").await.expect_err("not a refresh run name");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    // The window is open again on this coordinator: the rollback plans.
    plan_rollback(&s, &refresh).await.expect("within the default window");
}

/// Aborted after it restored the content (step 4) or the integrations (step 5), a rollback gives
/// the destination back what it held when the rollback started: the refreshed content.
pub async fn abort_of_a_rollback_gives_back_what_it_replaced(backend: Backend) {
    let Some(mut s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s, false).await;
    let refresh = refreshed(&s).await;
    let refreshed_content = content(&s, "sandbox").await;
    s.crash_coordinator().await;
    s.set_knobs(Knobs { step_delay_ms: 700, ..Knobs::default() });
    s.start_coordinator().await;

    for after_step in 4..=5 {
        let run = start_rollback(&s, &refresh, false, "").await.expect("start the rollback");
        wait_rollback(&s, &run.name, 60, |r| r.steps.iter().filter(|st| st.state == STEP_SUCCEEDED).count() >= after_step).await;
        assert_ne!(content(&s, "sandbox").await, refreshed_content, "step 4 restored the content from before the refresh");
        s.refresh
            .clone()
            .abort_rollback_run(pb::AbortRollbackRunRequest {
                name: run.name.clone(),
                reason: format!("after step {after_step}"),
                request_id: String::new(),
            })
            .await
            .expect("abort");
        let last = wait_rollback(&s, &run.name, 60, ended).await;
        assert_eq!(last.state, ABORTED, "after step {after_step}: {:?}", last.error);
        assert_eq!(content(&s, "sandbox").await, refreshed_content, "after step {after_step}: the content the rollback replaced is back");
        assert_eq!(last.steps[3].state, pb::StepState::Undone as i32, "{:?}", last.steps[3]);
        assert!(!fence(&s, "sandbox").await.fenced, "the fence is lifted");
    }
    // Not rolled back, so it can be rolled back again.
    plan_rollback(&s, &refresh).await.expect("an aborted rollback does not count");
}
