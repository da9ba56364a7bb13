//! Sync leases: granted and renewed only when the sync decision allows
//! ([`super::authorize::Gathered::decide`]), revoked in the transaction of any change that
//! could end the allowance ([`revoke`]). The credential is opened for the grant's reply
//! and never recorded: the request log keeps the lease without it.

use std::time::Duration;

use ferry_kit::db::now_micros;
use ferry_kit::status::Precondition;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};

use super::authorize::{Decision, Gathered};
use super::{Control, integration_row, mapping, page};
use crate::domain::leases::{Lease, LeaseName, LeaseState, OpenedCredential, Revoke};
use crate::domain::{EnvName, IntegrationName, JobName, MappingName, RequestKey, SyncJob};
use crate::error::{Error, Result};
pub use crate::store::leases::View;
use crate::store::{self, integrations::IntegrationRow};
use ferry_kit::paging::Page;

/// A grant as recorded under its request id: the lease, never the credential.
#[derive(Debug, Serialize, Deserialize)]
struct Granted {
    lease: Lease,
    #[serde(skip)]
    credential: Option<OpenedCredential>,
}

/// How a renewal went, as its transaction commits it.
#[derive(Debug, Serialize, Deserialize)]
enum Renewal {
    Renewed,
    /// Denied now: the lease is revoked with the first reason.
    Refused(Vec<(String, String, String)>),
    /// Ended meanwhile (released, revoked, expired).
    Ended,
}

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

/// FAILED_PRECONDITION listing every failing check: kind the reason's code, subject the
/// resource that failed it.
fn denied(what: &str, violations: Vec<(String, String, String)>) -> Error {
    let first = violations.first().map(|(_, _, m)| m.clone()).unwrap_or_default();
    Error::precondition(
        format!("{what}: {first}"),
        violations.into_iter().map(|(kind, subject, message)| Precondition::new(kind, subject, message)).collect(),
    )
}

/// FAILED_PRECONDITION for a lease that has ended: LEASE_EXPIRED, LEASE_RELEASED, LEASE_REVOKED.
fn ended(lease: &Lease, now: i64) -> Error {
    let (kind, how) = match lease.state_at(now) {
        LeaseState::Expired => ("LEASE_EXPIRED", "expired".to_owned()),
        LeaseState::Released => ("LEASE_RELEASED", format!("was released ({})", lease.end_reason)),
        _ => ("LEASE_REVOKED", format!("was revoked: {}", lease.end_reason)),
    };
    Error::unmet(kind, &lease.name, format!("{} {how}; acquire a new lease", lease.name))
}

/// Every failing check of `decision` as (code, subject, message).
fn violations(facts: &Gathered, decision: &Decision) -> Vec<(String, String, String)> {
    decision.reasons.iter().map(|(r, m)| (r.code().to_owned(), facts.subject(*r), m.clone())).collect()
}

fn open(control: &Control, row: &IntegrationRow) -> Result<OpenedCredential> {
    let sealed =
        row.sealed.as_ref().ok_or_else(|| Error::Internal(format!("{} has ACTIVE credentials but no key", row.integration.name)))?;
    let key = control.sealer.open(sealed).map_err(|e| Error::Internal(format!("{}: {e}", row.integration.name)))?;
    let api_key = String::from_utf8(key).map_err(|_| Error::Internal(format!("{}: the opened key is not UTF-8", row.integration.name)))?;
    Ok(OpenedCredential { api_key, fingerprint: row.integration.fingerprint.clone(), base_url: row.integration.base_url.clone() })
}

/// Revokes the outstanding leases in `scope`, in the caller's transaction, because `why`.
pub(crate) async fn revoke<C: ConnectionTrait>(db: &C, scope: Revoke<'_>, why: &str) -> Result<Vec<LeaseName>> {
    let revoked = store::leases::revoke(db, &scope, why, now_micros()).await?;
    super::metrics::leases("revoked", revoked.len() as u64);
    let events: Vec<_> = revoked.iter().map(|l| revoked_event(l, why)).collect();
    super::events::emit(db, &events).await?;
    Ok(revoked)
}

/// The webhook event of the lease `l` revoked because `why`.
fn revoked_event(l: &LeaseName, why: &str) -> ferry_kit::outbox::Event {
    ferry_kit::outbox::Event::new("sync_lease.revoked", l.env.id(), l.to_string(), serde_json::json!({ "reason": why }))
}

