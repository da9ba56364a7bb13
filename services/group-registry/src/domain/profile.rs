//! Copy profiles: what a refresh's copy keeps in the destination (preserve), leaves out
//! of the source (exclude), and masks on the way (masking rules), and the masking
//! functions themselves. Checked values only; the copy that applies them is
//! `store::copy`.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::Kind;

/// A whole-name pattern: `*` any run of characters, `?` one character, the rest literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

/// Longest pattern, in bytes.
const MAX_PATTERN_BYTES: usize = 256;

impl Pattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty (use * for every name)".into());
        }
        if s.len() > MAX_PATTERN_BYTES {
            return Err(format!("is longer than {MAX_PATTERN_BYTES} bytes"));
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// Every name.
    pub fn any() -> Self {
        Self("*".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whole-name match, in time linear in pattern × name (backtracking only to the
    /// last `*`).
    pub fn matches(&self, name: &str) -> bool {
        let (p, s): (Vec<char>, Vec<char>) = (self.0.chars().collect(), name.chars().collect());
        let (mut i, mut j) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while j < s.len() {
            if i < p.len() && (p[i] == '?' || (p[i] != '*' && p[i] == s[j])) {
                i += 1;
                j += 1;
            } else if i < p.len() && p[i] == '*' {
                star = Some((i, j));
                i += 1;
            } else if let Some((si, sj)) = star {
                i = si + 1;
                j = sj + 1;
                star = Some((si, sj + 1));
            } else {
                return false;
            }
        }
        p[i..].iter().all(|c| *c == '*')
    }

    /// The pattern as SQL LIKE with `\` as the escape character, for PostgreSQL (whose
    /// LIKE is case-sensitive; SQLite's is not, so SQLite gets [`Pattern::glob`]).
    pub fn like(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 4);
        for c in self.0.chars() {
            match c {
                '*' => out.push('%'),
                '?' => out.push('_'),
                '%' | '_' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out
    }

    /// The pattern as SQLite GLOB (case-sensitive): `[` is the only character to quote.
    pub fn glob(&self) -> String {
        self.0.replace('[', "[[]")
    }
}

/// Entities of one kind whose key matches a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub kind: Kind,
    pub key: Pattern,
}

/// What a masking rule writes instead of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Mask {
    Remove,
    Fixed(Value),
    Pseudonym,
    Fake,
}

/// One masked payload field of a kind.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskRule {
    pub kind: Kind,
    /// The JSON pointer's reference tokens, unescaped (`/a~1b/c` is `["a/b", "c"]`).
    pub path: Vec<String>,
    pub mask: Mask,
}

impl MaskRule {
    /// Parses an RFC 6901 pointer: empty (the whole payload) is refused.
    pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
        let Some(rest) = pointer.strip_prefix('/') else {
            return Err("must be a JSON pointer starting with / (e.g. /contact/email)".into());
        };
        let mut path = Vec::new();
        for token in rest.split('/') {
            if token.chars().any(char::is_control) {
                return Err("must not contain control characters".into());
            }
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                match (c, c == '~') {
                    (_, true) => match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(format!("has a ~ not followed by 0 or 1 in {token:?}")),
                    },
                    (c, false) => out.push(c),
                }
            }
            path.push(out);
        }
        Ok(path)
    }
}

/// A copy's profile, checked. Empty: everything is copied and nothing kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyProfile {
    pub preserve_groups: Vec<Pattern>,
    pub preserve_projects: Vec<Pattern>,
    pub preserve_entities: Vec<Selector>,
    pub exclude_groups: Vec<Pattern>,
    pub exclude_kinds: Vec<Kind>,
    pub exclude_entities: Vec<Selector>,
    pub masking: Vec<MaskRule>,
}

impl CopyProfile {
    /// True when the destination keeps something.
    pub fn preserves(&self) -> bool {
        !self.preserve_groups.is_empty() || !self.preserve_projects.is_empty() || !self.preserve_entities.is_empty()
    }

    /// The kinds some rule masks, each once.
    pub fn masked_kinds(&self) -> Vec<Kind> {
        let mut kinds: Vec<Kind> = self.masking.iter().map(|r| r.kind).collect();
        kinds.sort_by_key(|k| k.number());
        kinds.dedup();
        kinds
    }

    /// The rules of `kind`.
    pub fn rules_of(&self, kind: Kind) -> Vec<&MaskRule> {
        self.masking.iter().filter(|r| r.kind == kind).collect()
    }
}

/// Length of a destination's masking key, in bytes.
pub const MASKING_KEY_BYTES: usize = 32;

/// Masks `payload` (stored JSON) by `rules` under the destination's `key`. Returns the
/// payload to store (as `Json` stores it) and whether any field was masked; a payload
/// that is not JSON (never stored) is returned as it is.
pub fn mask_payload(payload: &str, rules: &[&MaskRule], key: &[u8]) -> (String, bool) {
    let Ok(mut value) = serde_json::from_str::<Value>(payload) else { return (payload.to_owned(), false) };
    let mut masked = false;
    for rule in rules {
        masked |= mask_at(&mut value, &rule.path, &rule.mask, key);
    }
    if masked { (value.to_string(), true) } else { (payload.to_owned(), false) }
}

