//! Builds a plan's items by merge-joining the source's and the recipient's key manifests
//! (both in (kind, key) byte order) in constant memory: one manifest chunk per side and
//! a few batches of items, written to the engine database as the join advances.
//! Missing dependencies (G12) are checked per batch with the registry's LookupKeys.

use std::cmp::Ordering;
use std::collections::HashSet;

use sea_orm::DatabaseConnection;

use crate::domain::rules::{classify, manifest_order};
use crate::domain::{Counts, GroupName, Kind, ManifestEntry, Outcome, PlanId, PlanItem, SEQ_STRIDE, Selection};
use crate::error::{Error, Result};
use crate::registry::{Manifest, Registry};
use crate::store;

/// Items written per batch; delivered references checked per batch.
const BATCH_ITEMS: usize = 5000;
const BATCH_REFS: usize = 10_000;

/// What planning found: counts and the revisions the manifests were read at.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    pub counts: Counts,
    pub source_revision: i64,
    pub recipient_revision: i64,
}

struct Batch {
    items: Vec<PlanItem>,
    /// Indexes into `items` of delivered entities (CREATE, LINK) with references.
    delivering: Vec<(usize, Vec<(Kind, String)>)>,
    refs: usize,
}

impl Batch {
    fn new() -> Self {
        Self { items: Vec::with_capacity(BATCH_ITEMS), delivering: Vec::new(), refs: 0 }
    }
}

/// What writing a plan's batches needs.
#[derive(Clone, Copy)]
struct Planning<'a> {
    registry: &'a Registry,
    db: &'a DatabaseConnection,
    plan: &'a PlanId,
    source: &'a GroupName,
    recipient: Option<&'a GroupName>,
    selection: &'a Selection,
}

/// Plans `source` into `recipient` (`None`: a clone into a group that does not exist yet),
/// writing the items under `plan`. Reading the manifests and writing batches overlap: the
/// join fills a batch while [`WRITING`] batches have their references looked up and their
/// items written and one more waits, so memory stays at four batches.
pub async fn build(
    registry: &Registry,
    db: &DatabaseConnection,
    plan: &PlanId,
    source: &GroupName,
    recipient: Option<&GroupName>,
    selection: &Selection,
) -> Result<Built> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(1);
    let write = write_batches(Planning { registry, db, plan, source, recipient, selection }, rx);
    let (built, missing) = futures::future::try_join(join(registry, source, recipient, selection, tx), write).await?;
    let mut counts = built.counts;
    counts.missing_dependencies += missing;
    if counts.source_entries + counts.missing_dependencies >= ferry_kit::db::ANALYZE_AFTER_ROWS {
        // Apply pages through these items next.
        ferry_kit::db::analyze(db, "plan_items").await?;
    }
    Ok(Built { counts, ..built })
}

/// The merge-join: classifies every source entry and hands the items over in batches.
async fn join(
    registry: &Registry,
    source: &GroupName,
    recipient: Option<&GroupName>,
    selection: &Selection,
    tx: tokio::sync::mpsc::Sender<Batch>,
) -> Result<Built> {
    let mut src = registry.manifest(source, selection).await?;
    let mut rec = match recipient {
        Some(r) => Some(registry.manifest(r, selection).await?),
        None => None,
    };
    let mut counts = Counts::default();
    let mut batch = Batch::new();
    let mut previous: Option<ManifestEntry> = None;
    let mut n: i64 = 0;
    while let Some(s) = src.next().await? {
        if previous.as_ref().is_some_and(|p| manifest_order(p, &s) != Ordering::Less) {
            return Err(Error::Internal("source manifest is not in (kind, key) order".into()));
        }
        let matched = match rec.as_mut() {
            Some(r) => advance(r, &s).await?,
            None => None,
        };
        let outcome = classify(&s, matched.as_ref());
        counts.source_entries += 1;
        counts.add(outcome);
        if matches!(outcome, Outcome::Create | Outcome::Link) && !s.references.is_empty() {
            batch.refs += s.references.len();
            batch.delivering.push((batch.items.len(), s.references.clone()));
        }
        batch.items.push(PlanItem {
            seq: n * SEQ_STRIDE,
            kind: s.kind,
            key: s.key.clone(),
            outcome,
            sharing: s.sharing,
            source_entity_id: s.entity_id,
            recipient_entity_id: matched.as_ref().map(|m| m.entity_id).unwrap_or_default(),
            source_hash: s.content_hash.clone(),
            recipient_hash: matched.map(|m| m.content_hash).unwrap_or_default(),
            missing: None,
        });
        n += 1;
        previous = Some(s);
        if batch.items.len() >= BATCH_ITEMS || batch.refs >= BATCH_REFS {
            // A closed channel means the writer failed: its error is the one reported.
            if tx.send(std::mem::replace(&mut batch, Batch::new())).await.is_err() {
                break;
            }
        }
    }
    if !batch.items.is_empty() {
        let _ = tx.send(batch).await;
    }
    Ok(Built { counts, source_revision: src.revision(), recipient_revision: rec.map(|r| r.revision()).unwrap_or(0) })
}

/// Batches written at once: each on a connection of its own, so one batch's statement
/// does not wait for the previous one's.
const WRITING: usize = 2;

/// Writes the batches as they come; returns how many missing dependencies it found.
async fn write_batches(p: Planning<'_>, mut rx: tokio::sync::mpsc::Receiver<Batch>) -> Result<i64> {
    use futures::StreamExt;
    let mut missing = 0;
    let mut writing = futures::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            batch = rx.recv(), if writing.len() < WRITING => match batch {
                Some(batch) => writing.push(flush(p, batch)),
                None => break,
            },
            Some(done) = writing.next() => missing += done?,
        }
    }
    while let Some(done) = writing.next().await {
        missing += done?;
    }
    Ok(missing)
}

