//! `RefreshService`: parse, check the caller's environment scope, call the service layer,
//! convert back.

use std::time::Duration;

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::refresh::v1 as pb;
use ferry_proto::refresh::v1::refresh_service_server::RefreshService;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::convert as c;
use super::promotion as pr;
use crate::domain::{EnvName, ProjectName, RunName, RunState, StepState};
use crate::service::{Coordinator, ListFilter, report};

/// The gRPC face of the coordinator.
#[derive(Clone)]
pub struct RefreshApi {
    coordinator: Coordinator,
}

impl RefreshApi {
    pub fn new(coordinator: Coordinator) -> Self {
        Self { coordinator }
    }
}

fn caller(p: &Principal) -> String {
    format!("{:?} token", p.role).to_lowercase()
}

fn scope(p: &Principal, envs: &[&EnvName]) -> Result<(), Status> {
    envs.iter().try_for_each(|e| p.check_environment(e.id()))
}

fn run_name(v: &mut Violations, field: &str, name: &str) -> Option<RunName> {
    v.check(field, RunName::parse(name))
}

fn done<T>(v: Violations, value: Option<T>) -> Result<T, Status> {
    v.finish().map_err(|v| ferry_kit::status::invalid_argument(&v))?;
    value.ok_or_else(|| Status::internal("internal error"))
}

type PromotionTransition = (RunState, i32, Vec<(StepState, i32, String, String)>);

fn promotion_transition(run: &crate::domain::PromotionRun) -> PromotionTransition {
    (run.state, run.current_step, run.steps.iter().map(|s| (s.state, s.attempts, s.waiting_for.clone(), s.job.clone())).collect())
}

/// A WatchPromotionRun stream's state (as [`Watch`]).
struct PromotionWatch {
    coordinator: Coordinator,
    events: tokio::sync::broadcast::Receiver<crate::domain::PromotionRun>,
    id: String,
    first: Option<crate::domain::PromotionRun>,
    last: Option<PromotionTransition>,
    ended: bool,
}

impl PromotionWatch {
    async fn next(&mut self) -> Result<crate::domain::PromotionRun, crate::Error> {
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Ok(run) if run.id == self.id => return Ok(run),
                    Ok(_) => {}
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        return self.coordinator.get_promotion(&self.id).await;
                    }
                },
                _ = tokio::time::sleep(Duration::from_millis(500)) => return self.coordinator.get_promotion(&self.id).await,
            }
        }
    }
}

impl RefreshApi {
    /// The promotion run `id`, after checking the caller may see its environment.
    async fn visible_promotion(&self, p: &Principal, id: &str) -> Result<crate::domain::PromotionRun, Status> {
        let run = self.coordinator.get_promotion(id).await?;
        scope(p, &[&run.target.env])?;
        Ok(run)
    }

    /// The run named `name`, after checking the caller may see its environments.
    async fn visible(&self, p: &Principal, name: &RunName) -> Result<crate::domain::Run, Status> {
        let run = self.coordinator.get(name).await?;
        scope(p, &[&run.source, &run.destination])?;
        Ok(run)
    }
}

/// What a watcher is told about: the run's state and each step's state.
type Transition = (RunState, i32, Vec<(StepState, i32, String)>);

fn transition(run: &crate::domain::Run) -> Transition {
    (run.state, run.current_step, run.steps.iter().map(|s| (s.state, s.attempts, s.waiting_for.clone())).collect())
}

/// A WatchRefreshRun stream's state: runs saved by this process arrive as events; runs
/// driven by another replica are polled.
struct Watch {
    coordinator: Coordinator,
    events: tokio::sync::broadcast::Receiver<crate::domain::Run>,
    name: RunName,
    first: Option<crate::domain::Run>,
    last: Option<Transition>,
    ended: bool,
}

impl Watch {
    async fn next(&mut self) -> Result<crate::domain::Run, crate::Error> {
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Ok(run) if run.name == self.name => return Ok(run),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return self.coordinator.get(&self.name).await,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        return self.coordinator.get(&self.name).await;
                    }
                },
                _ = tokio::time::sleep(Duration::from_millis(500)) => return self.coordinator.get(&self.name).await,
            }
        }
    }
}

