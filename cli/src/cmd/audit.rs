//! `ferry audit`: the services' audit logs — list as a table, export as JSON Lines (the
//! field names of Kubernetes audit events where they fit), verify the hash chains.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferry_kit::audit::{Event, Verifier, grpc::from_proto};
use ferry_proto::audit::v1 as pb;
use serde_json::{Value, json};

use crate::client::{ClientArgs, Service, Session, all_pages};
use crate::error::Exit;
use crate::output;

/// Every mutation of every service is in its service's audit log, hash-chained.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
    #[command(flatten)]
    client: ClientArgs,
}

/// Which events: every filter given must hold.
#[derive(Debug, Clone, Args)]
struct Filters {
    /// Only this service's log [default: all four, merged by time].
    #[arg(long, value_enum)]
    service: Option<Service>,
    /// Only events of this subject, or done on behalf of it.
    #[arg(long)]
    subject: Option<String>,
    /// Only events with a resource name starting with this (`environments/dev/`).
    #[arg(long)]
    resource_prefix: Option<String>,
    /// Only this method (`CreateEntity`, or the full `/package.Service/Method`).
    #[arg(long)]
    method: Option<String>,
    /// Only this outcome (`OK`, `PERMISSION_DENIED`, …).
    #[arg(long)]
    outcome: Option<String>,
    /// Only events of this run (`refreshRuns/…`, `promotionRuns/…`, `rollbackRuns/…`).
    #[arg(long)]
    run: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-12-04T10:00:00Z).
    #[arg(long)]
    since: Option<prost_types::Timestamp>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    until: Option<prost_types::Timestamp>,
    /// Stop after this many events per service.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List events as a table (-o json for JSON), oldest first.
    List(Filters),
    /// Export events as JSON Lines, one Kubernetes-style audit event per line.
    Export(Filters),
    /// Walk each service's whole chain and check every hash; names the first broken
    /// event. Exit status 4 when a chain is broken.
    Verify {
        /// Only this service's log [default: all four].
        #[arg(long, value_enum)]
        service: Option<Service>,
    },
}

fn services(one: Option<Service>) -> Vec<Service> {
    one.map_or_else(|| Service::ALL.to_vec(), |s| vec![s])
}

/// The events of `service` that pass `f`, oldest first.
async fn events(s: &Session, service: Service, f: &Filters) -> anyhow::Result<Vec<pb::AuditEvent>> {
    let client = s.audit(service)?;
    let list = all_pages(f.limit, |page_size, page_token| {
        let mut c = client.clone();
        let req = pb::ListAuditEventsRequest {
            page_size,
            page_token,
            start_time: f.since,
            end_time: f.until,
            subject: f.subject.clone().unwrap_or_default(),
            resource_prefix: f.resource_prefix.clone().unwrap_or_default(),
            method: f.method.clone().unwrap_or_default(),
            outcome: f.outcome.clone().unwrap_or_default(),
            start_sequence: 0,
            run: f.run.clone().unwrap_or_default(),
        };
        async move {
            let r = c.list_audit_events(req).await?.into_inner();
            Ok((r.audit_events, r.next_page_token))
        }
    });
    list.await.with_context(|| format!("the audit log of {}", service.name()))
}

/// The events of the services `f` names, merged by time.
async fn merged(s: &Session, f: &Filters) -> anyhow::Result<Vec<pb::AuditEvent>> {
    let mut all = Vec::new();
    for service in services(f.service) {
        all.extend(events(s, service, f).await?);
    }
    all.sort_by_key(|e| (e.time.map(|t| (t.seconds, t.nanos)), e.service.clone(), e.sequence));
    Ok(all)
}

fn time(e: &pb::AuditEvent) -> String {
    e.time.map(|t| t.to_string()).unwrap_or_default()
}

fn or_dash(text: &str) -> String {
    if text.is_empty() { "-".into() } else { text.to_owned() }
}

fn row(e: &pb::AuditEvent) -> Vec<String> {
    let method = e.method.rsplit('/').next().unwrap_or_default().to_owned();
    let run = if e.run.is_empty() {
        "-".to_owned()
    } else if e.step.is_empty() {
        e.run.clone()
    } else {
        format!("{} ({})", e.run, e.step)
    };
    vec![
        crate::render::when(e.time.as_ref()),
        format!("{}#{}", e.service, e.sequence),
        e.subject.clone(),
        or_dash(&e.on_behalf_of),
        method,
        or_dash(&output::truncate(&e.resources.join(" "), 60)),
        e.outcome.clone(),
        run,
    ]
}

