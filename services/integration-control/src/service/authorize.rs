//! AuthorizeSync: gathers the facts and asks [`crate::domain::authorize::decide`].

use super::{Control, Tier, integration_row, job, mapping};
use crate::domain::authorize::{DenyReason, Facts, decide};
use crate::domain::{JobName, MappingName};
use crate::error::{Error, Result};
use crate::store;

/// The answer: empty `reasons` means allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reasons: Vec<(DenyReason, String)>,
}

impl Control {
    pub async fn authorize_sync(&self, name: &MappingName, job_name: Option<&JobName>) -> Result<Decision> {
        let m = mapping(&self.db, name).await?;
        let integration = integration_row(&self.db, &name.integration).await?.integration;
        let jobs = match job_name {
            Some(j) => vec![job(&self.db, j).await?],
            None => store::jobs::of_integration(&self.db, &name.integration).await?,
        };
        let fence = store::fences::find(&self.db, name.env()).await?;
        // Only a mapping targeting another environment can be a production mapping in a
        // sandbox; the registry is asked only then (the common case costs no call).
        let production_target_in_non_production = if &m.target != name.env() {
            let here = self.envs.tier(name.env()).await?;
            let target = match self.envs.tier(&m.target).await {
                Ok(t) => Some(t),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            here == Tier::NonProduction && target == Some(Tier::Production)
        } else {
            false
        };
        let reasons = decide(&Facts {
            fence: fence.as_ref(),
            production_target_in_non_production,
            mapping: &m,
            integration: &integration,
            jobs: &jobs,
        });
        super::metrics::decided(reasons.first().map(|(r, _)| *r));
        Ok(Decision { reasons })
    }
}
