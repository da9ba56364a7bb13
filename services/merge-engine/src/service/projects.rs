//! Projects: clone (G8) and merge (G9). Configuration items travel through the engine a
//! page at a time (they are configuration, not entity payloads); references are checked
//! against the recipient's groups with LookupKeys.

use std::collections::BTreeMap;

use ferry_kit::status::Precondition;

use super::Engine;
use super::jobs::queued;
use super::plans::PlanRequest;
use crate::domain::{
    GroupMergeSummary, GroupName, GroupPair, Job, JobId, JobKind, JobParams, Kind, MissingRef, PlanId, PlanState, PlanType, ProjectInfo,
    ProjectMergePlan, ProjectName, RequestKey, Selection, Strategy,
};
use crate::error::{Error, Result};
use crate::store;

/// Most missing references a preview lists (it counts them all).
const MAX_LISTED: usize = 1000;

/// What a project merge is asked to do.
#[derive(Debug, Clone)]
pub struct ProjectMergeRequest {
    pub source: ProjectName,
    pub recipient: ProjectName,
    pub merge_groups_first: bool,
    pub strategy: Strategy,
    pub pairs: Vec<GroupPair>,
    pub plans: Vec<PlanId>,
    pub proceed_with_missing_dependencies: bool,
    /// Who asks (the caller's subject); the job, its child jobs and the plans made for
    /// them record it.
    pub created_by: String,
}

/// The references of a project's items (first referencing item by name) and how the
/// delivery would change the recipient: (create, replace, unchanged).
pub(super) struct Delivery {
    pub(super) refs: BTreeMap<(Kind, String), String>,
    create: i64,
    replace: i64,
    unchanged: i64,
}

impl Engine {
    async fn insert_job(&self, key: Option<RequestKey>, method: &'static str, job: Job) -> Result<Job> {
        let chunk = self.settings.chunk_size;
        let id = self
            .write(key, method, move |txn| {
                Box::pin(async move {
                    store::jobs::insert(txn, &job, chunk).await?;
                    Ok(job.id.clone())
                })
            })
            .await?;
        self.wake.notify_waiters();
        self.get_job(&id).await
    }

    /// G8: a CLONE_PROJECT job creating `new` with `groups` and the source's items.
    pub async fn clone_project(
        &self,
        key: Option<RequestKey>,
        source: ProjectName,
        new: ProjectName,
        display_name: String,
        groups: Vec<GroupName>,
        created_by: String,
    ) -> Result<Job> {
        if let Some(job) = self.replayed::<JobId>(&key, "CloneProject").await? {
            return self.get_job(&job).await;
        }
        self.registry.existing_project(&source).await?;
        for g in &groups {
            self.registry.existing_revision(g).await?;
        }
        if self.registry.project(&new).await?.is_some() {
            return Err(Error::AlreadyExists { resource: "project", name: new.to_string(), message: format!("{new} already exists") });
        }
        let params = JobParams { display_name, groups: groups.iter().map(ToString::to_string).collect(), ..JobParams::default() };
        let mut job = queued(JobKind::CloneProject, source.to_string(), new.to_string(), params, created_by);
        job.produced = vec![new.to_string()];
        self.insert_job(key, "CloneProject", job).await
    }

    /// The group pairs of a project merge: given, or the projects' groups by position.
    fn pairs_for(src: &ProjectInfo, rec: &ProjectInfo, given: &[GroupPair]) -> Result<Vec<GroupPair>> {
        if !given.is_empty() {
            return Ok(given.to_vec());
        }
        if src.groups.len() != rec.groups.len() {
            return Err(Error::precondition(
                format!(
                    "{} has {} groups and {} has {}; give group_pairs to say which merges into which",
                    src.name,
                    src.groups.len(),
                    rec.name,
                    rec.groups.len()
                ),
                vec![Precondition::new("GROUP_COUNT_MISMATCH", rec.name.to_string(), "pair the groups explicitly with group_pairs")],
            ));
        }
        Ok(src.groups.iter().zip(&rec.groups).map(|(s, r)| GroupPair { source: s.clone(), recipient: r.clone() }).collect())
    }

