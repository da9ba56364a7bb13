//! The audit log every service keeps of its mutations, hash-chained per service.
//!
//! - [`AuditLayer`] (inside the auth layer) gives every call to a Ferry service a
//!   [`Call`]: who (the [`Principal`]), the method, and what the call fills in as it runs
//!   (the request's resource names and `request_id`, noted by
//!   [`crate::request::request_key`]; a run and its step, noted by [`run`]).
//! - [`crate::idempotency::transaction`] appends the call's event in the same
//!   transaction as its writes, just before it commits ([`append_in`]).
//! - When a mutating call ends without a committed event (it failed and rolled back, or it
//!   wrote outside a transaction), the layer appends one with its outcome on its own.
//! - Work a service does on its own (a run's driver) appends with [`Call::own`]: the
//!   service is its subject, the run's starter the caller it acts for.
//!
//! Each event carries the hash of the one before ([`Event::digest`]), so a row edited or
//! deleted in the database breaks the chain; [`Verifier`] walks it and names the first
//! broken event. Events hold no secret: resources are the request's resource-name fields
//! only (`resources.rs`), never a key, token or credential field.

pub mod grpc;
pub mod layer;
mod resources;
pub mod store;

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::auth::Principal;
pub use layer::AuditLayer;

/// The `previous_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One recorded mutation. Every field but `hash` goes into [`Event::digest`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub sequence: i64,
    /// Microseconds since the Unix epoch.
    pub time: i64,
    pub service: String,
    pub subject: String,
    /// Empty unless a service passed its caller on.
    pub on_behalf_of: String,
    pub credential: String,
    /// The full gRPC method (`/ferry.registry.v1.RegistryService/CreateEntity`), or the
    /// name of a service's own work (`refresh-coordinator/driver`).
    pub method: String,
    pub resources: Vec<String>,
    pub request_id: String,
    pub trace_id: String,
    /// A gRPC code name: `OK`, `NOT_FOUND`, …
    pub outcome: String,
    pub run: String,
    pub step: String,
    pub previous_hash: String,
    pub hash: String,
}

