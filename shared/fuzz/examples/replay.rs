//! Replays hand-written requests against a fresh, seeded suite, to cut a bad call found by
//! the fuzzer down to a minimal reproduction:
//!
//! ```text
//! cargo run -p ferry-fuzz --example replay -- calls.jsonl [sqlite|postgres]
//! ```
//!
//! Each line of the file is one call, in protobuf JSON:
//! `{"method": "RegistryService/GetGroup", "as": "admin", "request": {"name": "environments/prod/groups/test"}}`;
//! a client stream gives `"messages": [...]` instead of `"request"`. `"as"` is admin
//! (default), operator, viewer or nobody. `<<w*5000>>` in a line stands for `w` repeated
//! 5000 times. Lines starting with `#` are skipped. PostgreSQL uses `FERRY_TEST_PG_URL`.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use ferry_fuzz::call::{Caller, StreamRead, Who};
use ferry_fuzz::{Databases, Suite};
use ferry_testkit::{Backend, database};
use prost::Message;
use prost_reflect::DynamicMessage;

/// `<<x*N>>` → x repeated N times.
fn expand(line: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("<<") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(">>").context("<< without >>")? + start;
        let (piece, n) = rest[start + 2..end].rsplit_once('*').context("<<piece*count>>")?;
        out.push_str(&piece.repeat(n.parse()?));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_filter();
    let _ = tracing_subscriber_init(&filter);
    let mut args = std::env::args().skip(1);
    let file = args.next().context("usage: replay FILE [sqlite|postgres]")?;
    let backend = match args.next().as_deref() {
        None | Some("sqlite") => Backend::Sqlite,
        Some("postgres") => Backend::Postgres,
        Some(other) => bail!("backend {other:?}: sqlite or postgres"),
    };
    let dir = tempfile::tempdir()?;
    let mut urls = Vec::new();
    for f in ["registry.db", "merge.db", "integration.db", "refresh.db"] {
        urls.push(database(backend, dir.path(), f).await.context("FERRY_TEST_PG_URL is not set")?);
    }
    let [registry, merge, integration, refresh]: [String; 4] = urls.try_into().map_err(|_| anyhow::anyhow!("four databases"))?;
    let suite = Suite::start(&Databases { registry, merge, integration, refresh }, dir.path()).await?;
    let descriptors = ferry_fuzz::methods::pool()?;
    let methods = ferry_fuzz::methods::methods(&descriptors);
    let pool = Arc::new(ferry_fuzz::pool::NamePool::new());
    ferry_fuzz::seed::seed(|s| suite.url(s).map(str::to_owned), &suite.tokens.admin, &pool, &descriptors).await?;
    let caller = Caller::new(&suite.endpoints, suite.tokens.clone(), Duration::from_secs(10))?;
    let read = StreamRead { max_messages: 5, max_time: Duration::from_secs(2) };

    for (n, line) in std::fs::read_to_string(&file)?.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let call: serde_json::Value = serde_json::from_str(&expand(line)?).with_context(|| format!("line {}", n + 1))?;
        let name = call["method"].as_str().context("method")?;
        let method = methods.iter().find(|m| m.short == name || m.path == name).with_context(|| format!("no method {name}"))?;
        let who = match call["as"].as_str().unwrap_or("admin") {
            "admin" => Who::Admin,
            "operator" => Who::Operator,
            "viewer" => Who::Viewer,
            _ => Who::Nobody,
        };
        let bodies: Vec<serde_json::Value> = match (&call["messages"], &call["request"]) {
            (serde_json::Value::Array(ms), _) => ms.clone(),
            (_, r) if !r.is_null() => vec![r.clone()],
            _ => vec![serde_json::json!({})],
        };
        let mut encoded = Vec::new();
        for b in bodies {
            let msg = DynamicMessage::deserialize(method.input.clone(), b).with_context(|| format!("line {}: request", n + 1))?;
            encoded.push(Bytes::from(msg.encode_to_vec()));
        }
        let sizes: Vec<usize> = encoded.iter().map(|b| b.len()).collect();
        let outcome = caller.call(method, encoded, who, read).await;
        let shown: String = outcome.message.chars().take(400).collect();
        println!(
            "{:>3} {name} ({sizes:?} bytes) -> {} [{} replies, message {} bytes]: {shown}",
            n + 1,
            ferry_fuzz::report::code_name(outcome.code),
            outcome.replies.len(),
            outcome.message.len()
        );
        for reply in outcome.replies.iter().take(2) {
            if let Ok(m) = DynamicMessage::decode(method.output.clone(), reply.as_ref()) {
                let text = ferry_fuzz::render::render(&m, 600);
                println!("      reply: {text}");
            }
        }
    }
    let serving = suite.all_serving().await;
    println!("health: {}", if serving { "all SERVING" } else { "NOT all SERVING" });
    suite.shutdown().await;
    Ok(())
}

fn tracing_filter() -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| ferry_fuzz::LOG_FILTER.into())
}

fn tracing_subscriber_init(filter: &str) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("{e}"))
}
