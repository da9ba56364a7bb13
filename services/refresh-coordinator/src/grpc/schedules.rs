//! Refresh schedules at the proto edge: parsing, scope checks and conversion (the
//! `RefreshService` impl in `handlers` delegates here).

use ferry_kit::auth::Principal;
use ferry_kit::db::timestamp;
use ferry_kit::status::Violations;
use ferry_proto::refresh::v1 as pb;
use tonic::Status;

use super::convert as c;
use super::handlers::RefreshApi;
use crate::domain::{EnvName, RefreshRequest, RefreshSchedule, Schedule, When, run_id, valid_schedule_id};
use crate::engine::schedules::Scheduled;
use crate::error::Error;
use crate::kinds::Refresh;

fn name(id: &str) -> String {
    format!("{}/{id}", Refresh::SCHEDULES)
}

pub fn schedule_pb(s: &RefreshSchedule) -> pb::RefreshSchedule {
    pb::RefreshSchedule {
        name: name(&s.id),
        source: s.request.source.to_string(),
        destination: s.request.destination.to_string(),
        options: Some(c::options_pb(&s.request.options)),
        cron: s.cron.clone(),
        time_zone: s.time_zone.clone(),
        paused: s.paused,
        next_run_time: s.next_due.map(timestamp),
        last_run_time: s.last_due.map(timestamp),
        last_run: s.last_run.clone(),
        last_skip_reason: s.last_skip_reason.clone(),
        created_by: s.created_by.clone(),
        create_time: Some(timestamp(s.create_time)),
        update_time: Some(timestamp(s.update_time)),
        delete_time: s.delete_time.map(timestamp),
        etag: s.revision.to_string(),
    }
}

/// The schedule id of `refreshSchedules/{schedule}` in `field`.
fn id_of(v: &mut Violations, field: &str, name: &str) -> Option<String> {
    let wrong = || format!("must be {}/{{schedule}}", Refresh::SCHEDULES);
    v.check(field, run_id(Refresh::SCHEDULES, name, "").ok().filter(|id| valid_schedule_id(id)).ok_or_else(wrong))
}

/// The fields a person sets, checked together (every violation at once).
struct Fields {
    request: Option<RefreshRequest>,
    when: Option<(String, String)>,
}

fn fields(v: &mut Violations, s: &pb::RefreshSchedule, prefix: &str) -> Fields {
    let mut inner = Violations::new();
    let envs = c::environments(&mut inner, &s.source, &s.destination);
    for (field, description) in inner.0 {
        v.add(format!("{prefix}{field}"), description);
    }
    let when = match When::parse(&s.cron, &s.time_zone) {
        Ok(_) => Some((s.cron.trim().to_owned(), s.time_zone.clone())),
        Err((field, description)) => {
            v.add(format!("{prefix}{field}"), description);
            None
        }
    };
    let request = envs.map(|(source, destination)| RefreshRequest { source, destination, options: c::options(s.options.clone()) });
    Fields { request, when }
}

fn scope(p: &Principal, r: &RefreshRequest) -> Result<(), Status> {
    [&r.source, &r.destination].iter().try_for_each(|e: &&EnvName| p.check_environment(e.id()))
}

fn done<T>(v: Violations, value: Option<T>) -> Result<T, Status> {
    v.finish().map_err(|v| ferry_kit::status::invalid_argument(&v))?;
    value.ok_or_else(|| Status::internal("internal error"))
}

impl RefreshApi {
    async fn visible_schedule(&self, p: &Principal, id: &str) -> Result<RefreshSchedule, Status> {
        let s = self.engine().get_schedule::<Refresh>(id).await?;
        scope(p, &s.request)?;
        Ok(s)
    }

    pub(super) async fn create_schedule(&self, p: &Principal, r: pb::CreateRefreshScheduleRequest) -> Result<pb::RefreshSchedule, Status> {
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateRefreshSchedule", &r, &r.request_id);
        if !valid_schedule_id(&r.schedule_id) {
            v.add("schedule_id", "must be 1-63 lowercase letters, digits and '-', starting with a letter");
        }
        let given = r.schedule.clone().unwrap_or_default();
        if r.schedule.is_none() {
            v.add("schedule", "is required");
        }
        let f = fields(&mut v, &given, "schedule.");
        let ((request, (cron, time_zone)), key) = done(v, f.request.zip(f.when).zip(key))?;
        scope(p, &request)?;
        let s = Schedule {
            id: r.schedule_id.clone(),
            request,
            cron,
            time_zone,
            paused: false,
            next_due: None,
            last_due: None,
            last_run: String::new(),
            last_skip_reason: String::new(),
            created_by: super::handlers::caller(p),
            create_time: 0,
            update_time: 0,
            delete_time: None,
            revision: 0,
        };
        Ok(schedule_pb(&self.engine().create_schedule::<Refresh>(s, key, "CreateRefreshSchedule").await?))
    }

    pub(super) async fn get_schedule(&self, p: &Principal, r: pb::GetRefreshScheduleRequest) -> Result<pb::RefreshSchedule, Status> {
        let mut v = Violations::new();
        let id = id_of(&mut v, "name", &r.name);
        let id = done(v, id)?;
        Ok(schedule_pb(&self.visible_schedule(p, &id).await?))
    }

