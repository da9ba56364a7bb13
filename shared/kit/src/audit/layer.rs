//! The tower layer that gives each mutating call to a Ferry service its [`Call`], and
//! appends the call's event when the call ended without one (a failure, whose writes
//! rolled back; work outside [`crate::idempotency::transaction`]; a read, when reads are
//! recorded).

use std::sync::Arc;
use std::task::{Context, Poll};

use super::{CALL, Call, store};
use crate::auth::{Principal, Role, required_role};

/// A service's audit log: its database, its name in events, and whether reads are
/// recorded too (`--audit-reads`).
#[derive(Clone)]
pub struct Log {
    pub db: sea_orm::DatabaseConnection,
    pub service: &'static str,
    pub reads: bool,
}

/// The layer; `None` records nothing (a server without an audit log).
#[derive(Clone)]
pub struct AuditLayer {
    log: Option<Log>,
}

impl AuditLayer {
    pub fn new(log: Option<Log>) -> Self {
        Self { log }
    }
}

impl<S> tower::Layer<S> for AuditLayer {
    type Service = Audit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Audit { inner, log: self.log.clone() }
    }
}

#[derive(Clone)]
pub struct Audit<S> {
    inner: S,
    log: Option<Log>,
}

/// Calls that only prolong what an earlier, recorded call began (a sync lease's renewal,
/// every third of its ttl from every runtime): recorded only when they fail or are
/// refused, as Kubernetes audit policies leave out lease updates. The grant, the release
/// and every revocation are recorded.
pub const HEARTBEATS: &[&str] = &["RenewSyncLease"];

/// Whether a call to `path` is recorded: a call to a Ferry service that changes
/// something, or with `reads` any call to a Ferry service (never health or reflection).
fn recorded(path: &str, reads: bool) -> bool {
    path.starts_with("/ferry.") && (reads || required_role(path.rsplit('/').next().unwrap_or_default()) > Role::Viewer)
}

/// The outcome of a finished call: the status of a trailers-only reply (how an error is
/// answered), OK otherwise.
fn outcome<B>(response: &http::Response<B>) -> (tonic::Code, &'static str) {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Ok);
    (code, crate::status::code_name(code))
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<S, B> tower::Service<http::Request<B>> for Audit<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let Some(log) = self.log.clone().filter(|l| recorded(req.uri().path(), l.reads)) else {
            return Box::pin(self.inner.call(req));
        };
        let principal = req.extensions().get::<Principal>().cloned().unwrap_or_else(Principal::unrestricted);
        let method = req.uri().path().rsplit('/').next().unwrap_or_default();
        let call = Arc::new(Call::new(log.service, &principal, req.uri().path()).heartbeat(HEARTBEATS.contains(&method)));
        let inner = &mut self.inner;
        let work = CALL.sync_scope(call.clone(), || inner.call(req));
        Box::pin(async move {
            let response = CALL.scope(call.clone(), work).await?;
            let (code, name) = outcome(&response);
            if !call.state().done && !call.unrecorded(code) {
                let event = call.event(name);
                if let Err(e) = store::append_alone(&log.db, event).await {
                    tracing::error!(error = %e, method = %call.method, "audit event not recorded");
                }
            }
            Ok(response)
        })
    }
}
