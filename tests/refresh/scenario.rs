//! The refresh article's scenario, run as a MANAGED refresh end to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ferry_proto::integration::v1 as ipb;
use ferry_proto::refresh::v1 as pb;
use ferry_proto::registry::v1 as rpb;

use crate::helpers::*;

pub const PROD_RALLY: &str = "environments/prod/integrations/rally";
pub const PROD_MAPPING: &str = "environments/prod/integrations/rally/mappings/prod-sync";
pub const PROVISIONED_IN_PROD: &str = "environments/prod/integrations/rally/mappings/sandbox-sync";
pub const COPIED_PROD_MAPPING: &str = "environments/sandbox/integrations/rally/mappings/prod-sync";
pub const PROVISIONED_IN_SANDBOX: &str = "environments/sandbox/integrations/rally/mappings/sandbox-sync";
pub const SANDBOX_RALLY: &str = "environments/sandbox/integrations/rally-sbx";
pub const SANDBOX_MAPPING: &str = "environments/sandbox/integrations/rally-sbx/mappings/sbx-sync";

/// Production with an active Rally integration, its mapping and two jobs; a sandbox with
/// its own integration, mapping, a running job and a job a person paused.
pub struct Fixture {
    pub provisioned: bool,
    /// Every job and its state and `paused_by` before the refresh.
    pub jobs: Vec<(String, i32, String)>,
}

pub async fn arrange(s: &Suite, provisioned: bool) -> Fixture {
    env(s, "prod", true).await;
    env(s, "sandbox", false).await;
    let core = group(s, "prod", "core", &["billing", "orders", "users"]).await;
    project(s, "prod", "main", vec![core]).await;
    let old = group(s, "sandbox", "old", &["scratch"]).await;
    project(s, "sandbox", "legacy", vec![old]).await;

    let rally = integration(s, "prod", "rally", true).await;
    mapping(s, &rally, "prod-sync", "", true).await;
    if provisioned {
        mapping(s, &rally, "sandbox-sync", "environments/sandbox", false).await;
    }
    let mut jobs = vec![job(s, "prod", "rally-sync", &rally).await, job(s, "prod", "nightly", "").await];
    let sbx = integration(s, "sandbox", "rally-sbx", true).await;
    mapping(s, &sbx, "sbx-sync", "", true).await;
    jobs.push(job(s, "sandbox", "sbx-job", &sbx).await);
    // Not tied to the integration: a paused job of an integration would (rightly) deny
    // its mappings JOB_PAUSED.
    let manual = job(s, "sandbox", "manual", "").await;
    pause_by_person(s, &manual).await;
    jobs.push(manual);
    let mut before = Vec::new();
    for j in jobs {
        let got = get_job(s, &j).await;
        before.push((j, got.state, got.paused_by));
    }
    Fixture { provisioned, jobs: before }
}

/// Asks AuthorizeSync for the production mapping's copy in the sandbox until stopped;
/// counts the answers and every "allowed".
pub struct Poller {
    stop: Arc<AtomicBool>,
    pub answers: Arc<AtomicUsize>,
    pub allowed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

pub fn poll_copied_mapping(s: &Suite) -> Poller {
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicUsize::new(0));
    let allowed = Arc::new(AtomicUsize::new(0));
    let client = s.integration.clone();
    let (st, an, al) = (stop.clone(), answers.clone(), allowed.clone());
    let task = tokio::spawn(async move {
        while !st.load(Ordering::SeqCst) {
            let reply =
                client.clone().authorize_sync(ipb::AuthorizeSyncRequest { mapping: COPIED_PROD_MAPPING.into(), job: String::new() }).await;
            if let Ok(r) = reply {
                an.fetch_add(1, Ordering::SeqCst);
                if r.into_inner().allowed {
                    al.fetch_add(1, Ordering::SeqCst);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        }
    });
    Poller { stop, answers, allowed, task }
}

impl Poller {
    pub async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        (self.answers.load(Ordering::SeqCst), self.allowed.load(Ordering::SeqCst))
    }
}

/// The article's end state after a completed refresh of the fixture.
pub async fn assert_refreshed(s: &Suite, fx: &Fixture) {
    // The sandbox holds production's groups, entities and projects.
    let groups = s
        .registry
        .clone()
        .list_groups(rpb::ListGroupsRequest { parent: "environments/sandbox".into(), page_size: 100, page_token: String::new() })
        .await
        .expect("list groups")
        .into_inner()
        .groups;
    assert_eq!(groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), vec!["environments/sandbox/groups/core"]);
    assert_eq!(groups[0].entity_count, 3);
    let projects = s
        .registry
        .clone()
        .list_projects(rpb::ListProjectsRequest { parent: "environments/sandbox".into(), page_size: 100, page_token: String::new() })
        .await
        .expect("list projects")
        .into_inner()
        .projects;
    assert_eq!(projects.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["environments/sandbox/projects/main"]);

