//! PlanRefresh: the nine steps and concretely what each will change now. The same plan is
//! made again when a run starts, and its steps are the run's.

use ferry_kit::db::now_micros;

use crate::clients::Clients;
use crate::domain::remote::{IntegrationInfo, JobState, MappingInfo, SyncJobInfo, Tier};
use crate::domain::{CopyCounts, EnvName, LeaseDrain, Mode, Options, Plan, PlannedStep, StepKind};
use crate::engine::Engine;
use crate::engine::locks::Lock;
use crate::error::{Error, Result};

/// What the plan reads of one environment.
struct Inventory {
    integrations: Vec<IntegrationInfo>,
    mappings: Vec<MappingInfo>,
    jobs: Vec<SyncJobInfo>,
    groups: i64,
    entities: i64,
    projects: i64,
}

async fn inventory(c: &Clients, env: &EnvName) -> Result<Inventory> {
    let groups = c.registry.groups(env).await?;
    Ok(Inventory {
        integrations: c.integration.integrations(env).await?,
        mappings: c.integration.mappings(env).await?,
        jobs: c.integration.jobs(env).await?,
        entities: groups.iter().map(|g| g.entity_count).sum(),
        groups: groups.len() as i64,
        projects: c.registry.project_count(env).await?,
    })
}

/// What the profile does, counted by the registry copying for a preview (nothing is
/// written), on the copy step. Its field violations come back under `options`.
async fn profile_step(c: &Clients, source: &EnvName, destination: &EnvName, options: &Options, s: &mut PlannedStep) -> Result<()> {
    if options.mode == Mode::External {
        return Err(Error::invalid("options.profile", "is for MANAGED refreshes only: an EXTERNAL refresh copies outside Ferry"));
    }
    let r = match c.registry.copy_environment(source, destination, &options.profile, true, String::new()).await {
        Err(e) if e.info().code == tonic::Code::InvalidArgument => {
            let info = e.info();
            let mut v = ferry_kit::status::Violations::new();
            for p in info.violations.iter().filter(|p| p.subject.starts_with("profile")) {
                v.add(format!("options.{}", p.subject), p.description.clone());
            }
            if v.is_empty() {
                v.add("options.profile", info.message);
            }
            return Err(Error::InvalidArgument(v));
        }
        other => other?,
    };
    let label = |k: i32| crate::domain::remote::kind_label(k);
    for k in &r.by_kind {
        s.summary.push(format!(
            "{}: copy {}{}, exclude {}, keep {} of {destination}",
            label(k.kind),
            k.copied,
            if k.masked > 0 { format!(" ({} masked)", k.masked) } else { String::new() },
            k.excluded,
            k.preserved
        ));
    }
    s.summary.push(format!(
        "the profile keeps {} group(s) and {} project(s) of {destination} as they are and leaves {} project(s) of {source} out",
        r.preserved_groups, r.preserved_projects, r.excluded_projects
    ));
    s.profile_counts = r.by_kind;
    Ok(())
}

/// The checks of step 1 that need no lock: the environments exist, the destination is
/// not production. Source ≠ destination is checked when parsing.
pub async fn check_environments(c: &Clients, source: &EnvName, destination: &EnvName) -> Result<()> {
    c.registry.tier(source).await?;
    if c.registry.tier(destination).await? == Tier::Production {
        return Err(Error::unmet(
            "DESTINATION_IS_PRODUCTION",
            destination,
            format!("{destination} is PRODUCTION: production is never a refresh destination"),
        ));
    }
    Ok(())
}

/// The plan of refreshing `destination` from `source` with `options`, as things are now.
pub async fn plan(engine: &Engine, source: &EnvName, destination: &EnvName, options: Options) -> Result<Plan> {
    let c = engine.clients();
    check_environments(c, source, destination).await?;
    engine.check_free(&[Lock::Environment(source.clone()), Lock::Environment(destination.clone())]).await?;
    let src = inventory(c, source).await?;
    let dst = inventory(c, destination).await?;
    let mut steps = plan_steps(source, destination, &options, &src, &dst);
    if !options.profile.is_empty() {
        profile_step(c, source, destination, &options, &mut steps[(StepKind::Copy.number() - 1) as usize]).await?;
    }
    let etag = Plan::compute_etag(source, destination, &options, &steps);
    Ok(Plan { source: source.clone(), destination: destination.clone(), options, steps, etag, plan_time: now_micros() })
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| name(i).to_owned()).collect()
}

