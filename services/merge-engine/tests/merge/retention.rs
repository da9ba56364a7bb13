//! Retention: a plan's items and an ended job's effects are pruned past their expiry in
//! bounded batches, never from under a revert waiting to run; what needed them is then
//! refused precisely, and the plans and jobs themselves stay.

use ferry_proto::merge::v1 as mpb;
use merge_engine::service::retention::{Pruned, prune};
use sea_orm::Database;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;
use crate::rules::{fixture, revert};

const WEEK: i64 = 7 * 24 * 3600;
/// A `now` far past every expiry.
const LATER: i64 = i64::MAX / 2;

fn secs(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map(|t| t.seconds).expect("a time")
}

pub async fn expired_items_and_effects_are_pruned_in_batches_and_refused_after(b: Backend) {
    let Some(mut app) = spawn_app(b).await else { return };
    let (s, r) = fixture(&app).await;
    let stage = group(&app, "dev", "stage").await;
    let p = plan(&app, plan_req(&s, &r)).await;
    assert_eq!((secs(&p.expire_time) - secs(&p.create_time), p.items_pruned), (WEEK, false), "items kept a week by default");
    let applied = apply_ok(&app, &p.name).await;
    assert_eq!((secs(&applied.expire_time) - secs(&applied.end_time), applied.effects_pruned), (WEEK, false));
    let unreverted = apply_ok(&app, &plan(&app, plan_req(&s, &stage)).await.name).await;
    let never_applied = plan(&app, plan_req(&s, &r)).await;
    assert_eq!(never_applied.state, READY);

    // A revert waiting in the queue keeps its job's effects, however late it is.
    app.restart_engine_with(|c| c.workers = 0).await;
    let queued = revert(&app, &applied.name, false).await.expect("revert queued");
    if let Some(e) = app.engine.take() {
        e.kill();
    }
    let (items, effects) = (rows(&app, "plan_items").await, rows(&app, "job_effects").await);
    assert!(items >= 9 && effects >= 4, "three plans' items ({items}) and two applies' effects ({effects})");
    let db = Database::connect(&app.engine_db).await.expect("connect to the engine database");
    let first = prune(&db, LATER, 2).await.expect("prune");
    assert_eq!((first.plans, first.items, first.jobs), (3, items, 1), "every plan's items in batches of 2; one job's effects");
    assert_eq!(rows(&app, "plan_items").await, 0);
    let kept = rows(&app, "job_effects").await;
    assert_eq!(first.effects, effects - kept);
    assert!(kept >= 2, "the effects the queued revert needs are kept ({kept})");

    app.restart_engine(50).await;
    let done = wait_job(&app.merge, &queued.name).await;
    assert_eq!((done.state, result(&done).removed, result(&done).unlinked), (SUCCEEDED, 1, 1), "{:?}", done.error);
    let left = rows(&app, "job_effects").await;
    assert!(left >= kept, "what the revert kept is still there");
    let second = prune(&db, LATER, 2).await.expect("prune again");
    assert_eq!((second.plans, second.items, second.jobs, second.effects), (0, 0, 2, left), "the reverted job and its revert");
    assert_eq!(rows(&app, "job_effects").await, 0);
    assert_eq!(prune(&db, LATER, 2).await.expect("a third pass"), Pruned::default(), "nothing left to prune");
    db.close().await.ok();

    // The plans and jobs stay, marked; what needed the rows is refused, saying why.
    let p = get_plan(&app, &p.name).await;
    assert_eq!((p.state, p.items_pruned), (APPLIED, true));
    let expired = get_plan(&app, &never_applied.name).await;
    assert_eq!((expired.state, expired.items_pruned), (PLAN_EXPIRED, true));
    let err = apply(&app, &expired.name, false).await.expect_err("an expired plan");
    assert_eq!((err.code(), precondition_types(&err)), (Code::FailedPrecondition, vec!["PLAN_EXPIRED".to_owned()]));
    let err = app
        .merge
        .clone()
        .list_merge_plan_items(mpb::ListMergePlanItemsRequest { parent: p.name.clone(), ..Default::default() })
        .await
        .expect_err("items pruned");
    assert_eq!((err.code(), precondition_types(&err)), (Code::FailedPrecondition, vec!["ITEMS_PRUNED".to_owned()]));
    assert!(get_job(&app.merge, &unreverted.name).await.effects_pruned);
    let err = revert(&app, &unreverted.name, false).await.expect_err("its effects are gone");
    assert_eq!((err.code(), precondition_types(&err)), (Code::FailedPrecondition, vec!["JOB_EXPIRED".to_owned()]));
    let listed = app
        .merge
        .clone()
        .list_merge_plans(mpb::ListMergePlansRequest { states: vec![PLAN_EXPIRED], ..Default::default() })
        .await
        .expect("list expired plans")
        .into_inner();
    assert_eq!(listed.merge_plans.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec![expired.name.as_str()]);

    // Past its expiry a READY plan reads EXPIRED at once, before any pruning.
    app.restart_engine_with(|c| c.plan_retention_hours = 0).await;
    let fresh = plan(&app, plan_req(&s, &r)).await;
    assert_eq!(fresh.state, PLAN_EXPIRED);
    let err = apply(&app, &fresh.name, false).await.expect_err("expired at creation");
    assert_eq!((err.code(), precondition_types(&err)), (Code::FailedPrecondition, vec!["PLAN_EXPIRED".to_owned()]));
}