    // Production's mapping in the sandbox: disabled, fenced, never allowed.
    let copied = get_mapping(s, COPIED_PROD_MAPPING).await;
    assert!(!copied.active, "the production mapping in the sandbox is disabled");
    assert!(copied.fenced, "the production mapping in the sandbox stays fenced");
    assert!(!authorize(s, COPIED_PROD_MAPPING).await.expect("authorize").allowed);

    // The sandbox's own mapping is back and active.
    let own = get_mapping(s, SANDBOX_MAPPING).await;
    assert!(own.active && !own.fenced, "sandbox mapping restored: {own:?}");
    assert!(get_integration(s, SANDBOX_RALLY).await.active);
    let decision = authorize(s, SANDBOX_MAPPING).await.expect("authorize");
    assert!(decision.allowed, "sandbox mapping may sync again: {decision:?}");

    if fx.provisioned {
        let p = get_mapping(s, PROVISIONED_IN_SANDBOX).await;
        assert!(p.active && !p.fenced && p.bound_environment == "environments/sandbox", "provisioned mapping activated: {p:?}");
        let decision = authorize(s, PROVISIONED_IN_SANDBOX).await.expect("authorize");
        assert!(decision.allowed, "provisioned mapping may sync: {decision:?}");
        let in_prod = get_mapping(s, PROVISIONED_IN_PROD).await;
        assert!(!in_prod.active, "production's provisioned original stays inactive");
    }

    // Production's integration is active again and its mapping may sync.
    let rally = get_integration(s, PROD_RALLY).await;
    assert!(rally.active, "production integration re-activated");
    assert_eq!(rally.credential_state, ipb::CredentialState::Active as i32);
    let decision = authorize(s, PROD_MAPPING).await.expect("authorize");
    assert!(decision.allowed, "production mapping may sync again: {decision:?}");

    // Every job is in exactly its prior state; no fence is left.
    for (name, state, paused_by) in &fx.jobs {
        let j = get_job(s, name).await;
        assert_eq!((j.state, &j.paused_by), (*state, paused_by), "job {name} back to its prior state");
    }
    assert!(!fence(s, "prod").await.fenced);
    assert!(!fence(s, "sandbox").await.fenced);
}