fn plan_steps(source: &EnvName, destination: &EnvName, options: &Options, src: &Inventory, dst: &Inventory) -> Vec<PlannedStep> {
    let src_name = source.to_string();
    let dst_name = destination.to_string();
    let mut steps: Vec<PlannedStep> = StepKind::ALL.iter().map(|k| PlannedStep::new(*k)).collect();

    // 1. Check.
    let s = &mut steps[0];
    s.summary.push(format!("{dst_name} is NON_PRODUCTION and differs from {src_name}; both are free and will be locked by the run"));
    if options.require_approval {
        s.summary.push("waits for an approval (ConfirmRefreshStep) before anything changes".into());
        s.requires_confirmation = true;
    }

    // 2. and 8. Source integrations.
    let active: Vec<&IntegrationInfo> = src.integrations.iter().filter(|i| i.active).collect();
    let active_names: Vec<String> = active.iter().map(|i| i.name.clone()).collect();
    let s = &mut steps[1];
    s.summary.push(format!("fence {src_name} and {dst_name} (no sync is authorised in either until step 9)"));
    let verb = if options.suspend_credentials_instead { "suspend the credentials of" } else { "deactivate" };
    s.summary.push(format!("{verb} {} active integration(s) of {src_name}", active.len()));
    s.integrations = active_names.clone();
    let s = &mut steps[7];
    s.summary.push(format!("re-activate exactly the {} integration(s) step 2 changes", active.len()));
    s.integrations = active_names;

    // 3. and 9. Jobs.
    let running: Vec<String> =
        src.jobs.iter().chain(dst.jobs.iter()).filter(|j| j.external && j.state == JobState::Running).map(|j| j.name.clone()).collect();
    let left: Vec<String> =
        src.jobs.iter().chain(dst.jobs.iter()).filter(|j| j.state == JobState::Paused).map(|j| j.name.clone()).collect();
    let s = &mut steps[2];
    s.summary.push(format!("pause {} running external job(s)", running.len()));
    for j in &left {
        s.summary.push(format!("{j} is already paused and stays paused"));
    }
    s.summary.push(match options.lease_drain {
        LeaseDrain::Wait => {
            "revoke the sync leases left in both, then wait until no sync is in flight (each holder told, or its ttl passed)".into()
        }
        LeaseDrain::Revoke => "revoke the sync leases left in both and go on (syncs in flight stop at their next renewal)".to_owned(),
    });
    s.sync_jobs = running.clone();
    let s = &mut steps[8];
    s.summary.push(format!("resume exactly the {} job(s) step 3 pauses, then lift both fences", running.len()));
    s.sync_jobs = running;

    // 4. Snapshot.
    let s = &mut steps[3];
    s.summary.push(format!(
        "snapshot {} integration(s), {} mapping(s) and {} job(s) of {dst_name} (credentials stay sealed)",
        dst.integrations.len(),
        dst.mappings.len(),
        dst.jobs.len()
    ));
    if options.mode == Mode::Managed {
        s.summary.push(format!(
            "keep {dst_name}'s {} group(s) ({} entity memberships) and {} project(s) as a registry restore point, \
             so an abort gives them back",
            dst.groups, dst.entities, dst.projects
        ));
    }
    s.integrations = names(&dst.integrations, |i| &i.name);
    s.mappings = names(&dst.mappings, |m| &m.name);
    s.sync_jobs = names(&dst.jobs, |j| &j.name);

    // 5. Copy.
    let s = &mut steps[4];
    let counts = CopyCounts {
        source_groups: src.groups,
        source_entities: src.entities,
        source_projects: src.projects,
        source_integrations: src.integrations.len() as i64,
        source_mappings: src.mappings.len() as i64,
        replaced_groups: dst.groups,
        replaced_entities: dst.entities,
        replaced_projects: dst.projects,
        replaced_integrations: dst.integrations.len() as i64,
        replaced_mappings: dst.mappings.len() as i64,
    };
    match options.mode {
        Mode::Managed => s.summary.push(format!(
            "copy {} group(s) ({} entity memberships), {} project(s), {} integration(s) and {} mapping(s) over {dst_name}, \
             replacing {} group(s) ({} entity memberships), {} project(s), {} integration(s) and {} mapping(s)",
            counts.source_groups,
            counts.source_entities,
            counts.source_projects,
            counts.source_integrations,
            counts.source_mappings,
            counts.replaced_groups,
            counts.replaced_entities,
            counts.replaced_projects,
            counts.replaced_integrations,
            counts.replaced_mappings
        )),
        Mode::External => {
            s.summary.push("waits for confirmation that the outside refresh finished, then fences everything in the destination".into());
            s.requires_confirmation = true;
        }
    }
    s.summary.push("everything copied arrives fenced".into());
    s.integrations = names(&src.integrations, |i| &i.name);
    s.mappings = names(&src.mappings, |m| &m.name);
    s.copy = Some(counts);

    // 6. Source mappings that will be foreign in the destination.
    let provisioned: Vec<&MappingInfo> = src.mappings.iter().filter(|m| m.target_environment == dst_name && !m.active).collect();
    let foreign: Vec<String> = src.mappings.iter().filter(|m| m.active).map(|m| destination.rehome(&m.name)).collect();
    let s = &mut steps[5];
    s.summary.push(format!("disable {} mapping(s) of {src_name} that arrive active in {dst_name}", foreign.len()));
    s.mappings = foreign;

    // 7. Restore the destination's own, or activate what the source provisioned for it.
    let provisioned_names: Vec<String> = provisioned.iter().map(|m| destination.rehome(&m.name)).collect();
    let own: Vec<String> = dst.mappings.iter().map(|m| m.name.clone()).filter(|n| !provisioned_names.contains(n)).collect();
    let s = &mut steps[6];
    s.summary.push(format!(
        "restore {} integration(s) and {} mapping(s) of {dst_name} from the snapshot",
        dst.integrations.len(),
        own.len()
    ));
    if !provisioned_names.is_empty() {
        s.summary.push(format!("activate {} mapping(s) {src_name} provisioned for {dst_name}", provisioned_names.len()));
    }
    s.integrations = names(&dst.integrations, |i| &i.name);
    s.mappings = own;
    s.provisioned_mappings = provisioned_names;
    steps
}
