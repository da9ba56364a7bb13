//! Resource names (AIP-122) of the registry, parsed from and printed to their string form.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::values::ResourceId;

fn segments<'a>(s: &'a str, shape: &[&str]) -> Result<Vec<&'a str>, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let expected = shape.iter().map(|c| format!("{c}/{{id}}")).collect::<Vec<_>>().join("/");
    if s.is_empty() {
        return Err(format!("is required ({expected})"));
    }
    if parts.len() != shape.len() * 2 || parts.iter().step_by(2).zip(shape).any(|(a, b)| a != b) {
        return Err(format!("{s:?} is not a name of the form {expected}"));
    }
    Ok(parts.into_iter().skip(1).step_by(2).collect())
}

fn id(s: &str) -> Result<ResourceId, String> {
    ResourceId::parse(s)
}

/// `environments/{environment}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvName(pub ResourceId);

impl EnvName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments"])?;
        Ok(Self(id(p[0])?))
    }
    pub fn id(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "environments/{}", self.0)
    }
}

/// `environments/{environment}/groups/{group}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupName {
    pub env: EnvName,
    pub group: ResourceId,
}

impl GroupName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments", "groups"])?;
        Ok(Self { env: EnvName(id(p[0])?), group: id(p[1])? })
    }
    pub fn new(env: &str, group: &str) -> Self {
        Self { env: EnvName(ResourceId::from_stored(env)), group: ResourceId::from_stored(group) }
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/groups/{}", self.env, self.group)
    }
}

/// `environments/{environment}/entities/{entity}` with a numeric, assigned id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityName {
    pub env: EnvName,
    pub id: i64,
}

impl EntityName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["environments", env, "entities", n] => {
                let id = n.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| format!("{n:?} is not an entity id"))?;
                Ok(Self { env: EnvName(ResourceId::parse(env)?), id })
            }
            _ if s.is_empty() => Err("is required (environments/{id}/entities/{id})".into()),
            _ => Err(format!("{s:?} is not a name of the form environments/{{id}}/entities/{{id}}")),
        }
    }
    pub fn new(env: &str, id: i64) -> Self {
        Self { env: EnvName(ResourceId::from_stored(env)), id }
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/entities/{}", self.env, self.id)
    }
}

/// `environments/{environment}/projects/{project}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProjectName {
    pub env: EnvName,
    pub project: ResourceId,
}

impl ProjectName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments", "projects"])?;
        Ok(Self { env: EnvName(id(p[0])?), project: id(p[1])? })
    }
    pub fn new(env: &str, project: &str) -> Self {
        Self { env: EnvName(ResourceId::from_stored(env)), project: ResourceId::from_stored(project) }
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/projects/{}", self.env, self.project)
    }
}

/// `environments/{environment}/restorePoints/{restore_point}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RestorePointName {
    pub env: EnvName,
    pub id: ResourceId,
}

impl RestorePointName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments", "restorePoints"])?;
        Ok(Self { env: EnvName(id(p[0])?), id: id(p[1])? })
    }
    pub fn new(env: &str, id: &str) -> Self {
        Self { env: EnvName(ResourceId::from_stored(env)), id: ResourceId::from_stored(id) }
    }
    /// The name of the hidden environment that holds the content of the restore point
    /// made at `created_at`. Its `~` can never start an environment id, so no request can
    /// name it, and ListEnvironments stops before it (names sort byte-wise; `~` follows
    /// every letter). The time keeps it apart from a deleted one still being pruned.
    pub fn archive(&self, created_at: i64) -> String {
        format!("~{}~{}~{created_at}", self.env.id(), self.id)
    }
}

impl fmt::Display for RestorePointName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/restorePoints/{}", self.env, self.id)
    }
}

/// `environments/{environment}/projects/{project}/configItems/{item}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConfigItemName {
    pub project: ProjectName,
    pub item: ResourceId,
}

impl ConfigItemName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments", "projects", "configItems"])?;
        Ok(Self { project: ProjectName { env: EnvName(id(p[0])?), project: id(p[1])? }, item: id(p[2])? })
    }
}

impl fmt::Display for ConfigItemName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/configItems/{}", self.project, self.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let g = GroupName::parse("environments/prod/groups/test-group").unwrap();
        assert_eq!(g.to_string(), "environments/prod/groups/test-group");
        let e = EntityName::parse("environments/prod/entities/42").unwrap();
        assert_eq!((e.env.id(), e.id), ("prod", 42));
        let c = ConfigItemName::parse("environments/uat/projects/crm/configItems/home-page").unwrap();
        assert_eq!(c.to_string(), "environments/uat/projects/crm/configItems/home-page");
        for bad in ["", "environments", "environments/prod/group/x", "environments/Prod", "environments/prod/groups/x/y"] {
            assert!(GroupName::parse(bad).is_err() || EnvName::parse(bad).is_err(), "{bad}");
        }
        assert!(EntityName::parse("environments/prod/entities/-3").is_err());
        assert!(EntityName::parse("environments/prod/entities/abc").is_err());
    }
}