/// Masks the value at `path` in `value`; false when there is none.
fn mask_at(value: &mut Value, path: &[String], mask: &Mask, key: &[u8]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut at = value;
    for token in parents {
        at = match at {
            Value::Object(m) => match m.get_mut(token) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(a) => match token.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match at {
        Value::Object(m) => match mask {
            Mask::Remove => m.remove(last).is_some(),
            _ => match m.get_mut(last) {
                Some(v) => {
                    *v = masked_value(v, mask, key);
                    true
                }
                None => false,
            },
        },
        Value::Array(a) => match last.parse::<usize>().ok().filter(|i| *i < a.len()) {
            Some(i) if *mask == Mask::Remove => {
                a.remove(i);
                true
            }
            Some(i) => {
                a[i] = masked_value(&a[i], mask, key);
                true
            }
            None => false,
        },
        _ => false,
    }
}

fn masked_value(v: &Value, mask: &Mask, key: &[u8]) -> Value {
    match mask {
        Mask::Remove => Value::Null,
        Mask::Fixed(f) => f.clone(),
        Mask::Pseudonym => pseudonym(v, key),
        Mask::Fake => match v {
            Value::String(s) => Value::String(fake_string(s, key)),
            Value::Number(n) => fake_number(n, key).unwrap_or_else(|| pseudonym(v, key)),
            other => pseudonym(other, key),
        },
    }
}

/// HMAC-SHA-256 of `purpose` and `data` under `key`.
fn keyed(key: &[u8], purpose: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length"); // ok: HMAC accepts every key length
    mac.update(purpose);
    mac.update(&[0]);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The text a value is hashed as: a string's own text, anything else its JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pseudonym(v: &Value, key: &[u8]) -> Value {
    let h = keyed(key, b"pseudonym", text_of(v).as_bytes());
    match v {
        Value::Number(_) => {
            let n = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) % 1_000_000_000_000_000;
            Value::from(n)
        }
        _ => Value::String(format!("p_{}", hex::encode(&h[..12]))),
    }
}

/// A stream of keyed bytes for the characters of one value.
struct Stream<'k> {
    key: &'k [u8],
    seed: [u8; 32],
    block: [u8; 32],
    counter: u32,
    at: usize,
}

impl<'k> Stream<'k> {
    fn new(key: &'k [u8], purpose: &[u8], data: &[u8]) -> Self {
        let seed = keyed(key, purpose, data);
        Self { key, seed, block: [0; 32], counter: 0, at: 32 }
    }
    fn next(&mut self, n: u8) -> u8 {
        if self.at == self.block.len() {
            self.block = keyed(self.key, &self.seed, &self.counter.to_be_bytes());
            self.counter += 1;
            self.at = 0;
        }
        let b = self.block[self.at];
        self.at += 1;
        b % n
    }
    /// A character of the same class as `c`: letters of the same case, digits; the
    /// rest as it is.
    fn like(&mut self, c: char) -> char {
        match c {
            'a'..='z' => (b'a' + self.next(26)) as char,
            'A'..='Z' => (b'A' + self.next(26)) as char,
            '0'..='9' => (b'0' + self.next(10)) as char,
            c if c.is_alphabetic() => (b'a' + self.next(26)) as char,
            c if c.is_numeric() => (b'0' + self.next(10)) as char,
            c => c,
        }
    }
}

/// A fake of `s` with its shape: an e-mail (`local@domain`) keeps `@` and dots and its
/// domain ends in `.invalid` (reserved, never delivered); any other string keeps its
/// length, punctuation and the class of each character.
fn fake_string(s: &str, key: &[u8]) -> String {
    let mut stream = Stream::new(key, b"fake", s.as_bytes());
    if let Some((local, domain)) = s.split_once('@')
        && !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
    {
        let local: String = local.chars().map(|c| stream.like(c)).collect();
        let labels: Vec<&str> = domain.split('.').collect();
        let mut faked: Vec<String> = labels[..labels.len() - 1].iter().map(|l| l.chars().map(|c| stream.like(c)).collect()).collect();
        faked.push("invalid".into());
        return format!("{local}@{}", faked.join("."));
    }
    s.chars().map(|c| stream.like(c)).collect()
}

