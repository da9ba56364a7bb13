//! Crashes and outages: the coordinator stopped between steps and in the middle of one,
//! integration-control down during a post-refresh step, a step failing for good and aborted.

use ferry_proto::integration::v1 as ipb;
use ferry_proto::refresh::v1 as pb;

use crate::helpers::*;
use crate::scenario::*;

async fn snapshot_count(s: &Suite) -> usize {
    s.integration
        .clone()
        .list_snapshots(ipb::ListSnapshotsRequest { parent: "environments/sandbox".into(), page_size: 100, page_token: String::new() })
        .await
        .expect("list snapshots")
        .into_inner()
        .snapshots
        .len()
}

pub async fn coordinator_restarted_between_and_mid_step_completes_once(backend: Backend) {
    let Some(mut s) = spawn_suite(backend, Knobs { step_delay_ms: 300, retry_attempts: 200, retry_base_ms: 50, ..Knobs::default() }).await
    else {
        return;
    };
    let fx = arrange(&s, true).await;
    let poller = poll_copied_mapping(&s);
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, true)).await.expect("start");
    wait_for(&s, &run.name, 20, |r| r.state == WAITING).await;

    // Mid-step: integration-control is down, step 2 keeps retrying; the coordinator dies.
    s.stop_integration().await;
    s.refresh
        .clone()
        .confirm_refresh_step(pb::ConfirmRefreshStepRequest {
            name: run.name.clone(),
            step: 1,
            actor: "alice".into(),
            comment: String::new(),
            request_id: String::new(),
        })
        .await
        .expect("approve");
    let caught = wait_for(&s, &run.name, 20, |r| r.steps[1].state == STEP_RUNNING).await;
    assert_eq!(caught.steps[1].attempts, 1);
    assert!(caught.interruptions.is_empty());
    s.crash_coordinator().await;
    s.start_integration().await;
    s.start_coordinator().await;

    // Between steps: stop it each time a step completes, until the run ends.
    let mut restarts = 1;
    loop {
        let now = get_run(&s, &run.name).await;
        if terminal(&now) {
            break;
        }
        let before = steps_done(&now);
        wait_for(&s, &run.name, 30, |r| steps_done(r) > before || terminal(r)).await;
        s.crash_coordinator().await;
        restarts += 1;
        s.start_coordinator().await;
        assert!(restarts < 40, "the run makes progress across restarts");
    }
    let last = wait_for(&s, &run.name, 30, terminal).await;
    assert_eq!(last.state, SUCCEEDED, "run ended: {:?}", last.error);
    assert!(restarts >= 8, "stopped at least between every pair of steps ({restarts})");
    // Every stop while the run was held is on record (the last may come after its end),
    // and a step a stop caught in the middle counts the resumed attempt: step 2 at least.
    assert!(last.interruptions.len() + 1 >= restarts, "{} interruptions, {restarts} restarts", last.interruptions.len());
    assert!(last.interruptions.iter().any(|i| i.step == 2), "{:?}", last.interruptions);
    for st in &last.steps {
        let caught = last.interruptions.iter().filter(|i| i.step == st.number).count() as i32;
        assert_eq!((st.state, st.attempts), (STEP_SUCCEEDED, 1 + caught), "step {}: {:?}", st.number, last.interruptions);
    }
    assert!(last.interruptions.iter().all(|i| i.resume_time.is_some() && i.last_heard_time.is_some() && i.holder != i.resumed_by));

    // The same final state as an uninterrupted run, and no effect twice: one snapshot,
    // one deactivation of production's integration, each job paused once by the run.
    let (_, allowed) = poller.finish().await;
    assert_eq!(allowed, 0);
    assert_refreshed(&s, &fx).await;
    assert_eq!(snapshot_count(&s).await, 1);
    assert_eq!(last.steps[1].changes.iter().filter(|c| c.field == "active").count(), 1);
    assert_eq!(last.steps[2].changes.iter().filter(|c| c.field == "state").count(), 3);
    assert_eq!(last.steps[8].changes.iter().filter(|c| c.field == "state").count(), 3);
}

/// What a run's steps changed, with the run's own id taken out (the snapshot is named by
/// it): equal for two runs that did the same.
fn effects(run: &pb::RefreshRun) -> Vec<Vec<(String, String, String, String)>> {
    let id = run.name.trim_start_matches("refreshRuns/");
    run.steps
        .iter()
        .map(|st| {
            let plain = |v: &str| v.replace(id, "RUN");
            st.changes.iter().map(|c| (plain(&c.resource), c.field.clone(), plain(&c.before), plain(&c.after))).collect()
        })
        .collect()
}

