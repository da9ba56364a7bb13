//! Sync leases: a runtime's right to sync one mapping for a short while, granted and
//! renewed only when [`super::authorize::decide`] allows it. The credential a grant
//! carries is opened for its reply only; a lease record never holds it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::names::{EnvName, JobName, MappingName};
use super::values::ResourceId;

/// The shortest and longest ttl a caller may ask, and the one it gets when it asks none.
pub const MIN_TTL: Duration = Duration::from_secs(5);
pub const MAX_TTL: Duration = Duration::from_secs(600);
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// `environments/{environment}/syncLeases/{lease}`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeaseName {
    pub env: EnvName,
    pub id: ResourceId,
}

impl LeaseName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = super::names::segments(s, &["environments", "syncLeases"])?;
        Ok(Self { env: EnvName(ResourceId::parse(p[0])?), id: ResourceId::parse(p[1])? })
    }

    /// A fresh, unguessable name in `env`.
    pub fn fresh(env: &EnvName) -> Self {
        Self { env: env.clone(), id: ResourceId::from_stored(&format!("l{}", uuid::Uuid::new_v4().simple())) }
    }
}

impl fmt::Display for LeaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/syncLeases/{}", self.env, self.id)
    }
}

/// How a lease stands as stored; EXPIRED is an ACTIVE one past its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseState {
    Active = 1,
    Expired = 2,
    Released = 3,
    Revoked = 4,
}

impl LeaseState {
    pub fn from_stored(n: i32) -> Option<Self> {
        [Self::Active, Self::Expired, Self::Released, Self::Revoked].into_iter().find(|s| *s as i32 == n)
    }
}

/// A lease (never its credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub name: LeaseName,
    pub mapping: MappingName,
    pub job: Option<JobName>,
    pub holder: String,
    pub state: LeaseState,
    pub acquired_at: i64,
    pub renewed_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: String,
    pub renewals: i64,
    /// When the holder of a revoked lease was told (a refused renewal, a release).
    pub acknowledged_at: Option<i64>,
}

impl Lease {
    /// The state at `now` (micros): an ACTIVE lease past its expiry is EXPIRED.
    pub fn state_at(&self, now: i64) -> LeaseState {
        if self.state == LeaseState::Active && self.expires_at <= now { LeaseState::Expired } else { self.state }
    }
}

/// Which outstanding leases a change revokes.
#[derive(Debug, Clone)]
pub enum Revoke<'a> {
    /// Every lease of an environment (fenced, its integrations deactivated or copied over).
    Env(&'a EnvName),
    /// Every lease on a mapping of the integration (deactivated, credentials suspended or
    /// rotated, a job of it paused, deleted).
    Integration(&'a super::names::IntegrationName),
    /// Every lease on the mapping (deactivated, re-targeted, deleted).
    Mapping(&'a MappingName),
}

/// A credential opened for one grant. Its `Debug` does not show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedCredential {
    pub api_key: String,
    pub fingerprint: String,
    pub base_url: String,
}

impl fmt::Debug for OpenedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedCredential").field("api_key", &"***").field("fingerprint", &self.fingerprint).finish()
    }
}

/// The ttl asked, checked: `None` gives [`DEFAULT_TTL`].
pub fn ttl(asked: Option<Duration>) -> Result<Duration, String> {
    match asked {
        None => Ok(DEFAULT_TTL),
        Some(t) if (MIN_TTL..=MAX_TTL).contains(&t) => Ok(t),
        Some(t) => Err(format!("{t:?} is out of range ({}s to {}s)", MIN_TTL.as_secs(), MAX_TTL.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_fresh_ones_parse() {
        let env = EnvName::parse("environments/sandbox").unwrap();
        let fresh = LeaseName::fresh(&env);
        assert_eq!(LeaseName::parse(&fresh.to_string()).unwrap(), fresh);
        assert_ne!(LeaseName::fresh(&env), fresh);
        assert!(LeaseName::parse("environments/sandbox/leases/x").is_err());
    }

    #[test]
    fn ttls_are_bounded_and_expiry_is_seen() {
        assert_eq!(ttl(None).unwrap(), DEFAULT_TTL);
        assert!(ttl(Some(Duration::from_secs(4))).unwrap_err().contains("out of range"));
        assert!(ttl(Some(Duration::from_secs(601))).is_err());
        let env = EnvName::parse("environments/e").unwrap();
        let lease = Lease {
            name: LeaseName::fresh(&env),
            mapping: MappingName::parse("environments/e/integrations/i/mappings/m").unwrap(),
            job: None,
            holder: "h".into(),
            state: LeaseState::Active,
            acquired_at: 0,
            renewed_at: 0,
            expires_at: 10,
            ended_at: None,
            end_reason: String::new(),
            renewals: 0,
            acknowledged_at: None,
        };
        assert_eq!(lease.state_at(9), LeaseState::Active);
        assert_eq!(lease.state_at(10), LeaseState::Expired);
        let key = OpenedCredential { api_key: "secret-key".into(), fingerprint: "f".into(), base_url: String::new() };
        assert!(!format!("{key:?}").contains("secret-key"));
    }
}
