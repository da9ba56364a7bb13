//! Authentication and role checks as a tower layer.
//!
//! A caller proves who it is with a bearer token from the tokens file ([`Tokens`]), a JWT
//! from an OIDC issuer or a Kubernetes service-account token ([`jwt`]), or, under mutual
//! TLS, its client certificate ([`mtls`]). Each becomes a [`Principal`]: a subject (who:
//! every actor field records it), a role (viewer < operator < admin), the approver and
//! service rights and an environment scope. The files are read again when they change and
//! on SIGHUP, so revoking a token or a certificate's identity needs no restart. The layer
//! ([`AuthLayer`]) answers UNAUTHENTICATED without a valid credential and
//! PERMISSION_DENIED when the role is too low for the method; handlers check the
//! environment scope with [`Principal::check_environment`]. Health and reflection are
//! open, as probes need.
//!
//! A caller with the service right may pass `x-ferry-on-behalf-of: <subject>`: the
//! subject of the person it acts for ([`Principal::on_behalf_of`], [`Principal::actor`]).

use std::collections::BTreeSet;

use tonic::Status;

mod jwks;
pub mod jwt;
mod layer;
pub mod mtls;
mod tokens;
mod watch;

pub use jwt::{Jwt, JwtConfig};
pub use layer::{Auth, AuthLayer, Authenticator, authenticate};
pub use mtls::{ClientIdentities, IdentityTable};
pub use tokens::{TokenTable, Tokens};
pub use watch::{TableFile, Watched};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read-only calls.
    Viewer,
    /// Reads and ordinary writes.
    Operator,
    /// Everything, including environment-level operations.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (viewer, operator, admin)")),
        }
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// Nothing: authentication is off, or the call is in-process.
    None,
    /// A bearer token from the tokens file.
    StaticToken,
    /// A JWT bearer token (OIDC, Kubernetes service account) checked against a JWKS.
    Jwt,
    /// A client certificate under mutual TLS, by its SAN.
    ClientCertificate,
}

impl Credential {
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::StaticToken => "static-token",
            Credential::Jwt => "jwt",
            Credential::ClientCertificate => "client-certificate",
        }
    }
}

/// The subject of a caller when authentication is off.
pub const ANONYMOUS: &str = "anonymous";

/// The metadata key a service passes the original caller's subject in.
pub const ON_BEHALF_OF_HEADER: &str = "x-ferry-on-behalf-of";

/// Longest subject accepted (tokens file, JWT claim, on-behalf-of).
pub const MAX_SUBJECT: usize = 256;

/// The authenticated caller, put into each request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: the tokens file's subject (`alice@example.com`, `ci-pipeline`), the JWT's
    /// subject claim or the client certificate's SAN.
    pub subject: String,
    pub credential: Credential,
    pub role: Role,
    /// The approver right: may confirm a run's approval gate when the four-eyes rule is on
    /// (`+approver` after the role).
    pub approver: bool,
    /// The service right: may act for another caller with `x-ferry-on-behalf-of`
    /// (`+service` after the role).
    pub service: bool,
    /// `None`: every environment.
    pub environments: Option<BTreeSet<String>>,
    /// The original caller's subject a service passed on (`x-ferry-on-behalf-of`).
    pub on_behalf_of: Option<String>,
}

impl Principal {
    /// The caller when authentication is off.
    pub fn unrestricted() -> Self {
        Self {
            subject: ANONYMOUS.into(),
            credential: Credential::None,
            role: Role::Admin,
            approver: true,
            service: true,
            environments: None,
            on_behalf_of: None,
        }
    }

    /// Who the call is for: the original caller's subject when a service passed it on,
    /// else the subject.
    pub fn actor(&self) -> &str {
        self.on_behalf_of.as_deref().unwrap_or(&self.subject)
    }

    /// PERMISSION_DENIED unless the caller's scope covers `environment` (an id).
    pub fn check_environment(&self, environment: &str) -> Result<(), Status> {
        match &self.environments {
            Some(set) if !set.contains(environment) => {
                Err(crate::status::permission_denied(format!("token is not scoped to environment {environment}")))
            }
            _ => Ok(()),
        }
    }

    /// The caller of a request (unrestricted when no auth layer ran, i.e. in-process use).
    pub fn of<T>(request: &tonic::Request<T>) -> Principal {
        request.extensions().get::<Principal>().cloned().unwrap_or_else(Principal::unrestricted)
    }
}

/// A role and rights as the tokens file, the identities file and the JWT role map write
/// them: `admin`, `operator+approver`, `admin+service`, or rights alone (`+approver`)
/// where a role may be left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grant {
    pub role: Option<Role>,
    pub approver: bool,
    pub service: bool,
}