/// The coordinator stopped after every operation a refresh journals, before the next one:
/// each operation takes effect once (journaled once; replayed, not repeated, when its
/// step runs again), and the run ends as one that was never stopped.
pub async fn coordinator_stopped_between_every_pair_of_journal_entries(backend: Backend) {
    // The run that is never stopped, for comparison.
    let Some(reference) = spawn_suite(backend, Knobs::default()).await else { return };
    let fx = arrange(&reference, false).await;
    let run = start(&reference, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    let expected = wait_for(&reference, &run.name, 60, terminal).await;
    assert_eq!(expected.state, SUCCEEDED, "{:?}", expected.error);
    assert_refreshed(&reference, &fx).await;
    let expected_journal = reference.journal(run.name.trim_start_matches("refreshRuns/")).await;
    drop(reference);

    let knobs = Knobs { op_delay_ms: 400, holder_id: Some("coordinator-0".into()), lease_secs: 30, ..Knobs::default() };
    let Some(mut s) = spawn_suite(backend, knobs).await else { return };
    let fx = arrange(&s, false).await;
    let poller = poll_copied_mapping(&s);
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    let id = run.name.trim_start_matches("refreshRuns/").to_owned();
    let mut seen = 0;
    let mut stops = 0;
    loop {
        let now = get_run(&s, &run.name).await;
        if terminal(&now) {
            break;
        }
        // The next entry is journaled: stop the coordinator in the pause after it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let journaled = loop {
            let n = s.journal(&id).await.len();
            if n > seen || terminal(&get_run(&s, &run.name).await) || std::time::Instant::now() > deadline {
                break n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        if journaled > seen {
            s.crash_coordinator().await;
            stops += 1;
            assert_eq!(s.journal(&id).await.len(), journaled, "stopped before the next operation");
            seen = journaled;
            s.start_coordinator().await;
        }
        assert!(stops <= expected_journal.len() + 2, "the run makes progress across stops");
    }
    let last = wait_for(&s, &run.name, 60, terminal).await;
    assert_eq!(last.state, SUCCEEDED, "run ended: {:?}", last.error);
    let journal = s.journal(&id).await;
    let ops = |j: &[(i32, String)]| {
        let mut ops = j.to_vec();
        ops.sort();
        ops
    };
    assert_eq!(ops(&journal), ops(&expected_journal), "the same operations, each once");
    assert!(stops + 1 >= journal.len(), "stopped after (nearly) every operation: {stops} stops, {} operations", journal.len());
    assert_eq!(effects(&last), effects(&expected), "the same changes as a run never stopped");
    let (_, allowed) = poller.finish().await;
    assert_eq!(allowed, 0, "no sync of the copied production mapping was allowed");
    assert_refreshed(&s, &fx).await;
    assert_eq!(snapshot_count(&s).await, 1);
}

pub async fn integration_control_outage_post_refresh_is_retried(backend: Backend) {
    let Some(mut s) =
        spawn_suite(backend, Knobs { step_delay_ms: 2500, retry_attempts: 200, retry_base_ms: 100, ..Knobs::default() }).await
    else {
        return;
    };
    let fx = arrange(&s, false).await;
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    wait_for(&s, &run.name, 30, |r| steps_done(r) >= 5).await;
    s.stop_integration().await;
    wait_for(&s, &run.name, 30, |r| r.steps[5].state == STEP_RUNNING).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let stuck = get_run(&s, &run.name).await;
    assert_eq!((stuck.state, stuck.steps[5].state), (pb::RunState::Running as i32, STEP_RUNNING), "step 6 waits for integration-control");

    s.start_integration().await;
    let last = wait_for(&s, &run.name, 60, terminal).await;
    assert_eq!(last.state, SUCCEEDED, "run ended: {:?}", last.error);
    assert_eq!(last.steps[5].attempts, 1, "retried within the step");
    assert_refreshed(&s, &fx).await;
}

pub async fn step_failing_for_good_is_aborted_and_source_restored(backend: Backend) {
    let Some(mut s) = spawn_suite(backend, Knobs { step_delay_ms: 2500, retry_attempts: 3, retry_base_ms: 50, ..Knobs::default() }).await
    else {
        return;
    };
    let fx = arrange(&s, false).await;
    let rally_before = get_integration(&s, PROD_RALLY).await;
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    wait_for(&s, &run.name, 30, |r| steps_done(r) >= 5).await;
    s.stop_integration().await;
    let failed = wait_for(&s, &run.name, 60, |r| r.state == FAILED).await;
    assert_eq!(failed.current_step, 6);
    assert_eq!(failed.steps[5].state, pb::StepState::Failed as i32);
    assert_eq!(failed.error.as_ref().map(|e| e.code), Some(tonic::Code::Unavailable as i32));
    // A failed run keeps its locks.
    let held = s
        .refresh
        .clone()
        .plan_refresh(pb::PlanRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: None,
        })
        .await
        .expect_err("locked");
    assert_eq!(held.code(), tonic::Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&held), vec![run.name.clone()]);

    s.start_integration().await;
    let aborting = s
        .refresh
        .clone()
        .abort_refresh_run(pb::AbortRefreshRunRequest {
            name: run.name.clone(),
            reason: "rally is down for the day".into(),
            request_id: String::new(),
        })
        .await
        .expect("abort")
        .into_inner();
    assert!(matches!(aborting.state, x if x == pb::RunState::Aborting as i32 || x == ABORTED));
    let last = wait_for(&s, &run.name, 60, terminal).await;
    assert_eq!(last.state, ABORTED, "abort ended: {:?}", last.error);
    let states: Vec<i32> = last.steps.iter().map(|st| st.state).collect();
    let (ok, undone, failed_st, skipped) =
        (STEP_SUCCEEDED, pb::StepState::Undone as i32, pb::StepState::Failed as i32, pb::StepState::Skipped as i32);
    assert_eq!(states, vec![ok, undone, undone, ok, undone, failed_st, skipped, skipped, skipped]);
    assert_eq!(last.abort_reason, "rally is down for the day");

    // The source exactly as before; the destination's integrations and mappings restored.
    let rally = get_integration(&s, PROD_RALLY).await;
    assert_eq!(
        (rally.active, rally.credential_state, &rally.credential_fingerprint),
        (rally_before.active, rally_before.credential_state, &rally_before.credential_fingerprint)
    );
    assert!(authorize(&s, PROD_MAPPING).await.expect("authorize").allowed);
    for (name, state, paused_by) in &fx.jobs {
        let j = get_job(&s, name).await;
        assert_eq!((j.state, &j.paused_by), (*state, paused_by), "job {name} back to its prior state");
    }
    assert!(!fence(&s, "prod").await.fenced && !fence(&s, "sandbox").await.fenced);
    let own = get_mapping(&s, SANDBOX_MAPPING).await;
    assert!(own.active && !own.fenced);
    assert!(authorize(&s, SANDBOX_MAPPING).await.expect("authorize").allowed);
    let copied = get_mapping(&s, COPIED_PROD_MAPPING).await;
    assert!(!copied.active);
    assert!(!authorize(&s, COPIED_PROD_MAPPING).await.expect("authorize").allowed);
    assert!(last.steps[1].undo_changes.iter().any(|c| c.resource == PROD_RALLY && c.after == "true"));

    let report = s
        .refresh
        .clone()
        .get_refresh_report(pb::GetRefreshReportRequest { name: format!("{}/report", run.name) })
        .await
        .expect("report")
        .into_inner();
    assert!(
        report.markdown.contains("registry: restored environments/sandbox from environments/sandbox/restorePoints/"),
        "{}",
        report.markdown
    );
    assert!(report.markdown.contains("Undone by the abort"));

    // Aborting again changes nothing; retrying an aborted run is refused; locks are free.
    let again = s
        .refresh
        .clone()
        .abort_refresh_run(pb::AbortRefreshRunRequest { name: run.name.clone(), reason: "again".into(), request_id: String::new() })
        .await
        .expect("abort again")
        .into_inner();
    assert_eq!((again.state, again.abort_reason.as_str()), (ABORTED, "rally is down for the day"));
    let retry = s
        .refresh
        .clone()
        .retry_refresh_run(pb::RetryRefreshRunRequest { name: run.name.clone(), request_id: String::new() })
        .await
        .expect_err("not failed");
    assert_eq!(retry.code(), tonic::Code::FailedPrecondition);
    s.refresh
        .clone()
        .plan_refresh(pb::PlanRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: None,
        })
        .await
        .expect("plan after the abort");
}

