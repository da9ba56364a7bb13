//! The sealing key file: one key per line, oldest first, newest last.
//!
//! ```text
//! # comments and blank lines are ignored
//! 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08          <- id `default`
//! 2026-06 4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce  <- `ID HEX`
//! ```
//!
//! A line of 64 hex digits alone is the key with id [`DEFAULT_KEY_ID`]: that is the format
//! from before key ids (what `ferry up` writes), and values sealed before key ids existed
//! are recorded under that id. Rotating a key is appending an `ID HEX` line.

/// The id of a key written without one (a file of one bare 64-hex line).
pub const DEFAULT_KEY_ID: &str = "default";

/// Longest key id.
const MAX_ID: usize = 64;

/// One sealing key and its id. The key bytes never print.
#[derive(Clone)]
pub struct SealingKey {
    pub id: String,
    pub(super) secret: [u8; 32],
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey({}, ***)", self.id)
    }
}

impl SealingKey {
    pub fn new(id: &str, secret: [u8; 32]) -> Result<Self, String> {
        check_id(id)?;
        Ok(Self { id: id.to_owned(), secret })
    }
}

/// A key id: 1–64 of ASCII letters, digits, `.`, `_` and `-` (a date like `2026-06` is a
/// good one).
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty() && id.len() <= MAX_ID && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(format!("key id {id:?} must be 1-{MAX_ID} of letters, digits, '.', '_' and '-'")) }
}

fn secret(hex_text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_text).map_err(|_| "a sealing key must be 64 hex digits".to_owned())?;
    bytes.try_into().map_err(|_| "a sealing key must be 32 bytes (64 hex digits)".to_owned())
}

/// Parses a key file's text: oldest first, newest last. Errors name the line, never a key.
pub fn parse_key_file(text: &str) -> Result<Vec<SealingKey>, String> {
    let mut keys: Vec<SealingKey> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", i + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (id, hex_text) = match fields[..] {
            [hex_text] => (DEFAULT_KEY_ID, hex_text),
            [id, hex_text] => (id, hex_text),
            _ => return Err(at("expected `ID HEX` or 64 hex digits alone".into())),
        };
        let key = SealingKey::new(id, secret(hex_text).map_err(at)?).map_err(at)?;
        if keys.iter().any(|k| k.id == key.id) {
            return Err(at(format!("key id {:?} appears twice", key.id)));
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("holds no sealing key (64 hex digits, or `ID HEX` lines, newest last)".into());
    }
    Ok(keys)
}

/// Writes a new random sealing key (64 hex digits alone: id `default`) to `path` with
/// mode 0600, unless the file exists. Returns whether it wrote one.
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

    const A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const B: &str = "0202020202020202020202020202020202020202020202020202020202020202";

    #[test]
    fn bare_line_is_the_default_key() {
        let keys = parse_key_file(&format!("{A}\n")).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].id, DEFAULT_KEY_ID);
        assert_eq!(keys[0].secret, [1; 32]);
    }

    #[test]
    fn ids_newest_last_with_comments() {
        let keys = parse_key_file(&format!("# ring\n\n{A}\n  2026-06\t{B}  \n")).unwrap();
        assert_eq!(keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), ["default", "2026-06"]);
        assert_eq!(keys[1].secret, [2; 32]);
    }

    #[test]
    fn bad_files_are_refused_by_line_without_the_key() {
        for (text, want) in [
            (String::new(), "holds no sealing key"),
            ("# only a comment\n".to_owned(), "holds no sealing key"),
            (format!("k1 {A}\nk1 {B}\n"), "line 2: key id \"k1\" appears twice"),
            (format!("{A}\n{B}\n"), "line 2: key id \"default\" appears twice"),
            (format!("k1 {A} extra\n"), "line 1: expected"),
            ("k1 abcd\n".to_owned(), "line 1: a sealing key must be 32 bytes"),
            ("k1 not-hex\n".to_owned(), "line 1: a sealing key must be 64 hex digits"),
            (format!("bad/id {A}\n"), "line 1: key id \"bad/id\" must be"),
        ] {
            let e = parse_key_file(&text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains(A) && !e.contains(B), "errors never repeat a key");
        }
    }

    #[test]
    fn key_file_is_private_kept_and_the_default_key() {
        let dir = std::env::temp_dir().join(format!("ferry-sealing-{}-{}", std::process::id(), rand::random::<u32>()));
        let path = dir.join("sealing.key");
        assert!(generate_key_file(&path).unwrap());
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(parse_key_file(&first).unwrap()[0].id, DEFAULT_KEY_ID);
        assert!(!generate_key_file(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn debug_hides_the_key() {
        let k = SealingKey::new("k1", [9; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "SealingKey(k1, ***)");
    }
}
