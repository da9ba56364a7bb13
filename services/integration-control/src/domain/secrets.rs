//! Credential sealing. Keys are sealed with AES-256-GCM under the service's sealing key
//! (a fresh random 96-bit nonce per seal, stored as nonce||ciphertext) and identified by
//! a fingerprint: HMAC-SHA-256 under a key derived from the sealing key, first 16 hex
//! digits. The sealing key itself never leaves this module and never prints.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::values::ApiKey;

const NONCE_BYTES: usize = 12;

/// Seals and fingerprints API keys.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    fingerprint_key: [u8; 32],
    request_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

/// A sealed value could not be opened (wrong sealing key or damaged bytes).
#[derive(Debug, thiserror::Error)]
#[error("sealed credentials could not be opened")]
pub struct OpenError;

fn derive(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn hmac_hex(key: &[u8; 32], data: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&key.into()),
            fingerprint_key: derive(&key, b"ferry credential fingerprint v1"),
            request_key: derive(&key, b"ferry request fingerprint v1"),
        }
    }

    /// Parses a key file's text: 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim()).map_err(|_| "sealing key must be 64 hex digits".to_owned())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "sealing key must be 32 bytes (64 hex digits)".to_owned())?;
        Ok(Self::new(key))
    }

    /// nonce || ciphertext, with a fresh random nonce.
    pub fn seal(&self, key: &ApiKey) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption only fails for inputs over 64 GiB; keys are at most 4 KiB.
        let ciphertext = self.cipher.encrypt(&nonce, key.expose()).unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a sealed key (for runtimes that are released credentials, and tests).
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_BYTES {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| OpenError)?;
        self.cipher.decrypt(&Nonce::from(nonce), ciphertext).map_err(|_| OpenError)
    }

    /// The fingerprint replies carry: first 16 hex digits of an HMAC of the key.
    pub fn fingerprint(&self, key: &ApiKey) -> String {
        hmac_hex(&self.fingerprint_key, key.expose())[..16].to_owned()
    }

    /// What stands in for a key in a request's idempotency fingerprint: a full-length
    /// HMAC under a separate derived key, so the request log never holds the key.
    pub fn request_digest(&self, key: &str) -> String {
        if key.is_empty() { String::new() } else { hmac_hex(&self.request_key, key.as_bytes()) }
    }
}

/// Writes a new random sealing key (64 hex digits) to `path` with mode 0600, unless the
/// file exists. Returns whether it wrote one.
pub fn generate_key_file(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::Write;
    if path.exists() {
        return Ok(false);
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let key: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
    file.sync_all()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_fingerprint() {
        let s = Sealer::new([7; 32]);
        let key = ApiKey::required("rally-key-123").unwrap();
        let a = s.seal(&key);
        let b = s.seal(&key);
        assert_ne!(a, b, "fresh nonce per seal");
        assert_eq!(s.open(&a).unwrap(), b"rally-key-123");
        assert!(!a.windows(13).any(|w| w == b"rally-key-123"));
        assert_eq!(s.fingerprint(&key), s.fingerprint(&key));
        assert_eq!(s.fingerprint(&key).len(), 16);
        assert_ne!(s.fingerprint(&key), Sealer::new([8; 32]).fingerprint(&key));
        assert!(Sealer::new([8; 32]).open(&a).is_err());
        assert_eq!(format!("{s:?}"), "Sealer(***)");
    }

    #[test]
    fn key_file_is_private_and_kept() {
        let dir = std::env::temp_dir().join(format!("ferry-sealing-{}-{}", std::process::id(), rand::random::<u32>()));
        let path = dir.join("sealing.key");
        assert!(generate_key_file(&path).unwrap());
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(Sealer::from_hex(&first).is_ok());
        assert!(!generate_key_file(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
