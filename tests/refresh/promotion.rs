//! Promotion planning: the group merge plans and the project merge preview, before
//! anything is applied.

use ferry_proto::merge::v1 as mpb;
use ferry_proto::refresh::v1 as pb;
use ferry_proto::registry::v1 as rpb;

use crate::helpers::*;

fn req(source: &str, target: &str) -> pb::PlanPromotionRequest {
    pb::PlanPromotionRequest { source_project: source.into(), target_project: target.into(), options: None, request_id: String::new() }
}

/// Project p-test (group g-test: billing, orders, users) and p-prod (g-prod: billing) in
/// one environment; p-test has a config item that uses `orders`, which g-prod lacks.
async fn arrange(s: &Suite) -> (String, String) {
    env(s, "corp", false).await;
    populate(s).await
}

/// corp's groups, projects and configuration item (what `arrange` makes in it).
async fn populate(s: &Suite) -> (String, String) {
    let test_group = group(s, "corp", "g-test", &["billing", "orders", "users"]).await;
    let prod_group = group(s, "corp", "g-prod", &["billing"]).await;
    project(s, "corp", "p-test", vec![test_group.clone()]).await;
    project(s, "corp", "p-prod", vec![prod_group.clone()]).await;
    s.registry
        .clone()
        .create_config_item(rpb::CreateConfigItemRequest {
            parent: "environments/corp/projects/p-test".into(),
            config_item_id: "checkout".into(),
            config_item: Some(rpb::ConfigItem {
                value_json: r#"{"flow":"checkout"}"#.into(),
                references: vec![ferry_proto::common::v1::EntityRef { kind: 7, key: "orders".into() }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("config item");
    (test_group, prod_group)
}

async fn entity_count(s: &Suite, group: &str) -> i64 {
    s.registry
        .clone()
        .get_group(rpb::GetGroupRequest { name: group.into(), ..Default::default() })
        .await
        .expect("group")
        .into_inner()
        .entity_count
}

async fn config_items(s: &Suite, project: &str) -> Vec<String> {
    s.registry
        .clone()
        .list_config_items(rpb::ListConfigItemsRequest { parent: project.into(), ..Default::default() })
        .await
        .expect("config items")
        .into_inner()
        .config_items
        .into_iter()
        .map(|c| c.name.rsplit('/').next().unwrap_or_default().to_owned())
        .collect()
}

fn start_req(approval: bool, merge_plans: Vec<String>) -> pb::StartPromotionRequest {
    pb::StartPromotionRequest {
        source_project: "environments/corp/projects/p-test".into(),
        target_project: "environments/corp/projects/p-prod".into(),
        options: Some(pb::PromotionOptions { require_approval: approval, ..Default::default() }),
        merge_plans,
        request_id: String::new(),
    }
}

async fn wait_promotion(s: &Suite, name: &str, done: impl Fn(&pb::PromotionRun) -> bool) -> pb::PromotionRun {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let run = s.refresh.clone().get_promotion_run(pb::GetPromotionRunRequest { name: name.into() }).await.expect("get").into_inner();
        if done(&run) {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "promotion {name} stuck: {run:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub async fn promotion_merges_groups_then_project_with_approval(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    let (test_group, prod_group) = arrange(&s).await;
    let mut rf = s.refresh.clone();
    let run = rf.start_promotion(start_req(true, Vec::new())).await.expect("start").into_inner();
    assert_eq!(run.steps.len(), 3, "PLAN, one MERGE_GROUP, MERGE_PROJECT");
    assert_eq!((run.steps[1].source.as_str(), run.steps[1].recipient.as_str()), (test_group.as_str(), prod_group.as_str()));
    assert!(run.steps[1].merge_plan.starts_with("mergePlans/"));
    assert_eq!(run.steps[1].counts.map(|c| c.creates), Some(2));
    assert!(run.plan.as_ref().is_some_and(|p| p.group_merges.len() == 1));

    // The approval gate: nothing is applied before it; the target is locked meanwhile.
    let waiting = wait_promotion(&s, &run.name, |r| r.state == WAITING).await;
    assert_eq!(waiting.steps[0].waiting_for, "approval");
    assert_eq!(entity_count(&s, &prod_group).await, 1);
    let e = rf.plan_promotion(req("environments/corp/projects/p-test", "environments/corp/projects/p-prod")).await.expect_err("locked");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&e), vec![run.name.clone()]);
    // A refresh of the environment waits for the promotion too.
    env(&s, "prod", true).await;
    let e = rf
        .plan_refresh(pb::PlanRefreshRequest { source: "environments/prod".into(), destination: "environments/corp".into(), options: None })
        .await
        .expect_err("promotion holds a project");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&e), vec![run.name.clone()]);
    let e = rf
        .confirm_promotion_step(pb::ConfirmPromotionStepRequest { name: run.name.clone(), step: 2, ..Default::default() })
        .await
        .expect_err("step 2 is not waiting");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);

    let before = scrape(&s).await;
    let mut watch = rf.watch_promotion_run(pb::WatchPromotionRunRequest { name: run.name.clone() }).await.expect("watch").into_inner();
    rf.confirm_promotion_step(pb::ConfirmPromotionStepRequest {
        name: run.name.clone(),
        step: 1,
        actor: "carol".into(),
        comment: "CAB ok".into(),
        request_id: String::new(),
    })
    .await
    .expect("approve");
    let mut last = None;
    while let Some(snapshot) = watch.message().await.expect("watch") {
        last = Some(snapshot);
    }
    let last = last.expect("snapshots");
    assert_eq!(last.state, SUCCEEDED, "{:?}", last.error);
    assert_eq!(last.steps[0].actor, "carol");
    assert!(last.steps[1].job.starts_with("jobs/") && last.steps[2].job.starts_with("jobs/"));

    // The groups first, then the project: the target has the entities and the config item.
    assert_eq!(entity_count(&s, &prod_group).await, 3);
    // Metrics (deltas: other tests of this process add to them): the group merge applied
    // its two new entities, the project merge delivered its item, each step was timed.
    let after = scrape(&s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    assert!(delta("ferry_merge_items_applied_total", &[("kind_of_job", "apply_merge")]) >= 2.0, "{}", after.body);
    assert!(delta("ferry_merge_items_applied_total", &[("kind_of_job", "merge_project")]) >= 1.0, "{}", after.body);
    for step in ["promotion_plan", "promotion_merge_group", "promotion_merge_project"] {
        let n = delta("ferry_refresh_step_duration_seconds_count", &[("step", step), ("outcome", "succeeded")]);
        assert!(n >= 1.0, "step {step} observed: {}", after.body);
    }
    assert_eq!(config_items(&s, "environments/corp/projects/p-prod").await, vec!["checkout"]);
    let e = rf
        .abort_promotion_run(pb::AbortPromotionRunRequest { name: last.name.clone(), ..Default::default() })
        .await
        .expect_err("succeeded");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let listed = rf
        .list_promotion_runs(pb::ListPromotionRunsRequest { project: "environments/corp/projects/p-prod".into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.promotion_runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec![last.name.as_str()]);
}

pub async fn promotion_aborted_after_group_merge_reverts_it(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs { step_delay_ms: 1500, ..Knobs::default() }).await else { return };
    let (_, prod_group) = arrange(&s).await;
    let mut rf = s.refresh.clone();
    let run = rf.start_promotion(start_req(false, Vec::new())).await.expect("start").into_inner();
    wait_promotion(&s, &run.name, |r| r.steps[1].state == STEP_SUCCEEDED).await;
    assert_eq!(entity_count(&s, &prod_group).await, 3);
    rf.abort_promotion_run(pb::AbortPromotionRunRequest { name: run.name.clone(), reason: "freeze".into(), ..Default::default() })
        .await
        .expect("abort");
    let last = wait_promotion(&s, &run.name, |r| matches!(r.state, ABORTED | FAILED)).await;
    assert_eq!(last.state, ABORTED, "{:?}", last.error);
    assert_eq!(last.steps[1].state, pb::StepState::Undone as i32);
    assert!(last.steps[1].revert_job.starts_with("jobs/"));
    assert_eq!(last.steps[2].state, pb::StepState::Skipped as i32);
    assert_eq!(entity_count(&s, &prod_group).await, 1, "the group merge was reverted");
    assert!(config_items(&s, "environments/corp/projects/p-prod").await.is_empty());
    // The lock is released.
    rf.plan_promotion(req("environments/corp/projects/p-test", "environments/corp/projects/p-prod")).await.expect("plan after abort");
}

pub async fn promotion_resumes_after_coordinator_crash(backend: Backend) {
    let Some(mut s) = spawn_suite(backend, Knobs { step_delay_ms: 300, ..Knobs::default() }).await else { return };
    let (_, prod_group) = arrange(&s).await;
    let run = s.refresh.clone().start_promotion(start_req(false, Vec::new())).await.expect("start").into_inner();
    // Stop the coordinator at each step boundary until the run ends.
    let mut restarts = 0;
    loop {
        let now =
            s.refresh.clone().get_promotion_run(pb::GetPromotionRunRequest { name: run.name.clone() }).await.expect("get").into_inner();
        if matches!(now.state, SUCCEEDED | FAILED | ABORTED) {
            break;
        }
        let done = now.steps.iter().filter(|st| st.state == STEP_SUCCEEDED).count();
        wait_promotion(&s, &run.name, |r| r.steps.iter().filter(|st| st.state == STEP_SUCCEEDED).count() > done || r.state == SUCCEEDED)
            .await;
        s.crash_coordinator().await;
        s.start_coordinator().await;
        restarts += 1;
        assert!(restarts < 10);
    }
    let last = wait_promotion(&s, &run.name, |r| matches!(r.state, SUCCEEDED | FAILED)).await;
    assert_eq!(last.state, SUCCEEDED, "{:?}", last.error);
    assert!(restarts >= 3, "stopped after every step ({restarts})");
    assert!(last.steps.iter().all(|st| st.attempts == 1));
    assert_eq!(entity_count(&s, &prod_group).await, 3);
    assert_eq!(config_items(&s, "environments/corp/projects/p-prod").await, vec!["checkout"]);
}

pub async fn promotion_abort_refused_for_changed_entities_then_forced(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs { step_delay_ms: 1500, ..Knobs::default() }).await else { return };
    let (_, prod_group) = arrange(&s).await;
    let mut rf = s.refresh.clone();
    let run = rf.start_promotion(start_req(false, Vec::new())).await.expect("start").into_inner();
    wait_promotion(&s, &run.name, |r| r.steps[1].state == STEP_SUCCEEDED).await;
    // Someone edits an entity the group merge created.
    let merged = s
        .registry
        .clone()
        .list_entities(rpb::ListEntitiesRequest { parent: prod_group.clone(), page_size: 100, ..Default::default() })
        .await
        .expect("entities")
        .into_inner()
        .entities
        .into_iter()
        .find(|e| e.key == "orders")
        .expect("merged entity");
    s.registry
        .clone()
        .update_entity(rpb::UpdateEntityRequest {
            entity: Some(rpb::Entity { name: merged.name.clone(), payload_json: r#"{"edited":true}"#.into(), ..Default::default() }),
            update_mask: None,
            request_id: String::new(),
        })
        .await
        .expect("edit");

    let abort = |force: bool| pb::AbortPromotionRunRequest {
        name: run.name.clone(),
        reason: "freeze".into(),
        proceed_with_changed: force,
        request_id: String::new(),
    };
    rf.abort_promotion_run(abort(false)).await.expect("abort");
    let failed = wait_promotion(&s, &run.name, |r| matches!(r.state, FAILED | ABORTED)).await;
    assert_eq!(failed.state, FAILED, "the revert is refused while an entity changed");
    assert_eq!(failed.error.as_ref().map(|e| e.code), Some(tonic::Code::FailedPrecondition as i32));
    assert_eq!(entity_count(&s, &prod_group).await, 3);

    rf.abort_promotion_run(abort(true)).await.expect("abort, removing changed entities too");
    let last = wait_promotion(&s, &run.name, |r| matches!(r.state, FAILED | ABORTED)).await;
    assert_eq!(last.state, ABORTED, "{:?}", last.error);
    assert_eq!(last.steps[1].state, pb::StepState::Undone as i32);
    assert_eq!(entity_count(&s, &prod_group).await, 1);
}

pub async fn promotion_with_stale_given_plans_is_refused(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    let (_, prod_group) = arrange(&s).await;
    let mut rf = s.refresh.clone();
    let plan =
        rf.plan_promotion(req("environments/corp/projects/p-test", "environments/corp/projects/p-prod")).await.expect("plan").into_inner();
    let plans: Vec<String> = plan.project_merge.expect("preview").group_merges.into_iter().map(|g| g.merge_plan).collect();
    // Someone changes the target group after the review.
    s.registry
        .clone()
        .create_entity(rpb::CreateEntityRequest {
            parent: prod_group.clone(),
            entity: Some(rpb::Entity { kind: 7, key: "late".into(), payload_json: "{}".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("entity");
    let e = rf.start_promotion(start_req(false, plans)).await.expect_err("stale");
    assert_eq!(e.code(), tonic::Code::Aborted);
    let e = rf.start_promotion(start_req(false, vec!["mergePlans/a".into(), "mergePlans/b".into()])).await.expect_err("count");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(entity_count(&s, &prod_group).await, 2);
}

pub async fn plan_promotion_shows_the_merge_plans(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    env(&s, "corp", false).await;
    env(&s, "other", false).await;
    let test_group = group(&s, "corp", "g-test", &["billing", "orders", "users"]).await;
    let prod_group = group(&s, "corp", "g-prod", &["billing"]).await;
    project(&s, "corp", "p-test", vec![test_group.clone()]).await;
    project(&s, "corp", "p-prod", vec![prod_group.clone()]).await;
    group(&s, "other", "g", &[]).await;
    let mut rf = s.refresh.clone();

    let plan = rf
        .plan_promotion(pb::PlanPromotionRequest {
            options: Some(pb::PromotionOptions { strategy: mpb::MergeStrategy::KeepRecipient as i32, ..Default::default() }),
            request_id: "promote-plan-1".into(),
            ..req("environments/corp/projects/p-test", "environments/corp/projects/p-prod")
        })
        .await
        .expect("plan promotion")
        .into_inner();
    let merge = plan.project_merge.expect("project merge preview");
    assert_eq!(merge.group_merges.len(), 1);
    let g = &merge.group_merges[0];
    assert_eq!(g.pair.as_ref().map(|p| (p.source.as_str(), p.recipient.as_str())), Some((test_group.as_str(), prod_group.as_str())));
    assert!(g.merge_plan.starts_with("mergePlans/"));
    let counts = g.counts.expect("counts");
    assert_eq!((counts.creates, counts.skips, counts.conflicts), (2, 1, 0));
    // Planning applied nothing.
    let prod = s
        .registry
        .clone()
        .get_group(ferry_proto::registry::v1::GetGroupRequest { name: prod_group.clone(), ..Default::default() })
        .await
        .expect("group")
        .into_inner();
    assert_eq!(prod.entity_count, 1);

    // Refusals.
    let e = rf.plan_promotion(req("environments/corp/projects/p-test", "environments/corp/projects/p-test")).await.expect_err("same");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = rf.plan_promotion(req("environments/corp/projects/p-test", "environments/other/projects/p")).await.expect_err("envs");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = rf.plan_promotion(req("environments/corp/groups/p-test", "environments/corp/projects/p-prod")).await.expect_err("malformed");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = rf.plan_promotion(req("environments/corp/projects/nope", "environments/corp/projects/p-prod")).await.expect_err("unknown");
    assert_eq!(e.code(), tonic::Code::NotFound);

    // A refresh holding the environment refuses the promotion, naming the run.
    env(&s, "prod", true).await;
    let run = start(&s, "prod", "corp", options(pb::RefreshMode::Managed, true)).await.expect("refresh");
    let e = rf.plan_promotion(req("environments/corp/projects/p-test", "environments/corp/projects/p-prod")).await.expect_err("locked");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&e), vec![run.name]);
}

/// Sixteen starts at once on one environment, refreshes of it, promotions into one of its
/// projects and rollbacks of a refresh of it: exactly one runs, and every other start is
/// FAILED_PRECONDITION naming it (the locks are taken in the start transaction; the checks
/// before it only inform).
pub async fn concurrent_starts_of_every_kind_exclude_each_other(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s).await;
    env(&s, "prod", true).await;
    // A refresh of corp that can be rolled back; then corp's projects again for the promotions.
    let refresh = start(&s, "prod", "corp", options(pb::RefreshMode::Managed, false)).await.expect("refresh corp");
    assert_eq!(wait_for(&s, &refresh.name, 60, terminal).await.state, SUCCEEDED);
    populate(&s).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let mut rf = s.refresh.clone();
        let refresh = refresh.name.clone();
        // Every run waits for an approval, so the one that starts holds corp.
        calls.spawn(async move {
            match i % 3 {
                0 => {
                    let req = pb::StartRefreshRequest {
                        source: "environments/prod".into(),
                        destination: "environments/corp".into(),
                        options: Some(pb::RefreshOptions { require_approval: true, ..Default::default() }),
                        ..Default::default()
                    };
                    rf.start_refresh(req).await.map(|r| r.into_inner().name)
                }
                1 => {
                    let req = pb::StartPromotionRequest {
                        source_project: "environments/corp/projects/p-test".into(),
                        target_project: "environments/corp/projects/p-prod".into(),
                        options: Some(pb::PromotionOptions { require_approval: true, ..Default::default() }),
                        ..Default::default()
                    };
                    rf.start_promotion(req).await.map(|r| r.into_inner().name)
                }
                _ => {
                    let req = pb::StartRollbackRequest {
                        refresh_run: refresh,
                        options: Some(pb::RollbackOptions { require_approval: true }),
                        ..Default::default()
                    };
                    rf.start_rollback(req).await.map(|r| r.into_inner().name)
                }
            }
        });
    }
    let (mut started, mut refused) = (Vec::new(), Vec::new());
    while let Some(done) = calls.join_next().await {
        match done.expect("call") {
            Ok(name) => started.push(name),
            Err(status) => refused.push(status),
        }
    }
    assert_eq!(started.len(), 1, "exactly one run: {started:?} ({} refused)", refused.len());
    for e in &refused {
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        assert_eq!(precondition_subjects(e), started, "the refusal names the run that holds the environment");
    }
}
