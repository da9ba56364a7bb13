//! Projects: their ordered groups (G7: references resolve through them, first group
//! first) and their configuration items.

use ferry_kit::db::now_micros;
use sea_orm::ConnectionTrait;

use super::{Registry, env_row, group_key, lock_group, page};
use crate::domain::{ConfigItem, ConfigItemName, EnvName, GroupName, Page, Project, ProjectName, RequestKey, Resolution, UpsertCounts};
use crate::error::{Error, Result};
use crate::store::projects::{self, ProjectRow};

async fn project_row<C: ConnectionTrait>(db: &C, name: &ProjectName) -> Result<ProjectRow> {
    projects::find(db, name).await?.ok_or_else(|| Error::not_found("project", name))
}

/// The project, locked for the rest of the transaction and read after the lock: a write
/// to it or its items and its deletion wait for each other (an item is never inserted
/// for a project deleted meanwhile). NOT_FOUND when it is gone.
async fn locked_project<C: ConnectionTrait>(db: &C, name: &ProjectName) -> Result<ProjectRow> {
    let id = project_row(db, name).await?.id;
    if !projects::lock(db, id).await? {
        return Err(Error::not_found("project", name));
    }
    project_row(db, name).await
}

/// Resolves a project's groups to ids: one or more, distinct, in the project's environment.
async fn group_ids<C: ConnectionTrait>(db: &C, project: &ProjectName, groups: &[GroupName]) -> Result<Vec<i64>> {
    if groups.is_empty() {
        return Err(Error::invalid("project.groups", "a project needs at least one group"));
    }
    let mut ids = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        if g.env != project.env {
            return Err(Error::invalid(&format!("project.groups[{i}]"), format!("{g} is not in {}", project.env)));
        }
        let id = group_key(db, g).await?.id;
        lock_group(db, id, g).await?;
        if ids.contains(&id) {
            return Err(Error::invalid(&format!("project.groups[{i}]"), format!("{g} is listed twice")));
        }
        ids.push(id);
    }
    Ok(ids)
}

impl Registry {
    pub async fn create_project(
        &self,
        key: Option<RequestKey>,
        name: ProjectName,
        display: String,
        groups: Vec<GroupName>,
    ) -> Result<Project> {
        self.write(key, "CreateProject", move |txn| {
            Box::pin(async move {
                let env = env_row(txn, &name.env).await?;
                if projects::find(txn, &name).await?.is_some() {
                    return Err(Error::AlreadyExists {
                        resource: "project",
                        name: name.to_string(),
                        message: format!("{name} already exists"),
                    });
                }
                let ids = group_ids(txn, &name, &groups).await?;
                projects::insert(txn, env.id, &name, &display, &ids, now_micros()).await?;
                Ok(project_row(txn, &name).await?.project)
            })
        })
        .await
    }

    pub async fn get_project(&self, name: &ProjectName) -> Result<Project> {
        Ok(project_row(&self.reads, name).await?.project)
    }

    pub async fn list_projects(&self, env: &EnvName, after: Option<String>, limit: u64) -> Result<Page<Project, String>> {
        let env = env_row(&self.reads, env).await?;
        let rows = projects::list(&self.reads, env.id, after.as_deref(), limit + 1).await?;
        Ok(page(rows.into_iter().map(|r| r.project).collect(), limit, |p| p.name.project.as_str().to_owned()))
    }

    pub async fn update_project(
        &self,
        key: Option<RequestKey>,
        name: ProjectName,
        display: Option<String>,
        groups: Option<Vec<GroupName>>,
    ) -> Result<Project> {
        self.write(key, "UpdateProject", move |txn| {
            Box::pin(async move {
                let row = locked_project(txn, &name).await?;
                if let Some(d) = display {
                    projects::update_display(txn, row.id, &d).await?;
                }
                if let Some(groups) = groups
                    && groups != row.project.groups
                {
                    let ids = group_ids(txn, &name, &groups).await?;
                    projects::set_groups(txn, row.id, &ids).await?;
                    projects::bump(txn, row.id).await?;
                }
                Ok(project_row(txn, &name).await?.project)
            })
        })
        .await
    }

