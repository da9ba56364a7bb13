//! The merge rules: G5, G6, G10–G13.

use ferry_proto::merge::v1 as mpb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

/// S and R in `dev`, with one key of each outcome.
pub async fn fixture(app: &TestApp) -> (String, String) {
    env(app, "dev").await;
    let s = group(app, "dev", "test").await;
    let r = group(app, "dev", "prod").await;
    create(app, &s, entity(SERVICE, "svc-new", r#"{"v":1}"#)).await;
    create(app, &s, entity(LOOKUP, "lk-new", r#"{"v":1}"#)).await;
    create(app, &s, entity(SERVICE, "svc-same", r#"{"v":1}"#)).await;
    create(app, &r, entity(SERVICE, "svc-same", r#"{"v":1}"#)).await;
    create(app, &s, entity(SERVICE, "svc-diff", r#"{"v":"test"}"#)).await;
    create(app, &r, entity(SERVICE, "svc-diff", r#"{"v":"prod"}"#)).await;
    let shared = create(app, &s, entity(LOOKUP, "lk-linked", r#"{"v":1}"#)).await;
    link(app, &shared.name, &r).await;
    create(app, &r, entity(TABLE, "only-in-prod", "{}")).await;
    (s, r)
}

pub async fn g6_merge_creates_links_skips_and_keeps_recipient_on_conflict(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (s, r) = fixture(&app).await;

    let p = plan(&app, plan_req(&s, &r)).await;
    assert_eq!(p.state, READY);
    assert_eq!(counts(&p), (1, 1, 2, 1, 0), "creates, links, skips, conflicts, missing");
    assert_eq!(p.counts.unwrap_or_default().source_entries, 5);
    assert_eq!(p.source_revision, revision(&app, &s).await);
    assert_eq!(p.recipient_revision, revision(&app, &r).await);
    let all = items(&app, &p.name, vec![]).await;
    let outcome = |key: &str| all.iter().find(|i| i.key == key).map(|i| i.outcome);
    assert_eq!(outcome("svc-new"), Some(CREATE));
    assert_eq!(outcome("lk-new"), Some(LINK));
    assert_eq!(outcome("svc-same"), Some(SKIP));
    assert_eq!(outcome("lk-linked"), Some(SKIP), "a shared entity already linked is skipped");
    assert_eq!(outcome("svc-diff"), Some(CONFLICT));
    assert_eq!(outcome("only-in-prod"), None, "recipient-only keys are not the merge's business");
    let order: Vec<(i32, Vec<u8>)> = all.iter().map(|i| (i.kind, i.key.as_bytes().to_vec())).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "items are in (kind, key) byte order");

    let job = apply_ok(&app, &p.name).await;
    let res = result(&job);
    assert_eq!((res.created, res.linked, res.skipped, res.conflicts_kept), (1, 1, 2, 1));
    let source = entities_of(&app, &s).await;
    let after = entities_of(&app, &r).await;
    let created = find(&after, SERVICE, "svc-new").expect("svc-new delivered");
    assert_ne!(Some(&created.name), find(&source, SERVICE, "svc-new").map(|e| &e.name), "duplicated: a new instance in R");
    assert_eq!(find(&after, LOOKUP, "lk-new").map(|e| &e.name), find(&source, LOOKUP, "lk-new").map(|e| &e.name), "shared: R linked");
    assert_eq!(find(&after, SERVICE, "svc-diff").map(|e| e.payload_json.as_str()), Some(r#"{"v":"prod"}"#), "R keeps its own");
    assert!(find(&after, TABLE, "only-in-prod").is_some());
    let p = app.merge.clone().get_merge_plan(mpb::GetMergePlanRequest { name: p.name }).await.expect("get").into_inner();
    assert_eq!(p.state, APPLIED);
    assert_eq!(p.job, job.name);
}

pub async fn g6_take_source_overwrites_and_fail_refuses(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (s, r) = fixture(&app).await;

    let fail = plan(&app, mpb::CreateMergePlanRequest { strategy: FAIL, ..plan_req(&s, &r) }).await;
    let err = apply(&app, &fail.name, false).await.expect_err("FAIL with conflicts is refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&err), ["ENTITY_KIND_SERVICE:svc-diff"]);
    assert_eq!(revision(&app, &r).await, fail.recipient_revision, "nothing written");

    let take = plan(&app, mpb::CreateMergePlanRequest { strategy: TAKE_SOURCE, ..plan_req(&s, &r) }).await;
    let job = apply_ok(&app, &take.name).await;
    assert_eq!(result(&job).overwritten, 1);
    let after = entities_of(&app, &r).await;
    assert_eq!(find(&after, SERVICE, "svc-diff").map(|e| e.payload_json.as_str()), Some(r#"{"v":"test"}"#), "R took the source's");
}

pub async fn g10_plan_items_page_and_stale_plan_is_aborted(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (s, r) = fixture(&app).await;
    let p = plan(&app, plan_req(&s, &r)).await;

    // Items page by page, filtered by outcome.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .merge
            .clone()
            .list_merge_plan_items(mpb::ListMergePlanItemsRequest {
                parent: p.name.clone(),
                page_size: 1,
                page_token: token,
                outcomes: vec![SKIP, CONFLICT],
                kinds: vec![],
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.items.len() <= 1);
        seen.extend(page.items.into_iter().map(|i| i.key));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["lk-linked", "svc-diff", "svc-same"]);

    // The recipient moves: the plan reads STALE and apply is ABORTED.
    create(&app, &r, entity(SERVICE, "late", "{}")).await;
    let got = app.merge.clone().get_merge_plan(mpb::GetMergePlanRequest { name: p.name.clone() }).await.expect("get").into_inner();
    assert_eq!(got.state, STALE);
    let before = entities_of(&app, &r).await.len();
    let err = apply(&app, &p.name, false).await.expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(entities_of(&app, &r).await.len(), before, "nothing applied");
    let listed = app
        .merge
        .clone()
        .list_merge_plans(mpb::ListMergePlansRequest { states: vec![STALE], ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.merge_plans.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), [p.name.as_str()]);
}

pub async fn g11_applying_twice_changes_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (s, r) = fixture(&app).await;
    let p = plan(&app, plan_req(&s, &r)).await;
    let job = apply_ok(&app, &p.name).await;

    let again = apply(&app, &p.name, false).await.expect("re-apply of an applied plan");
    assert_eq!(again.name, job.name, "the existing job, nothing new");
    let rev = revision(&app, &r).await;

    let second = plan(&app, plan_req(&s, &r)).await;
    let (creates, links, skips, conflicts, _) = counts(&second);
    assert_eq!((creates, links, skips, conflicts), (0, 0, 4, 1), "the second plan only skips (and reports the kept conflict)");
    let job2 = apply_ok(&app, &second.name).await;
    assert_eq!((result(&job2).created, result(&job2).linked), (0, 0));
    assert_eq!(revision(&app, &r).await, rev, "a second apply changes nothing");
}

pub async fn g12_missing_dependencies_refused_unless_proceed(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev").await;
    let s = group(&app, "dev", "test").await;
    let r = group(&app, "dev", "prod").await;
    create(&app, &s, entity(LOOKUP, "lk-a", "{}")).await;
    create(&app, &s, entity(LOOKUP, "lk-b", "{}")).await;
    create(&app, &r, entity(LOOKUP, "lk-b", "{}")).await;
    create(&app, &s, entity(DATA_SOURCE, "ds-in-plan", "{}")).await;
    // t1 uses lk-a (outside the selection), lk-b (R has it), ds-x (nobody has it) and
    // ds-in-plan (delivered by this very plan).
    let t = with_refs(entity(TABLE, "t1", "{}"), &[(LOOKUP, "lk-a"), (LOOKUP, "lk-b"), (DATA_SOURCE, "ds-x"), (DATA_SOURCE, "ds-in-plan")]);
    create(&app, &s, t).await;

    let p = plan(&app, mpb::CreateMergePlanRequest { kinds: vec![TABLE, DATA_SOURCE], ..plan_req(&s, &r) }).await;
    assert_eq!(counts(&p).4, 2);
    let missing: Vec<(i32, String)> =
        items(&app, &p.name, vec![MISSING]).await.into_iter().filter_map(|i| i.missing_reference.map(|m| (m.kind, m.key))).collect();
    assert_eq!(missing, [(LOOKUP, "lk-a".to_string()), (DATA_SOURCE, "ds-x".to_string())]);

    let err = apply(&app, &p.name, false).await.expect_err("missing dependencies");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&err), ["ENTITY_KIND_LOOKUP:lk-a", "ENTITY_KIND_DATA_SOURCE:ds-x"]);
    assert!(find(&entities_of(&app, &r).await, TABLE, "t1").is_none(), "nothing applied");

    let job = apply(&app, &p.name, true).await.expect("proceed");
    let job = wait_job(&app.merge, &job.name).await;
    assert_eq!(job.state, SUCCEEDED);
    assert_eq!(result(&job).missing_dependencies, 2);
    assert_eq!(result(&job).created, 1);
    assert_eq!(result(&job).linked, 1);
}

pub async fn g13_selective_merge_by_kind_and_key(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev").await;
    let s = group(&app, "dev", "test").await;
    let r = group(&app, "dev", "prod").await;
    for k in ["a", "b", "c"] {
        create(&app, &s, entity(SERVICE, k, "{}")).await;
        create(&app, &s, entity(LOOKUP, k, "{}")).await;
    }
    let by_kind = plan(&app, mpb::CreateMergePlanRequest { kinds: vec![SERVICE], ..plan_req(&s, &r) }).await;
    assert_eq!(counts(&by_kind), (3, 0, 0, 0, 0));
    let by_key = plan(&app, mpb::CreateMergePlanRequest { keys: vec!["b".into()], ..plan_req(&s, &r) }).await;
    assert_eq!(counts(&by_key), (1, 1, 0, 0, 0));
    apply_ok(&app, &by_key.name).await;
    let keys: Vec<(i32, String)> = entities_of(&app, &r).await.into_iter().map(|e| (e.kind, e.key)).collect();
    assert_eq!(keys, [(LOOKUP, "b".to_string()), (SERVICE, "b".to_string())]);
}

pub async fn g5_clone_group_copies_duplicated_and_links_shared(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev").await;
    let s = group(&app, "dev", "test").await;
    create(&app, &s, entity(SERVICE, "svc", r#"{"x":1}"#)).await;
    create(&app, &s, entity(TABLE, "tbl", "{}")).await;
    create(&app, &s, entity(LOOKUP, "lk", "{}")).await;
    let source = entities_of(&app, &s).await;

    let job = app
        .merge
        .clone()
        .clone_group(mpb::CloneGroupRequest {
            source: s.clone(),
            group_id: "copy".into(),
            display_name: "Copy".into(),
            request_id: String::new(),
        })
        .await
        .expect("clone")
        .into_inner();
    let job = wait_job(&app.merge, &job.name).await;
    assert_eq!(job.state, SUCCEEDED, "{:?}", job.error);
    assert_eq!(job.produced_resources, ["environments/dev/groups/copy"]);
    assert_eq!((result(&job).created, result(&job).linked), (2, 1));
    assert!(!job.plan.is_empty(), "the job records its plan");
    assert_eq!(job.created_by, ADMIN_SUBJECT);
    assert_eq!(get_plan(&app, &job.plan).await.created_by, ADMIN_SUBJECT, "the plan the worker made records the job's creator");
    let copy = entities_of(&app, "environments/dev/groups/copy").await;
    for e in &source {
        let c = find(&copy, e.kind, &e.key).expect("every key cloned");
        if e.kind == LOOKUP {
            assert_eq!(c.name, e.name, "shared: linked, not created again");
        } else {
            assert_ne!(c.name, e.name, "duplicated: created again");
            assert_eq!(c.content_hash, e.content_hash);
        }
    }

    // A clone plan, then apply; a second clone into an existing group is refused.
    let p = app
        .merge
        .clone()
        .plan_clone_group(mpb::PlanCloneGroupRequest { source: s.clone(), group_id: "copy2".into(), ..Default::default() })
        .await
        .expect("plan clone")
        .into_inner();
    assert_eq!(counts(&p), (2, 1, 0, 0, 0));
    apply_ok(&app, &p.name).await;
    assert_eq!(entities_of(&app, "environments/dev/groups/copy2").await.len(), 3);
    let err = app
        .merge
        .clone()
        .clone_group(mpb::CloneGroupRequest { source: s.clone(), group_id: "copy".into(), ..Default::default() })
        .await
        .expect_err("exists");
    assert_eq!(err.code(), Code::AlreadyExists);
}

pub async fn revert(app: &TestApp, job: &str, proceed: bool) -> Result<mpb::Job, tonic::Status> {
    app.merge
        .clone()
        .revert_merge(mpb::RevertMergeRequest { job: job.into(), proceed_with_changed: proceed, request_id: String::new() })
        .await
        .map(|r| r.into_inner())
}

pub async fn revert_removes_what_the_merge_created_and_linked(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (s, r) = fixture(&app).await;
    let before: Vec<String> = entities_of(&app, &r).await.into_iter().map(|e| e.name).collect();
    let p = plan(&app, plan_req(&s, &r)).await;
    let applied = apply_ok(&app, &p.name).await;

    let job = revert(&app, &applied.name, false).await.expect("revert");
    let job = wait_job(&app.merge, &job.name).await;
    assert_eq!(job.state, SUCCEEDED, "{:?}", job.error);
    assert_eq!(job.reverted_job, applied.name);
    assert_eq!(job.created_by, ADMIN_SUBJECT);
    assert_eq!((result(&job).removed, result(&job).unlinked), (1, 1));
    let after: Vec<String> = entities_of(&app, &r).await.into_iter().map(|e| e.name).collect();
    assert_eq!(after, before, "the recipient is as it was before the merge");
    assert!(find(&entities_of(&app, &s).await, LOOKUP, "lk-new").is_some(), "the shared entity lives on in the source");
    assert_eq!(get_job(&app.merge, &applied.name).await.reverted_by, job.name);

    let err = revert(&app, &applied.name, false).await.expect_err("twice");
    assert_eq!((err.code(), precondition_subjects(&err)), (Code::FailedPrecondition, vec![job.name.clone()]));
    let err = revert(&app, &job.name, false).await.expect_err("a revert is not a merge");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // A merge that applied nothing has nothing to revert.
    let noop = plan(&app, mpb::CreateMergePlanRequest { keys: vec!["svc-same".into()], ..plan_req(&s, &r) }).await;
    let noop = apply_ok(&app, &noop.name).await;
    let err = revert(&app, &noop.name, false).await.expect_err("never applied anything");
    assert_eq!(err.code(), Code::FailedPrecondition);
}

pub async fn revert_refuses_entities_changed_since_unless_proceed(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let (s, r) = fixture(&app).await;
    let p = plan(&app, plan_req(&s, &r)).await;
    let applied = apply_ok(&app, &p.name).await;
    let created = find(&entities_of(&app, &r).await, SERVICE, "svc-new").cloned().expect("created");
    edit_payload(&app, &created.name, r#"{"edited":true}"#).await;

    let err = revert(&app, &applied.name, false).await.expect_err("changed since");
    assert_eq!((err.code(), precondition_subjects(&err)), (Code::FailedPrecondition, vec![created.name.clone()]));
    assert!(find(&entities_of(&app, &r).await, SERVICE, "svc-new").is_some(), "nothing removed");

    let job = revert(&app, &applied.name, true).await.expect("proceed");
    let job = wait_job(&app.merge, &job.name).await;
    assert_eq!(job.state, SUCCEEDED);
    assert!(find(&entities_of(&app, &r).await, SERVICE, "svc-new").is_none(), "removed too");
}
