//! Bearer-token authentication and role checks as a tower layer.
//!
//! Tokens map to a role (viewer < operator < admin) and an environment scope. The layer
//! answers UNAUTHENTICATED without a valid token and PERMISSION_DENIED when the role is
//! too low for the method; handlers check the environment scope with
//! [`Principal::check_environment`]. Health and reflection are open, as probes need.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tonic::Status;

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

/// The authenticated caller, put into each request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// `None`: every environment.
    pub environments: Option<BTreeSet<String>>,
}

impl Principal {
    /// The caller when authentication is off.
    pub fn unrestricted() -> Self {
        Self { role: Role::Admin, environments: None }
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

/// The tokens a service accepts, by SHA-256 of the token.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    by_digest: HashMap<[u8; 32], Principal>,
}

impl TokenTable {
    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    pub fn insert(&mut self, token: &str, principal: Principal) {
        self.by_digest.insert(Self::digest(token), principal);
    }

    pub fn get(&self, token: &str) -> Option<&Principal> {
        self.by_digest.get(&Self::digest(token))
    }

    /// Parses the tokens file: `<token> <role> <*|env,env>` per line; `#` comments.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut table = TokenTable::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [token, role, scope] = parts.as_slice() else {
                return Err(format!("line {}: expected `<token> <role> <scope>`", n + 1));
            };
            if token.len() < 16 {
                return Err(format!("line {}: token shorter than 16 characters", n + 1));
            }
            let role = role.parse::<Role>().map_err(|e| format!("line {}: {e}", n + 1))?;
            let environments = (*scope != "*").then(|| scope.split(',').map(str::to_owned).collect::<BTreeSet<_>>());
            table.insert(token, Principal { role, environments });
        }
        Ok(table)
    }

    pub fn load(path: &Path) -> Result<Self, crate::Error> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::Config(format!("tokens file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| crate::Error::Config(format!("tokens file {}: {e}", path.display())))
    }
}

/// How much a method needs. Ferry's method names follow AIP verbs, so the verb decides:
/// reads (Get, List, Watch, Stream, Lookup, Resolve, Export, Authorize) are open to
/// viewers, environment-wide operations need admin, the rest operator.
pub fn required_role(method: &str) -> Role {
    // `Plan*` is not a read: plans are stored resources (a refresh or promotion plan, a
    // clone plan), so planning needs the operator role.
    const READ: [&str; 8] = ["Get", "List", "Watch", "Stream", "Lookup", "Resolve", "Export", "Authorize"];
    // Environment-wide operations: the registry's copy and restore, and the refresh steps of
    // integration-control. The refresh coordinator calls them with its service token.
    const ADMIN: [&str; 13] = [
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
    ];
    if ADMIN.contains(&method) {
        Role::Admin
    } else if READ.iter().any(|v| method.starts_with(v)) {
        Role::Viewer
    } else {
        Role::Operator
    }
}

fn open_path(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

/// Checks the `authorization` header of a request against the table.
pub fn authenticate(table: &TokenTable, path: &str, headers: &http::HeaderMap) -> Result<Option<Principal>, Status> {
    if open_path(path) {
        return Ok(None);
    }
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
    let principal = table.get(token.trim()).ok_or_else(|| Status::unauthenticated("unknown bearer token"))?;
    let method = path.rsplit('/').next().unwrap_or_default();
    let needed = required_role(method);
    if principal.role < needed {
        return Err(crate::status::permission_denied(format!("{method} needs the {needed:?} role").to_lowercase()));
    }
    Ok(Some(principal.clone()))
}

/// The tower layer. `None` turns authentication off.
#[derive(Clone)]
pub struct AuthLayer {
    table: Option<Arc<TokenTable>>,
}

impl AuthLayer {
    pub fn new(table: Option<TokenTable>) -> Self {
        Self { table: table.map(Arc::new) }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Auth { inner, table: self.table.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    table: Option<Arc<TokenTable>>,
}

impl<S, B> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<S::Future, std::future::Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let Some(table) = &self.table else {
            return futures::future::Either::Left(self.inner.call(req));
        };
        match authenticate(table, req.uri().path(), req.headers()) {
            Ok(principal) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                futures::future::Either::Left(self.inner.call(req))
            }
            Err(status) => futures::future::Either::Right(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(token: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        h
    }

    #[test]
    fn roles_and_scopes() {
        let table = TokenTable::parse("# c\nviewer-token-0123456 viewer *\nop-token-0123456789 operator dev,uat\n").unwrap();
        let p = "/ferry.registry.v1.RegistryService/";
        assert!(authenticate(&table, &format!("{p}GetGroup"), &headers("viewer-token-0123456")).is_ok());
        let denied = authenticate(&table, &format!("{p}CreateGroup"), &headers("viewer-token-0123456")).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        let op = authenticate(&table, &format!("{p}CreateGroup"), &headers("op-token-0123456789")).unwrap().unwrap();
        assert!(op.check_environment("dev").is_ok());
        assert_eq!(op.check_environment("prod").unwrap_err().code(), tonic::Code::PermissionDenied);
        let admin_only = authenticate(&table, &format!("{p}CopyEnvironment"), &headers("op-token-0123456789"));
        assert_eq!(admin_only.unwrap_err().code(), tonic::Code::PermissionDenied);
        let none = authenticate(&table, &format!("{p}GetGroup"), &http::HeaderMap::new()).unwrap_err();
        assert_eq!(none.code(), tonic::Code::Unauthenticated);
        assert!(authenticate(&table, "/grpc.health.v1.Health/Check", &http::HeaderMap::new()).unwrap().is_none());
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(TokenTable::parse("short viewer *").is_err());
        assert!(TokenTable::parse("long-enough-token-123 root *").is_err());
        assert!(TokenTable::parse("long-enough-token-123 viewer").is_err());
    }
}
