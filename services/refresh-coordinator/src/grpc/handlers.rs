//! `RefreshService`: parse, check the caller's environment scope, call the engine and the
//! run kinds, convert back.

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::refresh::v1 as pb;
use ferry_proto::refresh::v1::refresh_service_server::RefreshService;
use futures::StreamExt;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::convert as c;
use super::{rollback, schedules};
use crate::domain::approval::Confirmer;
use crate::domain::{AbortRequest, EnvName, ProjectName, PromotionRun, RefreshRun, RunState, run_id};
use crate::engine::{Engine, Kind, ListFilter, RunOf};
use crate::kinds::{Promotion, Refresh, promotion, refresh};

/// The gRPC face of the coordinator.
#[derive(Clone)]
pub struct RefreshApi {
    engine: Engine,
}

impl RefreshApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

/// Who the caller is, for every actor field: the subject it authenticated as, or the
/// caller a service (with the service right) passed on.
pub(super) fn caller(p: &Principal) -> String {
    p.actor().to_owned()
}

/// Who confirms a step: the caller as authenticated, and the actor the step records (a
/// violation on `actor` when the four-eyes rule forbids the one typed).
pub(super) fn confirmer(v: &mut Violations, p: &Principal, actor: &str, four_eyes: bool) -> Option<Confirmer> {
    v.check("actor", Confirmer::new(&p.subject, p.approver, actor, four_eyes))
}

pub(super) fn scope(p: &Principal, envs: &[&EnvName]) -> Result<(), Status> {
    envs.iter().try_for_each(|e| p.check_environment(e.id()))
}

/// The id of a run of kind `K` named in `field` (`refreshRuns/{run}`).
pub(super) fn id_of<K: Kind>(v: &mut Violations, field: &str, name: &str) -> Option<String> {
    v.check(field, run_id(K::COLLECTION, name, ""))
}

pub(super) fn done<T>(v: Violations, value: Option<T>) -> Result<T, Status> {
    v.finish().map_err(|v| ferry_kit::status::invalid_argument(&v))?;
    value.ok_or_else(|| Status::internal("internal error"))
}

/// The environments a run concerns, for scope checks.
pub(super) trait Scoped {
    fn environments(&self) -> Vec<&EnvName>;
}

impl Scoped for RefreshRun {
    fn environments(&self) -> Vec<&EnvName> {
        vec![&self.spec.source, &self.spec.destination]
    }
}

impl Scoped for PromotionRun {
    fn environments(&self) -> Vec<&EnvName> {
        vec![&self.spec.target.env]
    }
}

impl RefreshApi {
    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Run `id` of kind `K`, after checking the caller may see its environments.
    pub(super) async fn visible<K: Kind>(&self, p: &Principal, id: &str) -> Result<RunOf<K>, Status>
    where
        RunOf<K>: Scoped,
    {
        let run = self.engine.get::<K>(id).await?;
        scope(p, &run.environments())?;
        Ok(run)
    }

