//! Credential sealing. Values are sealed with AES-256-GCM under the newest of the service's
//! sealing keys (a fresh random 96-bit nonce per seal, stored as nonce||ciphertext) and
//! carry the id of the key that sealed them ([`Sealed`]), so older keys still open what
//! they sealed until a reseal moves it to the newest. Credentials are identified by a
//! fingerprint: HMAC-SHA-256 under the fingerprint keys ([`HmacKeys`]), first 16 hex
//! digits. The fingerprint keys are not tied to any one sealing key: they are stored
//! sealed beside the values, so fingerprints (and the request digests idempotency
//! compares) stay the same across rotations. No key ever leaves this module or prints.

mod keys;

pub use keys::{DEFAULT_KEY_ID, SealingKey, check_id, generate_key_file, parse_key_file};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::values::ApiKey;

const NONCE_BYTES: usize = 12;

/// A sealed value: nonce||ciphertext and the id of the key that sealed it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({}, ***)", self.key_id)
    }
}

/// The two HMAC keys: fingerprints of credentials, and digests of keys in requests'
/// idempotency fingerprints.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKeys {
    fingerprint: [u8; 32],
    request: [u8; 32],
}

impl HmacKeys {
    /// The keys a deployment had before they were stored: derived from its sealing key.
    fn derived(key: &[u8; 32]) -> Self {
        Self { fingerprint: derive(key, b"ferry credential fingerprint v1"), request: derive(key, b"ferry request fingerprint v1") }
    }

    /// As stored (sealed): 64 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.fingerprint, self.request].concat()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpenError> {
        let (f, r) = bytes.split_at_checked(32).ok_or(OpenError)?;
        Ok(Self { fingerprint: f.try_into().map_err(|_| OpenError)?, request: r.try_into().map_err(|_| OpenError)? })
    }
}

/// Seals, opens and fingerprints credentials with the service's sealing keys.
#[derive(Clone)]
pub struct Sealer {
    /// Oldest first; never empty: the last seals.
    keys: Vec<(String, Aes256Gcm)>,
    hmac: HmacKeys,
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
    /// One key, id `default` (as a key file of one bare line).
    pub fn new(key: [u8; 32]) -> Self {
        Self { keys: vec![(DEFAULT_KEY_ID.to_owned(), Aes256Gcm::new(&key.into()))], hmac: HmacKeys::derived(&key) }
    }

    /// The keys of a key file, oldest first. Until [`Sealer::with_hmac_keys`] gives the
    /// stored ones, the fingerprint keys are derived from the `default` key if there is one
    /// (what a deployment used before they were stored), else from the newest.
    pub fn from_keys(keys: &[SealingKey]) -> Result<Self, String> {
        let newest = keys.last().ok_or("no sealing key")?;
        let root = keys.iter().find(|k| k.id == DEFAULT_KEY_ID).unwrap_or(newest);
        Ok(Self {
            keys: keys.iter().map(|k| (k.id.clone(), Aes256Gcm::new(&k.secret.into()))).collect(),
            hmac: HmacKeys::derived(&root.secret),
        })
    }

