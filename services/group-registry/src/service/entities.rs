//! Entities: create, read, update, delete (G2/G3), link and unlink (G4). G1 holds through
//! the membership table's key; a clash becomes ALREADY_EXISTS naming the holder.

use ferry_kit::db::{InPlace, PointReads, now_micros};

use super::{Registry, group_key, page};
use crate::domain::{Entity, EntityKey, EntityName, EntityRef, GroupName, Json, Kind, NewEntity, Page, RequestKey, rules};
use crate::error::{Error, Result};
use crate::store::{entities, groups};

fn clash(group: &GroupName, kind: Kind, key: &str, holder: i64) -> Error {
    let holder = EntityName::new(group.env.id(), holder);
    Error::AlreadyExists {
        resource: "entity",
        name: holder.to_string(),
        message: format!("{group} already holds {} {key:?} ({holder}); keys are unique per group and kind", kind.label()),
    }
}

async fn entity<C: sea_orm::ConnectionTrait>(db: &C, name: &EntityName) -> Result<Entity> {
    entities::get(db, name).await?.ok_or_else(|| Error::not_found("entity", name))
}

impl Registry {
    /// Creates an entity in a group (G1: its (kind, key) must be free there).
    pub async fn create_entity(&self, key: Option<RequestKey>, group: GroupName, new: NewEntity) -> Result<Entity> {
        self.write(key, "CreateEntity", move |txn| {
            Box::pin(async move {
                let g = group_key(txn, &group).await?;
                if let Some(holder) = entities::member_at(txn, g.id, new.kind, &new.key).await? {
                    return Err(clash(&group, new.kind, new.key.as_str(), holder));
                }
                let id = entities::insert(txn, g.env_id, &new, now_micros()).await?;
                entities::add_membership(txn, g.id, new.kind, &new.key, id).await?;
                groups::bump(txn, &[g.id]).await?;
                entity(txn, &EntityName::new(group.env.id(), id)).await
            })
        })
        .await
    }

    pub async fn get_entity(&self, name: &EntityName) -> Result<Entity> {
        match &*self.points {
            PointReads::InPlace(reads) => match entities::get_in_place(reads, name) {
                Ok(found) => found.ok_or_else(|| Error::not_found("entity", name)),
                // Locked at this moment: read through the pool, which waits.
                Err(InPlace::Busy) => entity(&self.reads, name).await,
                Err(InPlace::Failed(e)) => Err(e.into()),
            },
            PointReads::Pool(pool) => entity(pool, name).await,
        }
    }

    /// The entity `group` holds under (kind, key): its own or a shared one linked to it.
    pub async fn lookup_entity(&self, group: &GroupName, kind: Kind, key: &EntityKey) -> Result<Entity> {
        let g = group_key(&self.reads, group).await?;
        let Some(id) = entities::member_at(&self.reads, g.id, kind, key).await? else {
            return Err(Error::NotFound { resource: "entity", name: format!("{group} {}:{}", kind.label().to_lowercase(), key.as_str()) });
        };
        entity(&self.reads, &EntityName::new(group.env.id(), id)).await
    }

    pub async fn list_entities(
        &self,
        group: &GroupName,
        kinds: &[Kind],
        after: Option<(i32, String)>,
        limit: u64,
    ) -> Result<Page<Entity, (i32, String)>> {
        let g = group_key(&self.reads, group).await?;
        let items = entities::list_members(&self.reads, g.id, kinds, after, limit + 1).await?;
        Ok(page(items, limit, |e| (e.kind.number(), e.key.as_str().to_owned())))
    }

    /// Replaces payload and/or references; every group holding the entity gets a new
    /// revision when the content changed.
    pub async fn update_entity(
        &self,
        key: Option<RequestKey>,
        name: EntityName,
        payload: Option<Json>,
        refs: Option<Vec<EntityRef>>,
    ) -> Result<Entity> {
        self.write(key, "UpdateEntity", move |txn| {
            Box::pin(async move {
                let current = entity(txn, &name).await?;
                let payload = payload.unwrap_or(current.payload);
                let refs = refs.unwrap_or(current.references);
                if entities::update_content(txn, name.id, &payload, &refs, now_micros()).await? {
                    groups::bump_holding(txn, &[name.id]).await?;
                }
                entity(txn, &name).await
            })
        })
        .await
    }

    /// G2/G3: deletes an entity; returns the groups it was removed from.
    pub async fn delete_entity(&self, key: Option<RequestKey>, name: EntityName, confirm_all_groups: bool) -> Result<Vec<GroupName>> {
        self.write(key, "DeleteEntity", move |txn| {
            Box::pin(async move {
                let e = entity(txn, &name).await?;
                let affected = rules::groups_affected_by_delete(&name.to_string(), e.sharing, e.groups, confirm_all_groups)?;
                groups::bump_holding(txn, &[name.id]).await?;
                entities::delete(txn, name.id).await?;
                Ok(affected)
            })
        })
        .await
    }

    /// Links a shared entity to another group of its environment.
    pub async fn link_entity(&self, key: Option<RequestKey>, name: EntityName, group: GroupName) -> Result<Entity> {
        self.write(key, "LinkEntity", move |txn| {
            Box::pin(async move {
                let e = entity(txn, &name).await?;
                rules::check_link(&name.to_string(), e.kind, e.sharing)?;
                if group.env != name.env {
                    return Err(Error::invalid("group", format!("{group} is not in {}; links stay within one environment", name.env)));
                }
                let g = group_key(txn, &group).await?;
                match entities::member_at(txn, g.id, e.kind, &e.key).await? {
                    Some(holder) if holder == name.id => Err(Error::AlreadyExists {
                        resource: "entity",
                        name: name.to_string(),
                        message: format!("{name} is already linked to {group}"),
                    }),
                    Some(holder) => Err(clash(&group, e.kind, e.key.as_str(), holder)),
                    None => {
                        entities::add_membership(txn, g.id, e.kind, &e.key, name.id).await?;
                        groups::bump(txn, &[g.id]).await?;
                        entity(txn, &name).await
                    }
                }
            })
        })
        .await
    }

    /// G4: removes one link of a shared entity, never its last.
    pub async fn unlink_entity(&self, key: Option<RequestKey>, name: EntityName, group: GroupName) -> Result<Entity> {
        self.write(key, "UnlinkEntity", move |txn| {
            Box::pin(async move {
                let e = entity(txn, &name).await?;
                let g = group_key(txn, &group).await?;
                rules::check_unlink(&name.to_string(), &group, e.sharing, &e.groups)?;
                entities::remove_membership(txn, g.id, name.id).await?;
                groups::bump(txn, &[g.id]).await?;
                entity(txn, &name).await
            })
        })
        .await
    }
}