/// The metrics of one managed run, as deltas (other tests of this process add to them):
/// every step executed once and succeeded, the denials the poller and `assert_refreshed`
/// got, the allowed answers, and the Watch stream counted when it ended.
async fn assert_run_metrics(s: &Suite, before: &ferry_testkit::Scrape, denied: usize) {
    let after = scrape(s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    for step in [
        "check",
        "deactivate_source_integrations",
        "pause_jobs",
        "snapshot_destination",
        "copy",
        "disable_source_mappings",
        "restore_destination_mappings",
        "reactivate_source_integrations",
        "resume_jobs",
    ] {
        let n = delta("ferry_refresh_step_duration_seconds_count", &[("step", step), ("outcome", "succeeded")]);
        assert!(n >= 1.0, "step {step} observed: {}", after.body);
    }
    assert!(delta("ferry_sync_denials_total", &[]) >= denied as f64 + 1.0, "denials counted: {}", after.body);
    assert!(delta("ferry_sync_allowed_total", &[]) >= 2.0, "allowed answers counted: {}", after.body);
    let watch = [("service", "ferry.refresh.v1.RefreshService"), ("method", "WatchRefreshRun"), ("code", "OK")];
    assert!(delta("ferry_grpc_server_handled_total", &watch) >= 1.0, "the ended stream is counted: {}", after.body);
    let starts = [("service", "ferry.refresh.v1.RefreshService"), ("method", "StartRefresh")];
    assert!(delta("ferry_grpc_server_handling_seconds_count", &starts) >= 1.0, "{}", after.body);
}

async fn run_managed(backend: Backend, provisioned: bool, suspend: bool) {
    let Some(s) = spawn_suite(backend, Knobs { step_delay_ms: 50, ..Knobs::default() }).await else { return };
    let fx = arrange(&s, provisioned).await;
    let poller = poll_copied_mapping(&s);

    let mut opts = options(pb::RefreshMode::Managed, false);
    if let Some(o) = opts.as_mut() {
        o.suspend_credentials_instead = suspend;
    }
    let before = scrape(&s).await;
    let run = start(&s, "prod", "sandbox", opts).await.expect("start");
    assert_eq!(run.steps.len(), 9);
    // Watch: every transition, ending with the terminal snapshot.
    let mut stream =
        s.refresh.clone().watch_refresh_run(pb::WatchRefreshRunRequest { name: run.name.clone() }).await.expect("watch").into_inner();
    let mut seen = Vec::new();
    while let Some(snapshot) = stream.message().await.expect("watch stream") {
        seen.push(snapshot);
    }
    let last = seen.last().expect("at least one snapshot");
    assert_eq!(last.state, SUCCEEDED, "run ended: {:?}", last.error);
    assert!(seen.len() >= 9, "a snapshot per step transition at least ({})", seen.len());
    assert!(last.steps.iter().all(|st| st.state == STEP_SUCCEEDED && st.attempts == 1));

    let (answers, allowed) = poller.finish().await;
    assert!(answers > 0, "AuthorizeSync was asked during the run");
    assert_eq!(allowed, 0, "the copied production mapping was never allowed to sync");
    assert_refreshed(&s, &fx).await;
    assert_run_metrics(&s, &before, answers - allowed).await;

    // What each step recorded: step 2 deactivated exactly production's integration, step 8
    // re-activated it (or suspended and restored its credentials); step 3 paused the
    // running jobs only.
    let (field, off, on) = if suspend { ("credential_state", "SUSPENDED", "ACTIVE") } else { ("active", "false", "true") };
    let changed = |n: usize, after: &str| -> Vec<String> {
        last.steps[n].changes.iter().filter(|c| c.field == field && c.after == after).map(|c| c.resource.clone()).collect()
    };
    assert_eq!(changed(1, off), vec![PROD_RALLY]);
    assert_eq!(changed(7, on), vec![PROD_RALLY]);
    let mut paused: Vec<&str> = last.steps[2].changes.iter().filter(|c| c.field == "state").map(|c| c.resource.as_str()).collect();
    paused.sort();
    assert_eq!(paused, vec!["environments/prod/jobs/nightly", "environments/prod/jobs/rally-sync", "environments/sandbox/jobs/sbx-job"]);
    assert!(last.steps[5].changes.iter().any(|c| c.resource == COPIED_PROD_MAPPING && c.field == "active" && c.after == "false"));
    assert!(!last.snapshot.is_empty());

    // The report: the checklist with times, actors and exactly what changed.
    let report = s
        .refresh_viewer
        .clone()
        .get_refresh_report(pb::GetRefreshReportRequest { name: format!("{}/report", run.name) })
        .await
        .expect("report")
        .into_inner();
    for needle in [
        "# Refresh environments/prod → environments/sandbox",
        "## Pre-refresh",
        "## Post-refresh",
        "[x] 9.",
        "Actor: refresh-coordinator",
        PROD_RALLY,
        COPIED_PROD_MAPPING,
        "environments/sandbox/jobs/sbx-job",
        "| State | SUCCEEDED |",
        "Left alone:",
    ] {
        assert!(report.markdown.contains(needle), "report mentions {needle}:\n{}", report.markdown);
    }
    // Bulk steps log counts; the names are in the report's tables.
    assert!(last.steps[2].log.iter().any(|l| l == "pause: changed 2 resources"), "{:?}", last.steps[2].log);
    assert!(last.steps.iter().flat_map(|st| &st.log).all(|l| !l.contains("jobs/")), "no job named in a log line");

    // The locks are released: the next refresh can be planned.
    s.refresh
        .clone()
        .plan_refresh(pb::PlanRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: None,
        })
        .await
        .expect("plan after the run");
}

