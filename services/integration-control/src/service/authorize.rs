//! The sync decision's facts, gathered once for AuthorizeSync and for the sync leases
//! (`leases.rs`), and asked of [`crate::domain::authorize::decide`]: one decision, no
//! second copy of the rules.

use sea_orm::ConnectionTrait;

use super::{Control, Tier, integration_row, job, mapping};
use crate::domain::authorize::{DenyReason, Facts, decide};
use crate::domain::{Fence, JobName, Mapping, MappingName, SyncJob};
use crate::error::{Error, Result};
use crate::store::{self, integrations::IntegrationRow};

/// The answer: empty `reasons` means allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reasons: Vec<(DenyReason, String)>,
}

/// What the decision reads from this service's database, as of one connection's view.
pub(crate) struct Gathered {
    pub mapping: Mapping,
    pub row: IntegrationRow,
    jobs: Vec<SyncJob>,
    fence: Option<Fence>,
}

impl Gathered {
    pub async fn read<C: ConnectionTrait>(db: &C, name: &MappingName, job_name: Option<&JobName>) -> Result<Self> {
        let mapping = mapping(db, name).await?;
        let row = integration_row(db, &name.integration).await?;
        let jobs = match job_name {
            Some(j) => vec![job(db, j).await?],
            None => store::jobs::of_integration(db, &name.integration).await?,
        };
        let fence = store::fences::find(db, name.env()).await?;
        Ok(Self { mapping, row, jobs, fence })
    }

    /// The decision, given whether the mapping is a production one in a non-production
    /// environment (the registry's part, [`Control::production_in_sandbox`]).
    pub fn decide(&self, production_target_in_non_production: bool) -> Decision {
        Decision { reasons: decide(&self.facts(production_target_in_non_production)) }
    }

    /// The resource that failed the check `reason`.
    pub fn subject(&self, reason: DenyReason) -> String {
        crate::domain::authorize::subject(reason, &self.facts(false))
    }

    fn facts(&self, production_target_in_non_production: bool) -> Facts<'_> {
        Facts {
            fence: self.fence.as_ref(),
            production_target_in_non_production,
            mapping: &self.mapping,
            integration: &self.row.integration,
            jobs: &self.jobs,
        }
    }
}

impl Control {
    pub async fn authorize_sync(&self, name: &MappingName, job_name: Option<&JobName>) -> Result<Decision> {
        let facts = Gathered::read(&self.reads, name, job_name).await?;
        let decision = facts.decide(self.production_in_sandbox(&facts.mapping).await?);
        super::metrics::decided(decision.reasons.first().map(|(r, _)| *r));
        Ok(decision)
    }

    /// Whether `m` targets a PRODUCTION environment from a NON_PRODUCTION one. Only a
    /// mapping targeting another environment can; the registry is asked only then (the
    /// common case costs no call).
    pub(crate) async fn production_in_sandbox(&self, m: &Mapping) -> Result<bool> {
        let env = m.name.env();
        if &m.target == env {
            return Ok(false);
        }
        let here = self.envs.tier(env).await?;
        let target = match self.envs.tier(&m.target).await {
            Ok(t) => Some(t),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        Ok(here == Tier::NonProduction && target == Some(Tier::Production))
    }
}
