//! JWT bearer tokens (OIDC, Kubernetes service-account tokens), checked by `jsonwebtoken`
//! against the issuer's JWKS ([`super::jwks`]).
//!
//! The algorithms are pinned by configuration (default RS256); `alg: none` and HMAC are
//! always refused, and the key's type must fit the algorithm. `iss` must be the
//! configured issuer, `aud` one of the configured audiences, `exp` is required, and `exp`
//! and `nbf` are checked with a leeway. The subject is a claim (`sub`); the role and the
//! rights come from the values of another claim (`groups`, or `sub` itself) through the
//! role map (`ferry-admins=admin,ferry-ops=operator,ferry-approvers=+approver`): the
//! highest role matched wins and the rights add up. A token that matches no role (and no
//! default role is set) is authenticated but may do nothing: PERMISSION_DENIED. The
//! environment scope is a claim too (an array, or a comma-separated string; `*` is
//! every environment); a token without it gets the configured default.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use tonic::Status;

pub use super::jwks::KeySource;
use super::jwks::{Jwks, KeyKind};
use super::{Credential, Grant, Principal, valid_subject};

/// How JWTs are checked and mapped to principals (see the module docs; built from the
/// `--jwt-*` flags by [`crate::config::JwtArgs::config`]).
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    /// `aud` must contain one of these.
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub subject_claim: String,
    pub role_claim: String,
    /// Claim value → role and rights.
    pub role_map: HashMap<String, Grant>,
    /// The grant of every valid token, before the role map adds to it.
    pub default_grant: Grant,
    pub environments_claim: Option<String>,
    /// The scope of a token without the environments claim: every environment (`true`)
    /// or none.
    pub environments_default_all: bool,
    /// Least time between two fetches the JWKS gets for an unknown `kid`.
    pub refetch_interval: Duration,
    /// How often the JWKS is fetched again anyway (a key removed at the issuer goes).
    pub refresh_interval: Duration,
}

impl JwtConfig {
    /// A configuration with the defaults: RS256, 30 s leeway, `sub`, `groups`, no role
    /// map, every environment when the token names none, refetch after 5 s, refresh
    /// every 5 minutes.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, keys: KeySource) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            keys,
            algorithms: vec![Algorithm::RS256],
            leeway: Duration::from_secs(30),
            subject_claim: "sub".into(),
            role_claim: "groups".into(),
            role_map: HashMap::new(),
            default_grant: Grant::default(),
            environments_claim: None,
            environments_default_all: true,
            refetch_interval: Duration::from_secs(5),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// Parses a role map: `value=grant` entries separated by commas, a grant being
/// `role[+approver][+service]` or rights alone (`+approver`).
pub fn parse_role_map(text: &str) -> Result<HashMap<String, Grant>, String> {
    let mut map = HashMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (value, grant) =
            entry.rsplit_once('=').ok_or_else(|| format!("entry {entry:?}: expected `claim-value=role[+approver][+service]`"))?;
        let grant = Grant::parse(grant.trim()).map_err(|e| format!("entry {entry:?}: {e}"))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("entry {entry:?}: no claim value before `=`"));
        }
        if map.insert(value.to_owned(), grant).is_some() {
            return Err(format!("entry {entry:?}: {value} is mapped twice"));
        }
    }
    Ok(map)
}

/// An algorithm `--jwt-algorithms` may name: a public-key one.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("`none` is never accepted: tokens must be signed".into());
    }
    let alg: Algorithm =
        name.parse().map_err(|_| format!("unknown algorithm {name:?} (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"))?;
    if KeyKind::of(alg).is_none() {
        return Err(format!("{name} is an HMAC algorithm: Ferry accepts only public-key signatures"));
    }
    Ok(alg)
}

/// Whether a bearer token has the shape of a JWT: three dot-separated base64url parts
/// (the last may be empty: an unsigned `alg: none` token, which is refused as such).
pub fn looks_like_jwt(token: &str) -> bool {
    let b64url = |p: &str| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let parts: Vec<&str> = token.split('.').collect();
    matches!(parts.as_slice(), [h, c, s] if !h.is_empty() && !c.is_empty() && b64url(h) && b64url(c) && b64url(s))
}

