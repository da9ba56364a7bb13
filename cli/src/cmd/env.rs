//! `ferry env`: environments.

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use ferry_proto::common::v1::EnvironmentTier;
use ferry_proto::registry::v1 as pb;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output;
use crate::parse::names;

/// Environments: named instances (prod, uat, dev-1) with a tier.
#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(subcommand)]
    command: EnvCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum EnvCommand {
    /// Create an environment (needs the admin role).
    Create {
        /// The id: lowercase letters, digits and '-', starting with a letter (e.g. dev-1).
        id: String,
        /// Production or not; production is never a refresh destination.
        #[arg(long, value_enum)]
        tier: Tier,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Show one environment.
    Get {
        /// Environment id.
        id: String,
    },
    /// List environments.
    List {
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Tier {
    Production,
    NonProduction,
}

impl From<Tier> for EnvironmentTier {
    fn from(t: Tier) -> Self {
        match t {
            Tier::Production => EnvironmentTier::Production,
            Tier::NonProduction => EnvironmentTier::NonProduction,
        }
    }
}

pub async fn run(args: EnvArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        EnvCommand::Create { id, tier, display_name } => {
            let req = pb::CreateEnvironmentRequest {
                environment_id: id,
                environment: Some(pb::Environment {
                    tier: EnvironmentTier::from(tier) as i32,
                    display_name: display_name.unwrap_or_default(),
                    ..Default::default()
                }),
                request_id: s.request_id(),
            };
            let env = s.client().create_environment(req).await?.into_inner();
            output::one(out, s.format, &env)?;
        }
        EnvCommand::Get { id } => {
            let req = pb::GetEnvironmentRequest { name: names::env(&id) };
            let env = s.client().get_environment(req).await?.into_inner();
            output::one(out, s.format, &env)?;
        }
        EnvCommand::List { limit } => {
            let envs = all_pages(limit, |page_size, page_token| {
                let mut c = s.client();
                async move {
                    let r = c.list_environments(pb::ListEnvironmentsRequest { page_size, page_token }).await?.into_inner();
                    Ok((r.environments, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &envs)?;
        }
    }
    Ok(())
}
