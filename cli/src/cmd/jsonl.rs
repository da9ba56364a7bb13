//! `ferry entity import` and `ferry entity export`: a group's entities as JSON Lines.
//!
//! Import streams batches through `ImportEntities` while a reader thread parses the file,
//! so memory stays flat however large the file is. The registry applies an import all or
//! nothing; when a line turns out to be bad half-way, the stream ends with a message the
//! registry must refuse (it names a different group), so nothing already sent is kept.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferry_proto::registry::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;

use crate::client::Session;
use crate::output;
use crate::parse::{self, kind_label, sharing_label};
use crate::render::ref_json;

/// Entities per streamed message.
const BATCH: usize = 1000;
/// A message is also sent once its payloads reach this size (the registry takes 64 MiB).
const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// A parent the registry cannot accept: sent to abort an import.
const ABORT_PARENT: &str = "-";

/// One line of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    kind: String,
    key: String,
    #[serde(default)]
    sharing: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    references: Vec<RefLine>,
}

/// A reference: `"lookup:k"` or `{"kind": "lookup", "key": "k"}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RefLine {
    Text(String),
    Pair { kind: String, key: String },
}

fn entity_of(text: &str) -> anyhow::Result<pb::Entity> {
    let line: Line = serde_json::from_str(text)?;
    let references = line
        .references
        .into_iter()
        .map(|r| match r {
            RefLine::Text(t) => parse::entity_ref(&t),
            RefLine::Pair { kind, key } => Ok(ferry_proto::common::v1::EntityRef { kind: parse::kind(&kind)? as i32, key }),
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(anyhow::Error::msg)?;
    Ok(pb::Entity {
        kind: parse::kind(&line.kind).map_err(anyhow::Error::msg)? as i32,
        key: line.key,
        sharing: match line.sharing {
            Some(s) => parse::sharing(&s).map_err(anyhow::Error::msg)? as i32,
            None => 0,
        },
        payload_json: line.payload.map(|p| p.to_string()).unwrap_or_default(),
        references,
        ..Default::default()
    })
}

type Batch = anyhow::Result<Vec<pb::Entity>>;

/// Parses `reader` line by line into batches; the first bad line ends it with an error.
fn read_batches(reader: Box<dyn BufRead + Send>, origin: &Path, tx: &mpsc::Sender<Batch>) {
    let mut batch = Vec::new();
    let mut bytes = 0;
    for (i, line) in reader.lines().enumerate() {
        let at = || format!("{} line {}", origin.display(), i + 1);
        let parsed = line.with_context(|| format!("reading {}", at())).and_then(|l| match l.trim() {
            "" => Ok(None),
            t => entity_of(t).with_context(at).map(Some),
        });
        match parsed {
            Ok(None) => {}
            Ok(Some(e)) => {
                bytes += e.payload_json.len() + e.key.len();
                batch.push(e);
                if batch.len() >= BATCH || bytes >= BATCH_BYTES {
                    bytes = 0;
                    if tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                        return; // the call ended; nobody reads on
                    }
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}

/// The messages of one import, fed by the reader thread.
struct Feed {
    rx: mpsc::Receiver<Batch>,
    /// Parent and request id, sent with the first message only.
    first: Option<(String, String)>,
    failure: Option<oneshot::Sender<anyhow::Error>>,
    done: bool,
}

impl Feed {
    async fn next(mut self) -> Option<(pb::ImportEntitiesRequest, Feed)> {
        if self.done {
            return None;
        }
        let msg = match self.rx.recv().await {
            Some(Ok(entities)) => {
                let (parent, request_id) = self.first.take().unwrap_or_default();
                pb::ImportEntitiesRequest { parent, entities, request_id }
            }
            Some(Err(e)) => {
                self.done = true;
                if let Some(f) = self.failure.take() {
                    let _ = f.send(e);
                }
                pb::ImportEntitiesRequest { parent: ABORT_PARENT.to_owned(), ..Default::default() }
            }
            None => {
                self.done = true;
                // An empty file still names the group, so the import succeeds with 0.
                let (parent, request_id) = self.first.take()?;
                pb::ImportEntitiesRequest { parent, entities: Vec::new(), request_id }
            }
        };
        Some((msg, self))
    }
}

pub async fn import(s: &Session, parent: String, file: &Path, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead + Send> = if file == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        Box::new(BufReader::new(f))
    };
    let (tx, rx) = mpsc::channel(2);
    let origin = PathBuf::from(file);
    // A plain thread, not spawn_blocking: a stalled stdin must not hold up runtime exit.
    std::thread::Builder::new()
        .name("ferry-import".into())
        .spawn(move || read_batches(reader, &origin, &tx))
        .context("starting the import reader")?;
    let (failure, mut failed) = oneshot::channel();
    let feed = Feed { rx, first: Some((parent.clone(), s.request_id())), failure: Some(failure), done: false };
    let stream = futures::stream::unfold(feed, Feed::next);
    let result = s.client().import_entities(stream).await;
    if let Ok(e) = failed.try_recv() {
        return Err(e.context("nothing was imported"));
    }
    let r = result?.into_inner();
    output::summary(
        out,
        s.format,
        &[("imported into", parent.clone()), ("created", r.created.to_string()), ("revision", r.revision.to_string())],
        json!({ "group": parent, "created": r.created, "revision": r.revision }),
    )?;
    Ok(())
}

pub async fn export(s: &Session, parent: String, kinds: Vec<i32>, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let req = pb::ExportEntitiesRequest { parent, kinds };
    let mut stream = s.client().export_entities(req).await?.into_inner();
    while let Some(msg) = stream.next().await {
        for e in msg?.entities {
            let line = json!({
                "kind": kind_label(e.kind),
                "key": e.key,
                "sharing": sharing_label(e.sharing),
                "payload": parse::json_value(&e.payload_json),
                "references": e.references.iter().map(ref_json).collect::<Vec<_>>(),
            });
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_either_reference_form() {
        let e = entity_of(
            r#"{"kind":"table","key":"t1","sharing":"DUPLICATED","payload":{"a":1},
                "references":["lookup:l1",{"kind":"DATA_SOURCE","key":"d"}]}"#,
        )
        .unwrap();
        assert_eq!(e.kind, ferry_proto::common::v1::EntityKind::Table as i32);
        assert_eq!(e.payload_json, r#"{"a":1}"#);
        assert_eq!(e.references.len(), 2);
        assert!(entity_of(r#"{"kind":"table","key":"t","payloads":{}}"#).is_err());
        assert!(entity_of(r#"{"kind":"tables","key":"t"}"#).is_err());
    }
}
