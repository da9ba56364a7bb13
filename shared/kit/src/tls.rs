//! TLS material from PEM files (on Kubernetes, Secrets mounted as files). Every file is
//! read and parsed when the server or client is built, so a missing or malformed file is
//! a configuration error that names it, not a failed handshake later. rustls (ring) does
//! the TLS; only the CA bundles given here are trusted, never system or webpki roots.

use std::path::Path;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// A client that opens TCP but never finishes the handshake is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn config_error(message: String) -> crate::Error {
    crate::Error::Config(message)
}

/// An error with its sources, `: `-separated (tonic and rustls put the cause in sources).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, crate::Error> {
    std::fs::read(path).map_err(|e| config_error(format!("{flag} {}: {e}", path.display())))
}

/// The PEM certificates in `path` (at least one), for the setting `flag`.
pub(crate) fn certificates(path: &Path, flag: &str) -> Result<Certificate, crate::Error> {
    let pem = read(path, flag)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error(format!("{flag} {}: not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(config_error(format!("{flag} {}: no PEM certificate in it", path.display())));
    }
    Ok(Certificate::from_pem(pem))
}

/// A certificate chain and its private key; both or neither.
pub(crate) fn identity(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<Identity>, crate::Error> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(config_error("--tls-cert-file (FERRY_TLS_CERT_FILE) is set without --tls-key-file".into())),
        (None, Some(_)) => return Err(config_error("--tls-key-file (FERRY_TLS_KEY_FILE) is set without --tls-cert-file".into())),
        (Some(c), Some(k)) => (c, k),
    };
    let certs = certificates(cert, "--tls-cert-file")?;
    let pem = read(key, "--tls-key-file")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| config_error(format!("--tls-key-file {}: no PEM private key in it: {e}", key.display())))?;
    Ok(Some(Identity::from_pem(certs, pem)))
}

/// The gRPC listener's TLS: `None` (plaintext) without a certificate; with `client_ca`,
/// clients must present a certificate that CA signed (mutual TLS).
pub fn server_config(cert: Option<&Path>, key: Option<&Path>, client_ca: Option<&Path>) -> Result<Option<ServerTlsConfig>, crate::Error> {
    let (Some(identity), Some(cert), Some(key)) = (identity(cert, key)?, cert, key) else {
        return match client_ca {
            Some(_) => Err(config_error(
                "--tls-client-ca-file (FERRY_TLS_CLIENT_CA_FILE) needs --tls-cert-file and --tls-key-file: mutual TLS is TLS first".into(),
            )),
            None => Ok(None),
        };
    };
    let mut config = ServerTlsConfig::new().identity(identity).timeout(HANDSHAKE_TIMEOUT);
    if let Some(ca) = client_ca {
        config = config.client_ca_root(certificates(ca, "--tls-client-ca-file")?);
    }
    // Build it once now: a key that does not match its certificate fails here, at start-up.
    tonic::transport::Server::builder()
        .tls_config(config.clone())
        .map_err(|e| config_error(format!("--tls-cert-file {} with --tls-key-file {}: {}", cert.display(), key.display(), chain(&e))))?;
    Ok(Some(config))
}

/// A TLS client that trusts only the PEM certificates in `ca_file` (errors name `flag`).
pub fn ca_connector(ca_file: &Path, flag: &str) -> Result<tokio_rustls::TlsConnector, crate::Error> {
    use tokio_rustls::rustls;
    let bad = |e: String| crate::Error::Config(format!("{flag} {}: {e}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))? {
        roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)))
}
