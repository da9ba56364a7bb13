//! A run's journal: one row per operation a step made on another service (its request id
//! and its typed result as JSON), appended once, never rewritten. Loaded when a driver
//! takes a run; appended as operations complete.

use std::collections::HashMap;

use ferry_kit::db::now_micros;
use sea_orm::{ConnectionTrait, DbErr, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::store::{all, exec};

/// The journal of one run, as read.
#[derive(Debug, Default, Clone)]
pub struct Journal {
    entries: HashMap<(i32, String), String>,
}

impl Journal {
    pub async fn load<C: ConnectionTrait>(db: &C, run: &str) -> Result<Self, DbErr> {
        let rows = all(db, "SELECT step, op, result FROM journal WHERE run_id = ?", vec![run.into()]).await?;
        let mut entries = HashMap::with_capacity(rows.len());
        for r in &rows {
            entries.insert((r.try_get_by_index(0)?, r.try_get_by_index(1)?), r.try_get_by_index(2)?);
        }
        Ok(Self { entries })
    }

    pub fn has(&self, step: i32, op: &str) -> bool {
        self.entries.contains_key(&(step, op.to_owned()))
    }

    pub fn get<T: DeserializeOwned>(&self, step: i32, op: &str) -> Result<Option<T>> {
        match self.entries.get(&(step, op.to_owned())) {
            Some(json) => Ok(Some(serde_json::from_str(json)?)),
            None => Ok(None),
        }
    }

    pub fn count(&self, step: i32, prefix: &str) -> usize {
        self.entries.keys().filter(|(s, op)| *s == step && op.starts_with(prefix)).count()
    }

    /// Appends `op`'s result. Only the run's driver appends, and it reads the journal
    /// first; a row already there (another driver raced it) wins, as the same request id
    /// gave the same result.
    pub async fn append<T: Serialize>(
        &mut self,
        db: &impl ConnectionTrait,
        run: &str,
        step: i32,
        op: &str,
        request_id: &str,
        result: &T,
    ) -> Result<()> {
        let json = serde_json::to_string(result)?;
        let values: Vec<Value> = vec![run.into(), step.into(), op.into(), request_id.into(), json.as_str().into(), now_micros().into()];
        let inserted = exec(
            db,
            "INSERT INTO journal (run_id, step, op, request_id, result, recorded_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (run_id, step, op) DO NOTHING",
            values,
        )
        .await
        .map_err(Error::from)?;
        let json = if inserted == 1 {
            json
        } else {
            let rows =
                all(db, "SELECT result FROM journal WHERE run_id = ? AND step = ? AND op = ?", vec![run.into(), step.into(), op.into()])
                    .await?;
            match rows.first() {
                Some(r) => r.try_get_by_index(0).map_err(Error::from)?,
                None => json,
            }
        };
        self.entries.insert((step, op.to_owned()), json);
        Ok(())
    }
}
