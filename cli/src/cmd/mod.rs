//! The command line: the `ferry` parser and one module per subcommand.

use std::io::Write;

use clap::{Parser, Subcommand};

mod entity;
mod env;
mod group;
mod jsonl;
mod project;
mod up;

const EXAMPLES: &str = "\
Examples:
  ferry up                                   run the suite here (data in .ferry/)
  ferry env create dev --tier non-production
  ferry group create dev core
  ferry entity create dev core --kind lookup --key countries --payload '{\"codes\":[\"NL\"]}'
  ferry entity list dev core -o json
  ferry entity export dev core > core.jsonl

Registry commands find the token in --token, FERRY_TOKEN or .ferry/admin.token.";

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
    /// Projects: create, get, list, delete, config items, resolve.
    Project(project::ProjectArgs),
}

/// Runs a parsed command, writing its results to `out`.
pub async fn execute(cli: Cli, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(opts) => up::run(opts, out).await,
        Command::Env(args) => env::run(args, out).await,
        Command::Group(args) => group::run(args, out).await,
        Command::Entity(args) => entity::run(args, out).await,
        Command::Project(args) => project::run(args, out).await,
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
}