impl Grant {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split('+');
        let role = parts.next().unwrap_or_default(); // ok: split yields at least one part
        let mut grant = Grant { role: (!role.is_empty()).then(|| role.parse()).transpose()?, ..Grant::default() };
        for right in parts {
            match right {
                "approver" => grant.approver = true,
                "service" => grant.service = true,
                other => return Err(format!("unknown right {other:?} after the role (`+approver`, `+service`)")),
            }
        }
        Ok(grant)
    }

    /// `self` and `other` together: the higher role, either's rights.
    pub fn merge(self, other: Grant) -> Grant {
        Grant { role: self.role.max(other.role), approver: self.approver || other.approver, service: self.service || other.service }
    }
}

/// The role, rights and scope fields of a tokens or identities file line; a role is required.
pub(crate) fn role_and_scope(grant: &str, scope: &str) -> Result<(Role, Grant, Option<BTreeSet<String>>), String> {
    let grant = Grant::parse(grant)?;
    let role = grant.role.ok_or("no role before the rights (viewer, operator, admin)")?;
    Ok((role, grant, parse_scope(scope)?))
}

/// An environment scope as the files write it: `*` or `env,env`.
pub(crate) fn parse_scope(scope: &str) -> Result<Option<BTreeSet<String>>, String> {
    if scope.split(',').any(str::is_empty) {
        return Err(format!("scope {scope:?} has an empty environment (`*` or `env,env`)"));
    }
    Ok((scope != "*").then(|| scope.split(',').map(str::to_owned).collect()))
}

/// Whether `subject` is fit to be recorded: not empty, at most [`MAX_SUBJECT`] characters,
/// no control characters.
pub(crate) fn valid_subject(subject: &str) -> bool {
    !subject.is_empty() && subject.chars().count() <= MAX_SUBJECT && !subject.chars().any(char::is_control)
}

/// How much a method needs. Ferry's method names follow AIP verbs, so the verb decides:
/// reads (Get, List, Watch, Stream, Lookup, Resolve, Export, Authorize) are open to
/// viewers, environment-wide operations need admin, the rest operator.
pub fn required_role(method: &str) -> Role {
    // `Plan*` is not a read: plans are stored resources (a refresh or promotion plan, a
    // clone plan), so planning needs the operator role.
    const READ: [&str; 8] = ["Get", "List", "Watch", "Stream", "Lookup", "Resolve", "Export", "Authorize"];
    // Environment-wide operations: the registry's copy and restore, and the refresh steps of
    // integration-control (the coordinator calls them with its service token), its lease
    // revocation and its reseal, and webhook subscriptions (they see every environment).
    const ADMIN: [&str; 19] = [
        "CreateEnvironment",
        "CopyEnvironment",
        "RestoreEnvironment",
        "DeleteEnvironment",
        "DeactivateIntegrations",
        "ReactivateIntegrations",
        "PauseSyncJobs",
        "ResumeSyncJobs",
        "CopyIntegrations",
        "DisableForeignMappings",
        "ActivateProvisionedMappings",
        "FenceEnvironment",
        "UnfenceEnvironment",
        "RevokeSyncLeases",
        "ResealCredentials",
        "CreateWebhookSubscription",
        "UpdateWebhookSubscription",
        "DeleteWebhookSubscription",
        "RedeliverWebhook",
    ];
    if ADMIN.contains(&method) {
        Role::Admin
    } else if READ.iter().any(|v| method.starts_with(v)) {
        Role::Viewer
    } else {
        Role::Operator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_roles_and_rights() {
        assert_eq!(Grant::parse("admin+service").unwrap(), Grant { role: Some(Role::Admin), approver: false, service: true });
        assert_eq!(Grant::parse("+approver").unwrap(), Grant { role: None, approver: true, service: false });
        assert_eq!(Grant::parse("viewer+approver+service").unwrap(), Grant { role: Some(Role::Viewer), approver: true, service: true });
        assert!(Grant::parse("operator+root").unwrap_err().contains("unknown right \"root\""));
        assert!(Grant::parse("root").unwrap_err().contains("unknown role"));
        let merged = Grant::parse("viewer+approver").unwrap().merge(Grant::parse("admin").unwrap());
        assert_eq!(merged, Grant { role: Some(Role::Admin), approver: true, service: false });
    }

    #[test]
    fn the_actor_is_the_caller_passed_on_or_the_subject() {
        let mut p = Principal { subject: "refresh-coordinator".into(), ..Principal::unrestricted() };
        assert_eq!(p.actor(), "refresh-coordinator");
        p.on_behalf_of = Some("alice@example.com".into());
        assert_eq!(p.actor(), "alice@example.com");
    }
}
