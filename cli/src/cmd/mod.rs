//! The command line: the `ferry` parser and one module per subcommand.

use std::io::Write;

use clap::{Parser, Subcommand};

mod audit;
mod entity;
mod env;
mod group;
mod integration;
mod jobs;
mod jsonl;
mod mapping;
pub(crate) mod merge;
mod project;
mod promote;
mod refresh;
mod restore_point;
mod rollback;
mod runs;
mod schedule;
mod snapshot;
mod sync;
mod sync_exec;
mod sync_job;
mod up;
mod webhook;

const EXAMPLES: &str = "\
Examples:
  ferry up                                   run the suite here (data in .ferry/)
  ferry env create dev --tier non-production
  ferry group create dev core
  ferry entity create dev core --kind lookup --key countries --payload '{\"codes\":[\"NL\"]}'
  ferry entity list dev core -o json
  ferry entity export dev core > core.jsonl

  ferry merge plan dev test prod --items     what merging group test into prod would do
  ferry merge apply <PLAN>                   apply it as a job, with a progress bar
  ferry merge revert <JOB>                   undo an applied merge
  ferry group clone dev core core-copy
  ferry project merge dev app-test app-prod --merge-groups-first
  ferry jobs list --state running            merge-engine jobs

  ferry integration create dev rally --system rally --base-url https://rally.example.com \\
        --api-key-file rally.key             the key is read from a file, never a flag
  ferry mapping create dev rally stories --active --field-mapping '{\"Name\":\"title\"}'
  ferry job pause dev nightly --reason maintenance    an integration sync job
  ferry snapshot create dev --description 'before refresh'
  ferry sync check dev/rally/stories         ALLOWED (exit 0) or DENIED (exit 3)

  ferry refresh plan prod sandbox            the nine steps and what each will change
  ferry refresh start prod sandbox --require-approval    start it, checklist drawn live
  ferry refresh confirm <RUN> --comment ok   pass the approval gate (or external copy)
  ferry refresh abort <RUN> --reason oops    undo the completed steps in reverse
  ferry refresh report <RUN> > refresh.md    the run's Markdown report
  ferry refresh rollback <RUN>               what a rollback puts back and discards
  ferry refresh rollback <RUN> --yes         roll a SUCCEEDED refresh back, watched live
  ferry promote plan dev app-test app-prod   group merges, then the project merge
  ferry promote start dev app-test app-prod --require-approval

  ferry audit list --subject ada@example.com --since 2026-12-04T00:00:00Z
  ferry audit export --service refresh > audit.jsonl    Kubernetes-style JSON lines
  ferry audit verify                         walk every hash chain (exit 4 if broken)

Commands find the token in --token, FERRY_TOKEN or .ferry/admin.token; the services at
--registry, --merge, --integration and --refresh (FERRY_REGISTRY_URL, FERRY_MERGE_URL,
FERRY_INTEGRATION_URL, FERRY_REFRESH_URL).";

/// Ferry moves configuration between environments safely: groups of entities cloned and
/// merged by key, and sandbox refreshes that never talk to production again.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole suite on this machine until Ctrl-C: registry, merge engine,
    /// integration control and refresh coordinator.
    Up(crate::up::UpOptions),
    /// Environments: create, get, list.
    Env(env::EnvArgs),
    /// Groups: create, get, list, delete.
    Group(group::GroupArgs),
    /// Entities: create, get, list, update, delete, link, unlink, import, export.
    Entity(entity::EntityArgs),
    /// Projects: create, get, list, delete, config items, resolve, clone, merge.
    Project(project::ProjectArgs),
    /// Group merges: plan (like terraform plan), show, list, apply, cancel, revert.
    Merge(merge::MergeArgs),
    /// Merge-engine jobs (applies, clones, project merges, reverts): list, get, watch,
    /// cancel. For integration sync jobs see `ferry job`.
    Jobs(jobs::JobsArgs),
    /// Integrations to external systems: create, get, list, update, delete, and their
    /// credentials (rotate, suspend, restore).
    Integration(integration::IntegrationArgs),
    /// Mappings of an integration: create, get, list, activate, deactivate, delete.
    Mapping(mapping::MappingArgs),
    /// Integration sync jobs (processes that talk to external systems): create, get, list,
    /// pause, resume, delete. For merge-engine jobs see `ferry jobs`.
    Job(sync_job::SyncJobArgs),
    /// Snapshots of an environment's integrations, mappings and sync jobs: create, get,
    /// list, restore.
    Snapshot(snapshot::SnapshotArgs),
    /// Restore points of an environment's registry content (groups, entities, links,
    /// projects, configuration): create, get, list, delete, restore.
    RestorePoint(restore_point::RestorePointArgs),
    /// Ask whether a mapping may sync now (exit 0 allowed, 3 denied).
    Sync(sync::SyncArgs),
    /// Refresh runs (the nine-step checklist): plan, start, watch, get, list, confirm,
    /// retry, abort, report.
    Refresh(refresh::RefreshArgs),
    /// Promotion runs (a project's group merges, then the project): plan, start, watch,
    /// get, list, confirm, retry, abort.
    Promote(promote::PromoteArgs),
    /// Rollback runs (a SUCCEEDED refresh undone; start one with `ferry refresh rollback`):
    /// watch, get, list, confirm, retry, abort, report.
    Rollback(rollback::RollbackArgs),
    /// The services' audit logs: list, export (JSON Lines), verify the hash chains.
    Audit(audit::AuditArgs),
    /// Webhooks: subscriptions to every state change (signed JSON POSTs), their delivery
    /// log, redelivery: create, get, list, update, delete, deliveries, redeliver.
    Webhook(webhook::WebhookArgs),
}