    /// Compares the two projects' items by id. The recipient's items are held as digests
    /// (id → hash of value and references): list order is the registry database's
    /// collation, which is not byte order on every PostgreSQL, so no merge-join here.
    pub(super) async fn delivery(&self, src: &ProjectName, rec: &ProjectName) -> Result<Delivery> {
        fn digest(item: &crate::domain::ConfigItem) -> u64 {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            item.value_json.hash(&mut h);
            item.references.hash(&mut h);
            h.finish()
        }
        let mut existing = std::collections::HashMap::new();
        let mut token = String::new();
        loop {
            let (items, next) = self.registry.config_items(rec, token).await?;
            existing.extend(items.iter().map(|i| (i.id.clone(), digest(i))));
            if next.is_empty() {
                break;
            }
            token = next;
        }
        let mut d = Delivery { refs: BTreeMap::new(), create: 0, replace: 0, unchanged: 0 };
        let mut token = String::new();
        loop {
            let (items, next) = self.registry.config_items(src, token).await?;
            for item in items {
                for r in &item.references {
                    let name = src.item(&item.id);
                    match d.refs.get_mut(r) {
                        Some(first) if name < *first => *first = name,
                        Some(_) => {}
                        None => {
                            d.refs.insert(r.clone(), name);
                        }
                    }
                }
                match existing.get(&item.id) {
                    None => d.create += 1,
                    Some(h) if *h == digest(&item) => d.unchanged += 1,
                    Some(_) => d.replace += 1,
                }
            }
            if next.is_empty() {
                return Ok(d);
            }
            token = next;
        }
    }

    /// G9: references the recipient's groups lack, each with the pair whose source group
    /// holds it. `as_if_merged`: a reference a pair would deliver is not missing.
    pub(super) async fn missing_refs(
        &self,
        refs: &BTreeMap<(Kind, String), String>,
        rec: &ProjectInfo,
        pairs: &[GroupPair],
        as_if_merged: bool,
    ) -> Result<(Vec<MissingRef>, i64)> {
        let keys: Vec<(Kind, String)> = refs.keys().cloned().collect();
        let mut held = vec![false; keys.len()];
        for g in &rec.groups {
            for (h, p) in held.iter_mut().zip(self.registry.lookup(g, &keys).await?) {
                *h |= p;
            }
        }
        let lacking: Vec<(Kind, String)> = keys.into_iter().zip(held).filter(|(_, h)| !h).map(|(k, _)| k).collect();
        let mut supplied: Vec<Option<GroupPair>> = vec![None; lacking.len()];
        for pair in pairs {
            for (s, p) in supplied.iter_mut().zip(self.registry.lookup(&pair.source, &lacking).await?) {
                if p && s.is_none() {
                    *s = Some(pair.clone());
                }
            }
        }
        let mut out = Vec::new();
        let mut count = 0;
        for (reference, supplied_by) in lacking.into_iter().zip(supplied) {
            let delivered = supplied_by.as_ref().is_some_and(|p| rec.groups.contains(&p.recipient));
            if as_if_merged && delivered {
                continue;
            }
            count += 1;
            if out.len() < MAX_LISTED {
                let config_item = refs.get(&reference).cloned().unwrap_or_default();
                out.push(MissingRef { reference, config_item, supplied_by });
            }
        }
        Ok((out, count))
    }

    /// G9's refusal: one violation per missing (kind, key).
    pub(super) fn missing_error(recipient: &ProjectName, missing: &[MissingRef], count: i64) -> Error {
        Error::precondition(
            format!("{count} references of the delivered configuration are missing from {recipient}'s groups; merge the groups first"),
            missing
                .iter()
                .map(|m| {
                    let (kind, key) = &m.reference;
                    let supply = match &m.supplied_by {
                        Some(p) => format!("merge {} into {} supplies it", p.source, p.recipient),
                        None => "no source group holds it".to_owned(),
                    };
                    Precondition::new(
                        "MISSING_DEPENDENCY",
                        format!("{}:{key}", kind.label()),
                        format!("referenced by {}; {supply}", m.config_item),
                    )
                })
                .collect(),
        )
    }

