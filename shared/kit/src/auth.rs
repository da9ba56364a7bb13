//! Bearer-token authentication and role checks as a tower layer.
//!
//! Tokens map to a subject (who the caller is: every actor field records it), a role
//! (viewer < operator < admin) and an environment scope. The tokens file is read again
//! when it changes and on SIGHUP ([`Tokens::watch`]), so revoking a token needs no
//! restart. The layer
//! answers UNAUTHENTICATED without a valid token and PERMISSION_DENIED when the role is
//! too low for the method; handlers check the environment scope with
//! [`Principal::check_environment`]. Health and reflection are open, as probes need.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

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

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// Nothing: authentication is off, or the call is in-process.
    None,
    /// A bearer token from the tokens file.
    StaticToken,
}

impl Credential {
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::StaticToken => "static-token",
        }
    }
}

/// The subject of a caller when authentication is off.
pub const ANONYMOUS: &str = "anonymous";

/// The authenticated caller, put into each request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: the tokens file's subject (`alice@example.com`, `ci-pipeline`).
    pub subject: String,
    pub credential: Credential,
    pub role: Role,
    /// The approver right: may confirm a run's approval gate when the four-eyes rule is on
    /// (the tokens file's `+approver` after the role).
    pub approver: bool,
    /// `None`: every environment.
    pub environments: Option<BTreeSet<String>>,
}

impl Principal {
    /// The caller when authentication is off.
    pub fn unrestricted() -> Self {
        Self { subject: ANONYMOUS.into(), credential: Credential::None, role: Role::Admin, approver: true, environments: None }
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

    /// How many tokens the table holds.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Parses the tokens file: `<token> <role>[+approver] <*|env,env> <subject>` per line,
    /// `#` comments. A line without a subject (the format before subjects) is read with the
    /// subject `token-` and the first 12 hex digits of the token's SHA-256, which names
    /// the token without revealing it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut table = TokenTable::default();
        let mut lines = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (token, role, scope, subject) = match parts.as_slice() {
                [token, role, scope] => (*token, *role, *scope, None),
                [token, role, scope, subject] => (*token, *role, *scope, Some(*subject)),
                _ => return Err(format!("line {n}: expected `<token> <role> <scope> <subject>` (found {} fields)", parts.len())),
            };
            if token.len() < 16 {
                return Err(format!("line {n}: token shorter than 16 characters"));
            }
            let (role, approver) = match role.split_once('+') {
                Some((role, "approver")) => (role, true),
                Some((_, right)) => return Err(format!("line {n}: unknown right {right:?} after the role (`+approver`)")),
                None => (role, false),
            };
            let role = role.parse::<Role>().map_err(|e| format!("line {n}: {e}"))?;
            if scope.split(',').any(str::is_empty) {
                return Err(format!("line {n}: scope {scope:?} has an empty environment (`*` or `env,env`)"));
            }
            let environments = (scope != "*").then(|| scope.split(',').map(str::to_owned).collect::<BTreeSet<_>>());
            let subject = match subject {
                Some(s) if s.len() > 256 || s.chars().any(char::is_control) => {
                    return Err(format!("line {n}: subject longer than 256 characters or with control characters"));
                }
                Some(s) => s.to_owned(),
                None => format!("token-{}", &hex::encode(Self::digest(token))[..12]),
            };
            if let Some(first) = lines.insert(Self::digest(token), n) {
                return Err(format!("line {n}: the same token as line {first}"));
            }
            table.insert(token, Principal { subject, credential: Credential::StaticToken, role, approver, environments });
        }
        Ok(table)
    }

    pub fn load(path: &Path) -> Result<Self, crate::Error> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::Config(format!("tokens file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| crate::Error::Config(format!("tokens file {}: {e}", path.display())))
    }
}

/// The tokens a server accepts now: its tokens file, read again when it changes.
#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    /// The table and the SHA-256 of the text it was read from.
    current: RwLock<(Arc<TokenTable>, [u8; 32])>,
}

