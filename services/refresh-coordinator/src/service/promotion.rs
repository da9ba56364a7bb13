//! Promotion runs: promote project P into Q (same environment) = merge each of P's groups
//! into Q's matching group, then merge the project (the groups article's best practice).
//! The group merge plans are made (and shown) before anything applies.

use ferry_kit::db::now_micros;
use ferry_kit::idempotency::RequestKey;
use ferry_proto::merge::v1 as mpb;

use super::Coordinator;
use crate::domain::{ProjectName, PromotionOptions, PromotionRun, PromotionStep, PromotionStepKind, RunState, StepState};
use crate::error::{Error, Result};
use crate::store;
use crate::store::locks::{self, Lock};

fn pairs_pb(options: &PromotionOptions) -> Vec<mpb::GroupPair> {
    options.group_pairs.iter().map(|(s, r)| mpb::GroupPair { source: s.clone(), recipient: r.clone() }).collect()
}

/// A promotion run as clients see it: an abort asked of a running run shows as ABORTING.
fn view(stored: store::promotions::Stored) -> PromotionRun {
    let mut run = stored.run;
    if stored.abort_requested && !run.aborting && matches!(run.state, RunState::Pending | RunState::Running) {
        run.state = RunState::Aborting;
    }
    run
}

impl Coordinator {
    pub async fn plan_promotion(
        &self,
        source: &ProjectName,
        target: &ProjectName,
        options: &PromotionOptions,
        request_id: String,
    ) -> Result<mpb::ProjectMergePlan> {
        self.check_free(&[Lock::Project(target.clone())]).await?;
        self.remote
            .plan_project_merge(mpb::PlanProjectMergeRequest {
                source: source.to_string(),
                recipient: target.to_string(),
                merge_groups_first: true,
                strategy: options.strategy,
                group_pairs: pairs_pb(options),
                request_id,
            })
            .await
    }

    pub async fn start_promotion(
        &self,
        source: ProjectName,
        target: ProjectName,
        options: PromotionOptions,
        merge_plans: Vec<String>,
        actor: String,
        key: Option<RequestKey>,
    ) -> Result<PromotionRun> {
        const METHOD: &str = "StartPromotion";
        if let Some(id) = self.replayed::<String>(key.as_ref(), METHOD).await? {
            return self.get_promotion(&id).await;
        }
        self.check_free(&[Lock::Project(target.clone())]).await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let given = !merge_plans.is_empty();
        let preview = self
            .remote
            .plan_project_merge(mpb::PlanProjectMergeRequest {
                source: source.to_string(),
                recipient: target.to_string(),
                merge_groups_first: !given,
                strategy: options.strategy,
                group_pairs: pairs_pb(&options),
                request_id: format!("{id}-plan"),
            })
            .await?;
        // (pair, plan, counts) per group merge.
        let mut merges: Vec<(mpb::GroupPair, String, Option<mpb::MergePlanCounts>)> = Vec::new();
        if given {
            if merge_plans.len() != preview.group_pairs.len() {
                return Err(Error::invalid(
                    "merge_plans",
                    format!("{} plan(s) given for {} group pair(s)", merge_plans.len(), preview.group_pairs.len()),
                ));
            }
            for (i, (name, pair)) in merge_plans.iter().zip(&preview.group_pairs).enumerate() {
                let plan = self.remote.get_merge_plan(name).await?;
                if plan.source != pair.source || plan.recipient != pair.recipient {
                    return Err(Error::invalid(
                        &format!("merge_plans[{i}]"),
                        format!("{name} does not merge {} into {}", pair.source, pair.recipient),
                    ));
                }
                if plan.state == mpb::MergePlanState::Stale as i32 {
                    return Err(Error::Aborted(format!("{name} is stale: a group changed since it was planned; plan again")));
                }
                merges.push((pair.clone(), name.clone(), plan.counts));
            }
        } else {
            for g in &preview.group_merges {
                merges.push((g.pair.clone().unwrap_or_default(), g.merge_plan.clone(), g.counts));
            }
        }
        let mut steps = vec![PromotionStep::new(1, PromotionStepKind::Plan, source.to_string(), target.to_string(), String::new())];
        for (i, (pair, plan, counts)) in merges.into_iter().enumerate() {
            let mut step = PromotionStep::new(i as i32 + 2, PromotionStepKind::MergeGroup, pair.source, pair.recipient, plan);
            if let Some(c) = counts {
                step.outputs.insert("counts".into(), hex::encode(prost::Message::encode_to_vec(&c)));
            }
            steps.push(step);
        }
        let n = steps.len() as i32 + 1;
        steps.push(PromotionStep::new(n, PromotionStepKind::MergeProject, source.to_string(), target.to_string(), String::new()));
        let run = PromotionRun {
            id: id.clone(),
            source,
            target,
            options,
            state: RunState::Pending,
            steps,
            current_step: 0,
            plan: hex::encode(prost::Message::encode_to_vec(&preview)),
            error: None,
            created_by: actor,
            abort_reason: String::new(),
            aborted_by: String::new(),
            proceed_with_changed: false,
            aborting: false,
            create_time: now_micros(),
            start_time: None,
            end_time: None,
            interruptions: Vec::new(),
        };
        let traceparent = ferry_kit::telemetry::current_traceparent();
        let id = self
            .write(key.as_ref(), METHOD, move |txn| {
                Box::pin(async move {
                    locks::take(txn, &run.name(), &[Lock::Project(run.target.clone())]).await?.map_err(super::locked)?;
                    store::promotions::insert(txn, &run, traceparent.as_deref()).await?;
                    Ok(run.id)
                })
            })
            .await?;
        self.wake.notify_one();
        self.get_promotion(&id).await
    }

