//! Resource names (AIP-122) of integration-control, parsed from and printed to their
//! string form.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::values::ResourceId;

pub(crate) fn segments<'a>(s: &'a str, shape: &[&str]) -> Result<Vec<&'a str>, String> {
    let expected = shape.iter().map(|c| format!("{c}/{{id}}")).collect::<Vec<_>>().join("/");
    if s.is_empty() {
        return Err(format!("is required ({expected})"));
    }
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() != shape.len() * 2 || parts.iter().step_by(2).zip(shape).any(|(a, b)| a != b) {
        return Err(format!("{s:?} is not a name of the form {expected}"));
    }
    Ok(parts.into_iter().skip(1).step_by(2).collect())
}

/// `environments/{environment}`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EnvName(pub ResourceId);

impl EnvName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments"])?;
        Ok(Self(ResourceId::parse(p[0])?))
    }
    pub fn from_stored(id: &str) -> Self {
        Self(ResourceId::from_stored(id))
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

/// `environments/{environment}/integrations/{integration}`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IntegrationName {
    pub env: EnvName,
    pub id: ResourceId,
}

impl IntegrationName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments", "integrations"])?;
        Ok(Self { env: EnvName(ResourceId::parse(p[0])?), id: ResourceId::parse(p[1])? })
    }
    pub fn new(env: &str, id: &str) -> Self {
        Self { env: EnvName::from_stored(env), id: ResourceId::from_stored(id) }
    }
}

impl fmt::Display for IntegrationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/integrations/{}", self.env, self.id)
    }
}

/// `environments/{environment}/integrations/{integration}/mappings/{mapping}`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MappingName {
    pub integration: IntegrationName,
    pub id: ResourceId,
}

impl MappingName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments", "integrations", "mappings"])?;
        Ok(Self {
            integration: IntegrationName { env: EnvName(ResourceId::parse(p[0])?), id: ResourceId::parse(p[1])? },
            id: ResourceId::parse(p[2])?,
        })
    }
    pub fn new(env: &str, integration: &str, id: &str) -> Self {
        Self { integration: IntegrationName::new(env, integration), id: ResourceId::from_stored(id) }
    }
    pub fn env(&self) -> &EnvName {
        &self.integration.env
    }
}

impl fmt::Display for MappingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/mappings/{}", self.integration, self.id)
    }
}

/// The parent of a mapping list: one integration, or every integration (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingParent {
    Integration(IntegrationName),
    AllOf(EnvName),
}

impl MappingParent {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.strip_suffix("/integrations/-") {
            Some(env) => Ok(MappingParent::AllOf(EnvName::parse(env)?)),
            None => Ok(MappingParent::Integration(IntegrationName::parse(s)?)),
        }
    }
    pub fn env(&self) -> &EnvName {
        match self {
            MappingParent::Integration(i) => &i.env,
            MappingParent::AllOf(e) => e,
        }
    }
}

/// `environments/{environment}/jobs/{job}`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobName {
    pub env: EnvName,
    pub id: ResourceId,
}

impl JobName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments", "jobs"])?;
        Ok(Self { env: EnvName(ResourceId::parse(p[0])?), id: ResourceId::parse(p[1])? })
    }
    pub fn new(env: &str, id: &str) -> Self {
        Self { env: EnvName::from_stored(env), id: ResourceId::from_stored(id) }
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/jobs/{}", self.env, self.id)
    }
}

/// A resource name that lives in one environment.
pub trait EnvScoped: Sized {
    fn parse_name(s: &str) -> Result<Self, String>;
    fn environment(&self) -> &EnvName;
}

impl EnvScoped for IntegrationName {
    fn parse_name(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
    fn environment(&self) -> &EnvName {
        &self.env
    }
}

impl EnvScoped for JobName {
    fn parse_name(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
    fn environment(&self) -> &EnvName {
        &self.env
    }
}

/// `environments/{environment}/snapshots/{snapshot}`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SnapshotName {
    pub env: EnvName,
    pub id: ResourceId,
}

impl SnapshotName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = segments(s, &["environments", "snapshots"])?;
        Ok(Self { env: EnvName(ResourceId::parse(p[0])?), id: ResourceId::parse(p[1])? })
    }
}

impl fmt::Display for SnapshotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/snapshots/{}", self.env, self.id)
    }
}

/// `environments/{environment}/fence`
pub fn parse_fence_name(s: &str) -> Result<EnvName, String> {
    match s.strip_suffix("/fence") {
        Some(env) => EnvName::parse(env),
        None if s.is_empty() => Err("is required (environments/{id}/fence)".into()),
        None => Err(format!("{s:?} is not a name of the form environments/{{id}}/fence")),
    }
}

pub fn fence_name(env: &EnvName) -> String {
    format!("{env}/fence")
}

/// Any resource a snapshot holds or a change set names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnyName {
    Integration(IntegrationName),
    Mapping(MappingName),
    Job(JobName),
}

impl AnyName {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(m) = MappingName::parse(s) {
            return Ok(AnyName::Mapping(m));
        }
        if let Ok(i) = IntegrationName::parse(s) {
            return Ok(AnyName::Integration(i));
        }
        JobName::parse(s).map(AnyName::Job).map_err(|_| format!("{s:?} is not an integration, mapping or job name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let m = MappingName::parse("environments/dev/integrations/rally/mappings/main").unwrap();
        assert_eq!(m.to_string(), "environments/dev/integrations/rally/mappings/main");
        assert_eq!(m.env().id(), "dev");
        assert_eq!(MappingParent::parse("environments/dev/integrations/-").unwrap(), MappingParent::AllOf(EnvName::from_stored("dev")));
        assert_eq!(parse_fence_name("environments/dev/fence").unwrap().id(), "dev");
        for bad in ["", "environments", "environments/Dev/integrations/x", "environments/dev/integrations/x/y"] {
            assert!(IntegrationName::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(AnyName::parse("environments/dev/jobs/nightly"), Ok(AnyName::Job(_))));
        assert!(AnyName::parse("environments/dev/groups/g").is_err());
    }
}
