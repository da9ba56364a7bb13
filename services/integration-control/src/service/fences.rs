//! Environment fences (the refresh's step 2 and its end, or an operator by hand): a
//! fence revokes the environment's sync leases in its transaction.

use ferry_kit::db::now_micros;

use super::Control;
use super::leases::revoke;
use crate::domain::leases::Revoke;
use crate::domain::{ChangeSet, EnvName, Fence, RequestKey, ResourceState, ResourceType, fence_name};
use crate::error::{Error, Result};
use crate::store;

impl Control {
    /// Fences an environment for `holder`; with `include_resources` also every integration
    /// and mapping in it.
    pub async fn fence_environment(
        &self,
        key: Option<RequestKey>,
        env: EnvName,
        holder: String,
        reason: String,
        include_resources: bool,
    ) -> Result<ChangeSet> {
        const M: &str = "FenceEnvironment";
        self.check_env(&key, M, &env).await?;
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let now = now_micros();
                let mut cs = ChangeSet::new(env.clone(), now);
                match store::fences::find(txn, &env).await? {
                    Some(f) if f.holder != holder => {
                        return Err(Error::unmet(
                            "FENCED_BY_OTHER_HOLDER",
                            &f.holder,
                            format!("{env} is fenced by {}; only that holder can change its fence", f.holder),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        let f = Fence { holder, reason, fence_time: now };
                        store::fences::insert(txn, &env, &f).await?;
                        cs.change(
                            fence_name(&env),
                            ResourceType::EnvironmentFence,
                            ResourceState::of_fence(None),
                            ResourceState::of_fence(Some(&f)),
                        );
                    }
                }
                let holder = store::fences::find(txn, &env).await?.map(|f| f.holder).unwrap_or_default();
                revoke(txn, Revoke::Env(&env), &format!("{env} was fenced by {holder}")).await?;
                if include_resources {
                    for mut row in store::integrations::list(txn, &env, None, None).await? {
                        let i = &mut row.integration;
                        if !i.fenced {
                            let before = ResourceState::of_integration(i);
                            i.fenced = true;
                            i.updated_at = now;
                            cs.change(&i.name, ResourceType::Integration, before, ResourceState::of_integration(i));
                            store::integrations::save(txn, &row).await?;
                        }
                    }
                    for mut m in store::mappings::list_env(txn, &env, None, None).await? {
                        if !m.fenced {
                            let before = ResourceState::of_mapping(&m);
                            m.fenced = true;
                            m.updated_at = now;
                            cs.change(&m.name, ResourceType::Mapping, before, ResourceState::of_mapping(&m));
                            store::mappings::save(txn, &m).await?;
                        }
                    }
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }

    /// Lifts the environment fence `holder` holds (any holder's with `force`).
    pub async fn unfence_environment(&self, key: Option<RequestKey>, env: EnvName, holder: String, force: bool) -> Result<ChangeSet> {
        const M: &str = "UnfenceEnvironment";
        self.check_env(&key, M, &env).await?;
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let mut cs = ChangeSet::new(env.clone(), now_micros());
                if let Some(f) = store::fences::find(txn, &env).await? {
                    if f.holder != holder && !force {
                        return Err(Error::unmet(
                            "FENCED_BY_OTHER_HOLDER",
                            &f.holder,
                            format!("{env} is fenced by {}; set force to lift another holder's fence", f.holder),
                        ));
                    }
                    store::fences::delete(txn, &env).await?;
                    cs.change(
                        fence_name(&env),
                        ResourceType::EnvironmentFence,
                        ResourceState::of_fence(Some(&f)),
                        ResourceState::of_fence(None),
                    );
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }

    pub async fn get_fence(&self, env: &EnvName) -> Result<Option<Fence>> {
        self.envs.exists(env).await?;
        Ok(store::fences::find(&self.db, env).await?)
    }
}
