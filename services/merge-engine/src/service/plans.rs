//! Plans (G10): create (merge or clone), read with the staleness check, list, items, cancel.

use std::collections::HashMap;

use ferry_kit::db::now_micros;

use super::{Engine, planner};
use crate::domain::{GroupName, Kind, Outcome, Page, Plan, PlanId, PlanItem, PlanState, PlanType, RequestKey, Selection, Strategy};
use crate::error::{Error, Result};
use crate::store;

/// What to plan: a merge into an existing group, or a clone into a new one.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub plan_type: PlanType,
    pub source: GroupName,
    pub recipient: GroupName,
    pub recipient_display_name: String,
    pub strategy: Strategy,
    pub selection: Selection,
    /// Who asks (the caller's subject, as `Principal::actor`); the plan records it.
    pub created_by: String,
}

impl Engine {
    /// Plans by merge-joining the manifests and stores the plan (state READY). With a
    /// request key, a retry returns the plan the first call made.
    pub async fn create_plan(&self, key: Option<RequestKey>, method: &'static str, req: PlanRequest) -> Result<Plan> {
        if let Some(id) = self.replayed::<PlanId>(&key, method).await? {
            return self.get_plan(&id).await;
        }
        let plan = self.make_plan(PlanId::generate(), &req, PlanState::Ready, None).await?;
        let id = plan.id.clone();
        let stored = self
            .write(key, method, move |txn| {
                Box::pin(async move {
                    store::plans::insert(txn, &plan).await?;
                    Ok(plan.id.clone())
                })
            })
            .await;
        match stored {
            Ok(stored) if stored == id => self.get_plan(&stored).await,
            Ok(other) => {
                // A concurrent retry with the same request id stored its plan first.
                store::plans::delete_items(&self.db, &id).await?;
                self.get_plan(&other).await
            }
            Err(e) => {
                let _ = store::plans::delete_items(&self.db, &id).await;
                Err(e)
            }
        }
    }

    /// Checks the groups, merge-joins the manifests and writes the items of plan `id`;
    /// returns the plan, not yet stored.
    pub(crate) async fn make_plan(
        &self,
        id: PlanId,
        req: &PlanRequest,
        state: PlanState,
        job: Option<crate::domain::JobId>,
    ) -> Result<Plan> {
        self.registry.existing_revision(&req.source).await?;
        let recipient = match req.plan_type {
            PlanType::GroupMerge => {
                self.registry.existing_revision(&req.recipient).await?;
                Some(&req.recipient)
            }
            PlanType::GroupClone => {
                if self.registry.group_revision(&req.recipient).await?.is_some() {
                    return Err(already_exists(&req.recipient));
                }
                None
            }
        };
        let built = match planner::build(&self.registry, &self.db, &id, &req.source, recipient, &req.selection).await {
            Ok(b) => b,
            Err(e) => {
                let _ = store::plans::delete_items(&self.db, &id).await;
                return Err(e);
            }
        };
        let now = now_micros();
        Ok(Plan {
            id,
            plan_type: req.plan_type,
            source: req.source.clone(),
            recipient: req.recipient.clone(),
            recipient_display_name: req.recipient_display_name.clone(),
            strategy: req.strategy,
            selection: req.selection.clone(),
            source_revision: built.source_revision,
            recipient_revision: built.recipient_revision,
            state,
            counts: built.counts,
            job,
            created_at: now,
            expire_at: self.settings.retention.plan_expiry(now),
            items_pruned: false,
            created_by: req.created_by.clone(),
        })
    }

    /// A plan as stored (READY never reads STALE here).
    pub(crate) async fn stored_plan(&self, id: &PlanId) -> Result<Plan> {
        store::plans::find(&self.db, id).await?.ok_or_else(|| Error::not_found("merge plan", id))
    }

    /// A plan; a READY plan past its expiry reads EXPIRED, one whose groups moved since
    /// plan time STALE.
    pub async fn get_plan(&self, id: &PlanId) -> Result<Plan> {
        let mut plan = self.stored_plan(id).await?;
        self.derive_state(&mut plan, &mut HashMap::new()).await?;
        Ok(plan)
    }

    /// The state a stored READY plan reads as: EXPIRED, STALE or READY.
    async fn derive_state(&self, plan: &mut Plan, cache: &mut HashMap<GroupName, Option<i64>>) -> Result<()> {
        if plan.state != PlanState::Ready {
            return Ok(());
        }
        if plan.expire_at <= now_micros() {
            plan.state = PlanState::Expired;
        } else if self.is_stale(plan, cache).await? {
            plan.state = PlanState::Stale;
        }
        Ok(())
    }

