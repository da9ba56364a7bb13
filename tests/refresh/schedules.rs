//! Scheduled refreshes: the schedule resource's operations and refusals, a due time missed
//! while the coordinator was down (one run when it comes back), a due time while the
//! environments are locked (skipped, the reason recorded), and two coordinators on one
//! database (one run).

use std::time::Duration;

use ferry_kit::db::now_micros;
use ferry_proto::refresh::v1 as pb;
use tonic::Code;

use crate::helpers::*;
use crate::scenario::*;

const NAME: &str = "refreshSchedules/nightly";

fn schedule(cron: &str, zone: &str) -> pb::RefreshSchedule {
    pb::RefreshSchedule {
        source: "environments/prod".into(),
        destination: "environments/sandbox".into(),
        options: options(pb::RefreshMode::Managed, false),
        cron: cron.into(),
        time_zone: zone.into(),
        ..Default::default()
    }
}

async fn create(s: &Suite, cron: &str) -> pb::RefreshSchedule {
    let req =
        pb::CreateRefreshScheduleRequest { schedule_id: "nightly".into(), schedule: Some(schedule(cron, "")), request_id: String::new() };
    s.refresh.clone().create_refresh_schedule(req).await.expect("create schedule").into_inner()
}

async fn get(s: &Suite) -> pb::RefreshSchedule {
    s.refresh.clone().get_refresh_schedule(pb::GetRefreshScheduleRequest { name: NAME.into() }).await.expect("get schedule").into_inner()
}

fn micros(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos / 1000))
}

/// The runs the schedule started (created by it), newest first.
async fn scheduled_runs(s: &Suite) -> Vec<pb::RefreshRun> {
    let req = pb::ListRefreshRunsRequest { page_size: 100, ..Default::default() };
    let runs = s.refresh.clone().list_refresh_runs(req).await.expect("list runs").into_inner().refresh_runs;
    runs.into_iter().filter(|r| r.created_by == NAME).collect()
}