impl Tokens {
    /// Reads the tokens file at `path`; a missing or bad file is a configuration error.
    pub fn open(path: &Path) -> Result<Self, crate::Error> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::Config(format!("tokens file {}: {e}", path.display())))?;
        let table = TokenTable::parse(&text).map_err(|e| crate::Error::Config(format!("tokens file {}: {e}", path.display())))?;
        Ok(Self { path: path.to_owned(), current: RwLock::new((Arc::new(table), Sha256::digest(text.as_bytes()).into())) })
    }

    /// The table in force.
    pub fn table(&self) -> Arc<TokenTable> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// Reads the file again; `Ok(true)` when its text changed and the new table is in
    /// force. A file that cannot be read or parsed leaves the table in force as it was.
    pub fn reload(&self) -> Result<bool, crate::Error> {
        let text =
            std::fs::read_to_string(&self.path).map_err(|e| crate::Error::Config(format!("tokens file {}: {e}", self.path.display())))?;
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if self.current.read().unwrap_or_else(|e| e.into_inner()).1 == digest {
            return Ok(false);
        }
        let table = TokenTable::parse(&text).map_err(|e| crate::Error::Config(format!("tokens file {}: {e}", self.path.display())))?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (Arc::new(table), digest);
        Ok(true)
    }

    /// Reads the file again every `interval` and on SIGHUP, for as long as the server
    /// serves; logs each change in force, and a bad file (the previous tokens stay).
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            {
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = hangup => tracing::info!(path = %self.path.display(), "SIGHUP: reading the tokens file again"),
                }
            }
            #[cfg(not(unix))]
            tick.tick().await;
            match self.reload() {
                Ok(true) => {
                    tracing::info!(path = %self.path.display(), tokens = self.table().len(), "tokens file changed; new tokens in force")
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "tokens file not reloaded; the previous tokens stay in force"),
            }
        }
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
    tokens: Option<Arc<Tokens>>,
}

impl AuthLayer {
    pub fn new(tokens: Option<Arc<Tokens>>) -> Self {
        Self { tokens }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Auth { inner, tokens: self.tokens.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    tokens: Option<Arc<Tokens>>,
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
        let Some(tokens) = &self.tokens else {
            return futures::future::Either::Left(self.inner.call(req));
        };
        match authenticate(&tokens.table(), req.uri().path(), req.headers()) {
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
    fn rejects_bad_lines_naming_them() {
        let err = |text: &str| TokenTable::parse(text).unwrap_err();
        assert_eq!(err("short viewer *"), "line 1: token shorter than 16 characters");
        assert_eq!(err("# c\nlong-enough-token-123 root *"), "line 2: unknown role \"root\" (viewer, operator, admin)");
        assert!(err("long-enough-token-123 viewer").starts_with("line 1: expected `<token> <role> <scope> <subject>` (found 2"));
        assert!(err("long-enough-token-123 viewer * alice extra").contains("found 5 fields"));
        assert!(err("long-enough-token-123 viewer dev,,uat alice").contains("empty environment"));
        let twice = "long-enough-token-123 viewer * alice\nlong-enough-token-123 admin * bob\n";
        assert_eq!(err(twice), "line 2: the same token as line 1");
    }

    #[test]
    fn subjects_named_or_derived() {
        let table = TokenTable::parse(
            "alice-token-0123456789 operator dev alice@example.com\nold-format-token-01234 viewer *\nvic-token-012345678901 operator+approver * vic\n",
        )
        .unwrap();
        let alice = table.get("alice-token-0123456789").unwrap();
        assert_eq!((alice.subject.as_str(), alice.credential, alice.role), ("alice@example.com", Credential::StaticToken, Role::Operator));
        assert!(!alice.approver);
        let vic = table.get("vic-token-012345678901").unwrap();
        assert_eq!((vic.role, vic.approver), (Role::Operator, true));
        assert!(TokenTable::parse("vic-token-012345678901 operator+root * vic").unwrap_err().contains("unknown right \"root\""));
        let old = &table.get("old-format-token-01234").unwrap().subject;
        assert_eq!(old, &format!("token-{}", &hex::encode(Sha256::digest(b"old-format-token-01234"))[..12]));
        assert!(!old.contains("old-format"), "the derived subject does not reveal the token");
    }

    #[test]
    fn reload_takes_a_changed_file_and_keeps_the_tokens_of_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("ferry-tokens-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(&path, "first-token-0123456789 admin * alice\n").unwrap();
        let tokens = Tokens::open(&path).unwrap();
        assert!(!tokens.reload().unwrap(), "unchanged");
        std::fs::write(&path, "second-token-012345678 admin * bob\n").unwrap();
        assert!(tokens.reload().unwrap());
        assert!(tokens.table().get("first-token-0123456789").is_none(), "removed: refused at once");
        assert_eq!(tokens.table().get("second-token-012345678").unwrap().subject, "bob");
        std::fs::write(&path, "second-token-012345678 root * bob\n").unwrap();
        assert!(tokens.reload().unwrap_err().to_string().contains("line 1: unknown role"));
        assert_eq!(tokens.table().get("second-token-012345678").unwrap().subject, "bob", "a bad file changes nothing");
        std::fs::remove_dir_all(&dir).ok();
    }
}