/// A fake number with the same sign and digit count (a fraction keeps its decimals);
/// None when the number does not round-trip as such.
fn fake_number(n: &serde_json::Number, key: &[u8]) -> Option<Value> {
    let text = n.to_string();
    let mut stream = Stream::new(key, b"fake", text.as_bytes());
    let mut first = true;
    let faked: String = text
        .chars()
        .map(|c| match c {
            // A leading digit is never 0, so the digit count stays.
            '0'..='9' if first => {
                first = false;
                (b'1' + stream.next(9)) as char
            }
            '0'..='9' => (b'0' + stream.next(10)) as char,
            c => c,
        })
        .collect();
    serde_json::from_str::<serde_json::Number>(&faked).ok().map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pointer: &str, mask: Mask) -> MaskRule {
        MaskRule { kind: Kind::DataSource, path: MaskRule::parse_pointer(pointer).expect("pointer"), mask }
    }

    #[test]
    fn patterns_match_whole_names() {
        let p = Pattern::parse("test-*").expect("pattern");
        assert!(p.matches("test-") && p.matches("test-group"));
        assert!(!p.matches("my-test-group") && !p.matches("Test-group"));
        let q = Pattern::parse("a?c").expect("pattern");
        assert!(q.matches("abc") && !q.matches("ac") && !q.matches("abbc"));
        let many = Pattern::parse(&"*a".repeat(40)).expect("pattern");
        assert!(!many.matches(&format!("{}b", "a".repeat(60))), "no exponential backtracking");
        assert!(Pattern::parse("*").expect("pattern").matches("") && Pattern::parse("a*b*c").expect("pattern").matches("aXbYbc"));
        assert_eq!(Pattern::parse("50%_*?").expect("pattern").like(), "50\\%\\_%_");
        assert_eq!(Pattern::parse("a[b]*").expect("pattern").glob(), "a[[]b]*");
        assert!(Pattern::parse("").is_err());
    }

    #[test]
    fn pointers_unescape_their_tokens() {
        assert_eq!(MaskRule::parse_pointer("/a~1b/c~0d/0").expect("pointer"), vec!["a/b", "c~d", "0"]);
        assert!(MaskRule::parse_pointer("email").is_err());
        assert!(MaskRule::parse_pointer("/a~2").is_err());
    }

    #[test]
    fn masks_are_deterministic_per_key_and_keep_the_shape() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let payload = r#"{"contact":{"email":"jane.doe@corp.example.com","phone":"+49 170 1234567"},"n":4711,"tags":["a","b"]}"#;
        let rules = [rule("/contact/email", Mask::Fake), rule("/contact/phone", Mask::Fake), rule("/n", Mask::Fake)];
        let refs: Vec<&MaskRule> = rules.iter().collect();
        let (a, masked) = mask_payload(payload, &refs, &k1);
        assert!(masked);
        assert_eq!(mask_payload(payload, &refs, &k1).0, a, "the same key masks alike");
        assert_ne!(mask_payload(payload, &refs, &k2).0, a, "another destination's key masks otherwise");
        let v: Value = serde_json::from_str(&a).expect("json");
        let email = v["contact"]["email"].as_str().expect("email");
        assert!(!email.contains("jane") && !email.contains("corp"), "{email}");
        let (local, domain) = email.split_once('@').expect("still an e-mail");
        assert_eq!(local.len(), "jane.doe".len());
        assert!(domain.ends_with(".invalid") && domain.matches('.').count() == 2, "{domain}");
        let phone = v["contact"]["phone"].as_str().expect("phone");
        assert_eq!(phone.len(), 15);
        assert!(phone.starts_with('+') && phone.chars().nth(3) == Some(' ') && phone != "+49 170 1234567");
        let n = v["n"].as_u64().expect("number");
        assert!((1000..10000).contains(&n));
        assert_eq!(v["tags"], serde_json::json!(["a", "b"]), "unmasked fields stay");
    }

    #[test]
    fn pseudonyms_join_and_remove_and_fixed_do_what_they_say() {
        let key = [7u8; 32];
        let rules = [rule("/owner", Mask::Pseudonym)];
        let refs: Vec<&MaskRule> = rules.iter().collect();
        let a = mask_payload(r#"{"owner":"bob","x":1}"#, &refs, &key).0;
        let b = mask_payload(r#"{"owner":"bob"}"#, &refs, &key).0;
        let pa: Value = serde_json::from_str(&a).expect("json");
        let pb: Value = serde_json::from_str(&b).expect("json");
        assert_eq!(pa["owner"], pb["owner"], "equal values stay equal");
        assert!(pa["owner"].as_str().expect("string").starts_with("p_"));
        let removed = mask_payload(r#"{"a":{"b":1,"c":2},"l":[1,2,3]}"#, &[&rule("/a/b", Mask::Remove), &rule("/l/1", Mask::Remove)], &key);
        assert_eq!(removed, (r#"{"a":{"c":2},"l":[1,3]}"#.to_owned(), true));
        let fixed = mask_payload(r#"{"a":"secret"}"#, &[&rule("/a", Mask::Fixed(Value::from("redacted")))], &key);
        assert_eq!(fixed, (r#"{"a":"redacted"}"#.to_owned(), true));
        let untouched = mask_payload(r#"{"z":1}"#, &[&rule("/a", Mask::Fake)], &key);
        assert_eq!(untouched, (r#"{"z":1}"#.to_owned(), false));
    }
}
