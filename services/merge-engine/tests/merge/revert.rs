//! A revert puts back what a TAKE_SOURCE merge overwrote, from the content the registry
//! kept, and leaves an overwritten entity changed since as it is.

use ferry_proto::merge::v1 as mpb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;
use crate::rules::{fixture, revert};

/// Every entity of `group` as (kind, key, payload), in order.
async fn contents(app: &TestApp, group: &str) -> Vec<(i32, String, String)> {
    entities_of(app, group).await.into_iter().map(|e| (e.kind, e.key, e.payload_json)).collect()
}

async fn take_source(app: &TestApp, s: &str, r: &str) -> mpb::Job {
    let p = plan(app, mpb::CreateMergePlanRequest { strategy: TAKE_SOURCE, ..plan_req(s, r) }).await;
    let job = apply_ok(app, &p.name).await;
    assert_eq!(result(&job).overwritten, 1, "svc-diff overwritten");
    job
}

pub async fn revert_puts_back_what_take_source_overwrote(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (s, r) = fixture(&app).await;
    let before = contents(&app, &r).await;

    let applied = take_source(&app, &s, &r).await;
    assert_ne!(contents(&app, &r).await, before);
    let job = wait_job(&app.merge, &revert(&app, &applied.name, false).await.expect("revert").name).await;
    assert_eq!(job.state, SUCCEEDED, "{:?}", job.error);
    let res = result(&job);
    assert_eq!((res.removed, res.unlinked, res.overwritten, res.not_reverted), (1, 1, 1, 0));
    assert_eq!(contents(&app, &r).await, before, "the recipient holds exactly what it held before the merge");

    // Merged again, and the overwritten entity edited since: the revert refuses, naming it;
    // told to proceed, it undoes the rest and leaves the edit.
    let applied = take_source(&app, &s, &r).await;
    let diff = find(&entities_of(&app, &r).await, SERVICE, "svc-diff").cloned().expect("svc-diff");
    edit_payload(&app, &diff.name, r#"{"edited":true}"#).await;
    let err = revert(&app, &applied.name, false).await.expect_err("changed since");
    assert_eq!((err.code(), precondition_subjects(&err)), (Code::FailedPrecondition, vec![diff.name.clone()]));
    let job = wait_job(&app.merge, &revert(&app, &applied.name, true).await.expect("proceed").name).await;
    assert_eq!(job.state, SUCCEEDED, "{:?}", job.error);
    let res = result(&job);
    assert_eq!((res.removed, res.unlinked, res.overwritten, res.not_reverted), (1, 1, 0, 1));
    let after = entities_of(&app, &r).await;
    assert_eq!(find(&after, SERVICE, "svc-diff").map(|e| e.payload_json.as_str()), Some(r#"{"edited":true}"#), "the edit stays");
    assert!(find(&after, SERVICE, "svc-new").is_none(), "the copy is removed");
}
