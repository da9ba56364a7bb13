//! Sync leases through a refresh: step 2's fences revoke them, step 3 waits until no sync
//! is in flight (or, with lease_drain REVOKE, goes on), and nothing in either environment
//! is granted a lease until the fences lift.

use std::time::{Duration, Instant};

use ferry_proto::integration::v1 as ipb;
use ferry_proto::refresh::v1 as pb;
use tonic_types::StatusExt;

use crate::helpers::*;
use crate::scenario::{COPIED_PROD_MAPPING, PROD_MAPPING, SANDBOX_MAPPING, arrange};

async fn acquire(s: &Suite, mapping: &str, ttl_secs: i64) -> Result<ipb::SyncLease, tonic::Status> {
    let ttl = Some(prost_types::Duration { seconds: ttl_secs, nanos: 0 });
    let req = ipb::AcquireSyncLeaseRequest { mapping: mapping.into(), job: String::new(), ttl, request_id: String::new() };
    s.integration.clone().acquire_sync_lease(req).await.map(|r| r.into_inner())
}

fn kinds(status: &tonic::Status) -> Vec<String> {
    status.get_details_precondition_failure().map(|p| p.violations.into_iter().map(|v| v.r#type).collect()).unwrap_or_default()
}

fn step3_says(run: &pb::RefreshRun, text: &str) -> bool {
    run.steps.get(2).is_some_and(|s| s.log.iter().any(|l| l.contains(text)))
}

/// Two runtimes hold leases, one in production and one in the sandbox. The refresh fences
/// both (revoking the leases), then waits at step 3 until each runtime has heard: one by a
/// refused renewal, one by releasing. Only then is anything snapshotted or copied.
pub async fn refresh_waits_until_no_sync_is_in_flight(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s, false).await;
    let prod = acquire(&s, PROD_MAPPING, 120).await.expect("production syncs");
    let sandbox = acquire(&s, SANDBOX_MAPPING, 120).await.expect("the sandbox syncs");
    assert!(prod.credential.is_some() && sandbox.credential.is_some());

    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    let waiting = wait_for(&s, &run.name, 60, |r| step3_says(r, "waiting for 2 sync(s) in flight")).await;
    assert!(step3_says(&waiting, &prod.name) && step3_says(&waiting, &sandbox.name), "names them: {:?}", waiting.steps[2].log);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = get_run(&s, &run.name).await;
    assert_eq!(still.steps[3].state, pb::StepState::Pending as i32, "nothing is snapshotted while a sync may run");
    let fenced = acquire(&s, SANDBOX_MAPPING, 30).await.expect_err("fenced: no new lease");
    assert_eq!(kinds(&fenced).first().map(String::as_str), Some("ENVIRONMENT_FENCED"), "{fenced:?}");

    // The sandbox runtime renews and hears it was revoked; the production one finishes
    // and releases. The refresh goes on at once, well before the leases' 120 s.
    let heard = Instant::now();
    let renew = ipb::RenewSyncLeaseRequest { name: sandbox.name.clone(), ttl: None };
    let refused = s.integration.clone().renew_sync_lease(renew).await.expect_err("revoked by the fence");
    assert_eq!(kinds(&refused), vec!["LEASE_REVOKED"], "{refused:?}");
    s.integration.clone().release_sync_lease(ipb::ReleaseSyncLeaseRequest { name: prod.name.clone() }).await.expect("release");
    let done = wait_for(&s, &run.name, 120, terminal).await;
    assert_eq!(done.state, SUCCEEDED, "{:?}", done.error);
    assert!(heard.elapsed() < Duration::from_secs(60), "went on when both were told, not at expiry");
    assert!(step3_says(&done, "no sync in flight in environments/prod or environments/sandbox after"), "{:?}", done.steps[2].log);

    // Unfenced, the production mapping the copy brought never gets a lease in the sandbox.
    let never = acquire(&s, COPIED_PROD_MAPPING, 30).await.expect_err("a production mapping in a sandbox");
    assert_eq!(kinds(&never).first().map(String::as_str), Some("PRODUCTION_MAPPING_IN_NON_PRODUCTION"), "{never:?}");
}

/// With lease_drain REVOKE, step 3 does not wait for a lease whose holder never calls.
pub async fn refresh_with_revoke_drain_goes_on_at_once(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s, false).await;
    let silent = acquire(&s, SANDBOX_MAPPING, 600).await.expect("a runtime that never renews");
    let mut opts = options(pb::RefreshMode::Managed, false);
    if let Some(o) = opts.as_mut() {
        o.lease_drain = pb::LeaseDrain::Revoke as i32;
    }
    let run = start(&s, "prod", "sandbox", opts).await.expect("start");
    let done = wait_for(&s, &run.name, 120, terminal).await;
    assert_eq!(done.state, SUCCEEDED, "{:?}", done.error);
    assert!(step3_says(&done, "not waited for"), "{:?}", done.steps[2].log);
    let req = ipb::ListSyncLeasesRequest {
        parent: "environments/sandbox".into(),
        page_size: 0,
        page_token: String::new(),
        show_ended: true,
        in_flight: false,
    };
    let kept = s.integration.clone().list_sync_leases(req).await.expect("list").into_inner().sync_leases;
    let lease = kept.iter().find(|l| l.name == silent.name).expect("kept");
    assert_eq!(lease.state, ipb::SyncLeaseState::Revoked as i32);
    assert!(lease.end_reason.contains("fenced by refreshRuns/"), "{lease:?}");
}
