//! Sharing as the kind fixes it, in SQL: the condition a stored entity's sharing must
//! meet ([`rules::sharing_allowed`]), and the rows from before the rule that do not.

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{all, col, corrupt, one};
use crate::domain::{Kind, Sharing, rules};

/// The condition, on an `entities` row, that its sharing is one its kind allows
/// ([`rules::sharing_allowed`]), spelled from the rule itself: e.g. `(kind IN (7, 8, 9)
/// AND sharing = 1 OR kind IN (1, 2, 3, 4, 5) AND sharing = 2 OR kind IN (6))`.
/// `on` qualifies the columns (`""` or `"e."`).
pub fn sharing_allowed_sql(on: &str) -> String {
    let kinds = |f: &dyn Fn(Option<Sharing>) -> bool| -> String {
        Kind::ALL.iter().filter(|k| f(rules::fixed_sharing(**k))).map(|k| k.number().to_string()).collect::<Vec<_>>().join(", ")
    };
    let mut terms: Vec<String> = [Sharing::Duplicated, Sharing::Shared]
        .into_iter()
        .map(|s| format!("{on}kind IN ({}) AND {on}sharing = {}", kinds(&|f| f == Some(s)), s.number()))
        .collect();
    terms.push(format!("{on}kind IN ({})", kinds(&|f| f.is_none())));
    format!("({})", terms.join(" OR "))
}

/// Entities (of environment `env_id`, or of every environment) whose stored sharing
/// their kind does not allow: how many, and the first `limit` as (environment, id, kind,
/// sharing), in id order. Rows like these come from before the registry enforced the
/// rule; nothing changes them behind the owner's back.
pub async fn disallowed_sharing<C: ConnectionTrait>(db: &C, env_id: Option<i64>, limit: u64) -> Result<(i64, Vec<Disallowed>), DbErr> {
    let (scope, mut values) = match env_id {
        Some(id) => (" AND e.environment_id = ?", vec![Value::from(id)]),
        None => ("", Vec::new()),
    };
    let cond = format!("NOT {}{scope}", sharing_allowed_sql("e."));
    let n = one(db, &format!("SELECT COUNT(*) FROM entities e WHERE {cond}"), values.clone())
        .await?
        .ok_or_else(|| DbErr::Custom("count returned no row".into()))?;
    let count: i64 = col(&n, 0)?;
    if count == 0 {
        return Ok((0, Vec::new()));
    }
    values.push(Value::from(limit as i64));
    let rows = all(
        db,
        &format!(
            "SELECT v.name, e.id, e.kind, e.sharing FROM entities e JOIN environments v ON v.id = e.environment_id \
             WHERE {cond} ORDER BY e.id LIMIT ?"
        ),
        values,
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let (kind, sharing): (i32, i32) = (col(r, 2)?, col(r, 3)?);
        out.push(Disallowed {
            entity: crate::domain::EntityName::new(&col::<String>(r, 0)?, col(r, 1)?),
            kind: Kind::from_number(kind).map_err(|_| corrupt("kind", kind))?,
            sharing: Sharing::from_number(sharing).ok_or_else(|| corrupt("sharing", sharing))?,
        })
    }
    Ok((count, out))
}

/// An entity whose sharing its kind does not allow ([`disallowed_sharing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disallowed {
    pub entity: crate::domain::EntityName,
    pub kind: Kind,
    pub sharing: Sharing,
}

impl std::fmt::Display for Disallowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} stored as {})", self.entity, self.kind.label(), self.sharing.label())
    }
}
