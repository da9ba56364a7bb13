//! The tokens file: static bearer tokens, each with a role, rights, a scope and a subject.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::watch::entries;
use super::{Credential, Principal, TableFile, Watched, role_and_scope, valid_subject};

/// The tokens a server accepts now: its tokens file, read again when it changes.
pub type Tokens = Watched<TokenTable>;

/// The tokens a service accepts, by SHA-256 of the token.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    by_digest: HashMap<[u8; 32], Principal>,
}

impl TableFile for TokenTable {
    const WHAT: &'static str = "tokens file";
    fn parse(text: &str) -> Result<Self, String> {
        TokenTable::parse(text)
    }
    fn entries(&self) -> usize {
        self.len()
    }
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

    /// Parses the tokens file: `<token> <role>[+approver][+service] <*|env,env> <subject>`
    /// per line, `#` comments. A line without a subject (the format before subjects) is
    /// read with the subject `token-` and the first 12 hex digits of the token's SHA-256,
    /// which names the token without revealing it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut table = TokenTable::default();
        let mut lines = HashMap::new();
        for (n, parts) in entries(text) {
            let (token, grant, scope, subject) = match parts.as_slice() {
                [token, grant, scope] => (*token, *grant, *scope, None),
                [token, grant, scope, subject] => (*token, *grant, *scope, Some(*subject)),
                _ => return Err(format!("line {n}: expected `<token> <role> <scope> <subject>` (found {} fields)", parts.len())),
            };
            if token.len() < 16 {
                return Err(format!("line {n}: token shorter than 16 characters"));
            }
            let (role, grant, environments) = role_and_scope(grant, scope).map_err(|e| format!("line {n}: {e}"))?;
            let subject = match subject {
                Some(s) if !valid_subject(s) => {
                    return Err(format!("line {n}: subject longer than 256 characters or with control characters"));
                }
                Some(s) => s.to_owned(),
                None => format!("token-{}", &hex::encode(Self::digest(token))[..12]),
            };
            if let Some(first) = lines.insert(Self::digest(token), n) {
                return Err(format!("line {n}: the same token as line {first}"));
            }
            let principal = Principal {
                subject,
                credential: Credential::StaticToken,
                role,
                approver: grant.approver,
                service: grant.service,
                environments,
                on_behalf_of: None,
            };
            table.insert(token, principal);
        }
        Ok(table)
    }

    pub fn load(path: &Path) -> Result<Self, crate::Error> {
        Ok(Arc::unwrap_or_clone(Tokens::open(path)?.table()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Role;
    use super::*;

    #[test]
    fn rejects_bad_lines_naming_them() {
        let err = |text: &str| TokenTable::parse(text).unwrap_err();
        assert_eq!(err("short viewer *"), "line 1: token shorter than 16 characters");
        assert_eq!(err("# c\nlong-enough-token-123 root *"), "line 2: unknown role \"root\" (viewer, operator, admin)");
        assert!(err("long-enough-token-123 viewer").starts_with("line 1: expected `<token> <role> <scope> <subject>` (found 2"));
        assert!(err("long-enough-token-123 viewer * alice extra").contains("found 5 fields"));
        assert!(err("long-enough-token-123 viewer dev,,uat alice").contains("empty environment"));
        assert!(err("long-enough-token-123 +service * alice").contains("line 1: no role before the rights"));
        let twice = "long-enough-token-123 viewer * alice\nlong-enough-token-123 admin * bob\n";
        assert_eq!(err(twice), "line 2: the same token as line 1");
    }

    #[test]
    fn subjects_named_or_derived() {
        let table = TokenTable::parse(
            "alice-token-0123456789 operator dev alice@example.com\nold-format-token-01234 viewer *\nvic-token-012345678901 operator+approver * vic\nsvc-token-012345678901 admin+service * refresh-coordinator\n",
        )
        .unwrap();
        let alice = table.get("alice-token-0123456789").unwrap();
        assert_eq!((alice.subject.as_str(), alice.credential, alice.role), ("alice@example.com", Credential::StaticToken, Role::Operator));
        assert!(!alice.approver && !alice.service);
        let vic = table.get("vic-token-012345678901").unwrap();
        assert_eq!((vic.role, vic.approver, vic.service), (Role::Operator, true, false));
        let svc = table.get("svc-token-012345678901").unwrap();
        assert_eq!((svc.role, svc.approver, svc.service), (Role::Admin, false, true));
        assert!(TokenTable::parse("vic-token-012345678901 operator+root * vic").unwrap_err().contains("unknown right \"root\""));
        let old = &table.get("old-format-token-01234").unwrap().subject;
        assert_eq!(old, &format!("token-{}", &hex::encode(Sha256::digest(b"old-format-token-01234"))[..12]));
        assert!(!old.contains("old-format"), "the derived subject does not reveal the token");
    }

    #[test]
    fn reload_takes_a_changed_file_and_keeps_the_tokens_of_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
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
    }
}