/// Revokes the leases a paused `job` ends: those on its integration's mappings.
pub(crate) async fn revoke_for_job<C: ConnectionTrait>(db: &C, job: &SyncJob) -> Result<Vec<LeaseName>> {
    match &job.integration {
        Some(id) => {
            let integration = IntegrationName::new(job.name.env.id(), id);
            revoke(db, Revoke::Integration(&integration), &format!("{} was paused by {}", job.name, job.paused_by)).await
        }
        None => Ok(Vec::new()),
    }
}

impl Control {
    /// Grants `holder` a lease on `name` for `ttl` with the opened credential, when the
    /// sync decision allows; FAILED_PRECONDITION with every failing check when not.
    pub async fn acquire_lease(
        &self,
        key: Option<RequestKey>,
        name: MappingName,
        job: Option<JobName>,
        ttl: Duration,
        holder: String,
    ) -> Result<(Lease, Option<OpenedCredential>)> {
        // The registry's part of the decision (a mapping that targets another environment)
        // is asked outside the transaction, so the SQLite writer is never held over a
        // call: a first attempt finds out whether it is needed, a second brings the answer
        // (for the target it was asked for; the transaction checks it still is).
        let (mut asked, mut attempts): (Option<(EnvName, bool)>, u32) = (None, 0);
        let granted = loop {
            let (control, leased, job, holder, known) = (self.clone(), name.clone(), job.clone(), holder.clone(), asked.clone());
            let attempt = self
                .write(key.clone(), "AcquireSyncLease", move |txn| {
                    Box::pin(async move {
                        let name = leased;
                        let facts = Gathered::read(txn, &name, job.as_ref()).await?;
                        let production_in_sandbox = match known {
                            _ if &facts.mapping.target == name.env() => false,
                            Some((target, answer)) if target == facts.mapping.target => answer,
                            _ => return Err(Error::Again("the registry's tiers are needed")),
                        };
                        let decision = facts.decide(production_in_sandbox);
                        if !decision.reasons.is_empty() {
                            return Err(denied(&format!("no sync lease on {name}"), violations(&facts, &decision)));
                        }
                        let now = now_micros();
                        let lease = Lease {
                            name: LeaseName::fresh(name.env()),
                            mapping: name,
                            job,
                            holder,
                            state: LeaseState::Active,
                            acquired_at: now,
                            renewed_at: now,
                            expires_at: now + micros(ttl),
                            ended_at: None,
                            end_reason: String::new(),
                            renewals: 0,
                            acknowledged_at: None,
                        };
                        store::leases::insert(txn, &lease).await?;
                        Ok(Granted { credential: Some(open(&control, &facts.row)?), lease })
                    })
                })
                .await;
            match attempt {
                Err(Error::Again(_)) if attempts < 3 => {
                    attempts += 1;
                    let m = mapping(&self.db, &name).await?;
                    asked = Some((m.target.clone(), self.production_in_sandbox(&m).await?));
                }
                Err(Error::Again(_)) => break Err(Error::Aborted(format!("{name} was re-targeted while its lease was decided; retry"))),
                other => break other,
            }
        };
        let granted = match granted {
            Ok(g) => g,
            Err(e) => {
                if matches!(e, Error::FailedPrecondition { .. }) {
                    super::metrics::leases("refused", 1);
                }
                return Err(e);
            }
        };
        if let Some(credential) = granted.credential {
            super::metrics::leases("granted", 1);
            return Ok((granted.lease, Some(credential)));
        }
        // A replay: the lease as it is now, and the credential again while it is outstanding.
        let lease = store::leases::find(&self.db, &granted.lease.name).await?.unwrap_or(granted.lease);
        let credential = match lease.state_at(now_micros()) {
            LeaseState::Active => Some(open(self, &integration_row(&self.db, &lease.mapping.integration).await?)?),
            _ => None,
        };
        Ok((lease, credential))
    }

    /// The lease `name`, for `caller` (its holder, or anyone when `any_holder`).
    async fn held(&self, name: &LeaseName, caller: &str, any_holder: bool) -> Result<Lease> {
        let lease = store::leases::find(&self.reads, name).await?.ok_or_else(|| Error::not_found("sync lease", name))?;
        if !any_holder && lease.holder != caller {
            return Err(Error::PermissionDenied(format!("{name} is held by {}, not {caller}", lease.holder)));
        }
        Ok(lease)
    }

    /// Records that the holder of `lease`, if revoked, now knows (its sync stopped); the
    /// call answers `code`.
    async fn told(&self, lease: &Lease, code: tonic::Code) -> Result<()> {
        if lease.state == LeaseState::Revoked && lease.acknowledged_at.is_none() {
            let name = lease.name.clone();
            self.write(None, "AcknowledgeSyncLease", move |txn| {
                Box::pin(async move {
                    ferry_kit::audit::answers(code);
                    Ok(store::leases::acknowledge(txn, &name, now_micros()).await?)
                })
            })
            .await?;
        }
        Ok(())
    }

