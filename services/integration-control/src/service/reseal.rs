//! Sealing-key rotation: which keys the stored values use, the start-up check that each of
//! them is configured, the first storing of the fingerprint keys, and the reseal that moves
//! every sealed value of every source (`store::sealed::SOURCES`) to the newest key.

use std::collections::BTreeMap;

use ferry_kit::idempotency::{self, Replay};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::{Deserialize, Serialize};

use super::Control;
use super::snapshots::reseal_document;
use crate::domain::RequestKey;
use crate::domain::secrets::{HmacKeys, Sealed, Sealer};
use crate::error::{Error, Result};
use crate::store::sealed::{self, Payload, SOURCES, SealedRow, SealedTable};

/// How many stored values of one kind a key seals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub key_id: String,
    pub kind: String,
    pub count: i64,
}

/// What a reseal did (or, validating only, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealReport {
    /// The key everything is resealed under.
    pub newest: String,
    /// Per kind, every source in order: values resealed (would be, validating only).
    pub resealed: Vec<(String, i64)>,
    /// Stored values per key and kind afterwards (now, validating only).
    pub in_use: Vec<KeyUse>,
}

/// Every key id stored values use, per kind: one grouped count per source.
pub async fn key_usage<C: ConnectionTrait>(db: &C) -> Result<Vec<KeyUse>> {
    let mut out = Vec::new();
    for t in SOURCES {
        for (key_id, count) in sealed::usage(db, t).await? {
            out.push(KeyUse { key_id, kind: t.kind.to_owned(), count });
        }
    }
    Ok(out)
}

fn config(e: impl std::fmt::Display) -> ferry_kit::Error {
    ferry_kit::Error::Config(e.to_string())
}

/// At start-up: refuses (a Config error naming each key id and what it seals) when a
/// stored value is sealed under a key `sealer` lacks, then gives `sealer` the stored
/// fingerprint keys, storing its own first if there are none yet (a new database, or one
/// from before they were stored: its fingerprints came from the `default` key).
pub async fn prepare(db: &DatabaseConnection, sealer: Sealer, key_file: &std::path::Path) -> Result<Sealer, ferry_kit::Error> {
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in key_usage(db).await.map_err(config)? {
        if !sealer.has(&u.key_id) {
            missing.entry(u.key_id).or_default().push(format!("{} {}", u.count, u.kind));
        }
    }
    if !missing.is_empty() {
        let each: Vec<String> = missing.iter().map(|(id, uses)| format!("sealing key {id:?} ({})", uses.join(", "))).collect();
        return Err(config(format!(
            "stored values are sealed under {} not configured in {} (FERRY_SEALING_KEY_FILE); add the key's `ID HEX` line back, \
             run `ferry integration reseal`, and remove it only when the reseal reports it no longer in use",
            each.join(", "),
            key_file.display()
        )));
    }
    if sealed::fingerprint_keys(db).await?.is_none() {
        sealed::init_fingerprint_keys(db, &sealer.seal_bytes(&sealer.hmac_keys().to_bytes())).await?;
    }
    let stored = sealed::fingerprint_keys(db).await?.ok_or_else(|| config("the fingerprint keys were not stored"))?;
    let opened = sealer.open(&stored).and_then(|b| HmacKeys::from_bytes(&b));
    let hmac = opened.map_err(|_| config(format!("the stored fingerprint keys do not open with sealing key {:?}", stored.key_id)))?;
    Ok(sealer.with_hmac_keys(hmac))
}

/// `row` resealed under the newest key, in memory.
fn reseal_row(sealer: &Sealer, t: &SealedTable, row: &SealedRow) -> Result<SealedRow> {
    let name = format!("{} {}", t.kind, row.key.join("/"));
    let value = match &row.value {
        Payload::Blob(bytes) => {
            let resealed = sealer
                .reseal(&Sealed { key_id: row.key_id.clone(), bytes: bytes.clone() })
                .map_err(|_| Error::DataLoss(format!("{name} does not open with sealing key {:?}; it is damaged", row.key_id)))?;
            Payload::Blob(resealed.bytes)
        }
        Payload::Document { contents, checksum } => {
            let (contents, checksum) = reseal_document(sealer, &name, &row.key_id, contents, checksum)?;
            Payload::Document { contents, checksum }
        }
    };
    Ok(SealedRow { key: row.key.clone(), key_id: sealer.newest().to_owned(), value })
}

impl Control {
    /// Reseals every stored value not under the newest key, source by source, a batch per
    /// transaction (read a keyset page, reseal it in memory, write it back in one
    /// statement). Safe to run again, and alongside other writes: a value changed since its
    /// batch was read is left as it is (and picked up by the next run). With
    /// `validate_only` nothing is written: `resealed` counts what would be.
    pub async fn reseal(&self, key: Option<RequestKey>, validate_only: bool) -> Result<ResealReport> {
        const M: &str = "ResealCredentials";
        let newest = self.sealer.newest().to_owned();
        if let Some(k) = &key {
            match idempotency::lookup(&self.db, &k.request_id, M, &k.fingerprint).await? {
                Replay::Done(bytes) => return Ok(serde_json::from_slice(&bytes)?),
                Replay::Mismatch => return Err(Error::RequestIdReused),
                Replay::Fresh => {}
            }
        }
        if validate_only {
            let in_use = key_usage(&self.db).await?;
            let resealed = SOURCES
                .iter()
                .map(|t| (t.kind.to_owned(), in_use.iter().filter(|u| u.kind == t.kind && u.key_id != newest).map(|u| u.count).sum()))
                .collect();
            return Ok(ResealReport { newest, resealed, in_use });
        }
        let mut resealed = Vec::new();
        for t in SOURCES {
            resealed.push((t.kind.to_owned(), self.reseal_source(t).await?));
        }
        // The reply is recorded (and audited) under the request id once every batch is in.
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let in_use = key_usage(txn).await?;
                Ok(ResealReport { newest, resealed, in_use })
            })
        })
        .await
    }

    async fn reseal_source(&self, t: &SealedTable) -> Result<i64> {
        let mut after: Option<Vec<String>> = None;
        let mut count = 0;
        loop {
            let txn = ferry_kit::db::begin(&self.db).await?;
            let rows = sealed::stale(&txn, t, self.sealer.newest(), after.as_deref()).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.key.clone());
            let pairs = rows.iter().map(|r| Ok((r.clone(), reseal_row(&self.sealer, t, r)?))).collect::<Result<Vec<_>>>()?;
            count += sealed::rewrite(&txn, t, &pairs).await? as i64;
            txn.commit().await?;
            if (rows.len() as u64) < t.batch {
                break;
            }
        }
        tracing::info!(kind = t.kind, resealed = count, newest = self.sealer.newest(), "resealed");
        Ok(count)
    }
}