/// A manifest being read in order (the registry's stream, or a list in tests).
pub(crate) trait EntryCursor {
    async fn peek(&mut self) -> Result<Option<&ManifestEntry>>;
    async fn next(&mut self) -> Result<Option<ManifestEntry>>;
}

impl EntryCursor for Manifest {
    async fn peek(&mut self) -> Result<Option<&ManifestEntry>> {
        Manifest::peek(self).await
    }
    async fn next(&mut self) -> Result<Option<ManifestEntry>> {
        Manifest::next(self).await
    }
}

/// Moves the recipient's manifest up to `s` and returns its entry under the same key.
async fn advance<C: EntryCursor>(rec: &mut C, s: &ManifestEntry) -> Result<Option<ManifestEntry>> {
    loop {
        let order = match rec.peek().await? {
            Some(r) => manifest_order(r, s),
            None => return Ok(None),
        };
        match order {
            Ordering::Less => {
                rec.next().await?;
            }
            Ordering::Equal => return rec.next().await,
            Ordering::Greater => return Ok(None),
        }
    }
}

/// Finds the batch's dangling references and writes its items; returns how many
/// references dangle. A reference of a delivered entity dangles unless the recipient
/// holds its key, or the source holds it inside the selection (then this plan delivers
/// it too).
async fn flush(p: Planning<'_>, batch: Batch) -> Result<i64> {
    let Planning { registry, db, plan, source, recipient, selection } = p;
    let mut missing_items = Vec::new();
    if !batch.delivering.is_empty() {
        let mut unique: Vec<(Kind, String)> =
            batch.delivering.iter().flat_map(|(_, refs)| refs.iter().cloned()).collect::<HashSet<_>>().into_iter().collect();
        unique.sort();
        if let Some(r) = recipient {
            let present = registry.lookup(r, &unique).await?;
            unique = unique.into_iter().zip(present).filter(|(_, p)| !p).map(|(k, _)| k).collect();
        }
        let (in_selection, outside): (Vec<_>, Vec<_>) = unique.into_iter().partition(|(k, key)| selection.contains(*k, key));
        let present = registry.lookup(source, &in_selection).await?;
        let mut dangling: HashSet<(Kind, String)> = outside.into_iter().collect();
        dangling.extend(in_selection.into_iter().zip(present).filter(|(_, p)| !p).map(|(k, _)| k));
        for (index, refs) in &batch.delivering {
            let item = &batch.items[*index];
            for (i, r) in refs.iter().enumerate() {
                if dangling.contains(r) {
                    missing_items.push(PlanItem {
                        seq: item.seq + 1 + i as i64,
                        outcome: Outcome::MissingDependency,
                        recipient_entity_id: 0,
                        recipient_hash: String::new(),
                        missing: Some(r.clone()),
                        ..item.clone()
                    });
                }
            }
        }
    }
    store::plans::write_items(db, plan, &[&batch.items, &missing_items]).await?;
    Ok(missing_items.len() as i64)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};

    use proptest::prelude::*;

    use super::*;
    use crate::domain::Sharing;

    impl EntryCursor for VecDeque<ManifestEntry> {
        async fn peek(&mut self) -> Result<Option<&ManifestEntry>> {
            Ok(self.front())
        }
        async fn next(&mut self) -> Result<Option<ManifestEntry>> {
            Ok(self.pop_front())
        }
    }

    fn manifest(entries: Vec<(i32, String, u8, bool)>, base: i64) -> Vec<ManifestEntry> {
        let mut out: Vec<ManifestEntry> = entries
            .into_iter()
            .enumerate()
            .map(|(i, (k, key, hash, shared))| ManifestEntry {
                kind: Kind::from_number(k).unwrap_or(Kind::Lookup),
                key,
                content_hash: format!("h{hash}"),
                sharing: if shared { Sharing::Shared } else { Sharing::Duplicated },
                entity_id: base + i as i64,
                references: vec![],
            })
            .collect();
        out.sort_by(manifest_order);
        out.dedup_by(|a, b| manifest_order(a, b) == Ordering::Equal);
        out
    }

    fn entries() -> impl Strategy<Value = Vec<(i32, String, u8, bool)>> {
        proptest::collection::vec((1i32..=3, "[a-cA-C\\x{e9}_]{1,3}", 0u8..3, any::<bool>()), 0..60)
    }

    proptest! {
        /// The streaming merge-join classifies every source key exactly as a lookup in
        /// the whole recipient would (G6), whatever the keys' byte order.
        #[test]
        fn merge_join_matches_a_full_lookup(src in entries(), rec in entries()) {
            let src = manifest(src, 1);
            let rec = manifest(rec, 1000);
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let joined: Vec<Outcome> = rt.block_on(async {
                let mut cursor: VecDeque<ManifestEntry> = rec.iter().cloned().collect();
                let mut out = Vec::new();
                for s in &src {
                    let m = advance(&mut cursor, s).await.expect("advance");
                    out.push(classify(s, m.as_ref()));
                }
                out
            });
            let by_key: HashMap<(Kind, &str), &ManifestEntry> = rec.iter().map(|e| ((e.kind, e.key.as_str()), e)).collect();
            let expected: Vec<Outcome> = src.iter().map(|s| classify(s, by_key.get(&(s.kind, s.key.as_str())).copied())).collect();
            prop_assert_eq!(joined, expected);
        }
    }
}