/// Waits until the schedule has handled a due time at or after `since`.
async fn handled(s: &Suite, since: i64) -> pb::RefreshSchedule {
    for _ in 0..300 {
        let now = get(s).await;
        if micros(now.last_run_time.as_ref()) >= since {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the schedule handled no due time: {:?}", get(s).await);
}

pub async fn schedule_operations_and_refusals(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s, false).await;
    let mut rf = s.refresh.clone();
    let before = now_micros();
    let created = create(&s, "0 3 * * MON").await;
    assert_eq!((created.name.as_str(), created.paused, created.etag.as_str()), (NAME, false, "1"));
    let next = micros(created.next_run_time.as_ref());
    assert!(next > before && next - before <= 7 * 86_400_000_000, "next Monday 03:00 UTC: {next}");
    assert_eq!(created.created_by, ADMIN_SUBJECT);

    // Refusals: every bad field at once; the same id again.
    let bad = pb::CreateRefreshScheduleRequest {
        schedule_id: "Nightly".into(),
        schedule: Some(pb::RefreshSchedule { destination: "environments/prod".into(), ..schedule("0 3 * *", "Mars/Olympus") }),
        request_id: String::new(),
    };
    let e = rf.create_refresh_schedule(bad).await.expect_err("invalid");
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut fields = field_violations(&e);
    fields.sort();
    assert_eq!(fields, ["schedule.cron", "schedule.destination", "schedule_id"], "{e:?}");
    let e = rf
        .create_refresh_schedule(pb::CreateRefreshScheduleRequest {
            schedule_id: "x".into(),
            schedule: Some(schedule("0 3 * * *", "Mars/Olympus")),
            request_id: String::new(),
        })
        .await
        .expect_err("zone");
    assert_eq!(field_violations(&e), ["schedule.time_zone"]);
    let again = pb::CreateRefreshScheduleRequest {
        schedule_id: "nightly".into(),
        schedule: Some(schedule("0 4 * * *", "")),
        request_id: String::new(),
    };
    assert_eq!(rf.create_refresh_schedule(again).await.expect_err("exists").code(), Code::AlreadyExists);

    // Update: the time zone moves the next run; a stale etag is refused.
    let update = |cron: &str, zone: &str, etag: &str, paths: &[&str]| pb::UpdateRefreshScheduleRequest {
        schedule: Some(pb::RefreshSchedule { name: NAME.into(), ..schedule(cron, zone) }),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        etag: etag.into(),
        request_id: String::new(),
    };
    let updated =
        rf.update_refresh_schedule(update("30 2 * * *", "Asia/Tokyo", "1", &["cron", "time_zone"])).await.expect("update").into_inner();
    assert_eq!((updated.cron.as_str(), updated.time_zone.as_str(), updated.etag.as_str()), ("30 2 * * *", "Asia/Tokyo", "2"));
    let next = micros(updated.next_run_time.as_ref());
    // 02:30 in Tokyo is 17:30 UTC.
    assert_eq!((next / 1_000_000) % 86_400, 17 * 3600 + 30 * 60, "read in the schedule's zone");
    let e = rf.update_refresh_schedule(update("0 1 * * *", "", "1", &["cron"])).await.expect_err("stale etag");
    assert_eq!(e.code(), Code::Aborted);
    let e = rf.update_refresh_schedule(update("0 1 * * *", "", "", &["paused"])).await.expect_err("not a path");
    assert_eq!(field_violations(&e), ["update_mask.paths[0]"]);

    // Pause, resume, delete, undelete.
    let paused = rf
        .pause_refresh_schedule(pb::PauseRefreshScheduleRequest { name: NAME.into(), request_id: String::new() })
        .await
        .expect("pause")
        .into_inner();
    assert!(paused.paused && paused.next_run_time.is_none());
    let resumed = rf
        .resume_refresh_schedule(pb::ResumeRefreshScheduleRequest { name: NAME.into(), request_id: String::new() })
        .await
        .expect("resume")
        .into_inner();
    assert!(!resumed.paused && resumed.next_run_time.is_some());
    let deleted = rf
        .delete_refresh_schedule(pb::DeleteRefreshScheduleRequest { name: NAME.into(), request_id: String::new() })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.delete_time.is_some() && deleted.next_run_time.is_none());
    let e = rf.get_refresh_schedule(pb::GetRefreshScheduleRequest { name: NAME.into() }).await.expect_err("deleted");
    assert_eq!(e.code(), Code::NotFound);
    let list = |show_deleted| pb::ListRefreshSchedulesRequest { page_size: 10, page_token: String::new(), show_deleted };
    assert!(rf.list_refresh_schedules(list(false)).await.expect("list").into_inner().refresh_schedules.is_empty());
    assert_eq!(rf.list_refresh_schedules(list(true)).await.expect("list").into_inner().refresh_schedules.len(), 1);
    let back = rf
        .undelete_refresh_schedule(pb::UndeleteRefreshScheduleRequest { name: NAME.into(), request_id: String::new() })
        .await
        .expect("undelete")
        .into_inner();
    assert!(back.delete_time.is_none() && back.next_run_time.is_some());
    assert_eq!((back.cron.as_str(), back.time_zone.as_str()), ("30 2 * * *", "Asia/Tokyo"), "as it was");
    let e = rf
        .undelete_refresh_schedule(pb::UndeleteRefreshScheduleRequest { name: NAME.into(), request_id: String::new() })
        .await
        .expect_err("not deleted");
    assert_eq!(e.code(), Code::AlreadyExists);
    let e = rf.get_refresh_schedule(pb::GetRefreshScheduleRequest { name: "refreshSchedules/Bad".into() }).await.expect_err("bad name");
    assert_eq!(field_violations(&e), ["name"]);
    assert!(e.message().contains("refreshSchedules/{schedule}"), "{e:?}");
    let e = rf.get_refresh_schedule(pb::GetRefreshScheduleRequest { name: "refreshRuns/nightly".into() }).await.expect_err("a run's name");
    assert!(field_violations(&e) == ["name"] && e.message().contains("refreshSchedules/{schedule}"), "{e:?}");
    // A viewer cannot create one.
    let viewer = pb::CreateRefreshScheduleRequest {
        schedule_id: "other".into(),
        schedule: Some(schedule("0 3 * * *", "")),
        request_id: String::new(),
    };
    let e = s.refresh_viewer.clone().create_refresh_schedule(viewer).await.expect_err("viewer");
    assert_eq!(e.code(), Code::PermissionDenied);
}

