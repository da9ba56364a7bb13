//! The sync decision (DESIGN.md §3, fencing): a mapping may sync only when nothing below
//! fails. The checks run in the contract's order; the first failing one is the reason and
//! every failing one is listed.

use super::records::{CredentialState, Fence, Integration, JobState, Mapping, SyncJob};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DenyReason {
    EnvironmentFenced = 1,
    ProductionMappingInNonProduction = 2,
    TargetsOtherEnvironment = 3,
    BoundElsewhere = 4,
    MappingFenced = 5,
    IntegrationFenced = 6,
    IntegrationInactive = 7,
    CredentialsSuspended = 8,
    CredentialsMissing = 9,
    MappingInactive = 10,
    JobPaused = 11,
}

impl DenyReason {
    pub const ALL: [DenyReason; 11] = [
        DenyReason::EnvironmentFenced,
        DenyReason::ProductionMappingInNonProduction,
        DenyReason::TargetsOtherEnvironment,
        DenyReason::BoundElsewhere,
        DenyReason::MappingFenced,
        DenyReason::IntegrationFenced,
        DenyReason::IntegrationInactive,
        DenyReason::CredentialsSuspended,
        DenyReason::CredentialsMissing,
        DenyReason::MappingInactive,
        DenyReason::JobPaused,
    ];

    pub fn number(self) -> i32 {
        self as i32
    }

    /// The contract's enum value name without its prefix (`ENVIRONMENT_FENCED`): the type
    /// of a refused lease's violation, and (lowercase) the metrics' label.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::EnvironmentFenced => "ENVIRONMENT_FENCED",
            DenyReason::ProductionMappingInNonProduction => "PRODUCTION_MAPPING_IN_NON_PRODUCTION",
            DenyReason::TargetsOtherEnvironment => "TARGETS_OTHER_ENVIRONMENT",
            DenyReason::BoundElsewhere => "BOUND_ELSEWHERE",
            DenyReason::MappingFenced => "MAPPING_FENCED",
            DenyReason::IntegrationFenced => "INTEGRATION_FENCED",
            DenyReason::IntegrationInactive => "INTEGRATION_INACTIVE",
            DenyReason::CredentialsSuspended => "CREDENTIALS_SUSPENDED",
            DenyReason::CredentialsMissing => "CREDENTIALS_MISSING",
            DenyReason::MappingInactive => "MAPPING_INACTIVE",
            DenyReason::JobPaused => "JOB_PAUSED",
        }
    }
}

/// The resource that failed the check `reason`: the environment, the mapping, the
/// integration or the paused job.
pub fn subject(reason: DenyReason, f: &Facts<'_>) -> String {
    match reason {
        DenyReason::EnvironmentFenced => f.mapping.name.env().to_string(),
        DenyReason::IntegrationFenced
        | DenyReason::IntegrationInactive
        | DenyReason::CredentialsSuspended
        | DenyReason::CredentialsMissing => f.integration.name.to_string(),
        DenyReason::JobPaused => f.jobs.iter().find(|j| j.state == JobState::Paused).map(|j| j.name.to_string()).unwrap_or_default(),
        _ => f.mapping.name.to_string(),
    }
}

/// What the decision looks at.
pub struct Facts<'a> {
    pub fence: Option<&'a Fence>,
    /// The environment the mapping lives in is NON_PRODUCTION and its target is PRODUCTION.
    pub production_target_in_non_production: bool,
    pub mapping: &'a Mapping,
    pub integration: &'a Integration,
    /// The job asking, or the jobs of the mapping's integration when none asks.
    pub jobs: &'a [SyncJob],
}

/// Every failing check with a message naming the resource, in the contract's order.
pub fn decide(f: &Facts<'_>) -> Vec<(DenyReason, String)> {
    let env = f.mapping.name.env();
    let m = &f.mapping.name;
    let i = &f.integration.name;
    let mut out = Vec::new();
    if let Some(fence) = f.fence {
        out.push((DenyReason::EnvironmentFenced, format!("{env} is fenced by {}", fence.holder)));
    }
    if f.production_target_in_non_production {
        out.push((
            DenyReason::ProductionMappingInNonProduction,
            format!("{m} targets production environment {} but lives in non-production {env}", f.mapping.target),
        ));
    }
    if &f.mapping.target != env {
        out.push((DenyReason::TargetsOtherEnvironment, format!("{m} targets {}, not {env}", f.mapping.target)));
    }
    if &f.mapping.bound != env {
        out.push((DenyReason::BoundElsewhere, format!("{m} is bound to {}, not {env}", f.mapping.bound)));
    }
    if f.mapping.fenced {
        out.push((DenyReason::MappingFenced, format!("{m} arrived by a copy and is not re-bound")));
    }
    if f.integration.fenced {
        out.push((DenyReason::IntegrationFenced, format!("{i} arrived by a copy and is not re-bound")));
    }
    if !f.integration.active {
        out.push((DenyReason::IntegrationInactive, format!("{i} is inactive")));
    }
    match f.integration.credential_state {
        CredentialState::Suspended => out.push((DenyReason::CredentialsSuspended, format!("{i} has suspended credentials"))),
        CredentialState::None => out.push((DenyReason::CredentialsMissing, format!("{i} has no credentials"))),
        CredentialState::Active => {}
    }
    if !f.mapping.active {
        out.push((DenyReason::MappingInactive, format!("{m} is inactive")));
    }
    if let Some(job) = f.jobs.iter().find(|j| j.state == JobState::Paused) {
        out.push((DenyReason::JobPaused, format!("{} is paused by {}", job.name, job.paused_by)));
    }
    out
}
