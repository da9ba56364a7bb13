//! Where sealed values are stored ([`SOURCES`]), and the set-based queries the start-up
//! check and the reseal run over each: how many values each key id seals, a keyset page
//! of the values not under the newest key, and one `UPDATE … FROM (VALUES …)` writing a
//! resealed page back. A table of sealed values joins by adding its entry to [`SOURCES`]
//! (webhook subscription secrets did): a key id column beside the sealed column is all the
//! queries need.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, exec, one};
use crate::domain::secrets::Sealed;

/// What a source's sealed column holds.
#[derive(Debug, Clone, Copy)]
pub enum Form {
    /// One sealed value (nonce||ciphertext).
    Blob,
    /// A snapshot document: JSON holding sealed values, all under the row's key id, and
    /// its checksum column.
    Document { checksum: &'static str },
}

/// A table holding sealed values.
#[derive(Debug)]
pub struct SealedTable {
    /// How replies and errors name these values.
    pub kind: &'static str,
    pub table: &'static str,
    /// Its primary key (text columns), the keyset order of a reseal.
    pub key: &'static [&'static str],
    /// The sealed column (or document).
    pub value: &'static str,
    /// The id of the key the value is sealed under; NULL when there is no value.
    pub key_id: &'static str,
    pub form: Form,
    /// Rows a reseal reads, reseals and writes back per transaction.
    pub batch: u64,
}

pub const INTEGRATION_CREDENTIALS: SealedTable = SealedTable {
    kind: "integration_credentials",
    table: "integrations",
    key: &["env", "id"],
    value: "sealed_key",
    key_id: "sealing_key_id",
    form: Form::Blob,
    batch: 500,
};

/// Snapshot documents are large: a few per transaction.
pub const SNAPSHOTS: SealedTable = SealedTable {
    kind: "snapshots",
    table: "snapshots",
    key: &["env", "id"],
    value: "contents",
    key_id: "sealing_key_id",
    form: Form::Document { checksum: "checksum" },
    batch: 16,
};

pub const FINGERPRINT_KEYS: SealedTable = SealedTable {
    kind: "fingerprint_keys",
    table: "fingerprint_keys",
    key: &["name"],
    value: "sealed",
    key_id: "sealing_key_id",
    form: Form::Blob,
    batch: 500,
};

pub const WEBHOOK_SECRETS: SealedTable = SealedTable {
    kind: "webhook_secrets",
    table: "webhook_subscriptions",
    key: &["id"],
    value: "sealed_secret",
    key_id: "sealing_key_id",
    form: Form::Blob,
    batch: 500,
};

/// Every place a sealed value is stored.
pub const SOURCES: &[&SealedTable] = &[&INTEGRATION_CREDENTIALS, &SNAPSHOTS, &FINGERPRINT_KEYS, &WEBHOOK_SECRETS];

/// A stored value as the reseal reads and writes it.
#[derive(Debug, Clone)]
pub enum Payload {
    Blob(Vec<u8>),
    Document { contents: String, checksum: String },
}

/// A row of a source: its primary key, the key id and the value.
#[derive(Debug, Clone)]
pub struct SealedRow {
    pub key: Vec<String>,
    pub key_id: String,
    pub value: Payload,
}

impl SealedTable {
    /// The columns a reseal writes (besides the key id), in [`Payload::values`]' order.
    fn value_columns(&self) -> Vec<&'static str> {
        match self.form {
            Form::Blob => vec![self.value],
            Form::Document { checksum } => vec![self.value, checksum],
        }
    }

    /// What a write-back compares to leave a row alone that changed since it was read.
    fn guard(&self) -> &'static str {
        match self.form {
            Form::Blob => self.value,
            Form::Document { checksum } => checksum,
        }
    }

    fn read(&self, row: &QueryResult) -> Result<SealedRow, DbErr> {
        let n = self.key.len();
        let key = (0..n).map(|i| col(row, i)).collect::<Result<_, _>>()?;
        let value = match self.form {
            Form::Blob => Payload::Blob(col(row, n + 1)?),
            Form::Document { .. } => Payload::Document { contents: col(row, n + 1)?, checksum: col(row, n + 2)? },
        };
        Ok(SealedRow { key, key_id: col(row, n)?, value })
    }
}

impl Payload {
    fn values(&self) -> Vec<Value> {
        match self {
            Payload::Blob(b) => vec![Value::Bytes(Some(b.clone()))],
            Payload::Document { contents, checksum } => vec![contents.as_str().into(), checksum.as_str().into()],
        }
    }

