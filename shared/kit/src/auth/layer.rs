//! The tower layer: who the caller is (bearer token first, then client certificate),
//! whether its role covers the method, and whom it acts for.

use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::CertificateDer;
use tonic::Status;

use super::jwt::looks_like_jwt;
use super::{ClientIdentities, Jwt, ON_BEHALF_OF_HEADER, Principal, TokenTable, Tokens, required_role, valid_subject};

fn open_path(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim)
}

/// PERMISSION_DENIED unless `principal`'s role covers the method of `path`; then takes
/// `x-ferry-on-behalf-of`, which only a caller with the service right may pass.
fn authorize(mut principal: Principal, path: &str, headers: &http::HeaderMap) -> Result<Principal, Status> {
    let method = path.rsplit('/').next().unwrap_or_default();
    let needed = required_role(method);
    if principal.role < needed {
        return Err(crate::status::permission_denied(format!("{method} needs the {needed:?} role").to_lowercase()));
    }
    principal.on_behalf_of = on_behalf_of(&principal, headers)?;
    Ok(principal)
}

fn on_behalf_of(principal: &Principal, headers: &http::HeaderMap) -> Result<Option<String>, Status> {
    let Some(value) = headers.get(ON_BEHALF_OF_HEADER) else {
        return Ok(None);
    };
    if !principal.service {
        return Err(crate::status::permission_denied(format!("only a caller with the service right may pass {ON_BEHALF_OF_HEADER}")));
    }
    match std::str::from_utf8(value.as_bytes()) {
        Ok(subject) if valid_subject(subject) => Ok(Some(subject.to_owned())),
        _ => Err(Status::invalid_argument(format!(
            "{ON_BEHALF_OF_HEADER}: a subject of 1 to 256 UTF-8 characters without control characters"
        ))),
    }
}

/// Checks the `authorization` header of a request against a tokens table alone (no JWT,
/// no client certificate); `Ok(None)` for the open health and reflection paths.
pub fn authenticate(table: &TokenTable, path: &str, headers: &http::HeaderMap) -> Result<Option<Principal>, Status> {
    if open_path(path) {
        return Ok(None);
    }
    let token = bearer(headers).ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
    let principal = table.get(token).cloned().ok_or_else(|| Status::unauthenticated("unknown bearer token"))?;
    authorize(principal, path, headers).map(Some)
}

/// Every way a server accepts callers: the tokens file, JWTs, client certificates.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    pub tokens: Option<Arc<Tokens>>,
    pub jwt: Option<Arc<Jwt>>,
    pub identities: Option<Arc<ClientIdentities>>,
}

impl Authenticator {
    /// The caller of a request to `path` with `headers`, over a connection whose client
    /// presented `peer` (leaf first). A bearer token, when there is one, decides: a JWT
    /// (when JWTs are configured) or a token of the tokens file. Without one, the client
    /// certificate's SAN does, when an identities file is configured. `Ok(None)` for the
    /// open health and reflection paths.
    pub async fn authenticate(
        &self,
        path: &str,
        headers: &http::HeaderMap,
        peer: Option<&[CertificateDer<'_>]>,
    ) -> Result<Option<Principal>, Status> {
        if open_path(path) {
            return Ok(None);
        }
        let principal = match bearer(headers) {
            Some(token) => match &self.jwt {
                Some(jwt) if looks_like_jwt(token) => jwt.authenticate(token).await?,
                _ => self
                    .tokens
                    .as_ref()
                    .and_then(|t| t.table().get(token).cloned())
                    .ok_or_else(|| Status::unauthenticated("unknown bearer token"))?,
            },
            None => match (&self.identities, peer) {
                (Some(identities), Some(chain)) => identities.table().identify(chain)?,
                _ => return Err(Status::unauthenticated("missing bearer token")),
            },
        };
        authorize(principal, path, headers).map(Some)
    }
}

/// The tower layer. `None` turns authentication off.
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Option<Arc<Authenticator>>,
}

impl AuthLayer {
    pub fn with(authenticator: Option<Authenticator>) -> Self {
        Self { authenticator: authenticator.map(Arc::new) }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Auth { inner, authenticator: self.authenticator.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    authenticator: Option<Arc<Authenticator>>,
}

type Ready<S, B> =
    std::future::Ready<Result<<S as tower::Service<http::Request<B>>>::Response, <S as tower::Service<http::Request<B>>>::Error>>;
type Checked<S, B> = futures::future::BoxFuture<
    'static,
    Result<<S as tower::Service<http::Request<B>>>::Response, <S as tower::Service<http::Request<B>>>::Error>,
>;

/// The client certificates of the connection a request came on (mutual TLS).
fn peer_certificates<B>(req: &http::Request<B>) -> Option<Arc<Vec<CertificateDer<'static>>>> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|info| info.peer_certs())
}

impl<S, B> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<S::Future, futures::future::Either<Ready<S, B>, Checked<S, B>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        use futures::future::Either::{Left, Right};
        let Some(authenticator) = self.authenticator.clone() else {
            // Authentication off: everyone is unrestricted, and a caller passed on is kept.
            if req.headers().contains_key(ON_BEHALF_OF_HEADER) {
                match authorize(Principal::unrestricted(), req.uri().path(), req.headers()) {
                    Ok(p) => {
                        req.extensions_mut().insert(p);
                    }
                    Err(status) => return Right(Left(std::future::ready(Ok(status.into_http())))),
                }
            }
            return Left(self.inner.call(req));
        };
        // The service that was polled ready serves this call; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Right(Right(Box::pin(async move {
            let peer = peer_certificates(&req);
            match authenticator.authenticate(req.uri().path(), req.headers(), peer.as_deref().map(Vec::as_slice)).await {
                Ok(principal) => {
                    if let Some(p) = principal {
                        req.extensions_mut().insert(p);
                    }
                    inner.call(req).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })))
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
    fn only_a_service_may_pass_on_behalf_of() {
        let table =
            TokenTable::parse("svc-token-0123456789 admin+service * refresh-coordinator\nop-token-0123456789 admin * alice\n").unwrap();
        let path = "/ferry.integration.v1.IntegrationService/PauseSyncJob";
        let on_behalf = |token: &str, subject: &[u8]| {
            let mut h = headers(token);
            h.insert(ON_BEHALF_OF_HEADER, http::HeaderValue::from_bytes(subject).unwrap());
            authenticate(&table, path, &h)
        };
        let passed = on_behalf("svc-token-0123456789", b"pat@example.com").unwrap().unwrap();
        assert_eq!((passed.subject.as_str(), passed.actor()), ("refresh-coordinator", "pat@example.com"));
        let refused = on_behalf("op-token-0123456789", b"pat@example.com").unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(refused.message(), "only a caller with the service right may pass x-ferry-on-behalf-of");
        let long = vec![b'a'; 257];
        assert_eq!(on_behalf("svc-token-0123456789", &long).unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(on_behalf("svc-token-0123456789", b"tab\there").unwrap_err().code(), tonic::Code::InvalidArgument);
        let plain = authenticate(&table, path, &headers("svc-token-0123456789")).unwrap().unwrap();
        assert_eq!((plain.on_behalf_of.as_deref(), plain.actor()), (None, "refresh-coordinator"));
    }
}