    /// Previews a project merge; with `merge_groups_first` also plans the group merges.
    pub async fn plan_project_merge(&self, key: Option<RequestKey>, req: ProjectMergeRequest) -> Result<ProjectMergePlan> {
        let src = self.registry.existing_project(&req.source).await?;
        let rec = self.registry.existing_project(&req.recipient).await?;
        let pairs = Self::pairs_for(&src, &rec, &req.pairs)?;
        let mut group_merges = Vec::new();
        if req.merge_groups_first {
            for (i, pair) in pairs.iter().enumerate() {
                let k =
                    key.as_ref().map(|k| RequestKey { request_id: format!("{}:{i}", k.request_id), fingerprint: k.fingerprint.clone() });
                let plan = self
                    .create_plan(
                        k,
                        "PlanProjectMerge",
                        PlanRequest {
                            plan_type: PlanType::GroupMerge,
                            source: pair.source.clone(),
                            recipient: pair.recipient.clone(),
                            recipient_display_name: String::new(),
                            strategy: req.strategy,
                            selection: Selection::default(),
                            created_by: req.created_by.clone(),
                        },
                    )
                    .await?;
                group_merges.push(GroupMergeSummary { pair: pair.clone(), plan: plan.id, counts: plan.counts });
            }
        }
        let d = self.delivery(&src.name, &rec.name).await?;
        let (missing, missing_count) = self.missing_refs(&d.refs, &rec, &pairs, req.merge_groups_first).await?;
        Ok(ProjectMergePlan {
            source: src,
            recipient: rec,
            pairs,
            group_merges,
            create: d.create,
            replace: d.replace,
            unchanged: d.unchanged,
            missing,
            missing_count,
        })
    }

    /// G9: a MERGE_PROJECT job (group merges first when asked, then the delivery).
    pub async fn merge_project(&self, key: Option<RequestKey>, req: ProjectMergeRequest) -> Result<Job> {
        if let Some(job) = self.replayed::<JobId>(&key, "MergeProject").await? {
            return self.get_job(&job).await;
        }
        let src = self.registry.existing_project(&req.source).await?;
        let rec = self.registry.existing_project(&req.recipient).await?;
        let pairs = Self::pairs_for(&src, &rec, &req.pairs)?;
        if req.merge_groups_first && !req.plans.is_empty() {
            if req.plans.len() != pairs.len() {
                return Err(Error::invalid("group_merge_plans", format!("give one plan per group pair ({})", pairs.len())));
            }
            for (plan, pair) in req.plans.iter().zip(&pairs) {
                let p = self.get_plan(plan).await?;
                if p.source != pair.source || p.recipient != pair.recipient {
                    return Err(Error::invalid(
                        "group_merge_plans",
                        format!("{plan} does not merge {} into {}", pair.source, pair.recipient),
                    ));
                }
                match p.state {
                    PlanState::Stale => return Err(Error::Aborted(format!("{plan} is stale; plan again"))),
                    PlanState::Ready => {}
                    _ => {
                        return Err(Error::precondition(
                            format!("{plan} is not ready to apply"),
                            vec![Precondition::new("PLAN_NOT_READY", plan.to_string(), "give plans that are READY")],
                        ));
                    }
                }
            }
        }
        let d = self.delivery(&src.name, &rec.name).await?;
        let (missing, n) = self.missing_refs(&d.refs, &rec, &pairs, req.merge_groups_first).await?;
        if n > 0 {
            return Err(Self::missing_error(&rec.name, &missing, n));
        }
        let mut job = queued(
            JobKind::MergeProject,
            src.name.to_string(),
            rec.name.to_string(),
            JobParams {
                proceed_with_missing_dependencies: req.proceed_with_missing_dependencies,
                pairs: pairs.clone(),
                merge_groups_first: req.merge_groups_first,
                strategy: Some(req.strategy),
                plans: req.plans.clone(),
                ..JobParams::default()
            },
            req.created_by,
        );
        if req.merge_groups_first {
            job.params.child_jobs = (0..pairs.len()).map(|i| JobId(format!("{}-{i}", job.id.0))).collect();
        }
        self.insert_job(key, "MergeProject", job).await
    }
}