    fn guard(&self) -> Value {
        match self {
            Payload::Blob(b) => Value::Bytes(Some(b.clone())),
            Payload::Document { checksum, .. } => checksum.as_str().into(),
        }
    }
}

/// How many values of `t` each key id seals, by key id.
pub async fn usage<C: ConnectionTrait>(db: &C, t: &SealedTable) -> Result<Vec<(String, i64)>, DbErr> {
    let (table, k) = (t.table, t.key_id);
    let rows = all(db, &format!("SELECT {k}, COUNT(*) FROM {table} WHERE {k} IS NOT NULL GROUP BY {k} ORDER BY {k}"), vec![]).await?;
    rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
}

/// Up to `t.batch` rows of `t` sealed under a key other than `newest`, in primary-key order
/// after `after`.
pub async fn stale<C: ConnectionTrait>(db: &C, t: &SealedTable, newest: &str, after: Option<&[String]>) -> Result<Vec<SealedRow>, DbErr> {
    let key = t.key.join(", ");
    let mut sql =
        format!("SELECT {key}, {}, {} FROM {} WHERE {0} IS NOT NULL AND {0} <> ?", t.key_id, t.value_columns().join(", "), t.table);
    let mut values: Vec<Value> = vec![newest.into()];
    if let Some(after) = after {
        sql.push_str(&format!(" AND ({key}) > ({})", ferry_kit::db::placeholders(after.len())));
        values.extend(after.iter().map(|k| Value::from(k.as_str())));
    }
    sql.push_str(&format!(" ORDER BY {key} LIMIT ?"));
    values.push((t.batch as i64).into());
    all(db, &sql, values).await?.iter().map(|r| t.read(r)).collect()
}

/// Writes resealed rows back in one statement: each `(before, after)` pair by primary key,
/// only where the row still holds `before` (a credential rotated meanwhile is kept).
/// Returns how many rows it wrote.
pub async fn rewrite<C: ConnectionTrait>(db: &C, t: &SealedTable, rows: &[(SealedRow, SealedRow)]) -> Result<u64, DbErr> {
    let Some((first, _)) = rows.first() else { return Ok(0) };
    let n = first.key.len();
    let set = t.value_columns();
    let width = n + set.len() + 2;
    let mut values = Vec::with_capacity(rows.len() * width);
    for (before, after) in rows {
        values.extend(after.key.iter().map(|k| Value::from(k.as_str())));
        values.extend(after.value.values());
        values.push(after.key_id.as_str().into());
        values.push(before.value.guard());
    }
    let v = |i: usize| format!("v.column{}", i + 1);
    let assignments: Vec<String> = set
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", v(n + i)))
        .chain([format!("{} = {}", t.key_id, v(n + set.len()))])
        .collect();
    let matches: Vec<String> = t.key.iter().enumerate().map(|(i, k)| format!("{}.{k} = {}", t.table, v(i))).collect();
    let tuple = format!("({})", ferry_kit::db::placeholders(width));
    let sql = format!(
        "UPDATE {table} SET {} FROM (VALUES {}) AS v WHERE {} AND {table}.{} = {}",
        assignments.join(", "),
        vec![tuple; rows.len()].join(", "),
        matches.join(" AND "),
        t.guard(),
        v(width - 1),
        table = t.table,
    );
    exec(db, &sql, values).await
}

/// The fingerprint keys' row in `fingerprint_keys`.
const HMAC_ROW: &str = "hmac";

/// The stored fingerprint keys, sealed, if any.
pub async fn fingerprint_keys<C: ConnectionTrait>(db: &C) -> Result<Option<Sealed>, DbErr> {
    let row = one(db, "SELECT sealed, sealing_key_id FROM fingerprint_keys WHERE name = ?", vec![HMAC_ROW.into()]).await?;
    row.map(|r| Ok(Sealed { bytes: col(&r, 0)?, key_id: col(&r, 1)? })).transpose()
}

/// Stores the fingerprint keys unless a replica starting at the same time already did.
pub async fn init_fingerprint_keys<C: ConnectionTrait>(db: &C, sealed: &Sealed) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO fingerprint_keys (name, sealed, sealing_key_id) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        vec![HMAC_ROW.into(), Value::Bytes(Some(sealed.bytes.clone())), sealed.key_id.as_str().into()],
    )
    .await?;
    Ok(())
}
