//! `ferry webhook`: subscriptions to Ferry's events (every state change, signed), their
//! delivery log, redelivery.
//!
//! The signing secret is read from a file or standard input, never from a flag, and never
//! printed: replies carry its fingerprint.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferry_proto::integration::v1 as pb;
use prost_types::FieldMask;
use serde_json::json;

use super::integration::read_secret;
use crate::client::{ClientArgs, Session, all_pages};
use crate::output;

/// Webhooks: where Ferry POSTs its events (JSON, `Ferry-Signature` HMAC-SHA256 header).
#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: WebhookCommand,
    #[command(flatten)]
    client: ClientArgs,
}

/// Where the signing secret comes from.
#[derive(Debug, Args)]
#[group(multiple = false)]
struct Secret {
    /// Read the signing secret (at least 16 bytes) from this file.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Read the signing secret from standard input.
    #[arg(long)]
    secret_stdin: bool,
}

impl Secret {
    fn read(&self) -> anyhow::Result<Option<String>> {
        read_secret(self.secret_file.as_deref(), self.secret_stdin, "webhook secret")
    }
}

/// Which events a subscription gets.
#[derive(Debug, Args)]
struct Filters {
    /// An event type to deliver (repeatable; none: every type), e.g. integration.deactivated.
    #[arg(long = "event", value_name = "TYPE")]
    events: Vec<String>,
    /// An environment id whose events to deliver (repeatable; none: every environment).
    #[arg(long = "env", value_name = "ENV")]
    envs: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Subscribe a URL to events (the secret from --secret-file or --secret-stdin).
    Create {
        /// The subscription id [default: assigned].
        #[arg(long)]
        id: Option<String>,
        /// http:// or https:// URL events are POSTed to.
        url: String,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        secret: Secret,
    },
    /// Show one subscription (state, why it is disabled, the secret's fingerprint).
    Get { id: String },
    /// List the subscriptions.
    List {
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Change the URL, filters or state, or rotate the secret (only what is given).
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// Replace the event types with these (repeatable).
        #[arg(long = "event", value_name = "TYPE")]
        events: Option<Vec<String>>,
        /// Replace the environments with these (repeatable).
        #[arg(long = "env", value_name = "ENV")]
        envs: Option<Vec<String>>,
        /// Deliver every event type again.
        #[arg(long, conflicts_with = "events")]
        all_events: bool,
        /// Deliver every environment's events again.
        #[arg(long, conflicts_with = "envs")]
        all_envs: bool,
        /// Re-enable (delivery resumes where it stopped).
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop delivering.
        #[arg(long)]
        disable: bool,
        /// Rotate the secret to the one from --secret-file or --secret-stdin.
        #[command(flatten)]
        secret: Secret,
    },
    /// Delete a subscription and its delivery log.
    Delete { id: String },
    /// A subscription's deliveries, newest first, with every attempt.
    Deliveries {
        id: String,
        /// Stop after this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Send one delivery again (`ferry webhook deliveries` lists their ids).
    Redeliver { id: String, delivery: String },
}

fn name(id: &str) -> String {
    if id.starts_with("webhookSubscriptions/") { id.to_owned() } else { format!("webhookSubscriptions/{id}") }
}

pub async fn run(args: WebhookArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    let mut c = s.integration()?;
    let reply = match args.command {
        WebhookCommand::Create { id, url, filters, secret } => {
            let secret =
                secret.read()?.ok_or_else(|| anyhow::anyhow!("give the signing secret with --secret-file FILE or --secret-stdin"))?;
            let sub =
                pb::WebhookSubscription { url, event_types: filters.events, environments: filters.envs, secret, ..Default::default() };
            let req = pb::CreateWebhookSubscriptionRequest {
                webhook_subscription_id: id.unwrap_or_default(),
                webhook_subscription: Some(sub),
                request_id: s.request_id(),
            };
            c.create_webhook_subscription(req).await?.into_inner()
        }
        WebhookCommand::Get { id } => c.get_webhook_subscription(pb::GetWebhookSubscriptionRequest { name: name(&id) }).await?.into_inner(),
        WebhookCommand::List { limit } => {
            let list = all_pages(limit, |page_size, page_token| {
                let mut c = c.clone();
                async move {
                    let r = c.list_webhook_subscriptions(pb::ListWebhookSubscriptionsRequest { page_size, page_token }).await?.into_inner();
                    Ok((r.webhook_subscriptions, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &list)?;
            return Ok(());
        }
        WebhookCommand::Update { id, url, events, envs, all_events, all_envs, enable, disable, secret } => {
            let mut sub = pb::WebhookSubscription { name: name(&id), ..Default::default() };
            let mut paths = Vec::new();
            if let Some(u) = url {
                sub.url = u;
                paths.push("url");
            }
            if events.is_some() || all_events {
                sub.event_types = events.unwrap_or_default();
                paths.push("event_types");
            }
            if envs.is_some() || all_envs {
                sub.environments = envs.unwrap_or_default();
                paths.push("environments");
            }
            if enable || disable {
                let state = if enable { pb::WebhookSubscriptionState::Active } else { pb::WebhookSubscriptionState::Disabled };
                sub.state = state as i32;
                paths.push("state");
            }
            if let Some(secret) = secret.read()? {
                sub.secret = secret;
                paths.push("secret");
            }
            anyhow::ensure!(!paths.is_empty(), "nothing to update: give --url, --event, --env, --enable, --disable or a new secret");
            let mask = Some(FieldMask { paths: paths.into_iter().map(str::to_owned).collect() });
            let req =
                pb::UpdateWebhookSubscriptionRequest { webhook_subscription: Some(sub), update_mask: mask, request_id: s.request_id() };
            c.update_webhook_subscription(req).await?.into_inner()
        }
        WebhookCommand::Delete { id } => {
            let name = name(&id);
            c.delete_webhook_subscription(pb::DeleteWebhookSubscriptionRequest { name: name.clone(), request_id: s.request_id() }).await?;
            output::summary(out, s.format, &[("deleted", name.clone())], json!({ "name": name }))?;
            return Ok(());
        }
        WebhookCommand::Deliveries { id, limit } => {
            let parent = name(&id);
            let list = all_pages(Some(limit), |page_size, page_token| {
                let mut c = c.clone();
                let req = pb::ListWebhookDeliveriesRequest { parent: parent.clone(), page_size, page_token };
                async move {
                    let r = c.list_webhook_deliveries(req).await?.into_inner();
                    Ok((r.webhook_deliveries, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &list)?;
            return Ok(());
        }
        WebhookCommand::Redeliver { id, delivery } => {
            let req = pb::RedeliverWebhookRequest { name: format!("{}/deliveries/{delivery}", name(&id)), request_id: s.request_id() };
            let d = c.redeliver_webhook(req).await?.into_inner();
            output::one(out, s.format, &d)?;
            return Ok(());
        }
    };
    output::one(out, s.format, &reply)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn the_secret_never_comes_from_a_flag() {
        let parse = |args: &[&str]| crate::Cli::try_parse_from([&["ferry", "webhook", "create", "http://h/x"], args].concat());
        assert!(parse(&["--secret", "0123456789abcdef"]).is_err());
        assert!(parse(&["--secret-file", "s.txt"]).is_ok());
        assert!(parse(&["--secret-file", "s.txt", "--secret-stdin"]).is_err(), "one source only");
        assert!(parse(&["--event", "sync_job.paused", "--env", "dev", "--secret-stdin"]).is_ok());
        let update = crate::Cli::try_parse_from(["ferry", "webhook", "update", "ops", "--enable", "--disable"]);
        assert!(update.is_err(), "enable or disable");
    }
}