    /// Parses a key file's text (see [`parse_key_file`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::from_keys(&parse_key_file(text)?)
    }

    pub fn with_hmac_keys(mut self, hmac: HmacKeys) -> Self {
        self.hmac = hmac;
        self
    }

    pub fn hmac_keys(&self) -> &HmacKeys {
        &self.hmac
    }

    /// The id of the key new seals use.
    pub fn newest(&self) -> &str {
        self.keys.last().map(|(id, _)| id.as_str()).unwrap_or_default()
    }

    /// Whether key `id` is configured.
    pub fn has(&self, id: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == id)
    }

    /// Seals `plain` under the newest key, with a fresh random nonce.
    pub fn seal_bytes(&self, plain: &[u8]) -> Sealed {
        let Some((id, cipher)) = self.keys.last() else { unreachable!("a sealer has a key") };
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption only fails for inputs over 64 GiB; sealed values are at most KiBs.
        let ciphertext = cipher.encrypt(&nonce, plain).unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        Sealed { key_id: id.clone(), bytes }
    }

    pub fn seal(&self, key: &ApiKey) -> Sealed {
        self.seal_bytes(key.expose())
    }

    /// Opens a sealed value with the key it names (for runtimes released credentials, the
    /// reseal, and tests).
    pub fn open(&self, sealed: &Sealed) -> Result<Vec<u8>, OpenError> {
        let (_, cipher) = self.keys.iter().find(|(id, _)| *id == sealed.key_id).ok_or(OpenError)?;
        let (nonce, ciphertext) = sealed.bytes.split_at_checked(NONCE_BYTES).ok_or(OpenError)?;
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| OpenError)?;
        cipher.decrypt(&Nonce::from(nonce), ciphertext).map_err(|_| OpenError)
    }

    /// `sealed` under the newest key (unchanged if it already is).
    pub fn reseal(&self, sealed: &Sealed) -> Result<Sealed, OpenError> {
        if sealed.key_id == self.newest() {
            return Ok(sealed.clone());
        }
        Ok(self.seal_bytes(&self.open(sealed)?))
    }

    /// The fingerprint replies carry: first 16 hex digits of an HMAC of the key.
    pub fn fingerprint(&self, key: &ApiKey) -> String {
        hmac_hex(&self.hmac.fingerprint, key.expose())[..16].to_owned()
    }

    /// What stands in for a key in a request's idempotency fingerprint: a full-length
    /// HMAC under a separate key, so the request log never holds the key.
    pub fn request_digest(&self, key: &str) -> String {
        if key.is_empty() { String::new() } else { hmac_hex(&self.hmac.request, key.as_bytes()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[(&str, u8)]) -> Sealer {
        Sealer::from_keys(&ids.iter().map(|(id, b)| SealingKey::new(id, [*b; 32]).unwrap()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn seal_open_and_fingerprint() {
        let s = Sealer::new([7; 32]);
        let key = ApiKey::required("rally-key-123").unwrap();
        let a = s.seal(&key);
        let b = s.seal(&key);
        assert_ne!(a, b, "fresh nonce per seal");
        assert_eq!(a.key_id, DEFAULT_KEY_ID);
        assert_eq!(s.open(&a).unwrap(), b"rally-key-123");
        assert!(!a.bytes.windows(13).any(|w| w == b"rally-key-123"));
        assert_eq!(s.fingerprint(&key), s.fingerprint(&key));
        assert_eq!(s.fingerprint(&key).len(), 16);
        assert_ne!(s.fingerprint(&key), Sealer::new([8; 32]).fingerprint(&key));
        assert!(Sealer::new([8; 32]).open(&a).is_err());
        assert_eq!(format!("{s:?}"), "Sealer(***)");
        assert_eq!(format!("{a:?}"), "Sealed(default, ***)");
    }

    #[test]
    fn newest_seals_older_still_open() {
        let old = ring(&[("a", 1)]);
        let both = ring(&[("a", 1), ("b", 2)]);
        let key = ApiKey::required("jira-key").unwrap();
        let under_a = old.seal(&key);
        assert_eq!(both.newest(), "b");
        assert_eq!(both.seal(&key).key_id, "b");
        assert_eq!(both.open(&under_a).unwrap(), b"jira-key");
        let moved = both.reseal(&under_a).unwrap();
        assert_eq!(moved.key_id, "b");
        assert_eq!(ring(&[("b", 2)]).open(&moved).unwrap(), b"jira-key");
        assert!(ring(&[("b", 2)]).open(&under_a).is_err(), "a removed key opens nothing");
        assert_eq!(both.reseal(&moved).unwrap(), moved, "already under the newest: unchanged");
        let forged = Sealed { key_id: "b".into(), bytes: under_a.bytes.clone() };
        assert!(both.open(&forged).is_err(), "the key id names the key that opens it");
        assert!(both.open(&Sealed { key_id: "a".into(), bytes: vec![1, 2] }).is_err());
    }

    #[test]
    fn fingerprints_survive_a_rotation() {
        let legacy = Sealer::new([1; 32]);
        let key = ApiKey::required("rally-key").unwrap();
        // Adding a newer key keeps the fingerprints the `default` key gave.
        let rotated = ring(&[("default", 1), ("2026-06", 2)]);
        assert_eq!(rotated.fingerprint(&key), legacy.fingerprint(&key));
        assert_eq!(rotated.request_digest("rally-key"), legacy.request_digest("rally-key"));
        // Once the stored fingerprint keys are given, the sealing keys no longer matter.
        let only_new = ring(&[("2026-06", 2)]).with_hmac_keys(HmacKeys::from_bytes(&legacy.hmac_keys().to_bytes()).unwrap());
        assert_eq!(only_new.fingerprint(&key), legacy.fingerprint(&key));
        assert_eq!(only_new.request_digest("k"), legacy.request_digest("k"));
        assert_eq!(only_new.request_digest(""), "");
        assert!(HmacKeys::from_bytes(&[0; 10]).is_err());
    }

    #[test]
    fn legacy_file_text_seals_under_default() {
        let s = Sealer::parse(&format!("{}\n", hex::encode([7; 32]))).unwrap();
        assert_eq!(s.newest(), DEFAULT_KEY_ID);
        let key = ApiKey::required("k").unwrap();
        assert_eq!(Sealer::new([7; 32]).open(&s.seal(&key)).unwrap(), b"k");
        assert_eq!(s.fingerprint(&key), Sealer::new([7; 32]).fingerprint(&key));
        assert!(Sealer::parse("").is_err());
    }
}
