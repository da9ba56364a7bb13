//! `MergeService`: parse, check the caller's environment scope, call the service layer,
//! convert back. RPCs not listed here answer UNIMPLEMENTED (the generated defaults).

use std::time::{Duration, Instant};

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::merge::v1 as pb;
use ferry_proto::merge::v1::merge_service_server::MergeService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert::{self as c, done};
use super::requests::{check_pair, project_merge_request};
use crate::domain::{
    JobId, JobKind, JobState, Kind, Outcome, PlanId, PlanState, PlanType, ProjectName, Selection, Strategy, check_key, display_name,
};
use crate::service::{Engine, PlanRequest};

/// Most keys in a selective plan (the registry's manifest filter limit).
const MAX_KEYS: usize = 10_000;
/// How often WatchJob looks at the job, and the least time between progress snapshots.
const WATCH_POLL: Duration = Duration::from_millis(100);
const WATCH_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The gRPC face of the engine.
#[derive(Clone)]
pub struct MergeApi {
    engine: Engine,
}

impl MergeApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

fn scope(p: &Principal, env: &str) -> Result<(), Status> {
    p.check_environment(env)
}

/// The environment a job works in (all its resources share one).
fn job_env(job: &crate::domain::Job) -> String {
    job.recipient.strip_prefix("environments/").and_then(|r| r.split('/').next()).unwrap_or_default().to_owned()
}

