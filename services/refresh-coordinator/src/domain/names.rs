//! Checked resource names: `environments/{id}` and `refreshRuns/{id}`.

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

/// `refreshRuns/{run}`: ids are assigned (32 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RunName(String);

impl RunName {
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::parse_with_suffix(s, "")
    }
    /// `refreshRuns/{run}{suffix}` (the report is `refreshRuns/{run}/report`).
    pub fn parse_with_suffix(s: &str, suffix: &str) -> Result<Self, String> {
        match s.strip_prefix("refreshRuns/").and_then(|r| r.strip_suffix(suffix)) {
            Some(id) if (1..=63).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                Ok(Self(id.to_owned()))
            }
            _ => Err(format!("must be refreshRuns/{{run}}{suffix}")),
        }
    }
    pub fn id(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refreshRuns/{}", self.0)
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
        assert!(RunName::parse("refreshRuns/abc").is_ok());
        assert!(RunName::parse_with_suffix("refreshRuns/abc/report", "/report").is_ok());
        assert!(RunName::parse("refreshRuns/a/b").is_err());
        let p = ProjectName::parse("environments/corp/projects/billing").unwrap_or_else(|_| unreachable!());
        assert_eq!((p.env.id(), p.id.as_str(), p.to_string().as_str()), ("corp", "billing", "environments/corp/projects/billing"));
        assert!(ProjectName::parse("environments/corp/groups/billing").is_err());
        assert!(ProjectName::parse("environments/corp/projects/").is_err());
    }
}