#[tonic::async_trait]
impl RefreshService for RefreshApi {
    #[tracing::instrument(skip_all, fields(source = %request.get_ref().source, destination = %request.get_ref().destination))]
    async fn plan_refresh(&self, request: Request<pb::PlanRefreshRequest>) -> Result<Response<pb::RefreshPlan>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let envs = c::environments(&mut v, &r.source, &r.destination);
        let (source, destination) = done(v, envs)?;
        scope(&p, &[&source, &destination])?;
        let plan = self.coordinator.plan(&source, &destination, c::options(r.options)).await?;
        Ok(Response::new(c::plan_pb(&plan)))
    }

    #[tracing::instrument(skip_all, fields(source = %request.get_ref().source, destination = %request.get_ref().destination))]
    async fn start_refresh(&self, request: Request<pb::StartRefreshRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "StartRefresh", &r, &r.request_id);
        let envs = c::environments(&mut v, &r.source, &r.destination);
        let (source, destination) = done(v, envs)?;
        scope(&p, &[&source, &destination])?;
        let etag = (!r.plan_etag.is_empty()).then(|| r.plan_etag.clone());
        let run = self.coordinator.start(source, destination, c::options(r.options), etag, caller(&p), key.flatten()).await?;
        Ok(Response::new(c::run_pb(&run)))
    }

    async fn get_refresh_run(&self, request: Request<pb::GetRefreshRunRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let name = run_name(&mut v, "name", &request.get_ref().name);
        let name = done(v, name)?;
        Ok(Response::new(c::run_pb(&self.visible(&p, &name).await?)))
    }

    async fn list_refresh_runs(
        &self,
        request: Request<pb::ListRefreshRunsRequest>,
    ) -> Result<Response<pb::ListRefreshRunsResponse>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let size = v.check("page_size", ferry_kit::paging::page_size(r.page_size));
        let states: Vec<RunState> =
            r.states.iter().enumerate().filter_map(|(i, s)| v.check(&format!("states[{i}]"), c::run_state(*s))).collect();
        let environment = if r.environment.is_empty() { None } else { v.check("environment", EnvName::parse(&r.environment)) };
        let scope_key = format!("refreshRuns:{:?}:{}", r.states, r.environment);
        let cursor = v.check("page_token", ferry_kit::paging::decode::<(i64, String)>(&scope_key, &r.page_token));
        let (size, cursor) = done(v, size.zip(cursor))?;
        if let Some(env) = &environment {
            scope(&p, &[env])?;
        }
        let filter = ListFilter { states, environment };
        let mut runs = self.coordinator.list(&filter, cursor.as_ref(), size + 1).await?;
        // A caller scoped to some environments sees only their runs.
        runs.retain(|run| scope(&p, &[&run.source, &run.destination]).is_ok());
        let page = ferry_kit::paging::split(runs, size, |run| (run.create_time, run.name.id().to_owned()));
        Ok(Response::new(pb::ListRefreshRunsResponse {
            refresh_runs: page.items.iter().map(c::run_pb).collect(),
            next_page_token: page.next.map(|n| ferry_kit::paging::encode(&scope_key, &n)).unwrap_or_default(),
        }))
    }

    async fn watch_refresh_run(&self, request: Request<pb::WatchRefreshRunRequest>) -> Result<Response<BoxStream<pb::RefreshRun>>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let name = run_name(&mut v, "name", &request.get_ref().name);
        let name = done(v, name)?;
        let first = self.visible(&p, &name).await?;
        let state = Watch {
            coordinator: self.coordinator.clone(),
            events: self.coordinator.subscribe(),
            name,
            first: Some(first),
            last: None,
            ended: false,
        };
        let stream = futures::stream::unfold(state, |mut w| async move {
            if w.ended {
                return None;
            }
            loop {
                let candidate = match w.first.take() {
                    Some(run) => Ok(run),
                    None => w.next().await,
                };
                match candidate {
                    Ok(run) => {
                        let key = transition(&run);
                        if w.last.as_ref() != Some(&key) {
                            w.last = Some(key);
                            w.ended = matches!(run.state, RunState::Succeeded | RunState::Failed | RunState::Aborted);
                            return Some((Ok(c::run_pb(&run)), w));
                        }
                    }
                    Err(e) => {
                        w.ended = true;
                        return Some((Err(Status::from(e)), w));
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name, step = request.get_ref().step))]
    async fn confirm_refresh_step(&self, request: Request<pb::ConfirmRefreshStepRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "ConfirmRefreshStep", &r, &r.request_id);
        let name = run_name(&mut v, "name", &r.name);
        if !(1..=9).contains(&r.step) {
            v.add("step", "must be a step number, 1-9");
        }
        let (name, key) = done(v, name.zip(key))?;
        self.visible(&p, &name).await?;
        let actor = if r.actor.is_empty() { caller(&p) } else { r.actor.clone() };
        let run = self.coordinator.confirm(&name, r.step, actor, r.comment.clone(), key).await?;
        Ok(Response::new(c::run_pb(&run)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn retry_refresh_run(&self, request: Request<pb::RetryRefreshRunRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "RetryRefreshRun", &r, &r.request_id);
        let name = run_name(&mut v, "name", &r.name);
        let (name, key) = done(v, name.zip(key))?;
        self.visible(&p, &name).await?;
        Ok(Response::new(c::run_pb(&self.coordinator.retry(&name, key).await?)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn abort_refresh_run(&self, request: Request<pb::AbortRefreshRunRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "AbortRefreshRun", &r, &r.request_id);
        let name = run_name(&mut v, "name", &r.name);
        let (name, key) = done(v, name.zip(key))?;
        self.visible(&p, &name).await?;
        let run = self.coordinator.abort(&name, r.reason.clone(), caller(&p), key).await?;
        Ok(Response::new(c::run_pb(&run)))
    }

    #[tracing::instrument(skip_all, fields(source = %request.get_ref().source_project, target = %request.get_ref().target_project))]
    async fn plan_promotion(&self, request: Request<pb::PlanPromotionRequest>) -> Result<Response<pb::PromotionPlan>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "PlanPromotion", &r, &r.request_id);
        let projects = pr::projects(&mut v, &r.source_project, &r.target_project);
        let (source, target) = done(v, projects.zip(key).map(|(st, _)| st))?;
        scope(&p, &[&source.env])?;
        let options = pr::options(&r.options);
        let plan = self.coordinator.plan_promotion(&source, &target, &options, r.request_id.clone()).await?;
        Ok(Response::new(pb::PromotionPlan {
            source_project: source.to_string(),
            target_project: target.to_string(),
            options: Some(pr::options_pb(&options)),
            project_merge: Some(plan),
        }))
    }

    #[tracing::instrument(skip_all, fields(source = %request.get_ref().source_project, target = %request.get_ref().target_project))]
    async fn start_promotion(&self, request: Request<pb::StartPromotionRequest>) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "StartPromotion", &r, &r.request_id);
        let projects = pr::projects(&mut v, &r.source_project, &r.target_project);
        for (i, m) in r.merge_plans.iter().enumerate() {
            if !m.starts_with("mergePlans/") {
                v.add(format!("merge_plans[{i}]"), "must be mergePlans/{plan}");
            }
        }
        let ((source, target), key) = done(v, projects.zip(key))?;
        scope(&p, &[&source.env])?;
        let run = self.coordinator.start_promotion(source, target, pr::options(&r.options), r.merge_plans.clone(), caller(&p), key).await?;
        Ok(Response::new(pr::run_pb(&run)))
    }

    async fn get_promotion_run(&self, request: Request<pb::GetPromotionRunRequest>) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let id = v.check("name", pr::run_id(&request.get_ref().name));
        let id = done(v, id)?;
        Ok(Response::new(pr::run_pb(&self.visible_promotion(&p, &id).await?)))
    }

    async fn list_promotion_runs(
        &self,
        request: Request<pb::ListPromotionRunsRequest>,
    ) -> Result<Response<pb::ListPromotionRunsResponse>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let size = v.check("page_size", ferry_kit::paging::page_size(r.page_size));
        let states: Vec<RunState> =
            r.states.iter().enumerate().filter_map(|(i, s)| v.check(&format!("states[{i}]"), c::run_state(*s))).collect();
        let project = if r.project.is_empty() { None } else { v.check("project", ProjectName::parse(&r.project)) };
        let scope_key = format!("promotionRuns:{:?}:{}", r.states, r.project);
        let cursor = v.check("page_token", ferry_kit::paging::decode::<(i64, String)>(&scope_key, &r.page_token));
        let (size, cursor) = done(v, size.zip(cursor))?;
        if let Some(pn) = &project {
            scope(&p, &[&pn.env])?;
        }
        let name = project.as_ref().map(|pn| pn.to_string());
        let mut runs = self.coordinator.list_promotions(&states, name.as_deref(), cursor.as_ref(), size + 1).await?;
        runs.retain(|run| scope(&p, &[&run.target.env]).is_ok());
        let page = ferry_kit::paging::split(runs, size, |run| (run.create_time, run.id.clone()));
        Ok(Response::new(pb::ListPromotionRunsResponse {
            promotion_runs: page.items.iter().map(pr::run_pb).collect(),
            next_page_token: page.next.map(|n| ferry_kit::paging::encode(&scope_key, &n)).unwrap_or_default(),
        }))
    }

    async fn watch_promotion_run(
        &self,
        request: Request<pb::WatchPromotionRunRequest>,
    ) -> Result<Response<BoxStream<pb::PromotionRun>>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let id = v.check("name", pr::run_id(&request.get_ref().name));
        let id = done(v, id)?;
        let events = self.coordinator.subscribe_promotions();
        let first = self.visible_promotion(&p, &id).await?;
        let state = PromotionWatch { coordinator: self.coordinator.clone(), events, id, first: Some(first), last: None, ended: false };
        let stream = futures::stream::unfold(state, |mut w| async move {
            if w.ended {
                return None;
            }
            loop {
                let candidate = match w.first.take() {
                    Some(run) => Ok(run),
                    None => w.next().await,
                };
                match candidate {
                    Ok(run) => {
                        let key = promotion_transition(&run);
                        if w.last.as_ref() != Some(&key) {
                            w.last = Some(key);
                            w.ended = matches!(run.state, RunState::Succeeded | RunState::Failed | RunState::Aborted);
                            return Some((Ok(pr::run_pb(&run)), w));
                        }
                    }
                    Err(e) => {
                        w.ended = true;
                        return Some((Err(Status::from(e)), w));
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name, step = request.get_ref().step))]
    async fn confirm_promotion_step(
        &self,
        request: Request<pb::ConfirmPromotionStepRequest>,
    ) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "ConfirmPromotionStep", &r, &r.request_id);
        let id = v.check("name", pr::run_id(&r.name));
        if r.step < 1 {
            v.add("step", "must be a step number");
        }
        let (id, key) = done(v, id.zip(key))?;
        self.visible_promotion(&p, &id).await?;
        let actor = if r.actor.is_empty() { caller(&p) } else { r.actor.clone() };
        Ok(Response::new(pr::run_pb(&self.coordinator.confirm_promotion(&id, r.step, actor, r.comment.clone(), key).await?)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn retry_promotion_run(&self, request: Request<pb::RetryPromotionRunRequest>) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "RetryPromotionRun", &r, &r.request_id);
        let id = v.check("name", pr::run_id(&r.name));
        let (id, key) = done(v, id.zip(key))?;
        self.visible_promotion(&p, &id).await?;
        Ok(Response::new(pr::run_pb(&self.coordinator.retry_promotion(&id, key).await?)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn abort_promotion_run(&self, request: Request<pb::AbortPromotionRunRequest>) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "AbortPromotionRun", &r, &r.request_id);
        let id = v.check("name", pr::run_id(&r.name));
        let (id, key) = done(v, id.zip(key))?;
        self.visible_promotion(&p, &id).await?;
        let run = self.coordinator.abort_promotion(&id, r.reason.clone(), caller(&p), r.proceed_with_changed, key).await?;
        Ok(Response::new(pr::run_pb(&run)))
    }

    async fn get_refresh_report(&self, request: Request<pb::GetRefreshReportRequest>) -> Result<Response<pb::RefreshReport>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let name = v.check("name", RunName::parse_with_suffix(&request.get_ref().name, "/report"));
        let name = done(v, name)?;
        let run = self.visible(&p, &name).await?;
        Ok(Response::new(pb::RefreshReport {
            name: format!("{name}/report"),
            markdown: report::markdown(&run),
            generate_time: Some(ferry_kit::db::timestamp(ferry_kit::db::now_micros())),
        }))
    }
}