/// The gRPC code number of a code name (UNKNOWN's 2 for a name that is none).
fn code_number(name: &str) -> i32 {
    (0..=16).find(|c| ferry_kit::status::code_name(tonic::Code::from_i32(*c)) == name).unwrap_or(2)
}

/// An event in the shape of a Kubernetes audit event (`audit.k8s.io/v1` field names).
pub fn k8s_json(e: &pb::AuditEvent) -> Value {
    let mut event = json!({
        "kind": "Event",
        "apiVersion": "audit.ferry.dev/v1",
        "level": "Metadata",
        "auditID": format!("{}/{}", e.service, e.sequence),
        "stage": "ResponseComplete",
        "requestURI": e.method,
        "verb": e.method.rsplit('/').next().unwrap_or_default(),
        "user": { "username": e.subject, "extra": { "credential": [e.credential] } },
        "objectRef": e.resources.first().map(|r| json!({ "name": r })),
        "responseStatus": { "code": code_number(&e.outcome), "status": e.outcome },
        "requestReceivedTimestamp": time(e),
        "stageTimestamp": time(e),
        "annotations": {
            "ferry.dev/service": e.service,
            "ferry.dev/sequence": e.sequence.to_string(),
            "ferry.dev/resources": e.resources.join(","),
            "ferry.dev/request-id": e.request_id,
            "ferry.dev/trace-id": e.trace_id,
            "ferry.dev/run": e.run,
            "ferry.dev/step": e.step,
            "ferry.dev/previous-hash": e.previous_hash,
            "ferry.dev/hash": e.hash,
        },
    });
    if !e.on_behalf_of.is_empty() {
        event["impersonatedUser"] = json!({ "username": e.on_behalf_of });
    }
    event
}

/// Walks `service`'s whole chain; `Ok(events checked)` or where it broke.
async fn verify(s: &Session, service: Service) -> anyhow::Result<Result<(u64, i64), ferry_kit::audit::Broken>> {
    let mut client = s.audit(service)?;
    let mut verifier = Verifier::default();
    let mut page_token = String::new();
    loop {
        let req = pb::ListAuditEventsRequest { page_size: 1000, page_token, ..Default::default() };
        let r = client.list_audit_events(req).await.with_context(|| format!("the audit log of {}", service.name()))?.into_inner();
        for e in &r.audit_events {
            let event: Event = from_proto(e);
            if let Err(broken) = verifier.check(&event) {
                return Ok(Err(broken));
            }
        }
        if r.next_page_token.is_empty() {
            return Ok(verifier.finish(r.head_sequence, &r.head_hash).map(|n| (n, r.head_sequence)));
        }
        page_token = r.next_page_token;
    }
}

pub async fn run(args: AuditArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        AuditCommand::List(f) => {
            let events = merged(&s, &f).await?;
            match s.format {
                output::Format::Table => output::table(
                    out,
                    &["TIME", "EVENT", "SUBJECT", "ON BEHALF OF", "METHOD", "RESOURCES", "OUTCOME", "RUN"],
                    events.iter().map(row),
                )?,
                output::Format::Json => output::json(out, &Value::Array(events.iter().map(k8s_json).collect()))?,
            }
        }
        AuditCommand::Export(f) => {
            for e in merged(&s, &f).await? {
                serde_json::to_writer(&mut *out, &k8s_json(&e))?;
                writeln!(out)?;
            }
        }
        AuditCommand::Verify { service } => {
            let mut broken = 0;
            for service in services(service) {
                match verify(&s, service).await? {
                    Ok((n, head)) => writeln!(out, "{}: chain intact, {n} events (head {head})", service.name())?,
                    Err(b) => {
                        broken += 1;
                        writeln!(out, "{}: chain BROKEN at event {}: {}", service.name(), b.sequence, b.reason)?;
                    }
                }
            }
            if broken > 0 {
                return Err(Exit { code: 4, message: String::new() }.into());
            }
        }
    }
    Ok(())
}