impl Event {
    /// SHA-256 (lowercase hex) over `previous_hash` and every other field but `hash`,
    /// each length-prefixed so no two events share an input.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(self.previous_hash.as_bytes());
        field(self.sequence.to_string().as_bytes());
        field(self.time.to_string().as_bytes());
        for text in [&self.service, &self.subject, &self.on_behalf_of, &self.credential, &self.method] {
            field(text.as_bytes());
        }
        field(self.resources.len().to_string().as_bytes());
        for r in &self.resources {
            field(r.as_bytes());
        }
        for text in [&self.request_id, &self.trace_id, &self.outcome, &self.run, &self.step] {
            field(text.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Where a chain walk found the chain broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first event that does not fit (for a chain cut short: the head's sequence).
    pub sequence: i64,
    pub reason: String,
}

/// Walks a chain in sequence order: [`Verifier::check`] each event, then
/// [`Verifier::finish`] with the head the service reported.
#[derive(Debug)]
pub struct Verifier {
    next: i64,
    previous: String,
    checked: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self { next: 1, previous: GENESIS.to_owned(), checked: 0 }
    }
}

impl Verifier {
    pub fn check(&mut self, e: &Event) -> Result<(), Broken> {
        let broken = |reason: String| Err(Broken { sequence: e.sequence, reason });
        if e.sequence != self.next {
            let missing =
                if e.sequence > self.next { format!("; events {}..{} are missing", self.next, e.sequence - 1) } else { String::new() };
            return Err(Broken {
                sequence: self.next.min(e.sequence),
                reason: format!("expected event {} but found event {}{missing}", self.next, e.sequence),
            });
        }
        if e.previous_hash != self.previous {
            return broken(format!(
                "its previous_hash {} is not the hash of event {} ({})",
                e.previous_hash,
                e.sequence - 1,
                self.previous
            ));
        }
        let digest = e.digest();
        if e.hash != digest {
            return broken(format!("its fields do not hash to its hash {} (they hash to {digest}): the event was changed", e.hash));
        }
        self.next += 1;
        self.previous = e.hash.clone();
        self.checked += 1;
        Ok(())
    }

    /// The chain must end at the head: its last event is `head_sequence`, with `head_hash`.
    pub fn finish(self, head_sequence: i64, head_hash: &str) -> Result<u64, Broken> {
        let last = self.next - 1;
        if last < head_sequence {
            return Err(Broken {
                sequence: last + 1,
                reason: format!("the chain ends at event {last} but its head is event {head_sequence}: events were deleted"),
            });
        }
        if last == head_sequence && self.previous != head_hash {
            return Err(Broken { sequence: last, reason: format!("the last event's hash is not the head's hash {head_hash}") });
        }
        Ok(self.checked)
    }
}

/// What one call (or one piece of a service's own work) records.
#[derive(Debug)]
pub struct Call {
    service: &'static str,
    subject: String,
    on_behalf_of: String,
    credential: &'static str,
    method: String,
    /// A heartbeat ([`layer::HEARTBEATS`]): recorded only when it fails or is refused.
    heartbeat: bool,
    state: Mutex<CallState>,
}

#[derive(Debug, Default)]
struct CallState {
    resources: Vec<String>,
    request_id: String,
    run: String,
    step: String,
    /// An event of this call committed (or the call was a replay, which writes nothing).
    done: bool,
    /// The code the call will answer although its writes commit (a refusal that records
    /// something, say a revocation); OK when unset.
    answers: Option<tonic::Code>,
}

impl Call {
    /// The call `method` by `principal` to `service`.
    pub fn new(service: &'static str, principal: &Principal, method: impl Into<String>) -> Self {
        Self {
            service,
            subject: principal.subject.clone(),
            on_behalf_of: principal.on_behalf_of.clone().unwrap_or_default(),
            credential: principal.credential.as_str(),
            heartbeat: false,
            method: method.into(),
            state: Mutex::default(),
        }
    }

    /// A service's own work (`work`, e.g. a run's driver), acting for `caller` (the subject
    /// who started it; empty when nobody did).
    pub fn own(service: &'static str, work: &str, caller: &str) -> Self {
        Self {
            service,
            subject: service.to_owned(),
            on_behalf_of: caller.to_owned(),
            credential: crate::auth::Credential::None.as_str(),
            heartbeat: false,
            method: format!("{service}/{work}"),
            state: Mutex::default(),
        }
    }

    /// A heartbeat: its event is written only when it does not answer OK.
    pub(crate) fn heartbeat(mut self, heartbeat: bool) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Whether a call that answers `outcome` leaves no event (a heartbeat that went well).
    pub(crate) fn unrecorded(&self, outcome: tonic::Code) -> bool {
        self.heartbeat && outcome == tonic::Code::Ok
    }

    /// The run (its name) and the step it is at.
    pub fn with_run(self, name: &str, step: &str) -> Self {
        {
            let mut s = self.state();
            s.run = name.to_owned();
            s.step = step.to_owned();
        }
        self
    }

    /// Appends this call's event with `outcome` (a gRPC code name) in `txn`.
    pub async fn append<C: sea_orm::ConnectionTrait>(&self, txn: &C, outcome: &str) -> Result<Event, sea_orm::DbErr> {
        store::append(txn, self.event(outcome)).await
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, outcome: &str) -> Event {
        let s = self.state();
        Event {
            service: self.service.to_owned(),
            subject: self.subject.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            credential: self.credential.to_owned(),
            method: self.method.clone(),
            resources: s.resources.clone(),
            request_id: s.request_id.clone(),
            trace_id: trace_id(),
            outcome: outcome.to_owned(),
            run: s.run.clone(),
            step: s.step.clone(),
            ..Event::default()
        }
    }
}

tokio::task_local! {
    static CALL: Arc<Call>;
}

fn current() -> Option<Arc<Call>> {
    CALL.try_with(Arc::clone).ok()
}

/// Notes the request of the current call (`encoded`): its resource names and `request_id`.
pub(crate) fn note_request(encoded: &[u8], request_id: &str) {
    if let Some(call) = current() {
        let resources = resources::of(&call.method, encoded);
        let mut s = call.state();
        s.resources = resources;
        s.request_id = crate::status::clip(request_id, 128);
    }
}

/// Notes the run (its name) and step the current call works on.
pub fn run(name: &str, step: &str) {
    if let Some(call) = current() {
        let mut s = call.state();
        s.run = name.to_owned();
        s.step = step.to_owned();
    }
}

/// The current call's work was a replay of a recorded reply: it wrote nothing, so it
/// records nothing.
pub fn replayed() {
    if let Some(call) = current() {
        call.state().done = true;
    }
}

/// A pending event of the current call, appended inside its transaction; [`Pending::committed`]
/// once the transaction committed.
#[must_use]
pub(crate) struct Pending(Option<Arc<Call>>);

impl Pending {
    pub(crate) fn committed(self) {
        if let Some(call) = self.0 {
            call.state().done = true;
        }
    }
}

/// The current call's writes commit, but it will answer `code`: its event records that
/// outcome (a refused lease renewal commits the revocation it caused).
pub fn answers(code: tonic::Code) {
    if let Some(call) = current() {
        call.state().answers = Some(code);
    }
}

/// Appends the current call's event (outcome OK, or as [`answers`] said) in `txn`, unless
/// it already has one.
pub(crate) async fn append_in<C: sea_orm::ConnectionTrait>(txn: &C) -> Result<Pending, sea_orm::DbErr> {
    let Some(call) = current() else { return Ok(Pending(None)) };
    let outcome = {
        let s = call.state();
        if s.done {
            return Ok(Pending(None));
        }
        s.answers.unwrap_or(tonic::Code::Ok)
    };
    if call.unrecorded(outcome) {
        return Ok(Pending(None));
    }
    store::append(txn, call.event(crate::status::code_name(outcome))).await?;
    Ok(Pending(Some(call)))
}

/// The W3C trace id of the current span, empty without one.
fn trace_id() -> String {
    crate::telemetry::current_traceparent()
        .and_then(|tp| tp.split('-').nth(1).map(str::to_owned))
        .filter(|t| t.chars().any(|c| c != '0'))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