/// Runs a parsed command, writing its results to `out`.
pub async fn execute(cli: Cli, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(opts) => up::run(opts, out).await,
        Command::Env(args) => env::run(args, out).await,
        Command::Group(args) => group::run(args, out).await,
        Command::Entity(args) => entity::run(args, out).await,
        Command::Project(args) => project::run(args, out).await,
        Command::Merge(args) => merge::run(args, out).await,
        Command::Jobs(args) => jobs::run(args, out).await,
        Command::Integration(args) => integration::run(args, out).await,
        Command::Mapping(args) => mapping::run(args, out).await,
        Command::Job(args) => sync_job::run(args, out).await,
        Command::Snapshot(args) => snapshot::run(args, out).await,
        Command::RestorePoint(args) => restore_point::run(args, out).await,
        Command::Sync(args) => sync::run(args, out).await,
        Command::Refresh(args) => refresh::run(args, out).await,
        Command::Promote(args) => promote::run(args, out).await,
        Command::Rollback(args) => rollback::run(args, out).await,
        Command::Audit(args) => audit::run(args, out).await,
        Command::Webhook(args) => webhook::run(args, out).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn client_flags_work_before_and_after_the_verb() {
        let a = Cli::try_parse_from(["ferry", "env", "-o", "json", "list"]);
        let b = Cli::try_parse_from(["ferry", "env", "list", "-o", "json", "--limit", "3"]);
        assert!(a.is_ok() && b.is_ok());
        assert!(Cli::try_parse_from(["ferry", "up", "-o", "json"]).is_err());
    }

    fn parses(args: &[&str]) -> bool {
        Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied())).is_ok()
    }

    #[test]
    fn merge_commands_parse() {
        assert!(parses(&[
            "merge",
            "plan",
            "dev",
            "test",
            "prod",
            "--strategy",
            "take-source",
            "--kind",
            "lookup",
            "--key",
            "a",
            "--items"
        ]));
        assert!(parses(&["merge", "plan", "dev", "test", "prod", "--outcome", "conflict", "--outcome", "missing-dependency"]));
        assert!(!parses(&["merge", "plan", "dev", "test", "prod", "--strategy", "newest"]));
        assert!(!parses(&["merge", "plan", "dev", "test", "prod", "--kind", "lookups"]));
        assert!(parses(&["merge", "apply", "p1", "--proceed-with-missing-dependencies", "--no-wait", "--request-id", "r1"]));
        assert!(parses(&["merge", "revert", "jobs/7", "--proceed-with-changed"]));
        assert!(parses(&["merge", "show", "p1", "--items"]));
        assert!(parses(&["group", "clone", "dev", "core", "core-copy", "--display-name", "Copy"]));
        assert!(parses(&["project", "clone", "dev", "app", "app2", "--group", "core", "--group", "extra"]));
        assert!(!parses(&["project", "clone", "dev", "app", "app2"]), "clone needs --group");
        assert!(parses(&["project", "merge", "dev", "app-test", "app-prod", "--merge-groups-first", "--strategy", "fail"]));
        assert!(parses(&["jobs", "list", "--state", "running", "--state", "failed", "--kind", "apply-merge", "--limit", "5"]));
        assert!(parses(&["jobs", "watch", "7", "--merge", "http://127.0.0.1:1"]));
    }

    #[test]
    fn integration_commands_parse() {
        assert!(parses(&["integration", "update", "dev", "rally", "--active", "false", "--integration", "http://h:1"]));
        assert!(parses(&["integration", "rotate", "dev", "rally", "--api-key-stdin"]));
        assert!(parses(&["mapping", "create", "prod", "rally", "sandbox", "--target-env", "uat", "--field-mapping", "{}"]));
        assert!(parses(&["mapping", "list", "dev"]));
        assert!(parses(&["mapping", "activate", "dev", "rally", "stories", "--rebind"]));
        assert!(parses(&["job", "create", "dev", "nightly", "--schedule", "0 2 * * *", "--integration-id", "rally", "--paused"]));
        assert!(parses(&["job", "list", "dev", "--state", "paused"]));
        assert!(parses(&["job", "pause", "dev", "nightly", "--reason", "refresh"]));
        assert!(parses(&["snapshot", "restore", "dev", "s1", "--resource", "environments/dev/jobs/nightly"]));
        assert!(parses(&["snapshot", "get", "dev", "s1", "--full"]));
        assert!(parses(&["sync", "check", "dev/rally/stories", "--job", "nightly", "-o", "json"]));
        assert!(parses(&["sync", "check", "environments/dev/integrations/rally/mappings/stories"]));
        assert!(!parses(&["sync", "check", "dev/rally"]));
    }

    #[test]
    fn refresh_and_promote_commands_parse() {
        assert!(parses(&["refresh", "plan", "prod", "sandbox", "--external", "--suspend-credentials", "--require-approval"]));
        assert!(!parses(&["refresh", "plan", "prod"]));
        assert!(parses(&["refresh", "start", "prod", "sandbox", "--require-approval", "--no-wait", "--plan-etag", "e1"]));
        assert!(parses(&["refresh", "watch", "r1", "--refresh", "http://h:4"]));
        assert!(parses(&["refresh", "confirm", "r1", "--comment", "go", "--step", "5"]));
        assert!(parses(&["refresh", "retry", "refreshRuns/r1"]));
        assert!(parses(&["refresh", "abort", "r1", "--reason", "wrong source"]));
        assert!(parses(&["refresh", "get", "r1", "-o", "json"]));
        assert!(parses(&["refresh", "list", "--limit", "5", "--env", "prod"]));
        assert!(parses(&["refresh", "report", "r1"]));
        assert!(!parses(&["refresh", "report"]));
        assert!(parses(&["promote", "plan", "dev", "app-test", "app-prod", "--strategy", "take-source"]));
        assert!(!parses(&["promote", "plan", "dev", "app-test"]));
        assert!(parses(&["promote", "start", "dev", "app-test", "app-prod", "--require-approval", "--no-wait"]));
        assert!(parses(&["promote", "watch", "p1"]));
        assert!(parses(&["refresh", "rollback", "r1"]));
        assert!(parses(&["refresh", "rollback", "r1", "--yes", "--require-approval", "--plan-etag", "e", "--no-wait"]));
        assert!(!parses(&["refresh", "rollback"]));
        assert!(parses(&["rollback", "list", "--env", "sandbox"]));
        assert!(!parses(&["rollback", "list", "--env", "sandbox", "--refresh-run", "r1"]));
        assert!(parses(&["rollback", "abort", "b1", "--reason", "wrong one"]));
        assert!(parses(&["rollback", "report", "b1"]));
        assert!(parses(&["promote", "get", "p1"]));
        assert!(parses(&["promote", "confirm", "p1", "--comment", "ok"]));
        assert!(parses(&["promote", "retry", "p1", "--no-wait"]));
        assert!(parses(&["promote", "abort", "p1", "--reason", "later", "--proceed-with-changed"]));
        assert!(parses(&["promote", "list", "--limit", "3"]));
        let text = format!("{:?}", Cli::try_parse_from(["ferry", "refresh", "get", "r1", "--refresh", "http://h:4"]).expect("parses"));
        assert!(text.contains("refresh_url: \"http://h:4\""), "{text}");
    }

    #[test]
    fn connection_flags_never_capture_command_arguments() {
        let argv = ["ferry", "mapping", "get", "dev", "rally", "stories", "--integration", "http://h:1", "--merge", "http://h:2"];
        let cli = Cli::try_parse_from(argv).expect("parses");
        let text = format!("{cli:?}");
        assert!(text.contains("integration: \"rally\"") && text.contains("integration_url: \"http://h:1\""), "{text}");
        assert!(text.contains("merge_url: \"http://h:2\""), "{text}");
        let argv = ["ferry", "job", "create", "dev", "j", "--schedule", "* * * * *", "--integration-id", "rally"];
        let text = format!("{:?}", Cli::try_parse_from(argv).expect("parses"));
        assert!(text.contains("integration: Some(\"rally\")") && !text.contains("integration_url: \"rally\""), "{text}");
    }

    #[test]
    fn job_and_jobs_point_at_each_other() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let about = |name: &str| cmd.find_subcommand(name).and_then(|c| c.get_about()).map(ToString::to_string).unwrap_or_default();
        assert!(about("job").contains("ferry jobs"), "{}", about("job"));
        assert!(about("jobs").contains("ferry job`"), "{}", about("jobs"));
    }
}