    pub(super) async fn list_schedules(
        &self,
        p: &Principal,
        r: pb::ListRefreshSchedulesRequest,
    ) -> Result<pb::ListRefreshSchedulesResponse, Status> {
        let mut v = Violations::new();
        let size = v.check("page_size", ferry_kit::paging::page_size(r.page_size));
        let scope_key = format!("refreshSchedules:{}", r.show_deleted);
        let cursor = v.check("page_token", ferry_kit::paging::decode::<String>(&scope_key, &r.page_token));
        let (size, cursor) = done(v, size.zip(cursor))?;
        // A caller scoped to some environments sees only theirs, filtered in the query.
        let mut found =
            self.engine().list_schedules::<Refresh>(r.show_deleted, cursor.as_deref(), size + 1, p.environments.as_ref()).await?;
        let next = (found.len() as u64 > size).then(|| found[size as usize - 1].id.clone());
        found.truncate(size as usize);
        Ok(pb::ListRefreshSchedulesResponse {
            refresh_schedules: found.iter().map(schedule_pb).collect(),
            next_page_token: next.map(|n| ferry_kit::paging::encode(&scope_key, &n)).unwrap_or_default(),
        })
    }

    pub(super) async fn update_schedule(&self, p: &Principal, r: pb::UpdateRefreshScheduleRequest) -> Result<pb::RefreshSchedule, Status> {
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UpdateRefreshSchedule", &r, &r.request_id);
        let given = r.schedule.clone().unwrap_or_default();
        if r.schedule.is_none() {
            v.add("schedule", "is required");
        }
        let id = id_of(&mut v, "schedule.name", &given.name);
        const PATHS: [&str; 5] = ["source", "destination", "options", "cron", "time_zone"];
        let mut paths = ferry_kit::request::mask_paths(&r.update_mask);
        for (i, path) in paths.iter().enumerate() {
            if !PATHS.contains(&path.as_str()) {
                v.add(format!("update_mask.paths[{i}]"), format!("must be one of {}", PATHS.join(", ")));
            }
        }
        if paths.is_empty() {
            paths = PATHS.iter().map(|p| (*p).to_owned()).collect();
        }
        let (id, key) = done(v, id.zip(key))?;
        let current = self.visible_schedule(p, &id).await?;
        // The new values over the current ones, checked as a whole.
        let pick = |path: &str, new: &str, old: String| if paths.iter().any(|p| p == path) { new.to_owned() } else { old };
        let merged = pb::RefreshSchedule {
            source: pick("source", &given.source, current.request.source.to_string()),
            destination: pick("destination", &given.destination, current.request.destination.to_string()),
            options: Some(if paths.iter().any(|p| p == "options") {
                given.options.unwrap_or_default()
            } else {
                c::options_pb(&current.request.options)
            }),
            cron: pick("cron", &given.cron, current.cron.clone()),
            time_zone: pick("time_zone", &given.time_zone, current.time_zone.clone()),
            ..Default::default()
        };
        let mut v = Violations::new();
        let f = fields(&mut v, &merged, "schedule.");
        let (request, (cron, time_zone)) = done(v, f.request.zip(f.when))?;
        scope(p, &request)?;
        let etag = r.etag.clone();
        let updated = self
            .engine()
            .change_schedule::<Refresh, _>(&id, key, "UpdateRefreshSchedule", move |s| {
                if s.delete_time.is_some() {
                    return Err(Error::not_found("schedule", name(&s.id)));
                }
                if !etag.is_empty() && etag != s.revision.to_string() {
                    return Err(Error::Aborted(format!("{} changed since etag {etag} (now {}); read it again", name(&s.id), s.revision)));
                }
                let changed = s.request != request || s.cron != cron || s.time_zone != time_zone;
                (s.request, s.cron, s.time_zone) = (request, cron, time_zone);
                Ok(changed)
            })
            .await?;
        Ok(schedule_pb(&updated))
    }

    /// Pause, resume, delete, undelete: `change` on the schedule named `name`.
    pub(super) async fn set_schedule<M: prost::Message>(
        &self,
        p: &Principal,
        method: &'static str,
        request: &M,
        name: &str,
        request_id: &str,
        change: fn(&mut RefreshSchedule) -> Result<bool, Error>,
    ) -> Result<pb::RefreshSchedule, Status> {
        let mut v = Violations::new();
        let key = c::request_key(&mut v, method, request, request_id);
        let id = id_of(&mut v, "name", name);
        let (id, key) = done(v, id.zip(key))?;
        // What the schedule refreshes (a deleted one's too, for undelete) decides the scope.
        scope(p, &self.engine().schedule_any::<Refresh>(&id).await?.request)?;
        Ok(schedule_pb(&self.engine().change_schedule::<Refresh, _>(&id, key, method, change).await?))
    }
}

/// PauseRefreshSchedule.
pub fn pause(s: &mut RefreshSchedule) -> Result<bool, Error> {
    live(s)?;
    Ok(!std::mem::replace(&mut s.paused, true))
}

/// ResumeRefreshSchedule.
pub fn resume(s: &mut RefreshSchedule) -> Result<bool, Error> {
    live(s)?;
    Ok(std::mem::replace(&mut s.paused, false))
}

/// DeleteRefreshSchedule.
pub fn delete(s: &mut RefreshSchedule) -> Result<bool, Error> {
    live(s)?;
    s.delete_time = Some(ferry_kit::db::now_micros());
    Ok(true)
}

/// UndeleteRefreshSchedule.
pub fn undelete(s: &mut RefreshSchedule) -> Result<bool, Error> {
    if s.delete_time.is_none() {
        let name = name(&s.id);
        return Err(Error::AlreadyExists { resource: "schedule", message: format!("{name} exists (it is not deleted)"), name });
    }
    s.delete_time = None;
    Ok(true)
}

fn live(s: &RefreshSchedule) -> Result<(), Error> {
    if s.delete_time.is_some() {
        return Err(Error::not_found("schedule", name(&s.id)));
    }
    Ok(())
}