#[tonic::async_trait]
impl MergeService for MergeApi {
    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, recipient = %req.get_ref().recipient))]
    async fn create_merge_plan(&self, req: Request<pb::CreateMergePlanRequest>) -> Result<Response<pb::MergePlan>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateMergePlan", &r, &r.request_id);
        let source = c::group(&mut v, "source", &r.source);
        let recipient = c::group(&mut v, "recipient", &r.recipient);
        check_pair(&mut v, &source, &recipient);
        let strategy = v.check("strategy", Strategy::from_request(r.strategy));
        let kinds = c::enums(&mut v, "kinds", &r.kinds, Kind::from_number);
        if r.keys.len() > MAX_KEYS {
            v.add("keys", format!("at most {MAX_KEYS} keys"));
        }
        for (i, k) in r.keys.iter().enumerate() {
            v.check(&format!("keys[{i}]"), check_key(k));
        }
        let mut keys = r.keys.clone();
        keys.sort();
        keys.dedup();
        let (key, source, recipient, strategy, kinds) = done(v, || Some((key?, source?, recipient?, strategy?, kinds?)))?;
        scope(&p, &source.env)?;
        let req = PlanRequest {
            plan_type: PlanType::GroupMerge,
            source,
            recipient,
            recipient_display_name: String::new(),
            strategy,
            selection: Selection { kinds, keys },
            created_by: p.actor().to_owned(),
        };
        Ok(Response::new(c::plan(self.engine.create_plan(key, "CreateMergePlan", req).await?)))
    }

    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, group = %req.get_ref().group_id))]
    async fn plan_clone_group(&self, req: Request<pb::PlanCloneGroupRequest>) -> Result<Response<pb::MergePlan>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "PlanCloneGroup", &r, &r.request_id);
        let source = c::group(&mut v, "source", &r.source);
        let recipient = source.as_ref().and_then(|s| v.check("group_id", s.sibling(&r.group_id)));
        let display = v.check("display_name", display_name(&r.display_name));
        let (key, source, recipient, display) = done(v, || Some((key?, source?, recipient?, display?)))?;
        scope(&p, &source.env)?;
        let req = PlanRequest {
            plan_type: PlanType::GroupClone,
            source,
            recipient,
            recipient_display_name: display,
            strategy: Strategy::KeepRecipient,
            selection: Selection::default(),
            created_by: p.actor().to_owned(),
        };
        Ok(Response::new(c::plan(self.engine.create_plan(key, "PlanCloneGroup", req).await?)))
    }

    async fn get_merge_plan(&self, req: Request<pb::GetMergePlanRequest>) -> Result<Response<pb::MergePlan>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let id = v.check("name", PlanId::parse(&req.get_ref().name));
        let id = done(v, || id)?;
        let plan = self.engine.get_plan(&id).await?;
        scope(&p, &plan.source.env)?;
        Ok(Response::new(c::plan(plan)))
    }

    async fn list_merge_plans(&self, req: Request<pb::ListMergePlansRequest>) -> Result<Response<pb::ListMergePlansResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let source = c::group_filter(&mut v, "source", &r.source);
        let recipient = c::group_filter(&mut v, "recipient", &r.recipient);
        let states = c::enums(&mut v, "states", &r.states, PlanState::from_number);
        let list = format!("mergePlans:{}:{}:{:?}", r.source, r.recipient, r.states);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<(i64, String)>(&mut v, &list, &r.page_token);
        let (source, recipient, states, size, after) = done(v, || Some((source?, recipient?, states?, size?, after?)))?;
        let page = self.engine.list_plans(source.as_ref(), recipient.as_ref(), &states, after, size, p.environments.as_ref()).await?;
        Ok(Response::new(pb::ListMergePlansResponse {
            next_page_token: c::next_token(&list, &page.next),
            merge_plans: page.items.into_iter().map(c::plan).collect(),
        }))
    }

    async fn list_merge_plan_items(
        &self,
        req: Request<pb::ListMergePlanItemsRequest>,
    ) -> Result<Response<pb::ListMergePlanItemsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let id = v.check("parent", PlanId::parse(&r.parent));
        let outcomes = c::enums(&mut v, "outcomes", &r.outcomes, Outcome::from_number);
        let kinds = c::enums(&mut v, "kinds", &r.kinds, Kind::from_number);
        let list = format!("items:{}:{:?}:{:?}", r.parent, r.outcomes, r.kinds);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<i64>(&mut v, &list, &r.page_token);
        let (id, outcomes, kinds, size, after) = done(v, || Some((id?, outcomes?, kinds?, size?, after?)))?;
        let plan = self.engine.get_plan(&id).await?;
        scope(&p, &plan.source.env)?;
        let page = self.engine.list_plan_items(&id, &outcomes, &kinds, after, size).await?;
        Ok(Response::new(pb::ListMergePlanItemsResponse {
            next_page_token: c::next_token(&list, &page.next),
            items: page.items.into_iter().map(|i| c::item(&plan.source, &plan.recipient, i)).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(plan = %req.get_ref().name))]
    async fn cancel_merge_plan(&self, req: Request<pb::CancelMergePlanRequest>) -> Result<Response<pb::MergePlan>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CancelMergePlan", &r, &r.request_id);
        let id = v.check("name", PlanId::parse(&r.name));
        let (key, id) = done(v, || Some((key?, id?)))?;
        let plan = self.engine.get_plan(&id).await?;
        scope(&p, &plan.source.env)?;
        Ok(Response::new(c::plan(self.engine.cancel_plan(key, id).await?)))
    }

    #[tracing::instrument(skip_all, fields(plan = %req.get_ref().name))]
    async fn apply_merge_plan(&self, req: Request<pb::ApplyMergePlanRequest>) -> Result<Response<pb::Job>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "ApplyMergePlan", &r, &r.request_id);
        let id = v.check("name", PlanId::parse(&r.name));
        let (key, id) = done(v, || Some((key?, id?)))?;
        let plan = self.engine.get_plan(&id).await?;
        scope(&p, &plan.source.env)?;
        Ok(Response::new(c::job(self.engine.apply_plan(key, id, r.proceed_with_missing_dependencies, p.actor().to_owned()).await?)))
    }

    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, group = %req.get_ref().group_id))]
    async fn clone_group(&self, req: Request<pb::CloneGroupRequest>) -> Result<Response<pb::Job>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CloneGroup", &r, &r.request_id);
        let source = c::group(&mut v, "source", &r.source);
        let recipient = source.as_ref().and_then(|s| v.check("group_id", s.sibling(&r.group_id)));
        let display = v.check("display_name", display_name(&r.display_name));
        let (key, source, recipient, display) = done(v, || Some((key?, source?, recipient?, display?)))?;
        scope(&p, &source.env)?;
        Ok(Response::new(c::job(self.engine.clone_group(key, source, recipient, display, p.actor().to_owned()).await?)))
    }

    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, project = %req.get_ref().project_id))]
    async fn clone_project(&self, req: Request<pb::CloneProjectRequest>) -> Result<Response<pb::Job>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CloneProject", &r, &r.request_id);
        let source = v.check("source", ProjectName::parse(&r.source));
        let new = source.as_ref().and_then(|s| v.check("project_id", s.sibling(&r.project_id)));
        let display = v.check("display_name", display_name(&r.display_name));
        if r.groups.is_empty() {
            v.add("groups", "at least one group is required");
        }
        let mut groups = Vec::with_capacity(r.groups.len());
        for (i, g) in r.groups.iter().enumerate() {
            if let Some(g) = c::group(&mut v, &format!("groups[{i}]"), g) {
                if source.as_ref().is_some_and(|s| s.env != g.env) {
                    v.add(format!("groups[{i}]"), "must be in the source project's environment");
                } else if groups.contains(&g) {
                    v.add(format!("groups[{i}]"), "is listed twice");
                } else {
                    groups.push(g);
                }
            }
        }
        let (key, source, new, display) = done(v, || Some((key?, source?, new?, display?)))?;
        scope(&p, &source.env)?;
        Ok(Response::new(c::job(self.engine.clone_project(key, source, new, display, groups, p.actor().to_owned()).await?)))
    }

    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, recipient = %req.get_ref().recipient))]
    async fn plan_project_merge(&self, req: Request<pb::PlanProjectMergeRequest>) -> Result<Response<pb::ProjectMergePlan>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "PlanProjectMerge", &r, &r.request_id);
        let m = project_merge_request(&mut v, &r.source, &r.recipient, r.merge_groups_first, r.strategy, &r.group_pairs, p.actor());
        let (key, m) = done(v, || Some((key?, m?)))?;
        scope(&p, &m.source.env)?;
        Ok(Response::new(c::project_merge_plan(self.engine.plan_project_merge(key, m).await?)))
    }

    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, recipient = %req.get_ref().recipient))]
    async fn merge_project(&self, req: Request<pb::MergeProjectRequest>) -> Result<Response<pb::Job>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "MergeProject", &r, &r.request_id);
        let m = project_merge_request(&mut v, &r.source, &r.recipient, r.merge_groups_first, r.strategy, &r.group_pairs, p.actor());
        let plans: Option<Vec<PlanId>> =
            r.group_merge_plans.iter().enumerate().map(|(i, n)| v.check(&format!("group_merge_plans[{i}]"), PlanId::parse(n))).collect();
        if !r.group_merge_plans.is_empty() && !r.merge_groups_first {
            v.add("group_merge_plans", "only with merge_groups_first");
        }
        let (key, mut m, plans) = done(v, || Some((key?, m?, plans?)))?;
        scope(&p, &m.source.env)?;
        m.plans = plans;
        m.proceed_with_missing_dependencies = r.proceed_with_missing_dependencies;
        Ok(Response::new(c::job(self.engine.merge_project(key, m).await?)))
    }

    #[tracing::instrument(skip_all, fields(job = %req.get_ref().job))]
    async fn revert_merge(&self, req: Request<pb::RevertMergeRequest>) -> Result<Response<pb::Job>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "RevertMerge", &r, &r.request_id);
        let id = v.check("job", JobId::parse(&r.job));
        let (key, id) = done(v, || Some((key?, id?)))?;
        let job = self.engine.get_job(&id).await?;
        scope(&p, &job_env(&job))?;
        Ok(Response::new(c::job(self.engine.revert_merge(key, id, r.proceed_with_changed, p.actor().to_owned()).await?)))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let id = v.check("name", JobId::parse(&req.get_ref().name));
        let id = done(v, || id)?;
        let job = self.engine.get_job(&id).await?;
        scope(&p, &job_env(&job))?;
        Ok(Response::new(c::job(job)))
    }

    async fn list_jobs(&self, req: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let states = c::enums(&mut v, "states", &r.states, JobState::from_number);
        let kinds = c::enums(&mut v, "kinds", &r.kinds, JobKind::from_number);
        let list = format!("jobs:{:?}:{:?}", r.states, r.kinds);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<(i64, String)>(&mut v, &list, &r.page_token);
        let (states, kinds, size, after) = done(v, || Some((states?, kinds?, size?, after?)))?;
        let page = self.engine.list_jobs(&states, &kinds, after, size, p.environments.as_ref()).await?;
        Ok(Response::new(pb::ListJobsResponse {
            next_page_token: c::next_token(&list, &page.next),
            jobs: page.items.into_iter().map(c::job).collect(),
        }))
    }

    async fn watch_job(&self, req: Request<pb::WatchJobRequest>) -> Result<Response<Stream<pb::Job>>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let id = v.check("name", JobId::parse(&req.get_ref().name));
        let id = done(v, || id)?;
        let first = self.engine.get_job(&id).await?;
        scope(&p, &job_env(&first))?;
        let engine = self.engine.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut last = first;
            let mut sent_at = Instant::now();
            if tx.send(Ok(c::job(last.clone()))).await.is_err() || last.state.is_terminal() {
                return;
            }
            loop {
                tokio::time::sleep(WATCH_POLL).await;
                let job = match engine.get_job(&id).await {
                    Ok(j) => j,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                let state_changed = job.state != last.state || job.cancel_requested != last.cancel_requested;
                let progressed = job.updated_at != last.updated_at && sent_at.elapsed() >= WATCH_PROGRESS_EVERY;
                if state_changed || progressed {
                    let terminal = job.state.is_terminal();
                    if tx.send(Ok(c::job(job.clone()))).await.is_err() || terminal {
                        return;
                    }
                    sent_at = Instant::now();
                    last = job;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all, fields(job = %req.get_ref().name))]
    async fn cancel_job(&self, req: Request<pb::CancelJobRequest>) -> Result<Response<pb::Job>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CancelJob", &r, &r.request_id);
        let id = v.check("name", JobId::parse(&r.name));
        let (key, id) = done(v, || Some((key?, id?)))?;
        let job = self.engine.get_job(&id).await?;
        scope(&p, &job_env(&job))?;
        Ok(Response::new(c::job(self.engine.cancel_job(key, id).await?)))
    }
}
