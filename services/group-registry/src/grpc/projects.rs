//! Projects and their configuration items at the proto edge (the `RegistryService` impl
//! in `handlers` delegates here).

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::registry::v1 as pb;
use tonic::{Request, Response, Status};

use super::bulk::MAX_BATCH;
use super::convert::{self as c, done};
use super::handlers::{RegistryApi, scope};
use crate::domain::{ConfigItemName, EnvName, GroupName, ProjectName, ResourceId, display_name};

impl RegistryApi {
    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, project = %req.get_ref().project_id))]
    pub(super) async fn do_create_project(&self, req: Request<pb::CreateProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateProject", &r, &r.request_id);
        let env = v.check("parent", EnvName::parse(&r.parent));
        let id = v.check("project_id", ResourceId::parse(&r.project_id));
        let body = r.project.clone().unwrap_or_default();
        let display = v.check("project.display_name", display_name(&body.display_name));
        let groups = group_names(&mut v, "project.groups", &body.groups);
        let (key, env, id, display, groups) = done(v, || Some((key?, env?, id?, display?, groups?)))?;
        scope(&p, &env)?;
        let name = ProjectName { env, project: id };
        Ok(Response::new(c::project(self.registry.create_project(key, name, display, groups).await?)))
    }

    pub(super) async fn do_get_project(&self, req: Request<pb::GetProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", ProjectName::parse(&req.get_ref().name));
        let name = done(v, || name)?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::project(self.registry.get_project(&name).await?)))
    }

    pub(super) async fn do_list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let env = v.check("parent", EnvName::parse(&r.parent));
        let list = format!("projects:{}", r.parent);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, &list, &r.page_token);
        let (env, size, after) = done(v, || Some((env?, size?, after?)))?;
        scope(&p, &env)?;
        let page = self.registry.list_projects(&env, after, size).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            next_page_token: c::next_token(&list, &page.next),
            projects: page.items.into_iter().map(c::project).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn do_update_project(&self, req: Request<pb::UpdateProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UpdateProject", &r, &r.request_id);
        let body = r.project.clone().unwrap_or_default();
        let name = v.check("project.name", ProjectName::parse(&body.name));
        let mut display = Some(None);
        let mut groups = Some(None);
        let paths = c::mask_paths(&r.update_mask);
        if paths.is_empty() {
            v.add("update_mask", "name the fields to update: groups, display_name");
        }
        for path in &paths {
            match path.as_str() {
                "display_name" => display = v.check("project.display_name", display_name(&body.display_name)).map(Some),
                "groups" => groups = group_names(&mut v, "project.groups", &body.groups).map(Some),
                other => v.add("update_mask", format!("{other:?} cannot be updated (groups, display_name)")),
            }
        }
        let (key, name, display, groups) = done(v, || Some((key?, name?, display?, groups?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::project(self.registry.update_project(key, name, display, groups).await?)))
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().name))]
    pub(super) async fn do_delete_project(
        &self,
        req: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteProject", &r, &r.request_id);
        let name = v.check("name", ProjectName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        let n = self.registry.delete_project(key, name).await?;
        Ok(Response::new(pb::DeleteProjectResponse { deleted_config_items: n }))
    }

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, item = %req.get_ref().config_item_id))]
    pub(super) async fn do_create_config_item(
        &self,
        req: Request<pb::CreateConfigItemRequest>,
    ) -> Result<Response<pb::ConfigItem>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateConfigItem", &r, &r.request_id);
        let project = v.check("parent", ProjectName::parse(&r.parent));
        let id = v.check("config_item_id", ResourceId::parse(&r.config_item_id));
        let name = project.clone().zip(id).map(|(project, item)| ConfigItemName { project, item });
        let item = c::parse_config_item(&mut v, "config_item", name, &r.config_item.clone().unwrap_or_default());
        let (key, project, item) = done(v, || Some((key?, project?, item?)))?;
        scope(&p, &project.env)?;
        Ok(Response::new(c::config_item(self.registry.create_config_item(key, item).await?)))
    }

    pub(super) async fn do_list_config_items(
        &self,
        req: Request<pb::ListConfigItemsRequest>,
    ) -> Result<Response<pb::ListConfigItemsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let project = v.check("parent", ProjectName::parse(&r.parent));
        let list = format!("configItems:{}", r.parent);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, &list, &r.page_token);
        let (project, size, after) = done(v, || Some((project?, size?, after?)))?;
        scope(&p, &project.env)?;
        let page = self.registry.list_config_items(&project, after, size).await?;
        Ok(Response::new(pb::ListConfigItemsResponse {
            next_page_token: c::next_token(&list, &page.next),
            config_items: page.items.into_iter().map(c::config_item).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(item = %req.get_ref().name))]
    pub(super) async fn do_delete_config_item(
        &self,
        req: Request<pb::DeleteConfigItemRequest>,
    ) -> Result<Response<pb::DeleteConfigItemResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteConfigItem", &r, &r.request_id);
        let name = v.check("name", ConfigItemName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.project.env)?;
        self.registry.delete_config_item(key, name).await?;
        Ok(Response::new(pb::DeleteConfigItemResponse {}))
    }

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, items = req.get_ref().config_items.len()))]
    pub(super) async fn do_upsert_config_items(
        &self,
        req: Request<pb::UpsertConfigItemsRequest>,
    ) -> Result<Response<pb::UpsertConfigItemsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UpsertConfigItems", &r, &r.request_id);
        let project = v.check("parent", ProjectName::parse(&r.parent));
        if r.config_items.len() > MAX_BATCH {
            v.add("config_items", format!("at most {MAX_BATCH} items per call"));
        }
        let items: Option<Vec<_>> = r
            .config_items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = format!("config_items[{i}]");
                let name = v.check(&format!("{field}.name"), ConfigItemName::parse(&item.name));
                c::parse_config_item(&mut v, &field, name, item)
            })
            .collect();
        let (key, project, items) = done(v, || Some((key?, project?, items?)))?;
        scope(&p, &project.env)?;
        let n = self.registry.upsert_config_items(key, project, items).await?;
        Ok(Response::new(pb::UpsertConfigItemsResponse {
            created: n.created,
            updated: n.updated,
            unchanged: n.unchanged,
            revision: n.revision,
        }))
    }

    pub(super) async fn do_resolve_project(
        &self,
        req: Request<pb::ResolveProjectRequest>,
    ) -> Result<Response<pb::ResolveProjectResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", ProjectName::parse(&r.name));
        let list = format!("resolve:{}:{}", r.name, r.missing_only);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<(String, i32)>(&mut v, &list, &r.page_token);
        let (name, size, after) = done(v, || Some((name?, size?, after?)))?;
        scope(&p, &name.env)?;
        let (page, missing) = self.registry.resolve_project(&name, r.missing_only, after, size).await?;
        Ok(Response::new(pb::ResolveProjectResponse {
            next_page_token: c::next_token(&list, &page.next),
            missing_count: missing,
            resolutions: page
                .items
                .into_iter()
                .map(|res| pb::Resolution {
                    config_item: res.config_item.to_string(),
                    reference: Some(c::entity_ref(&res.reference)),
                    entity: res.entity.map(|e| e.to_string()).unwrap_or_default(),
                    group: res.group.map(|g| g.to_string()).unwrap_or_default(),
                })
                .collect(),
        }))
    }
}

fn group_names(v: &mut Violations, field: &str, names: &[String]) -> Option<Vec<GroupName>> {
    if names.is_empty() {
        v.add(field, "at least one group is required");
        return None;
    }
    names.iter().enumerate().map(|(i, n)| v.check(&format!("{field}[{i}]"), GroupName::parse(n))).collect::<Vec<_>>().into_iter().collect()
}
