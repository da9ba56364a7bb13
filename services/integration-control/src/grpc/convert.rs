//! Proto ⇄ domain. Parsing collects every field violation before answering.

use ferry_kit::auth::Principal;
use ferry_kit::db::timestamp;
use ferry_kit::status::Violations;
use ferry_proto::integration::v1 as pb;

use crate::domain::{self as d, Change, ChangeSet, CredentialState, EnvName, Fence, JobState, ResourceState, ResourceType};
use crate::service::Decision;

pub use ferry_kit::request::{done, mask_paths, next_token, page_size, page_token, request_key};

/// Who the caller is, for `paused_by` and `created_by`: the subject it authenticated as,
/// or the caller a service (with the service right) passed on.
pub fn actor(p: &Principal) -> String {
    p.actor().to_owned()
}

fn env_text(e: &Option<EnvName>) -> String {
    e.as_ref().map(ToString::to_string).unwrap_or_default()
}

pub fn integration(i: d::Integration) -> pb::Integration {
    pb::Integration {
        name: i.name.to_string(),
        display_name: i.display_name,
        external_system: i.external_system,
        base_url: i.base_url,
        active: i.active,
        credential_state: credential_state(i.credential_state),
        credential_fingerprint: i.fingerprint,
        fenced: i.fenced,
        origin_environment: env_text(&i.origin),
        create_time: Some(timestamp(i.created_at)),
        update_time: Some(timestamp(i.updated_at)),
    }
}

pub fn reseal_report(r: crate::service::ResealReport) -> pb::ResealCredentialsResponse {
    pb::ResealCredentialsResponse {
        sealing_key_id: r.newest,
        resealed: r.resealed.into_iter().map(|(kind, count)| pb::ResealedCount { kind, count }).collect(),
        keys_in_use: r.in_use.into_iter().map(|u| pb::SealingKeyUse { sealing_key_id: u.key_id, kind: u.kind, count: u.count }).collect(),
    }
}

fn credential_state(c: CredentialState) -> i32 {
    match c {
        CredentialState::Active => pb::CredentialState::Active as i32,
        CredentialState::Suspended => pb::CredentialState::Suspended as i32,
        CredentialState::None => pb::CredentialState::None as i32,
    }
}

pub fn mapping(m: d::Mapping) -> pb::Mapping {
    pb::Mapping {
        name: m.name.to_string(),
        display_name: m.display_name,
        target_environment: m.target.to_string(),
        bound_environment: m.bound.to_string(),
        active: m.active,
        field_mapping_json: m.field_mapping_json,
        fenced: m.fenced,
        origin_environment: env_text(&m.origin),
        create_time: Some(timestamp(m.created_at)),
        update_time: Some(timestamp(m.updated_at)),
    }
}

fn job_state(s: JobState) -> i32 {
    match s {
        JobState::Running => pb::SyncJobState::Running as i32,
        JobState::Paused => pb::SyncJobState::Paused as i32,
    }
}

pub fn job_state_filter(n: i32) -> Result<Option<JobState>, String> {
    match n {
        0 => Ok(None),
        n => JobState::from_number(n).map(Some).ok_or_else(|| format!("unknown sync job state {n}")),
    }
}

pub fn sync_job(j: d::SyncJob) -> pb::SyncJob {
    let env = j.name.env.clone();
    pb::SyncJob {
        name: j.name.to_string(),
        display_name: j.display_name,
        integration: j.integration.map(|i| d::IntegrationName::new(env.id(), &i).to_string()).unwrap_or_default(),
        schedule: j.schedule,
        state: job_state(j.state),
        external: Some(j.external),
        paused_by: j.paused_by,
        pause_reason: j.pause_reason,
        pause_time: j.pause_time.map(timestamp),
        create_time: Some(timestamp(j.created_at)),
    }
}

pub fn snapshot(s: d::Snapshot) -> pb::Snapshot {
    let contents = s.contents.unwrap_or_default();
    pb::Snapshot {
        name: s.name.to_string(),
        description: s.description,
        integration_count: s.integration_count,
        mapping_count: s.mapping_count,
        sync_job_count: s.sync_job_count,
        checksum: s.checksum,
        created_by: s.created_by,
        create_time: Some(timestamp(s.created_at)),
        expire_time: (s.expire_at > 0).then(|| timestamp(s.expire_at)),
        integrations: contents.integrations.into_iter().map(|i| integration(i.integration)).collect(),
        mappings: contents.mappings.into_iter().map(mapping).collect(),
        sync_jobs: contents.sync_jobs.into_iter().map(sync_job).collect(),
    }
}

pub fn fence(env: &EnvName, f: Option<Fence>) -> pb::EnvironmentFence {
    match f {
        Some(f) => pb::EnvironmentFence {
            name: d::fence_name(env),
            fenced: true,
            holder: f.holder,
            reason: f.reason,
            fence_time: Some(timestamp(f.fence_time)),
        },
        None => pb::EnvironmentFence { name: d::fence_name(env), ..Default::default() },
    }
}

