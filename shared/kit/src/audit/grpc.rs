//! `ferry.audit.v1.AuditService`, which every server serves for its own log, and the
//! conversion of events to and from the contract (the CLI verifies chains from it).

use ferry_proto::audit::v1 as pb;
use tonic::{Request, Response, Status};

use super::Event;
use super::layer::Log;
use super::store::{self, Filter};
use crate::auth::Principal;
use crate::status::{Violations, permission_denied};

/// The service over one server's log.
pub struct AuditService {
    log: Log,
}

impl AuditService {
    pub fn new(log: Log) -> pb::audit_service_server::AuditServiceServer<Self> {
        pb::audit_service_server::AuditServiceServer::new(Self { log })
    }
}

/// An event from the contract, as it was hashed.
pub fn from_proto(e: &pb::AuditEvent) -> Event {
    Event {
        sequence: e.sequence,
        time: e.time.as_ref().map(crate::db::micros).unwrap_or_default(),
        service: e.service.clone(),
        subject: e.subject.clone(),
        on_behalf_of: e.on_behalf_of.clone(),
        credential: e.credential.clone(),
        method: e.method.clone(),
        resources: e.resources.clone(),
        request_id: e.request_id.clone(),
        trace_id: e.trace_id.clone(),
        outcome: e.outcome.clone(),
        run: e.run.clone(),
        step: e.step.clone(),
        previous_hash: e.previous_hash.clone(),
        hash: e.hash.clone(),
    }
}

pub fn to_proto(e: Event) -> pb::AuditEvent {
    pb::AuditEvent {
        sequence: e.sequence,
        time: Some(crate::db::timestamp(e.time)),
        service: e.service,
        subject: e.subject,
        on_behalf_of: e.on_behalf_of,
        credential: e.credential,
        method: e.method,
        resources: e.resources,
        request_id: e.request_id,
        trace_id: e.trace_id,
        outcome: e.outcome,
        run: e.run,
        step: e.step,
        previous_hash: e.previous_hash,
        hash: e.hash,
    }
}

/// The gRPC code names an outcome filter may name.
fn known_outcome(name: &str) -> bool {
    (0..=16).any(|c| crate::status::code_name(tonic::Code::from_i32(c)) == name)
}

fn some(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

fn filter(v: &mut Violations, r: &pb::ListAuditEventsRequest) -> Filter {
    let start_time = r.start_time.as_ref().map(crate::db::micros);
    let end_time = r.end_time.as_ref().map(crate::db::micros);
    if let (Some(s), Some(e)) = (start_time, end_time)
        && e < s
    {
        v.add("end_time", "is before start_time");
    }
    if !r.outcome.is_empty() && !known_outcome(&r.outcome) {
        v.add("outcome", "is not a gRPC status code name (OK, NOT_FOUND, PERMISSION_DENIED, …)");
    }
    if r.start_sequence < 0 {
        v.add("start_sequence", "must not be negative");
    }
    Filter {
        start_time,
        end_time,
        subject: some(&r.subject),
        resource_prefix: some(&r.resource_prefix),
        method: some(&r.method),
        outcome: some(&r.outcome),
        start_sequence: r.start_sequence,
        run: some(&r.run),
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditService {
    async fn list_audit_events(&self, req: Request<pb::ListAuditEventsRequest>) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        if Principal::of(&req).environments.is_some() {
            return Err(permission_denied("the audit log spans every environment: a caller scoped to environments may not read it"));
        }
        let r = req.get_ref();
        let mut v = Violations::new();
        let filter = filter(&mut v, r);
        let scope = format!("audit:{}", serde_json::to_string(&filter).unwrap_or_default());
        let size = crate::request::page_size(&mut v, r.page_size);
        let after = crate::request::page_token::<i64>(&mut v, &scope, &r.page_token);
        let (size, after) = crate::request::done(v, || Some((size?, after?)))?;
        // The head first: every event up to it is in the pages that follow.
        let (head_sequence, head_hash) = store::head(&self.log.db).await.map_err(|e| crate::status::database(&e))?;
        let mut events = store::list(&self.log.db, &filter, after.unwrap_or(0), size + 1).await.map_err(|e| crate::status::database(&e))?;
        let next = (events.len() as u64 > size).then(|| {
            events.truncate(size as usize);
            events.last().map(|e| e.sequence).unwrap_or_default()
        });
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events: events.into_iter().map(to_proto).collect(),
            next_page_token: crate::request::next_token(&scope, &next),
            head_sequence,
            head_hash,
        }))
    }
}