/// Due several times while no coordinator ran: one run when one comes back.
pub async fn schedule_missed_while_down_starts_one_run(backend: Backend) {
    let Some(mut s) = spawn_suite(backend, Knobs::default()).await else { return };
    let fx = arrange(&s, false).await;
    create(&s, "*/5 * * * *").await;
    s.crash_coordinator().await;
    let missed = now_micros() - 3 * 3600 * 1_000_000;
    s.make_due("nightly", missed).await;
    s.start_coordinator().await;
    let after = handled(&s, missed).await;
    assert_eq!(micros(after.last_run_time.as_ref()), missed, "the oldest missed time is the one handled");
    assert!(micros(after.next_run_time.as_ref()) > now_micros(), "the next due time is after now, not another missed one");
    assert!(after.last_run.starts_with("refreshRuns/") && after.last_skip_reason.is_empty(), "{after:?}");
    let run = wait_for(&s, &after.last_run, 60, |r| matches!(r.state, SUCCEEDED | FAILED | ABORTED)).await;
    assert_eq!(run.state, SUCCEEDED, "{:?}", run.error);
    assert_refreshed(&s, &fx).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let runs = scheduled_runs(&s).await.len();
    // Every five minutes: a test that crossed the next due time sees that time's run too.
    let due_again = now_micros() >= micros(after.next_run_time.as_ref());
    assert!(runs == 1 || (due_again && runs == 2), "one run for all the missed times: {runs}");
}

/// Due while a run holds the environments: skipped, with the run named.
pub async fn schedule_due_while_locked_is_skipped(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s, false).await;
    let holder = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, true)).await.expect("a run that waits for approval");
    wait_for(&s, &holder.name, 20, |r| r.state == WAITING).await;
    create(&s, "0 3 * * *").await;
    let due = now_micros() - 1_000_000;
    s.make_due("nightly", due).await;
    let after = handled(&s, due).await;
    assert!(after.last_run.is_empty(), "{after:?}");
    assert!(after.last_skip_reason.contains(&holder.name), "the reason names the run holding the environments: {}", after.last_skip_reason);
    assert!(micros(after.next_run_time.as_ref()) > now_micros());
    assert!(scheduled_runs(&s).await.is_empty());
}

/// Two coordinators on one database: a due time starts one run.
pub async fn two_coordinators_start_a_due_schedule_once(backend: Backend) {
    let Some(mut s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s, false).await;
    s.start_replica().await;
    s.start_replica().await;
    create(&s, "0 3 * * *").await;
    let due = now_micros() - 1_000_000;
    s.make_due("nightly", due).await;
    let after = handled(&s, due).await;
    let run = wait_for(&s, &after.last_run, 60, |r| matches!(r.state, SUCCEEDED | FAILED | ABORTED)).await;
    assert_eq!(run.state, SUCCEEDED, "{:?}", run.error);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let runs = scheduled_runs(&s).await;
    assert_eq!(runs.len(), 1, "{:?}", runs.iter().map(|r| &r.name).collect::<Vec<_>>());
    assert_eq!(get(&s).await.last_skip_reason, "", "no replica found the environments locked by the other's run");
}

/// A caller scoped to some environments lists the schedules whose environments are all in
/// its scope, filtered in the query: a full first page, not an empty one.
pub async fn scoped_schedule_list_is_filtered_in_the_query(backend: ferry_testkit::Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    for (id, production) in [("prod", true), ("sandbox", false), ("other", false)] {
        env(&s, id, production).await;
    }
    for (id, source) in [("a-from-prod", "prod"), ("b-from-prod", "prod"), ("c-from-other", "other")] {
        let schedule = pb::RefreshSchedule { source: format!("environments/{source}"), ..schedule("0 3 * * *", "") };
        let req = pb::CreateRefreshScheduleRequest { schedule_id: id.into(), schedule: Some(schedule), request_id: String::new() };
        s.refresh.clone().create_refresh_schedule(req).await.expect("create schedule");
    }
    let req = pb::ListRefreshSchedulesRequest { page_size: 1, ..Default::default() };
    let page = s.refresh_as(SCOPED).list_refresh_schedules(req).await.expect("list").into_inner();
    assert_eq!(page.refresh_schedules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["refreshSchedules/c-from-other"]);
    let all = s.refresh.clone().list_refresh_schedules(pb::ListRefreshSchedulesRequest::default()).await.expect("list").into_inner();
    assert_eq!(all.refresh_schedules.len(), 3, "the admin sees all");
}