pub async fn failed_step_retried_completes(backend: Backend) {
    let Some(mut s) = spawn_suite(backend, Knobs { step_delay_ms: 2500, retry_attempts: 2, retry_base_ms: 50, ..Knobs::default() }).await
    else {
        return;
    };
    let fx = arrange(&s, false).await;
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    wait_for(&s, &run.name, 30, |r| steps_done(r) >= 6).await;
    s.stop_integration().await;
    let failed = wait_for(&s, &run.name, 60, |r| r.state == FAILED).await;
    assert_eq!(failed.current_step, 7);
    assert!(failed.steps[6].error.as_ref().is_some_and(|e| e.message.contains("integration-control")), "{:?}", failed.steps[6].error);

    s.start_integration().await;
    let retried = s
        .refresh
        .clone()
        .retry_refresh_run(pb::RetryRefreshRunRequest { name: run.name.clone(), request_id: "retry-1".into() })
        .await
        .expect("retry")
        .into_inner();
    assert_ne!(retried.state, FAILED);
    let last = wait_for(&s, &run.name, 60, terminal).await;
    assert_eq!(last.state, SUCCEEDED, "run ended: {:?}", last.error);
    assert_eq!(last.steps[6].attempts, 2, "the failed step was started again");
    assert!(last.error.is_none());
    assert_refreshed(&s, &fx).await;
    // The same retry again is a replay, not a second retry.
    let replay = s
        .refresh
        .clone()
        .retry_refresh_run(pb::RetryRefreshRunRequest { name: run.name.clone(), request_id: "retry-1".into() })
        .await
        .expect("replayed retry")
        .into_inner();
    assert_eq!(replay.state, SUCCEEDED);
}

