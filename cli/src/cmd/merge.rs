//! `ferry merge`: group merge plans (printed like `terraform plan`), apply and revert.

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use ferry_proto::common::v1::EntityKind;
use ferry_proto::merge::v1 as pb;
use serde_json::Value;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output::{self, Format, Resource};
use crate::parse::{self, names};
use crate::progress;
use crate::render::merge::{item_line, plan_footer, plan_text};

/// Group merges: plan merging one group into another, look at every item, apply the plan
/// as a job (watched with a progress bar), revert an applied merge.
#[derive(Debug, Args)]
pub struct MergeArgs {
    #[command(subcommand)]
    command: MergeCommand,
    #[command(flatten)]
    client: ClientArgs,
}

/// How a conflict (same kind and key, different content) is resolved.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Strategy {
    /// The recipient keeps its own entity; the conflict is reported.
    #[default]
    KeepRecipient,
    /// The recipient's entity is overwritten with the source's.
    TakeSource,
    /// Apply is refused while the plan has any conflict.
    Fail,
}

impl From<Strategy> for pb::MergeStrategy {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::KeepRecipient => Self::KeepRecipient,
            Strategy::TakeSource => Self::TakeSource,
            Strategy::Fail => Self::Fail,
        }
    }
}

/// What apply will do with one (kind, key).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Outcome {
    Create,
    Link,
    Skip,
    Conflict,
    MissingDependency,
}

impl From<Outcome> for pb::MergeOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Create => Self::Create,
            Outcome::Link => Self::Link,
            Outcome::Skip => Self::Skip,
            Outcome::Conflict => Self::Conflict,
            Outcome::MissingDependency => Self::MissingDependency,
        }
    }
}

/// Which items of a plan to print.
#[derive(Debug, Args)]
struct ItemsArgs {
    /// Also print the plan's items, ordered by (kind, key).
    #[arg(long)]
    items: bool,
    /// Only items with this outcome (repeatable; implies --items).
    #[arg(long = "outcome", value_enum, value_name = "OUTCOME")]
    outcomes: Vec<Outcome>,
}

