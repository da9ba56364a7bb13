//! integration-control's domain metrics, on the process registry (`ferry_kit::metrics`).

use std::sync::LazyLock;

use ferry_kit::metrics::{Counter, CounterFamily, Family, register};

use crate::domain::authorize::DenyReason;

/// AuthorizeSync answers that said no, by the reason given (the first failing check).
static DENIALS: LazyLock<CounterFamily<1>> =
    LazyLock::new(|| register("ferry_sync_denials", "AuthorizeSync denials, by the reason given", Family::default()));

/// AuthorizeSync answers that said yes.
static ALLOWED: LazyLock<Counter> =
    LazyLock::new(|| register("ferry_sync_allowed", "AuthorizeSync answers that allowed the sync", Counter::default()));

const REASONS: [DenyReason; 11] = [
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

/// The reason as the contract's enum value spells it, without its prefix, lowercase.
fn label(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::EnvironmentFenced => "environment_fenced",
        DenyReason::ProductionMappingInNonProduction => "production_mapping_in_non_production",
        DenyReason::TargetsOtherEnvironment => "targets_other_environment",
        DenyReason::BoundElsewhere => "bound_elsewhere",
        DenyReason::MappingFenced => "mapping_fenced",
        DenyReason::IntegrationFenced => "integration_fenced",
        DenyReason::IntegrationInactive => "integration_inactive",
        DenyReason::CredentialsSuspended => "credentials_suspended",
        DenyReason::CredentialsMissing => "credentials_missing",
        DenyReason::MappingInactive => "mapping_inactive",
        DenyReason::JobPaused => "job_paused",
    }
}

/// Registers the metrics with every series at 0, so they are scraped before any decision.
pub(crate) fn init() {
    LazyLock::force(&ALLOWED);
    for reason in REASONS {
        let _ = DENIALS.get_or_create(&[("reason", label(reason).to_owned())]);
    }
}

/// Counts one AuthorizeSync answer: allowed when `reason` is `None`.
pub(crate) fn decided(reason: Option<DenyReason>) {
    match reason {
        None => {
            ALLOWED.inc();
        }
        Some(r) => {
            DENIALS.get_or_create(&[("reason", label(r).to_owned())]).inc();
        }
    }
}
