//! Sync leases at the edge: AcquireSyncLease, RenewSyncLease, ReleaseSyncLease,
//! ListSyncLeases, RevokeSyncLeases. The credential leaves only in AcquireSyncLease's
//! reply; nothing here logs a reply.

use ferry_kit::auth::{Principal, Role};
use ferry_kit::db::timestamp;
use ferry_kit::status::Violations;
use ferry_proto::integration::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self as c, done};
use crate::domain::EnvName;
use crate::domain::leases::{self, Lease, LeaseName, LeaseState, OpenedCredential};
use crate::service::Control;
use crate::service::leases::View;

fn ttl(v: &mut Violations, field: &str, d: Option<prost_types::Duration>) -> Option<std::time::Duration> {
    let asked = match d {
        None => None,
        Some(d) if d.seconds < 0 || d.nanos < 0 => {
            v.add(field, "must not be negative");
            return None;
        }
        Some(d) => Some(std::time::Duration::new(d.seconds as u64, d.nanos as u32)),
    };
    v.check(field, leases::ttl(asked))
}

fn state(s: LeaseState) -> i32 {
    (match s {
        LeaseState::Active => pb::SyncLeaseState::Active,
        LeaseState::Expired => pb::SyncLeaseState::Expired,
        LeaseState::Released => pb::SyncLeaseState::Released,
        LeaseState::Revoked => pb::SyncLeaseState::Revoked,
    }) as i32
}

fn lease(l: Lease, credential: Option<OpenedCredential>) -> pb::SyncLease {
    let now = ferry_kit::db::now_micros();
    let integration = l.mapping.integration.to_string();
    pb::SyncLease {
        name: l.name.to_string(),
        mapping: l.mapping.to_string(),
        job: l.job.as_ref().map(ToString::to_string).unwrap_or_default(),
        holder: l.holder.clone(),
        state: state(l.state_at(now)),
        acquire_time: Some(timestamp(l.acquired_at)),
        renew_time: Some(timestamp(l.renewed_at)),
        expire_time: Some(timestamp(l.expires_at)),
        end_time: l.ended_at.map(timestamp),
        end_reason: l.end_reason,
        renewals: l.renewals,
        acknowledge_time: l.acknowledged_at.map(timestamp),
        credential: credential.map(|k| pb::SyncCredential {
            integration,
            api_key: k.api_key,
            fingerprint: k.fingerprint,
            base_url: k.base_url,
        }),
    }
}

fn lease_name(v: &mut Violations, s: &str) -> Option<LeaseName> {
    v.check("name", LeaseName::parse(s))
}

pub async fn acquire(control: &Control, req: Request<pb::AcquireSyncLeaseRequest>) -> Result<Response<pb::SyncLease>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "AcquireSyncLease", &r, &r.request_id);
    let (mapping, job) = c::mapping_and_job(&mut v, &r.mapping, &r.job);
    let ttl = ttl(&mut v, "ttl", r.ttl);
    let (key, mapping, job, ttl) = done(v, || Some((key?, mapping?, job?, ttl?)))?;
    p.check_environment(mapping.env().id())?;
    let (l, credential) = control.acquire_lease(key, mapping, job, ttl, c::actor(&p)).await?;
    Ok(Response::new(lease(l, credential)))
}

pub async fn renew(control: &Control, req: Request<pb::RenewSyncLeaseRequest>) -> Result<Response<pb::SyncLease>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let name = lease_name(&mut v, &r.name);
    let ttl = ttl(&mut v, "ttl", r.ttl);
    let (name, ttl) = done(v, || Some((name?, ttl?)))?;
    p.check_environment(name.env.id())?;
    Ok(Response::new(lease(control.renew_lease(name, ttl, p.actor()).await?, None)))
}

pub async fn release(control: &Control, req: Request<pb::ReleaseSyncLeaseRequest>) -> Result<Response<pb::SyncLease>, Status> {
    let p = Principal::of(&req);
    let mut v = Violations::new();
    let name = lease_name(&mut v, &req.get_ref().name);
    let name = done(v, || name)?;
    p.check_environment(name.env.id())?;
    Ok(Response::new(lease(control.release_lease(name, p.actor(), p.role >= Role::Admin).await?, None)))
}

pub async fn list(control: &Control, req: Request<pb::ListSyncLeasesRequest>) -> Result<Response<pb::ListSyncLeasesResponse>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let env = v.check("parent", EnvName::parse(&r.parent));
    let view = match (r.show_ended, r.in_flight) {
        (true, true) => {
            v.add("in_flight", "cannot be set with show_ended");
            View::All
        }
        (true, false) => View::All,
        (false, true) => View::InFlight,
        (false, false) => View::Outstanding,
    };
    let list = format!("syncLeases:{}:{view:?}", r.parent);
    let size = c::page_size(&mut v, r.page_size);
    let after = c::page_token::<(i64, String)>(&mut v, &list, &r.page_token);
    let (env, size, after) = done(v, || Some((env?, size?, after?)))?;
    p.check_environment(env.id())?;
    let page = control.list_leases(&env, view, after, size).await?;
    Ok(Response::new(pb::ListSyncLeasesResponse {
        next_page_token: c::next_token(&list, &page.next),
        sync_leases: page.items.into_iter().map(|l| lease(l, None)).collect(),
    }))
}

pub async fn revoke(
    control: &Control,
    req: Request<pb::RevokeSyncLeasesRequest>,
) -> Result<Response<pb::RevokeSyncLeasesResponse>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "RevokeSyncLeases", &r, &r.request_id);
    let env = v.check("parent", EnvName::parse(&r.parent));
    let reason = v.check("reason", crate::domain::text(&r.reason));
    let (key, env, reason) = done(v, || Some((key?, env?, reason?)))?;
    p.check_environment(env.id())?;
    let revoked = control.revoke_leases(key, env, reason, c::actor(&p)).await?;
    Ok(Response::new(pb::RevokeSyncLeasesResponse { revoked: revoked.iter().map(ToString::to_string).collect() }))
}
