//! Resource names (AIP-122): the engine's own (`mergePlans/{id}`, `jobs/{id}`) and the
//! registry's groups, parsed at the edge so the rest of the engine sees checked values.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A resource id segment of the registry: a lowercase letter, then lowercase letters,
/// digits or '-', at most 63 characters, not ending in '-'.
pub fn check_id(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is required".into());
    }
    if s.len() > 63 {
        return Err("is longer than 63 characters".into());
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("{s:?} must start with a lowercase letter"));
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("{s:?} may hold only lowercase letters, digits and '-'"));
    }
    if s.ends_with('-') {
        return Err(format!("{s:?} must not end with '-'"));
    }
    Ok(())
}

/// `environments/{environment}/groups/{group}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupName {
    pub env: String,
    pub group: String,
}

impl GroupName {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split('/').collect::<Vec<_>>().as_slice() {
            ["environments", env, "groups", group] => {
                check_id(env).map_err(|e| format!("environment {e}"))?;
                check_id(group).map_err(|e| format!("group {e}"))?;
                Ok(Self { env: (*env).to_owned(), group: (*group).to_owned() })
            }
            _ if s.is_empty() => Err("is required (environments/{id}/groups/{id})".into()),
            _ => Err(format!("{s:?} is not a name of the form environments/{{id}}/groups/{{id}}")),
        }
    }

    /// The group `id` in this group's environment.
    pub fn sibling(&self, id: &str) -> Result<Self, String> {
        check_id(id)?;
        Ok(Self { env: self.env.clone(), group: id.to_owned() })
    }

    pub fn env_name(&self) -> String {
        format!("environments/{}", self.env)
    }

    /// `environments/{env}/entities/{id}`
    pub fn entity(&self, id: i64) -> String {
        format!("environments/{}/entities/{id}", self.env)
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "environments/{}/groups/{}", self.env, self.group)
    }
}

/// `environments/{environment}/projects/{project}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProjectName {
    pub env: String,
    pub project: String,
}

impl ProjectName {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split('/').collect::<Vec<_>>().as_slice() {
            ["environments", env, "projects", project] => {
                check_id(env).map_err(|e| format!("environment {e}"))?;
                check_id(project).map_err(|e| format!("project {e}"))?;
                Ok(Self { env: (*env).to_owned(), project: (*project).to_owned() })
            }
            _ if s.is_empty() => Err("is required (environments/{id}/projects/{id})".into()),
            _ => Err(format!("{s:?} is not a name of the form environments/{{id}}/projects/{{id}}")),
        }
    }

    /// The project `id` in this project's environment.
    pub fn sibling(&self, id: &str) -> Result<Self, String> {
        check_id(id)?;
        Ok(Self { env: self.env.clone(), project: id.to_owned() })
    }

    pub fn env_name(&self) -> String {
        format!("environments/{}", self.env)
    }

    /// The full name of this project's config item `id`.
    pub fn item(&self, id: &str) -> String {
        format!("{self}/configItems/{id}")
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "environments/{}/projects/{}", self.env, self.project)
    }
}

fn parse_assigned(s: &str, collection: &str) -> Result<String, String> {
    let id = s.strip_prefix(collection).and_then(|r| r.strip_prefix('/'));
    match id {
        Some(id) if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') => Ok(id.to_owned()),
        _ if s.is_empty() => Err(format!("is required ({collection}/{{id}})")),
        _ => Err(format!("{s:?} is not a name of the form {collection}/{{id}}")),
    }
}

/// `mergePlans/{plan}` (ids are assigned).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlanId(pub String);

impl PlanId {
    pub fn parse(s: &str) -> Result<Self, String> {
        parse_assigned(s, "mergePlans").map(Self)
    }
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mergePlans/{}", self.0)
    }
}

/// `jobs/{job}` (ids are assigned).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobId(pub String);

impl JobId {
    pub fn parse(s: &str) -> Result<Self, String> {
        parse_assigned(s, "jobs").map(Self)
    }
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "jobs/{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        let g = GroupName::parse("environments/dev/groups/test-a").unwrap();
        assert_eq!(g.to_string(), "environments/dev/groups/test-a");
        assert_eq!(g.entity(7), "environments/dev/entities/7");
        for bad in ["", "environments/dev", "environments/Dev/groups/a", "environments/dev/groups/a/b", "groups/a"] {
            assert!(GroupName::parse(bad).is_err(), "{bad}");
        }
        let p = PlanId::generate();
        assert_eq!(PlanId::parse(&p.to_string()).unwrap(), p);
        assert!(PlanId::parse("jobs/abc").is_err());
        assert!(JobId::parse("jobs/").is_err());
        assert!(JobId::parse("jobs/xyz").is_err());
    }
}