#[derive(Debug, Subcommand)]
enum MergeCommand {
    /// Plan merging SOURCE_GROUP into RECIPIENT_GROUP: counts per outcome and, with
    /// --items, every item. Nothing changes until `ferry merge apply`.
    Plan {
        /// Environment id (both groups live in it).
        env: String,
        /// The group merged from.
        source_group: String,
        /// The group merged into.
        recipient_group: String,
        /// How conflicts are resolved.
        #[arg(long, value_enum, default_value_t)]
        strategy: Strategy,
        /// Only this kind (repeatable): data-source, lookup, custom-action, role, theme,
        /// portal, service, table or map.
        #[arg(long = "kind", value_name = "KIND", value_parser = parse::kind)]
        kinds: Vec<EntityKind>,
        /// Only this key (repeatable).
        #[arg(long = "key", value_name = "KEY")]
        keys: Vec<String>,
        #[command(flatten)]
        items: ItemsArgs,
    },
    /// Show a plan (READY, STALE, APPLYING, APPLIED or CANCELLED) and, with --items, its items.
    Show {
        /// Plan id or mergePlans/… name.
        plan: String,
        #[command(flatten)]
        items: ItemsArgs,
    },
    /// List plans, newest first.
    List {
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Apply a plan as a job and watch it to the end (progress on stderr). Refused when a
    /// group changed since the plan (plan again). Exits non-zero unless the job succeeds.
    Apply {
        /// Plan id or mergePlans/… name.
        plan: String,
        /// Apply even though some references will dangle in the recipient.
        #[arg(long)]
        proceed_with_missing_dependencies: bool,
        /// Print the job as soon as it is queued instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Discard a READY or STALE plan.
    Cancel {
        /// Plan id or mergePlans/… name.
        plan: String,
    },
    /// Revert an applied merge (an APPLY_MERGE job): remove what it created, unlink what it
    /// linked. Refused, listing them, when some of those entities changed since.
    Revert {
        /// Job id or jobs/… name of the merge to revert.
        job: String,
        /// Also remove created or linked entities that changed since the apply.
        #[arg(long)]
        proceed_with_changed: bool,
        /// Print the revert job as soon as it is queued instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
}

pub async fn run(args: MergeArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        MergeCommand::Plan { env, source_group, recipient_group, strategy, kinds, keys, items } => {
            let req = pb::CreateMergePlanRequest {
                source: names::group(&env, &source_group),
                recipient: names::group(&env, &recipient_group),
                strategy: pb::MergeStrategy::from(strategy) as i32,
                kinds: kinds.into_iter().map(|k| k as i32).collect(),
                keys,
                request_id: s.request_id(),
            };
            let plan = s.merge()?.create_merge_plan(req).await?.into_inner();
            print_plan(&s, &plan, &items, out).await?;
        }
        MergeCommand::Show { plan, items } => {
            let plan = s.merge()?.get_merge_plan(pb::GetMergePlanRequest { name: names::plan(&plan) }).await?.into_inner();
            print_plan(&s, &plan, &items, out).await?;
        }
        MergeCommand::List { limit } => {
            let client = s.merge()?;
            let plans = all_pages(limit, |page_size, page_token| {
                let mut c = client.clone();
                let req = pb::ListMergePlansRequest { page_size, page_token, ..Default::default() };
                async move {
                    let r = c.list_merge_plans(req).await?.into_inner();
                    Ok((r.merge_plans, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &plans)?;
        }
        MergeCommand::Apply { plan, proceed_with_missing_dependencies, no_wait } => {
            let req = pb::ApplyMergePlanRequest { name: names::plan(&plan), proceed_with_missing_dependencies, request_id: s.request_id() };
            let job = s.merge()?.apply_merge_plan(req).await?.into_inner();
            progress::follow(&s, job, no_wait, out).await?;
        }
        MergeCommand::Cancel { plan } => {
            let req = pb::CancelMergePlanRequest { name: names::plan(&plan), request_id: s.request_id() };
            let plan = s.merge()?.cancel_merge_plan(req).await?.into_inner();
            output::one(out, s.format, &plan)?;
        }
        MergeCommand::Revert { job, proceed_with_changed, no_wait } => {
            let req = pb::RevertMergeRequest { job: names::job(&job), proceed_with_changed, request_id: s.request_id() };
            let job = s.merge()?.revert_merge(req).await?.into_inner();
            progress::follow(&s, job, no_wait, out).await?;
        }
    }
    Ok(())
}

/// The plan like `terraform plan`: header and counts, the items page by page as they
/// arrive (with --items), then the totals and how to apply it. JSON: the plan, with
/// `items` when asked.
async fn print_plan(s: &Session, plan: &pb::MergePlan, items: &ItemsArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let want_items = items.items || !items.outcomes.is_empty();
    let outcomes: Vec<i32> = items.outcomes.iter().map(|o| pb::MergeOutcome::from(*o) as i32).collect();
    match s.format {
        Format::Table => {
            write!(out, "{}", plan_text(plan))?;
            if want_items {
                writeln!(out)?;
                each_page(s, &plan.name, &outcomes, |page| {
                    for item in page {
                        writeln!(out, "{}", item_line(item))?;
                    }
                    Ok(())
                })
                .await?;
            }
            writeln!(out)?;
            write!(out, "{}", plan_footer(plan))?;
        }
        Format::Json => {
            let mut value = plan.json();
            if want_items {
                let mut all = Vec::new();
                each_page(s, &plan.name, &outcomes, |page| {
                    all.extend(page.iter().map(Resource::json));
                    Ok(())
                })
                .await?;
                if let Value::Object(map) = &mut value {
                    map.insert("items".to_owned(), Value::Array(all));
                }
            }
            output::json(out, &value)?;
        }
    }
    Ok(())
}

/// Calls `each` with every page of a plan's items, in order.
async fn each_page(
    s: &Session,
    plan: &str,
    outcomes: &[i32],
    mut each: impl FnMut(&[pb::MergePlanItem]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut client = s.merge()?;
    let mut page_token = String::new();
    loop {
        let req = pb::ListMergePlanItemsRequest {
            parent: plan.to_owned(),
            page_size: 1000,
            page_token,
            outcomes: outcomes.to_vec(),
            kinds: Vec::new(),
        };
        let r = client.list_merge_plan_items(req).await?.into_inner();
        each(&r.items)?;
        if r.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = r.next_page_token;
    }
}