    /// Whether either group moved since the plan (G10). A clone plan is stale when its
    /// source moved or its new group appeared.
    pub(crate) async fn is_stale(&self, plan: &Plan, cache: &mut HashMap<GroupName, Option<i64>>) -> Result<bool> {
        let mut revision = async |g: &GroupName| -> Result<Option<i64>> {
            if let Some(r) = cache.get(g) {
                return Ok(*r);
            }
            let r = self.registry.group_revision(g).await?;
            cache.insert(g.clone(), r);
            Ok(r)
        };
        if revision(&plan.source).await? != Some(plan.source_revision) {
            return Ok(true);
        }
        let recipient = revision(&plan.recipient).await?;
        Ok(match plan.plan_type {
            PlanType::GroupMerge => recipient != Some(plan.recipient_revision),
            PlanType::GroupClone => recipient.is_some(),
        })
    }

    pub async fn list_plans(
        &self,
        source: Option<&GroupName>,
        recipient: Option<&GroupName>,
        states: &[PlanState],
        after: Option<(i64, String)>,
        limit: u64,
        scope: ferry_kit::db::Scope<'_>,
    ) -> Result<Page<Plan, (i64, String)>> {
        // STALE is a READY plan whose groups moved, EXPIRED one past its expiry (or pruned,
        // then stored EXPIRED): fetch READY too and decide per plan.
        let mut stored: Vec<PlanState> = states.iter().map(|s| if *s == PlanState::Stale { PlanState::Ready } else { *s }).collect();
        if states.contains(&PlanState::Expired) {
            stored.push(PlanState::Ready);
        }
        stored.sort();
        stored.dedup();
        let source = source.map(ToString::to_string);
        let recipient = recipient.map(ToString::to_string);
        let rows = store::plans::list(&self.db, source.as_deref(), recipient.as_deref(), &stored, after.as_ref(), limit + 1, scope).await?;
        let page = super::page(rows, limit, |p| (p.created_at, p.id.0.clone()));
        let mut cache = HashMap::new();
        let mut items = Vec::with_capacity(page.items.len());
        for mut p in page.items {
            self.derive_state(&mut p, &mut cache).await?;
            if states.is_empty() || states.contains(&p.state) {
                items.push(p);
            }
        }
        Ok(Page { items, next: page.next })
    }

    pub async fn list_plan_items(
        &self,
        id: &PlanId,
        outcomes: &[Outcome],
        kinds: &[Kind],
        after: Option<i64>,
        limit: u64,
    ) -> Result<Page<PlanItem, i64>> {
        let plan = self.stored_plan(id).await?;
        if plan.items_pruned {
            return Err(Error::precondition(
                format!("the items of {id} were pruned when it expired at {}; the counts stay", ferry_kit::db::rfc3339(plan.expire_at)),
                vec![ferry_kit::status::Precondition::new(
                    "ITEMS_PRUNED",
                    id.to_string(),
                    "plan again to see the items (the engine keeps them --plan-retention-hours)",
                )],
            ));
        }
        let rows = store::plans::items(&self.db, id, outcomes, kinds, after.unwrap_or(-1), limit + 1).await?;
        Ok(super::page(rows, limit, |i| i.seq))
    }

    /// Discards a READY (or STALE) plan. Cancelling a cancelled plan changes nothing.
    pub async fn cancel_plan(&self, key: Option<RequestKey>, id: PlanId) -> Result<Plan> {
        let done = self
            .write(key, "CancelMergePlan", move |txn| {
                Box::pin(async move {
                    let plan = store::plans::find(txn, &id).await?.ok_or_else(|| Error::not_found("merge plan", &id))?;
                    match plan.state {
                        PlanState::Ready | PlanState::Stale => {
                            store::plans::transition(txn, &id, &[PlanState::Ready], PlanState::Cancelled, None).await?;
                        }
                        PlanState::Cancelled | PlanState::Expired => {}
                        PlanState::Applying | PlanState::Applied => {
                            return Err(Error::precondition(
                                format!("{id} is {}; only a READY or STALE plan can be cancelled", state_word(plan.state)),
                                vec![ferry_kit::status::Precondition::new(
                                    "PLAN_NOT_READY",
                                    id.to_string(),
                                    "an applying or applied plan cannot be cancelled; cancel its job or revert it",
                                )],
                            ));
                        }
                    }
                    Ok(id)
                })
            })
            .await?;
        self.get_plan(&done).await
    }
}

pub(crate) fn already_exists(group: &GroupName) -> Error {
    Error::AlreadyExists { resource: "group", name: group.to_string(), message: format!("{group} already exists") }
}

pub(crate) fn state_word(s: PlanState) -> &'static str {
    match s {
        PlanState::Ready => "ready",
        PlanState::Applying => "applying",
        PlanState::Applied => "applied",
        PlanState::Stale => "stale",
        PlanState::Cancelled => "cancelled",
        PlanState::Expired => "expired",
    }
}