fn resource_type(t: ResourceType) -> i32 {
    match t {
        ResourceType::Integration => pb::ResourceType::Integration as i32,
        ResourceType::Mapping => pb::ResourceType::Mapping as i32,
        ResourceType::SyncJob => pb::ResourceType::SyncJob as i32,
        ResourceType::EnvironmentFence => pb::ResourceType::EnvironmentFence as i32,
    }
}

fn state(s: ResourceState) -> pb::ResourceState {
    pb::ResourceState {
        exists: s.exists,
        active: s.active,
        credential_state: s.credential_state.map(credential_state).unwrap_or_default(),
        sync_job_state: s.job_state.map(job_state).unwrap_or_default(),
        paused_by: s.paused_by,
        fenced: s.fenced,
        bound_environment: env_text(&s.bound),
        fence_holder: s.fence_holder,
    }
}

pub fn change_set(cs: ChangeSet) -> pb::ChangeSet {
    pb::ChangeSet {
        environment: cs.environment.to_string(),
        changes: cs
            .changes
            .into_iter()
            .map(|c| pb::Change {
                resource: c.resource,
                resource_type: resource_type(c.kind),
                before: Some(state(c.before)),
                after: Some(state(c.after)),
            })
            .collect(),
        skipped: cs.skipped.into_iter().map(|s| pb::SkippedResource { resource: s.resource, reason: s.reason }).collect(),
        change_time: Some(timestamp(cs.change_time)),
    }
}

fn state_from(field: &str, v: &mut Violations, s: Option<&pb::ResourceState>) -> ResourceState {
    let s = s.cloned().unwrap_or_default();
    let credential_state = match s.credential_state {
        0 => None,
        n => {
            let c = CredentialState::from_number(n);
            if c.is_none() {
                v.add(format!("{field}.credential_state"), format!("unknown credential state {n}"));
            }
            c
        }
    };
    let job_state = match s.sync_job_state {
        0 => None,
        n => {
            let j = JobState::from_number(n);
            if j.is_none() {
                v.add(format!("{field}.sync_job_state"), format!("unknown sync job state {n}"));
            }
            j
        }
    };
    ResourceState {
        exists: s.exists,
        active: s.active,
        credential_state,
        job_state,
        paused_by: s.paused_by,
        fenced: s.fenced,
        bound: EnvName::parse(&s.bound_environment).ok(),
        fence_holder: s.fence_holder,
    }
}

/// The changes of a ChangeSet an undo step was given: each must be of `env` and of the
/// resource type the step reverses, named `name_env` → environment of the resource.
pub fn undo_changes(
    v: &mut Violations,
    cs: &pb::ChangeSet,
    env: Option<&EnvName>,
    want: ResourceType,
    name_env: impl Fn(&str) -> Result<EnvName, String>,
) -> Vec<Change> {
    if let Some(env) = env
        && !cs.environment.is_empty()
        && cs.environment != env.to_string()
    {
        v.add("change_set.environment", format!("is {}, not {env}", cs.environment));
    }
    let mut out = Vec::new();
    for (n, c) in cs.changes.iter().enumerate() {
        let field = format!("change_set.changes[{n}]");
        if c.resource_type != resource_type(want) {
            v.add(format!("{field}.resource_type"), format!("this step reverses only {want:?} changes").to_lowercase());
            continue;
        }
        match name_env(&c.resource) {
            Ok(e) if env.is_some_and(|env| env != &e) => v.add(format!("{field}.resource"), "is a resource of another environment"),
            Ok(_) => {}
            Err(e) => v.add(format!("{field}.resource"), e),
        }
        let before = state_from(&format!("{field}.before"), v, c.before.as_ref());
        let after = state_from(&format!("{field}.after"), v, c.after.as_ref());
        out.push(Change { resource: c.resource.clone(), kind: want, before, after });
    }
    out
}

pub fn decision(d: Decision) -> pb::AuthorizeSyncResponse {
    let reason = d.reasons.first().map(|(r, _)| r.number()).unwrap_or_default();
    let message = match d.reasons.first() {
        Some((_, m)) => m.clone(),
        None => "allowed".into(),
    };
    pb::AuthorizeSyncResponse {
        allowed: d.reasons.is_empty(),
        reason,
        reasons: d.reasons.iter().map(|(r, _)| r.number()).collect(),
        message,
    }
}

/// A mapping name and an optional job of the same environment (AuthorizeSync's and
/// AcquireSyncLease's `mapping` and `job`), each problem a field violation.
pub fn mapping_and_job(v: &mut Violations, mapping: &str, job: &str) -> (Option<d::MappingName>, Option<Option<d::JobName>>) {
    let mapping = v.check("mapping", d::MappingName::parse(mapping));
    if job.is_empty() {
        return (mapping, Some(None));
    }
    let job = match d::JobName::parse(job) {
        Ok(j) if mapping.as_ref().is_some_and(|m| m.env() != &j.env) => {
            v.add("job", "is a job of another environment than the mapping's");
            None
        }
        Ok(j) => Some(Some(j)),
        Err(e) => {
            v.add("job", e);
            None
        }
    };
    (mapping, job)
}