pub async fn managed_refresh_article_scenario(backend: Backend) {
    run_managed(backend, false, false).await;
}

pub async fn managed_refresh_suspending_credentials_instead(backend: Backend) {
    run_managed(backend, false, true).await;
}

pub async fn managed_refresh_activates_mapping_provisioned_in_production(backend: Backend) {
    run_managed(backend, true, false).await;
}

pub async fn plan_says_concretely_what_each_step_changes(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs::default()).await else { return };
    arrange(&s, true).await;
    let plan = s
        .refresh
        .clone()
        .plan_refresh(pb::PlanRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: options(pb::RefreshMode::Managed, true),
        })
        .await
        .expect("plan")
        .into_inner();
    assert_eq!(plan.steps.iter().map(|st| st.number).collect::<Vec<_>>(), (1..=9).collect::<Vec<_>>());
    assert!(plan.steps[0].requires_confirmation);
    assert_eq!(plan.steps[1].integrations, vec![PROD_RALLY]);
    let mut jobs = plan.steps[2].sync_jobs.clone();
    jobs.sort();
    assert_eq!(jobs, vec!["environments/prod/jobs/nightly", "environments/prod/jobs/rally-sync", "environments/sandbox/jobs/sbx-job"]);
    assert!(plan.steps[2].summary.iter().any(|l| l.contains("environments/sandbox/jobs/manual is already paused")));
    assert_eq!(plan.steps[3].mappings, vec![SANDBOX_MAPPING]);
    let copy = plan.steps[4].copy.expect("copy counts");
    assert_eq!((copy.source_groups, copy.source_entities, copy.source_projects), (1, 3, 1));
    assert_eq!((copy.replaced_groups, copy.replaced_entities, copy.replaced_projects), (1, 1, 1));
    assert_eq!((copy.source_integrations, copy.source_mappings, copy.replaced_integrations, copy.replaced_mappings), (1, 2, 1, 1));
    assert_eq!(plan.steps[5].mappings, vec![COPIED_PROD_MAPPING]);
    assert_eq!(plan.steps[6].mappings, vec![SANDBOX_MAPPING]);
    assert_eq!(plan.steps[6].provisioned_mappings, vec![PROVISIONED_IN_SANDBOX]);
    assert_eq!(plan.steps[7].integrations, vec![PROD_RALLY]);
    assert_eq!(plan.steps[8].sync_jobs.len(), 3);
    assert!(!plan.etag.is_empty());

    // Planning changes nothing: the same plan again has the same etag.
    let again = s
        .refresh
        .clone()
        .plan_refresh(pb::PlanRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: options(pb::RefreshMode::Managed, true),
        })
        .await
        .expect("plan")
        .into_inner();
    assert_eq!(again.etag, plan.etag);
    assert!(get_integration(&s, PROD_RALLY).await.active);
}
