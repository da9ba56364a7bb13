//! Checked resource names: environments, projects, and runs (`refreshRuns/{id}`, ...).

use std::fmt;

/// `environments/{environment}`: an id of lowercase letters, digits and '-', 1-63
/// characters, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct EnvName(String);

fn valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl EnvName {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.strip_prefix("environments/") {
            Some(id) if valid_id(id) => Ok(Self(id.to_owned())),
            _ => Err("must be environments/{environment}".into()),
        }
    }
    pub fn id(&self) -> &str {
        &self.0
    }
    /// Renames a resource of another environment (`environments/{other}/…`) into this one.
    pub fn rehome(&self, resource: &str) -> String {
        match resource.strip_prefix("environments/").and_then(|r| r.split_once('/')) {
            Some((_, rest)) => format!("environments/{}/{rest}", self.0),
            None => resource.to_owned(),
        }
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "environments/{}", self.0)
    }
}

/// `environments/{environment}/projects/{project}` (registry id rules for both ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ProjectName {
    pub env: EnvName,
    pub id: String,
}

impl ProjectName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["environments", env, "projects", id] if valid_id(env) && valid_id(id) => {
                Ok(Self { env: EnvName((*env).to_owned()), id: (*id).to_owned() })
            }
            _ => Err("must be environments/{environment}/projects/{project}".into()),
        }
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/projects/{}", self.env, self.id)
    }
}

/// A new run id: 32 lowercase hex digits.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The id of `{collection}/{run}{suffix}` (`refreshRuns/{run}/report`): 1-63 letters,
/// digits or '-'.
pub fn run_id(collection: &str, name: &str, suffix: &str) -> Result<String, String> {
    match name.strip_prefix(collection).and_then(|r| r.strip_prefix('/')).and_then(|r| r.strip_suffix(suffix)) {
        Some(id) if (1..=63).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => Ok(id.to_owned()),
        _ => Err(format!("must be {collection}/{{run}}{suffix}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(EnvName::parse("environments/prod").map(|e| e.id().to_owned()), Ok("prod".into()));
        assert!(EnvName::parse("environments/Prod").is_err());
        assert!(EnvName::parse("prod").is_err());
        assert!(EnvName::parse("environments/").is_err());
        let e = EnvName::parse("environments/dev").unwrap_or_else(|_| unreachable!());
        assert_eq!(e.rehome("environments/prod/integrations/a/mappings/b"), "environments/dev/integrations/a/mappings/b");
        assert_eq!(run_id("refreshRuns", "refreshRuns/abc", ""), Ok("abc".into()));
        assert_eq!(run_id("refreshRuns", "refreshRuns/abc/report", "/report"), Ok("abc".into()));
        assert!(run_id("refreshRuns", "refreshRuns/a/b", "").is_err());
        assert!(run_id("refreshRuns", "promotionRuns/a", "").is_err());
        assert!(run_id("refreshRuns", "refreshRunsx/a", "").is_err());
        let p = ProjectName::parse("environments/corp/projects/billing").unwrap_or_else(|_| unreachable!());
        assert_eq!((p.env.id(), p.id.as_str(), p.to_string().as_str()), ("corp", "billing", "environments/corp/projects/billing"));
        assert!(ProjectName::parse("environments/corp/groups/billing").is_err());
        assert!(ProjectName::parse("environments/corp/projects/").is_err());
    }
}