pub async fn abort_while_running_undoes_in_reverse(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs { step_delay_ms: 800, ..Knobs::default() }).await else { return };
    let fx = arrange(&s, false).await;
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    wait_for(&s, &run.name, 30, |r| steps_done(r) >= 3).await;
    let aborting = s
        .refresh
        .clone()
        .abort_refresh_run(pb::AbortRefreshRunRequest { name: run.name.clone(), reason: "wrong window".into(), request_id: String::new() })
        .await
        .expect("abort")
        .into_inner();
    assert_eq!(aborting.state, pb::RunState::Aborting as i32);
    let last = wait_for(&s, &run.name, 30, terminal).await;
    assert_eq!(last.state, ABORTED, "abort ended: {:?}", last.error);
    assert!(last.steps[4..].iter().all(|st| st.state == pb::StepState::Skipped as i32), "nothing after the safe point ran");
    assert_eq!(last.steps[1].state, pb::StepState::Undone as i32);
    assert_eq!(last.steps[2].state, pb::StepState::Undone as i32);
    assert!(get_integration(&s, PROD_RALLY).await.active);
    for (name, state, paused_by) in &fx.jobs {
        let j = get_job(&s, name).await;
        assert_eq!((j.state, &j.paused_by), (*state, paused_by), "job {name} back to its prior state");
    }
    assert!(!fence(&s, "prod").await.fenced && !fence(&s, "sandbox").await.fenced);
    assert!(authorize(&s, SANDBOX_MAPPING).await.expect("authorize").allowed);
    assert!(authorize(&s, PROD_MAPPING).await.expect("authorize").allowed);
    // The sandbox was never copied over.
    assert!(get_mapping(&s, SANDBOX_MAPPING).await.active);
    assert_eq!(last.aborted_by, ADMIN_SUBJECT);
}

/// A coordinator restarted under its holder id (as `ferry up` and the Kubernetes manifests
/// run it) takes back the runs it left running at once, without waiting out their lease
/// (two minutes here), and the report says when the run was interrupted and resumed.
pub async fn restarted_coordinator_takes_its_runs_back_at_once(backend: Backend) {
    let holder = Some("coordinator-0".to_owned());
    let knobs = Knobs {
        step_delay_ms: 200,
        retry_attempts: 200,
        retry_base_ms: 50,
        lease_secs: 120,
        holder_id: holder,
        op_delay_ms: 0,
        ..Knobs::default()
    };
    let Some(mut s) = spawn_suite(backend, knobs).await else { return };
    let fx = arrange(&s, false).await;
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    // Caught in the middle of step 2: integration-control is down and the step retries.
    wait_for(&s, &run.name, 20, |r| r.steps[0].state == STEP_SUCCEEDED).await;
    s.stop_integration().await;
    wait_for(&s, &run.name, 20, |r| r.steps[1].state == STEP_RUNNING).await;
    s.crash_coordinator().await;
    s.start_integration().await;
    let restarted = std::time::Instant::now();
    s.start_coordinator().await;

    let moved = wait_for(&s, &run.name, 20, |r| !r.interruptions.is_empty()).await;
    let waited = restarted.elapsed();
    assert!(waited < std::time::Duration::from_secs(20), "taken back without waiting out the 120 s lease ({waited:?})");
    let last = wait_for(&s, &run.name, 60, terminal).await;
    assert_eq!(last.state, SUCCEEDED, "{:?}", last.error);
    assert_refreshed(&s, &fx).await;
    assert_eq!(moved.interruptions.len(), 1, "{:?}", moved.interruptions);
    let i = &last.interruptions[0];
    assert_eq!((i.holder.as_str(), i.resumed_by.as_str(), i.step), ("coordinator-0", "coordinator-0", 2));
    assert_eq!(last.steps[1].attempts, 2, "the interrupted attempt and the resumed one");
    assert!(last.steps[1].log.iter().any(|l| l.starts_with("resumed after an interruption")), "{:?}", last.steps[1].log);
    let report = s
        .refresh
        .clone()
        .get_refresh_report(pb::GetRefreshReportRequest { name: format!("{}/report", run.name) })
        .await
        .expect("report")
        .into_inner()
        .markdown;
    assert!(report.contains("| Interrupted | during step 2: `coordinator-0` stopped (last heard from 20"), "{report}");
    assert!(report.contains("- Attempts: 2"), "{report}");
}