    /// Extends `name` to now + `ttl` after deciding again; a denial revokes it.
    pub async fn renew_lease(&self, name: LeaseName, ttl: Duration, caller: &str) -> Result<Lease> {
        let lease = self.held(&name, caller, false).await?;
        let now = now_micros();
        if lease.state_at(now) != LeaseState::Active {
            self.told(&lease, tonic::Code::FailedPrecondition).await?;
            return Err(ended(&lease, now));
        }
        // The facts are read before the transaction, which is one conditional statement:
        // a change that ended the allowance meanwhile revoked the lease in its own
        // transaction, so the renewal finds it no longer ACTIVE and extends nothing.
        let facts = Gathered::read(&self.reads, &lease.mapping, lease.job.as_ref()).await?;
        let decision = facts.decide(self.production_in_sandbox(&facts.mapping).await?);
        let refused = (!decision.reasons.is_empty()).then(|| violations(&facts, &decision));
        let (leased, why) = (name.clone(), refused.clone());
        let expires_at = now_micros() + micros(ttl);
        let renewal = self
            .write(None, "RenewSyncLease", move |txn| {
                Box::pin(async move {
                    let now = now_micros();
                    if let Some(v) = why {
                        let first = v.first().map(|(_, _, m)| m.as_str()).unwrap_or_default();
                        if store::leases::end(txn, &leased, LeaseState::Revoked, first, now).await? {
                            super::events::emit(txn, &[revoked_event(&leased, first)]).await?;
                        }
                        ferry_kit::audit::answers(tonic::Code::FailedPrecondition);
                        return Ok(Renewal::Refused(v));
                    }
                    Ok(if store::leases::renew(txn, &leased, now, expires_at).await? { Renewal::Renewed } else { Renewal::Ended })
                })
            })
            .await?;
        match renewal {
            Renewal::Renewed => {
                super::metrics::leases("renewed", 1);
                Ok(Lease { renewed_at: now_micros(), expires_at, renewals: lease.renewals + 1, ..lease })
            }
            Renewal::Refused(v) => {
                super::metrics::leases("refused", 1);
                super::metrics::leases("revoked", 1);
                Err(denied(&format!("{name} is revoked"), v))
            }
            Renewal::Ended => Err(ended(&self.held(&name, caller, true).await?, now_micros())),
        }
    }

    /// Ends `name` (RELEASED); an ended lease is answered as it is. Its holder, or an
    /// admin (`any_holder`).
    pub async fn release_lease(&self, name: LeaseName, caller: &str, any_holder: bool) -> Result<Lease> {
        let lease = self.held(&name, caller, any_holder).await?;
        if lease.holder == caller {
            self.told(&lease, tonic::Code::Ok).await?;
        }
        let (leased, by) = (name.clone(), caller.to_owned());
        let released = self
            .write(None, "ReleaseSyncLease", move |txn| {
                Box::pin(
                    async move { Ok(store::leases::end(txn, &leased, LeaseState::Released, &format!("by {by}"), now_micros()).await?) },
                )
            })
            .await?;
        if released {
            super::metrics::leases("released", 1);
        }
        self.held(&name, caller, true).await
    }

    /// Revokes every outstanding lease of `env`; the names revoked.
    pub async fn revoke_leases(&self, key: Option<RequestKey>, env: EnvName, reason: String, actor: String) -> Result<Vec<LeaseName>> {
        self.envs.exists(&env).await?;
        self.write(key, "RevokeSyncLeases", move |txn| {
            Box::pin(async move {
                let why = if reason.is_empty() { format!("revoked by {actor}") } else { format!("revoked by {actor}: {reason}") };
                revoke(txn, Revoke::Env(&env), &why).await
            })
        })
        .await
    }

    /// A page of `env`'s leases in `view`, newest first.
    pub async fn list_leases(
        &self,
        env: &EnvName,
        view: View,
        after: Option<(i64, String)>,
        limit: u64,
    ) -> Result<Page<Lease, (i64, String)>> {
        let rows = store::leases::list(&self.reads, env, view, now_micros(), after.as_ref(), limit + 1).await?;
        if rows.is_empty() && after.is_none() {
            self.envs.exists(env).await?;
        }
        Ok(page(rows, limit, |l| (l.acquired_at, l.name.id.as_str().to_owned())))
    }
}