    /// A page of runs of kind `K`: parsed page size, states and cursor, runs the caller may see.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn page<K: Kind>(
        &self,
        p: &Principal,
        mut v: Violations,
        page_size: i32,
        states: &[i32],
        subject: Option<String>,
        scope_key: String,
        page_token: &str,
    ) -> Result<(Vec<RunOf<K>>, String), Status>
    where
        RunOf<K>: Scoped,
    {
        let size = v.check("page_size", ferry_kit::paging::page_size(page_size));
        let states: Vec<RunState> =
            states.iter().enumerate().filter_map(|(i, s)| v.check(&format!("states[{i}]"), c::run_state(*s))).collect();
        let cursor = v.check("page_token", ferry_kit::paging::decode::<(i64, String)>(&scope_key, page_token));
        let (size, cursor) = done(v, size.zip(cursor))?;
        // A caller scoped to some environments sees only their runs.
        let filter = ListFilter { states, subject, scope: p.environments.clone() };
        let runs = self.engine.list::<K>(&filter, cursor.as_ref(), size + 1).await?;
        let page = ferry_kit::paging::split(runs, size, |run| (run.create_time, run.id.clone()));
        Ok((page.items, page.next.map(|n| ferry_kit::paging::encode(&scope_key, &n)).unwrap_or_default()))
    }

    /// Watch of run `id` of kind `K`, converted with `pb`.
    pub(super) async fn watch<K: Kind, T: Send + 'static>(
        &self,
        p: &Principal,
        id: &str,
        pb: fn(&RunOf<K>) -> T,
    ) -> Result<BoxStream<T>, Status>
    where
        RunOf<K>: Scoped,
    {
        let first = self.visible::<K>(p, id).await?;
        Ok(Box::pin(self.engine.watch::<K>(first).map(move |r| r.map(|run| pb(&run)).map_err(Status::from))))
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
        let plan = refresh::plan::plan(&self.engine, &source, &destination, c::options(r.options)).await?;
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
        let run = refresh::start(&self.engine, source, destination, c::options(r.options), etag, caller(&p), key.flatten()).await?;
        Ok(Response::new(c::run_pb(&run)))
    }

    async fn get_refresh_run(&self, request: Request<pb::GetRefreshRunRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let id = id_of::<Refresh>(&mut v, "name", &request.get_ref().name);
        let id = done(v, id)?;
        Ok(Response::new(c::run_pb(&self.visible::<Refresh>(&p, &id).await?)))
    }

    async fn list_refresh_runs(
        &self,
        request: Request<pb::ListRefreshRunsRequest>,
    ) -> Result<Response<pb::ListRefreshRunsResponse>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let environment = if r.environment.is_empty() { None } else { v.check("environment", EnvName::parse(&r.environment)) };
        if let Some(env) = &environment {
            scope(&p, &[env])?;
        }
        let scope_key = format!("refreshRuns:{:?}:{}", r.states, r.environment);
        let subject = environment.map(|e| e.to_string());
        let (runs, next) = self.page::<Refresh>(&p, v, r.page_size, &r.states, subject, scope_key, &r.page_token).await?;
        Ok(Response::new(pb::ListRefreshRunsResponse { refresh_runs: runs.iter().map(c::run_pb).collect(), next_page_token: next }))
    }

    async fn watch_refresh_run(&self, request: Request<pb::WatchRefreshRunRequest>) -> Result<Response<BoxStream<pb::RefreshRun>>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let id = id_of::<Refresh>(&mut v, "name", &request.get_ref().name);
        let id = done(v, id)?;
        Ok(Response::new(self.watch::<Refresh, _>(&p, &id, c::run_pb).await?))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name, step = request.get_ref().step))]
    async fn confirm_refresh_step(&self, request: Request<pb::ConfirmRefreshStepRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "ConfirmRefreshStep", &r, &r.request_id);
        let id = id_of::<Refresh>(&mut v, "name", &r.name);
        if !(1..=9).contains(&r.step) {
            v.add("step", "must be a step number, 1-9");
        }
        let who = confirmer(&mut v, &p, &r.actor, self.engine.settings().four_eyes);
        let ((id, key), who) = done(v, id.zip(key).zip(who))?;
        self.visible::<Refresh>(&p, &id).await?;
        let run = self.engine.confirm::<Refresh>(&id, r.step, who, r.comment.clone(), key, "ConfirmRefreshStep").await?;
        Ok(Response::new(c::run_pb(&run)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn retry_refresh_run(&self, request: Request<pb::RetryRefreshRunRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "RetryRefreshRun", &r, &r.request_id);
        let id = id_of::<Refresh>(&mut v, "name", &r.name);
        let (id, key) = done(v, id.zip(key))?;
        self.visible::<Refresh>(&p, &id).await?;
        Ok(Response::new(c::run_pb(&self.engine.retry::<Refresh>(&id, key, "RetryRefreshRun").await?)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn abort_refresh_run(&self, request: Request<pb::AbortRefreshRunRequest>) -> Result<Response<pb::RefreshRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "AbortRefreshRun", &r, &r.request_id);
        let id = id_of::<Refresh>(&mut v, "name", &r.name);
        let (id, key) = done(v, id.zip(key))?;
        self.visible::<Refresh>(&p, &id).await?;
        let request = AbortRequest { reason: r.reason.clone(), by: caller(&p), proceed_with_changed: false };
        Ok(Response::new(c::run_pb(&self.engine.abort::<Refresh>(&id, request, key, "AbortRefreshRun").await?)))
    }

    #[tracing::instrument(skip_all, fields(source = %request.get_ref().source_project, target = %request.get_ref().target_project))]
    async fn plan_promotion(&self, request: Request<pb::PlanPromotionRequest>) -> Result<Response<pb::PromotionPlan>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "PlanPromotion", &r, &r.request_id);
        let projects = c::projects(&mut v, &r.source_project, &r.target_project);
        let (source, target) = done(v, projects.zip(key).map(|(st, _)| st))?;
        scope(&p, &[&source.env])?;
        let options = c::promotion_options(&r.options);
        let preview = promotion::plan(&self.engine, &source, &target, &options, r.request_id.clone()).await?;
        Ok(Response::new(c::promotion_plan_pb(&source, &target, &options, &preview)))
    }

    #[tracing::instrument(skip_all, fields(source = %request.get_ref().source_project, target = %request.get_ref().target_project))]
    async fn start_promotion(&self, request: Request<pb::StartPromotionRequest>) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "StartPromotion", &r, &r.request_id);
        let projects = c::projects(&mut v, &r.source_project, &r.target_project);
        for (i, m) in r.merge_plans.iter().enumerate() {
            if !m.starts_with("mergePlans/") {
                v.add(format!("merge_plans[{i}]"), "must be mergePlans/{plan}");
            }
        }
        let ((source, target), key) = done(v, projects.zip(key))?;
        scope(&p, &[&source.env])?;
        let options = c::promotion_options(&r.options);
        let run = promotion::start(&self.engine, source, target, options, r.merge_plans.clone(), caller(&p), key).await?;
        Ok(Response::new(c::promotion_pb(&run)))
    }

    async fn get_promotion_run(&self, request: Request<pb::GetPromotionRunRequest>) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let id = id_of::<Promotion>(&mut v, "name", &request.get_ref().name);
        let id = done(v, id)?;
        Ok(Response::new(c::promotion_pb(&self.visible::<Promotion>(&p, &id).await?)))
    }

    async fn list_promotion_runs(
        &self,
        request: Request<pb::ListPromotionRunsRequest>,
    ) -> Result<Response<pb::ListPromotionRunsResponse>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let project = if r.project.is_empty() { None } else { v.check("project", ProjectName::parse(&r.project)) };
        if let Some(pn) = &project {
            scope(&p, &[&pn.env])?;
        }
        let scope_key = format!("promotionRuns:{:?}:{}", r.states, r.project);
        let subject = project.map(|pn| pn.to_string());
        let (runs, next) = self.page::<Promotion>(&p, v, r.page_size, &r.states, subject, scope_key, &r.page_token).await?;
        Ok(Response::new(pb::ListPromotionRunsResponse {
            promotion_runs: runs.iter().map(c::promotion_pb).collect(),
            next_page_token: next,
        }))
    }

    async fn watch_promotion_run(
        &self,
        request: Request<pb::WatchPromotionRunRequest>,
    ) -> Result<Response<BoxStream<pb::PromotionRun>>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let id = id_of::<Promotion>(&mut v, "name", &request.get_ref().name);
        let id = done(v, id)?;
        Ok(Response::new(self.watch::<Promotion, _>(&p, &id, c::promotion_pb).await?))
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
        let id = id_of::<Promotion>(&mut v, "name", &r.name);
        if r.step < 1 {
            v.add("step", "must be a step number");
        }
        let who = confirmer(&mut v, &p, &r.actor, self.engine.settings().four_eyes);
        let ((id, key), who) = done(v, id.zip(key).zip(who))?;
        self.visible::<Promotion>(&p, &id).await?;
        let run = self.engine.confirm::<Promotion>(&id, r.step, who, r.comment.clone(), key, "ConfirmPromotionStep").await?;
        Ok(Response::new(c::promotion_pb(&run)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn retry_promotion_run(&self, request: Request<pb::RetryPromotionRunRequest>) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "RetryPromotionRun", &r, &r.request_id);
        let id = id_of::<Promotion>(&mut v, "name", &r.name);
        let (id, key) = done(v, id.zip(key))?;
        self.visible::<Promotion>(&p, &id).await?;
        Ok(Response::new(c::promotion_pb(&self.engine.retry::<Promotion>(&id, key, "RetryPromotionRun").await?)))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn abort_promotion_run(&self, request: Request<pb::AbortPromotionRunRequest>) -> Result<Response<pb::PromotionRun>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "AbortPromotionRun", &r, &r.request_id);
        let id = id_of::<Promotion>(&mut v, "name", &r.name);
        let (id, key) = done(v, id.zip(key))?;
        self.visible::<Promotion>(&p, &id).await?;
        let request = AbortRequest { reason: r.reason.clone(), by: caller(&p), proceed_with_changed: r.proceed_with_changed };
        Ok(Response::new(c::promotion_pb(&self.engine.abort::<Promotion>(&id, request, key, "AbortPromotionRun").await?)))
    }

    async fn get_refresh_report(&self, request: Request<pb::GetRefreshReportRequest>) -> Result<Response<pb::RefreshReport>, Status> {
        let p = Principal::of(&request);
        let mut v = Violations::new();
        let id = v.check("name", run_id(Refresh::COLLECTION, &request.get_ref().name, "/report"));
        let id = done(v, id)?;
        let run = self.visible::<Refresh>(&p, &id).await?;
        let audit = self.engine.audit_of::<Refresh>(&id).await?;
        Ok(Response::new(pb::RefreshReport {
            name: format!("{}/report", crate::engine::name_of::<Refresh>(&id)),
            markdown: refresh::report::markdown(&run, &audit),
            generate_time: Some(ferry_kit::db::timestamp(ferry_kit::db::now_micros())),
        }))
    }

    async fn plan_rollback(&self, request: Request<pb::PlanRollbackRequest>) -> Result<Response<pb::RollbackPlan>, Status> {
        Ok(Response::new(rollback::plan(self, request).await?))
    }

    #[tracing::instrument(skip_all, fields(refresh_run = %request.get_ref().refresh_run))]
    async fn start_rollback(&self, request: Request<pb::StartRollbackRequest>) -> Result<Response<pb::RollbackRun>, Status> {
        Ok(Response::new(rollback::start(self, request).await?))
    }

    async fn get_rollback_run(&self, request: Request<pb::GetRollbackRunRequest>) -> Result<Response<pb::RollbackRun>, Status> {
        Ok(Response::new(rollback::get(self, request).await?))
    }

    async fn list_rollback_runs(
        &self,
        request: Request<pb::ListRollbackRunsRequest>,
    ) -> Result<Response<pb::ListRollbackRunsResponse>, Status> {
        Ok(Response::new(rollback::list(self, request).await?))
    }

    async fn watch_rollback_run(
        &self,
        request: Request<pb::WatchRollbackRunRequest>,
    ) -> Result<Response<BoxStream<pb::RollbackRun>>, Status> {
        Ok(Response::new(rollback::watch(self, request).await?))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name, step = request.get_ref().step))]
    async fn confirm_rollback_step(&self, request: Request<pb::ConfirmRollbackStepRequest>) -> Result<Response<pb::RollbackRun>, Status> {
        Ok(Response::new(rollback::confirm(self, request).await?))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn retry_rollback_run(&self, request: Request<pb::RetryRollbackRunRequest>) -> Result<Response<pb::RollbackRun>, Status> {
        Ok(Response::new(rollback::retry(self, request).await?))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn abort_rollback_run(&self, request: Request<pb::AbortRollbackRunRequest>) -> Result<Response<pb::RollbackRun>, Status> {
        Ok(Response::new(rollback::abort(self, request).await?))
    }

    async fn get_rollback_report(&self, request: Request<pb::GetRollbackReportRequest>) -> Result<Response<pb::RollbackReport>, Status> {
        Ok(Response::new(rollback::report(self, request).await?))
    }

    async fn create_refresh_schedule(
        &self,
        request: Request<pb::CreateRefreshScheduleRequest>,
    ) -> Result<Response<pb::RefreshSchedule>, Status> {
        let p = Principal::of(&request);
        Ok(Response::new(self.create_schedule(&p, request.into_inner()).await?))
    }

    async fn get_refresh_schedule(&self, request: Request<pb::GetRefreshScheduleRequest>) -> Result<Response<pb::RefreshSchedule>, Status> {
        let p = Principal::of(&request);
        Ok(Response::new(self.get_schedule(&p, request.into_inner()).await?))
    }

    async fn list_refresh_schedules(
        &self,
        request: Request<pb::ListRefreshSchedulesRequest>,
    ) -> Result<Response<pb::ListRefreshSchedulesResponse>, Status> {
        let p = Principal::of(&request);
        Ok(Response::new(self.list_schedules(&p, request.into_inner()).await?))
    }

    async fn update_refresh_schedule(
        &self,
        request: Request<pb::UpdateRefreshScheduleRequest>,
    ) -> Result<Response<pb::RefreshSchedule>, Status> {
        let p = Principal::of(&request);
        Ok(Response::new(self.update_schedule(&p, request.into_inner()).await?))
    }

    async fn pause_refresh_schedule(
        &self,
        request: Request<pb::PauseRefreshScheduleRequest>,
    ) -> Result<Response<pb::RefreshSchedule>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        Ok(Response::new(self.set_schedule(&p, "PauseRefreshSchedule", &r, &r.name, &r.request_id, schedules::pause).await?))
    }

    async fn resume_refresh_schedule(
        &self,
        request: Request<pb::ResumeRefreshScheduleRequest>,
    ) -> Result<Response<pb::RefreshSchedule>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        Ok(Response::new(self.set_schedule(&p, "ResumeRefreshSchedule", &r, &r.name, &r.request_id, schedules::resume).await?))
    }

    async fn delete_refresh_schedule(
        &self,
        request: Request<pb::DeleteRefreshScheduleRequest>,
    ) -> Result<Response<pb::RefreshSchedule>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        Ok(Response::new(self.set_schedule(&p, "DeleteRefreshSchedule", &r, &r.name, &r.request_id, schedules::delete).await?))
    }

    async fn undelete_refresh_schedule(
        &self,
        request: Request<pb::UndeleteRefreshScheduleRequest>,
    ) -> Result<Response<pb::RefreshSchedule>, Status> {
        let p = Principal::of(&request);
        let r = request.into_inner();
        Ok(Response::new(self.set_schedule(&p, "UndeleteRefreshSchedule", &r, &r.name, &r.request_id, schedules::undelete).await?))
    }
}