    pub async fn delete_project(&self, key: Option<RequestKey>, name: ProjectName) -> Result<i64> {
        self.write(key, "DeleteProject", move |txn| {
            Box::pin(async move {
                let row = locked_project(txn, &name).await?;
                Ok(projects::delete(txn, row.id).await?)
            })
        })
        .await
    }

    pub async fn create_config_item(&self, key: Option<RequestKey>, item: ConfigItem) -> Result<ConfigItem> {
        self.write(key, "CreateConfigItem", move |txn| {
            Box::pin(async move {
                let row = locked_project(txn, &item.name.project).await?;
                if projects::get_item(txn, &row, item.name.item.as_str()).await?.is_some() {
                    return Err(Error::AlreadyExists {
                        resource: "config item",
                        name: item.name.to_string(),
                        message: format!("{} already exists", item.name),
                    });
                }
                projects::put_item(txn, row.id, &item, now_micros()).await?;
                projects::bump(txn, row.id).await?;
                projects::get_item(txn, &row, item.name.item.as_str()).await?.ok_or_else(|| Error::not_found("config item", &item.name))
            })
        })
        .await
    }

    pub async fn list_config_items(&self, project: &ProjectName, after: Option<String>, limit: u64) -> Result<Page<ConfigItem, String>> {
        let row = project_row(&self.reads, project).await?;
        let items = projects::list_items(&self.reads, &row, after.as_deref(), limit + 1).await?;
        Ok(page(items, limit, |i| i.name.item.as_str().to_owned()))
    }

    pub async fn delete_config_item(&self, key: Option<RequestKey>, name: ConfigItemName) -> Result<()> {
        self.write(key, "DeleteConfigItem", move |txn| {
            Box::pin(async move {
                let row = locked_project(txn, &name.project).await?;
                if !projects::delete_item(txn, row.id, name.item.as_str()).await? {
                    return Err(Error::not_found("config item", &name));
                }
                projects::bump(txn, row.id).await?;
                Ok(())
            })
        })
        .await
    }

    /// Creates or replaces many items of one project in one transaction.
    pub async fn upsert_config_items(&self, key: Option<RequestKey>, project: ProjectName, items: Vec<ConfigItem>) -> Result<UpsertCounts> {
        self.write(key, "UpsertConfigItems", move |txn| {
            Box::pin(async move {
                let row = locked_project(txn, &project).await?;
                let mut counts = UpsertCounts::default();
                let now = now_micros();
                for item in &items {
                    if item.name.project != project {
                        return Err(Error::invalid("config_items", format!("{} is not an item of {project}", item.name)));
                    }
                    match projects::get_item(txn, &row, item.name.item.as_str()).await? {
                        Some(cur) if cur.value == item.value && cur.references == item.references => counts.unchanged += 1,
                        Some(_) => {
                            projects::put_item(txn, row.id, item, now).await?;
                            counts.updated += 1;
                        }
                        None => {
                            projects::put_item(txn, row.id, item, now).await?;
                            counts.created += 1;
                        }
                    }
                }
                counts.revision =
                    if counts.created + counts.updated > 0 { projects::bump(txn, row.id).await? } else { row.project.revision };
                Ok(counts)
            })
        })
        .await
    }

    /// G7: each reference of the project's items, resolved through its groups in order.
    /// Returns a page and the number of references that resolve nowhere.
    pub async fn resolve_project(
        &self,
        name: &ProjectName,
        missing_only: bool,
        after: Option<(String, i32)>,
        limit: u64,
    ) -> Result<(Page<Resolution, (String, i32)>, i64)> {
        let row = project_row(&self.reads, name).await?;
        let rows = projects::resolve_page(&self.reads, &row, missing_only, after.as_ref(), limit + 1).await?;
        let missing = projects::missing_count(&self.reads, row.id).await?;
        let p = page(rows, limit, |(r, pos)| (r.config_item.item.as_str().to_owned(), *pos));
        Ok((Page { items: p.items.into_iter().map(|(r, _)| r).collect(), next: p.next }, missing))
    }
}