/// The JWT checker of a server: its configuration and the cached JWKS.
pub struct Jwt {
    config: JwtConfig,
    jwks: Jwks,
    validation: HashMap<Algorithm, Validation>,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt").field("config", &self.config).finish_non_exhaustive()
    }
}

fn unauthenticated(message: impl std::fmt::Display) -> Status {
    Status::unauthenticated(format!("jwt: {message}"))
}

/// A `kid` as messages show it: escaped and cut short (it is the caller's text).
fn shown(kid: &str) -> String {
    format!("{:?}", kid.chars().take(64).collect::<String>())
}

impl Jwt {
    /// Loads the keys: a JWKS file must read (a configuration error otherwise); a URL
    /// that does not answer yet is logged and fetched again when a token comes.
    pub async fn start(config: JwtConfig) -> Result<Arc<Self>, crate::Error> {
        let jwks = Jwks::new(config.keys.clone(), config.refetch_interval)?;
        match (jwks.load().await, &config.keys) {
            (Ok(n), _) => tracing::info!(keys = n, issuer = %config.issuer, "JWKS loaded"),
            (Err(e), KeySource::File(_)) => return Err(crate::Error::Config(format!("--jwt-jwks-file: {e}"))),
            (Err(e), KeySource::Url { .. }) => tracing::warn!(error = %e, "JWKS not fetched at start; fetching again when a token comes"),
        }
        let validation = config
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.leeway = config.leeway.as_secs();
                v.validate_nbf = true;
                v.set_issuer(&[&config.issuer]);
                v.set_audience(&config.audiences);
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                (*alg, v)
            })
            .collect();
        Ok(Arc::new(Self { config, jwks, validation }))
    }

    /// Fetches (or reads) the JWKS again every refresh interval and on SIGHUP, for as long
    /// as the server serves; a failure keeps the keys in force.
    pub async fn refresh(self: Arc<Self>) {
        let mut ticker = super::watch::Ticker::new(self.config.refresh_interval);
        ticker.next("JWKS").await; // the first tick is now: the keys were just loaded
        loop {
            ticker.next("JWKS").await;
            if let Err(e) = self.jwks.load().await {
                tracing::warn!(error = %e, "JWKS not refreshed; the keys before stay in force");
            }
        }
    }

    /// How many times the JWKS was fetched or read.
    pub fn jwks_fetches(&self) -> u64 {
        self.jwks.fetches()
    }

    /// The caller a JWT names. UNAUTHENTICATED unless it is well formed, signed with an
    /// allowed algorithm by a key of the JWKS, from the issuer, for this audience and
    /// within its validity; PERMISSION_DENIED when it maps to no role.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Status> {
        let (alg, kid) = header(token)?;
        let allowed = || self.config.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
        let alg = match alg.as_str() {
            a if a.eq_ignore_ascii_case("none") => return Err(unauthenticated("alg none is refused: the token must be signed")),
            a if a.starts_with("HS") => {
                return Err(unauthenticated(format!("HMAC algorithm {a} is refused: Ferry accepts only public-key signatures")));
            }
            a => a
                .parse::<Algorithm>()
                .ok()
                .filter(|alg| self.config.algorithms.contains(alg))
                .ok_or_else(|| unauthenticated(format!("algorithm {} is not allowed (allowed: {})", shown(a), allowed())))?,
        };
        let key = self.jwks.find(kid.as_deref()).await.ok_or_else(|| match &kid {
            Some(kid) => unauthenticated(format!("unknown kid {} (not in the JWKS, also after fetching it again)", shown(kid))),
            None => unauthenticated("the token has no kid and the JWKS has not exactly one key"),
        })?;
        let kid = kid.as_deref().map_or_else(|| "(none)".to_owned(), shown);
        if KeyKind::of(alg) != Some(key.kind) {
            return Err(unauthenticated(format!("key {kid} is a {:?} key, which cannot verify {alg:?}", key.kind)));
        }
        if let Some(for_alg) = key.alg.filter(|a| *a != alg) {
            return Err(unauthenticated(format!("key {kid} is for {for_alg:?}, the token says {alg:?}")));
        }
        let validation = self.validation.get(&alg).ok_or_else(|| unauthenticated(format!("algorithm {alg:?} is not allowed")))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, validation).map_err(|e| self.refusal(&e))?;
        self.principal(&data.claims)
    }

    fn refusal(&self, e: &jsonwebtoken::errors::Error) -> Status {
        match e.kind() {
            ErrorKind::ExpiredSignature => unauthenticated("token expired"),
            ErrorKind::ImmatureSignature => unauthenticated("token not yet valid (nbf is in the future)"),
            ErrorKind::InvalidAudience => unauthenticated(format!("wrong audience (accepted: {})", self.config.audiences.join(", "))),
            ErrorKind::InvalidIssuer => unauthenticated(format!("wrong issuer (accepted: {})", self.config.issuer)),
            ErrorKind::InvalidSignature => unauthenticated("bad signature"),
            ErrorKind::MissingRequiredClaim(claim) => unauthenticated(format!("the token has no {claim} claim")),
            ErrorKind::InvalidAlgorithm => unauthenticated("the algorithm does not fit the key"),
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => unauthenticated("malformed token"),
            _ => unauthenticated(format!("token not verified: {e}")),
        }
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, Status> {
        let c = &self.config;
        let subject = claims
            .get(&c.subject_claim)
            .and_then(Value::as_str)
            .filter(|s| valid_subject(s))
            .ok_or_else(|| unauthenticated(format!("the token's {} claim is missing or not a usable subject", c.subject_claim)))?;
        let values = strings(claims.get(&c.role_claim), &c.role_claim)?;
        let grant = values.iter().filter_map(|v| c.role_map.get(v.as_str())).fold(c.default_grant, |a, g| a.merge(*g));
        let role = grant.role.ok_or_else(|| {
            crate::status::permission_denied(format!(
                "{subject} has no role: no value of the token's {} claim is in --jwt-role-map, and there is no --jwt-default-role",
                c.role_claim
            ))
        })?;
        let environments = match c.environments_claim.as_deref().and_then(|name| claims.get(name).map(|v| (name, v))) {
            Some((name, value)) => {
                let envs: BTreeSet<String> = strings(Some(value), name)?.into_iter().flat_map(|v| split_scope(&v)).collect();
                (!envs.contains("*")).then_some(envs)
            }
            None if c.environments_default_all => None,
            None => Some(BTreeSet::new()),
        };
        Ok(Principal {
            subject: subject.to_owned(),
            credential: Credential::Jwt,
            role,
            approver: grant.approver,
            service: grant.service,
            environments,
            on_behalf_of: None,
        })
    }
}

fn split_scope(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect()
}

/// A claim that is a string or an array of strings (absent: none).
fn strings(value: Option<&Value>, name: &str) -> Result<Vec<String>, Status> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| unauthenticated(format!("the token's {name} claim is not a string or an array of strings"))),
        Some(_) => Err(unauthenticated(format!("the token's {name} claim is not a string or an array of strings"))),
    }
}

/// The `alg` and `kid` of a token's header, read before any key is chosen.
fn header(token: &str) -> Result<(String, Option<String>), Status> {
    let malformed = |why: &str| unauthenticated(format!("malformed token ({why})"));
    let parts: Vec<&str> = token.split('.').collect();
    let [header, _, _] = parts.as_slice() else {
        return Err(malformed("not three dot-separated parts"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).map_err(|_| malformed("header is not base64url"))?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| malformed("header is not JSON"))?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or_else(|| malformed("header has no alg"))?;
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((alg.to_owned(), kid))
}