    pub async fn get_promotion(&self, id: &str) -> Result<PromotionRun> {
        let stored =
            store::promotions::find(&self.db, id).await?.ok_or_else(|| Error::not_found("promotion run", format!("promotionRuns/{id}")))?;
        Ok(view(stored))
    }

    pub async fn list_promotions(
        &self,
        states: &[RunState],
        project: Option<&str>,
        after: Option<&(i64, String)>,
        limit: u64,
    ) -> Result<Vec<PromotionRun>> {
        Ok(store::promotions::list(&self.db, states, project, after, limit).await?.into_iter().map(view).collect())
    }

    /// Rewrites a promotion run in one transaction (waiting and failed runs; no driver holds them).
    async fn update_promotion<F>(&self, id: &str, key: Option<&RequestKey>, method: &'static str, change: F) -> Result<PromotionRun>
    where
        F: FnOnce(&mut store::promotions::Stored) -> Result<bool> + Send + 'static,
    {
        let id_owned = id.to_owned();
        self.write(key, method, move |txn| {
            Box::pin(async move {
                let mut stored = store::promotions::find(txn, &id_owned)
                    .await?
                    .ok_or_else(|| Error::not_found("promotion run", format!("promotionRuns/{id_owned}")))?;
                let before = stored.abort_requested;
                if change(&mut stored)? && !store::promotions::save(txn, &stored.run, stored.version).await? {
                    return Err(Error::Aborted("the run changed concurrently; retry".into()));
                }
                if stored.abort_requested && !before {
                    store::promotions::request_abort(txn, &id_owned).await?;
                }
                Ok(())
            })
        })
        .await?;
        self.wake.notify_one();
        let run = self.get_promotion(id).await?;
        self.publish_promotion(&run);
        Ok(run)
    }

    pub async fn confirm_promotion(
        &self,
        id: &str,
        step: i32,
        actor: String,
        comment: String,
        key: Option<RequestKey>,
    ) -> Result<PromotionRun> {
        self.update_promotion(id, key.as_ref(), "ConfirmPromotionStep", move |stored| {
            let run = &mut stored.run;
            let name = run.name();
            match run.steps.iter_mut().find(|s| s.state == StepState::WaitingForConfirmation) {
                Some(s) if s.number == step => {
                    s.confirmed = true;
                    s.state = StepState::Running;
                    s.actor = actor;
                    s.comment = comment;
                    s.log.push(format!("approved by {}", s.actor));
                    s.waiting_for.clear();
                    run.state = RunState::Running;
                    Ok(true)
                }
                _ => Err(Error::precondition(
                    "STEP_NOT_WAITING",
                    format!("{name}/steps/{step}"),
                    format!("step {step} of {name} is not waiting for confirmation"),
                )),
            }
        })
        .await
    }

    pub async fn retry_promotion(&self, id: &str, key: Option<RequestKey>) -> Result<PromotionRun> {
        self.update_promotion(id, key.as_ref(), "RetryPromotionRun", move |stored| {
            let run = &mut stored.run;
            if run.state != RunState::Failed {
                return Err(Error::precondition("RUN_NOT_FAILED", run.name(), format!("{} is not FAILED", run.name())));
            }
            run.state = if run.aborting { RunState::Aborting } else { RunState::Running };
            run.error = None;
            if !run.aborting {
                for s in run.steps.iter_mut().filter(|s| s.state == StepState::Failed) {
                    s.state = StepState::Pending;
                    s.log.push("retried".into());
                }
            }
            Ok(true)
        })
        .await
    }

    pub async fn abort_promotion(
        &self,
        id: &str,
        reason: String,
        by: String,
        proceed_with_changed: bool,
        key: Option<RequestKey>,
    ) -> Result<PromotionRun> {
        self.update_promotion(id, key.as_ref(), "AbortPromotionRun", move |stored| {
            let run = &mut stored.run;
            let project_started = run.steps.last().is_some_and(|s| !matches!(s.state, StepState::Pending | StepState::Skipped));
            match run.state {
                RunState::Succeeded => {
                    Err(Error::precondition("RUN_SUCCEEDED", run.name(), format!("{} succeeded; there is nothing to abort", run.name())))
                }
                RunState::Aborting | RunState::Aborted => Ok(false),
                // An abort whose revert was refused for changed entities: asking again with
                // `proceed_with_changed` resumes it, removing them too.
                RunState::Failed if run.aborting && proceed_with_changed && !run.proceed_with_changed => {
                    run.proceed_with_changed = true;
                    run.state = RunState::Aborting;
                    run.error = None;
                    Ok(true)
                }
                _ if run.aborting => Ok(false),
                _ if project_started => Err(Error::precondition(
                    "MERGE_PROJECT_STARTED",
                    run.name(),
                    format!("the project merge of {} has started; it cannot be aborted", run.name()),
                )),
                _ => {
                    run.abort_reason = reason;
                    run.aborted_by = by;
                    run.proceed_with_changed = proceed_with_changed;
                    if matches!(run.state, RunState::Waiting | RunState::Failed) {
                        run.aborting = true;
                        run.state = RunState::Aborting;
                    } else {
                        // A driver holds it: it takes the abort over at its next safe point.
                        stored.abort_requested = true;
                    }
                    Ok(true)
                }
            }
        })
        .await
    }
}
