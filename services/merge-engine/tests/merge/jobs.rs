//! Jobs under faults and concurrency: concurrent applies, a crash mid-apply, two engines
//! on one queue, cancel and watch.

use std::time::{Duration, Instant};

use ferry_proto::merge::v1 as mpb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

fn services(prefix: &str, range: std::ops::Range<usize>) -> Vec<ferry_proto::registry::v1::Entity> {
    range.map(|i| entity(if i % 4 == 0 { LOOKUP } else { SERVICE }, &format!("{prefix}{i:05}"), r#"{"n":1}"#)).collect()
}

pub async fn concurrent_applies_into_one_recipient_never_duplicate_keys(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev").await;
    let s1 = group(&app, "dev", "s1").await;
    let s2 = group(&app, "dev", "s2").await;
    let r = group(&app, "dev", "r").await;
    // Overlapping keys: 0..300 and 150..450 (different entities, same content).
    import(&app, &s1, services("k", 0..300)).await;
    import(&app, &s2, services("k", 150..450)).await;
    let p1 = plan(&app, plan_req(&s1, &r)).await;
    let p2 = plan(&app, plan_req(&s2, &r)).await;

    let (j1, j2) = tokio::join!(apply(&app, &p1.name, false), apply(&app, &p2.name, false));
    let mut ended = Vec::new();
    for j in [j1, j2] {
        match j {
            Ok(j) => ended.push(wait_job(&app.merge, &j.name).await),
            Err(e) => assert_eq!(e.code(), Code::Aborted, "only a stale refusal is acceptable: {e:?}"),
        }
    }
    for j in &ended {
        assert!(
            j.state == SUCCEEDED || (j.state == FAILED && j.error.as_ref().map(|e| e.code) == Some(Code::Aborted as i32)),
            "a job either applies or is aborted as stale: {j:?}"
        );
    }
    assert!(ended.iter().any(|j| j.state == SUCCEEDED));
    assert_keys_unique(&app, &r).await;

    // Re-plan what was refused: the recipient ends with the union, each key once.
    for s in [&s1, &s2] {
        let p = plan(&app, plan_req(s, &r)).await;
        apply_ok(&app, &p.name).await;
    }
    assert_eq!(assert_keys_unique(&app, &r).await, 450);
}

pub async fn job_resumes_after_engine_stopped_mid_apply(b: Backend) {
    let Some(mut app) = spawn_app_with_chunk(b, 10).await else { return };
    env(&app, "dev").await;
    let s = group(&app, "dev", "s").await;
    let r = group(&app, "dev", "r").await;
    import(&app, &s, services("k", 0..1500)).await;
    let p = plan(&app, plan_req(&s, &r)).await;
    let job = apply(&app, &p.name, false).await.expect("apply");

    // Stop the engine once some chunks are applied, before the job ends.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = get_job(&app.merge, &job.name).await;
        assert_ne!(j.state, SUCCEEDED, "the job finished before the engine could be stopped; make it bigger");
        if j.progress.as_ref().is_some_and(|p| p.done >= 100) {
            break;
        }
        assert!(Instant::now() < deadline, "the job never progressed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.restart_engine(10).await;
    let mid = get_job(&app.merge, &job.name).await;
    assert!(!matches!(mid.state, SUCCEEDED | FAILED | CANCELLED), "stopped mid-apply: {mid:?}");
    // The pending work (what the autoscaler follows): one running apply, its items left.
    let work = pending(&app).await;
    assert_eq!(work.len(), 1, "{work:?}");
    let (kind, state) = (merge_engine::domain::JobKind::ApplyMerge, merge_engine::domain::JobState::Running);
    assert_eq!((work[0].kind, work[0].state, work[0].jobs), (kind, state, 1));
    assert!(work[0].items > 0 && work[0].items <= 1400, "items left: {work:?}");

    // The new engine takes the job over once the dead engine's lease expires.
    let done = wait_job(&app.merge, &job.name).await;
    assert_eq!(done.state, SUCCEEDED, "{:?}", done.error);
    let res = result(&done);
    assert_eq!(res.created + res.linked, 1500, "every operation counted exactly once: {res:?}");
    assert_eq!(done.progress.as_ref().map(|p| (p.done, p.total)), Some((1500, 1500)));
    assert_eq!(assert_keys_unique(&app, &r).await, 1500, "every key exactly once");
    assert_eq!(pending(&app).await, vec![], "no work left");
    assert_eq!(claims(&app, &job.name).await, 2, "claimed by the first engine, then taken over once");
}

pub async fn two_engines_share_one_queue_without_double_work(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let second = app.start_engine(50).await;
    env(&app, "dev").await;
    let s = group(&app, "dev", "s").await;
    import(&app, &s, services("k", 0..400)).await;
    let mut plans = Vec::new();
    for i in 0..4 {
        let r = group(&app, "dev", &format!("r{i}")).await;
        plans.push((r.clone(), plan(&app, plan_req(&s, &r)).await));
    }
    let mut jobs = Vec::new();
    for (i, (_, p)) in plans.iter().enumerate() {
        // Half the applies go through each engine; either engine may run any job.
        let client = if i % 2 == 0 { app.merge.clone() } else { second.client.clone() };
        let j = client
            .clone()
            .apply_merge_plan(mpb::ApplyMergePlanRequest { name: p.name.clone(), ..Default::default() })
            .await
            .expect("apply")
            .into_inner();
        jobs.push(j.name);
    }
    for (job, (r, _)) in jobs.iter().zip(&plans) {
        let j = wait_job(&second.client, job).await;
        assert_eq!(j.state, SUCCEEDED, "{:?}", j.error);
        let res = result(&j);
        assert_eq!((res.created + res.linked, res.skipped), (400, 0), "no operation ran twice: {res:?}");
        assert_eq!(claims(&app, job).await, 1, "one engine ran the job, once");
        assert_eq!(assert_keys_unique(&app, r).await, 400);
    }
}

pub async fn cancel_job_stops_between_chunks_and_watch_ends_terminal(b: Backend) {
    let Some(app) = spawn_app_with_chunk(b, 5).await else { return };
    env(&app, "dev").await;
    let s = group(&app, "dev", "s").await;
    let r = group(&app, "dev", "r").await;
    import(&app, &s, services("k", 0..2000)).await;
    let p = plan(&app, plan_req(&s, &r)).await;
    let job = apply(&app, &p.name, false).await.expect("apply");
    let mut watch = app.merge.clone().watch_job(mpb::WatchJobRequest { name: job.name.clone() }).await.expect("watch").into_inner();

    let deadline = Instant::now() + Duration::from_secs(30);
    // Cancel once some chunks are applied.
    while get_job(&app.merge, &job.name).await.progress.is_none_or(|p| p.done == 0) {
        assert!(Instant::now() < deadline, "job never progressed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancel = mpb::CancelJobRequest { name: job.name.clone(), request_id: String::new() };
    app.merge.clone().cancel_job(cancel.clone()).await.expect("cancel");
    let ended = wait_job(&app.merge, &job.name).await;
    assert_eq!(ended.state, CANCELLED);
    assert_eq!(ended.error.as_ref().map(|e| e.code), Some(Code::Cancelled as i32));
    let applied = result(&ended).created + result(&ended).linked;
    assert!(applied > 0 && applied < 2000, "stopped between chunks, before the end: {applied}");
    assert_eq!(entities_of(&app, &r).await.len() as i64, applied, "chunks applied stay applied, nothing more");
    let again = app.merge.clone().cancel_job(cancel).await.expect("cancel again").into_inner();
    assert_eq!(again.state, CANCELLED);
    // The plan is back to READY, which reads STALE: the partial apply moved the recipient.
    let got = app.merge.clone().get_merge_plan(mpb::GetMergePlanRequest { name: p.name.clone() }).await.expect("get").into_inner();
    assert_eq!(got.state, STALE);

    let mut states = Vec::new();
    while let Some(j) = watch.message().await.expect("watch message") {
        states.push(j.state);
    }
    assert_eq!(states.last(), Some(&CANCELLED), "the stream ends with the terminal snapshot: {states:?}");
    assert!(states.windows(2).all(|w| w[0] <= w[1]), "states only move forward: {states:?}");

    // A finished job cannot be cancelled.
    let p2 = plan(&app, mpb::CreateMergePlanRequest { keys: vec!["k00001".into()], ..plan_req(&s, &r) }).await;
    let done = apply_ok(&app, &p2.name).await;
    let err = app.merge.clone().cancel_job(mpb::CancelJobRequest { name: done.name, request_id: String::new() }).await.expect_err("ended");
    assert_eq!(err.code(), Code::FailedPrecondition);
}
