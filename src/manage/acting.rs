//! Management on behalf of an authenticated key.

use std::time::Duration;

use crate::identity::Identity;
use crate::manage::confine::Actor;
use crate::manage::{
    CreatedKey, KeyManager, KeyUpdate, KeyView, ListQuery, ManageError, NewKey, Page, Revoked,
};
use crate::store::record::{AccountId, KeyId};

/// A [`KeyManager`] acting for one key (see [`KeyManager::acting_as`]), as the
/// management API does for the key that calls it.
///
/// **Confinement.** The actor sees only keys of its own account and, when it has an
/// environment, of that environment: `get`, `update`, `roll`, `revoke` and `delete` of any other
/// key fail with [`ManageError::NotFound`], as if it did not exist, and `list` leaves it
/// out. An environment-neutral actor sees every environment its deployment serves.
///
/// **No widening.** The actor creates, updates, rolls, revokes and deletes only keys that are no
/// less restricted than itself, and a key it creates or updates is no less restricted
/// afterwards:
///
/// - scopes: everything the key's scopes grant (implications applied) is granted to the
///   actor. Read-only scopes (the deployment's `read_only_scopes`) restrict rather than
///   grant, so any actor may give them, and a read-only actor's own read-only scopes stay
///   on every key it manages. Refused with [`ManageError::Escalation`]
///   (`insufficient_scope`), as is another environment than the actor's;
/// - IP allowlist: when the actor has one, each network of the key's lies inside one of
///   the actor's (an empty list, meaning any address, is wider than any list);
/// - expiry: when the actor expires, the key expires no later;
/// - rate limit: when the actor has its own quota, the key has one no higher in both
///   `per_second` and `burst`; otherwise the key's is no higher than the deployment
///   default.
///
/// The last three are refused with [`ManageError::Widening`] (403 `widening_refused`),
/// which also stops a key from lifting its own restrictions.
///
/// **Inheritance.** A key created by a restricted actor that leaves a restriction open
/// (no `ips`, no `expires_at`, no `rate_limit`) gets the actor's own, rather than being
/// refused: the narrowest a request can ask for is never refused for being too wide.
/// Updates do not inherit: `{"ips": []}` from an IP-restricted actor is refused.
///
/// **External principals** (a verified JWT, say) are confined the same way, by the
/// expiry, environment, scopes, IP allowlist and quota of their
/// [`crate::credential::Principal`]: a key a token creates expires no later than the
/// token. One with no environment acts in the deployment's environment when it serves
/// one; on a deployment serving several, every call, reads included, fails with
/// [`ManageError::EnvironmentRequired`] (403 `environment_required`) unless
/// [`crate::manage::ManagerConfig::environment_neutral_principals`] is on.
///
/// The plain [`KeyManager`] methods, for server-side code acting with no key, are not
/// confined by any of this (beyond the deployment's own environment).
#[derive(Debug)]
pub struct ActingManager<'a> {
    manager: &'a KeyManager,
    actor: &'a Identity,
    /// The metadata member recording who last changed a key, set on roll and revoke.
    updated_by: Option<&'a str>,
    /// Acts in every environment the deployment serves, whatever the manager's
    /// configuration says of environment-neutral principals (the key console, for a
    /// session the host granted every environment).
    every_environment: bool,
}

impl<'a> ActingManager<'a> {
    pub(crate) fn new(manager: &'a KeyManager, actor: &'a Identity) -> Self {
        Self {
            manager,
            actor,
            updated_by: None,
            every_environment: false,
        }
    }

    /// Acts in every environment the deployment serves, for an environment-neutral
    /// principal the host deliberately granted them all (the key console).
    #[cfg(feature = "console")]
    pub(crate) fn in_every_environment(mut self) -> Self {
        self.every_environment = true;
        self
    }

    /// Also records the actor under `field` of the metadata of every key it rolls or
    /// revokes (the admin router's `updated_by`).
    #[cfg(feature = "admin")]
    pub(crate) fn recording_updates_in(mut self, field: Option<&'a str>) -> Self {
        self.updated_by = field;
        self
    }

    pub(super) fn acting(&self) -> Result<Actor<'_>, ManageError> {
        let mut actor = if self.every_environment {
            crate::manage::confine::Actor::new(self.actor, &self.manager.gate, true)?
        } else {
            self.manager.actor(self.actor)?
        };
        actor.updated_by = self.updated_by;
        Ok(actor)
    }

    pub(super) fn manager(&self) -> &'a KeyManager {
        self.manager
    }

    pub(super) fn identity(&self) -> &'a Identity {
        self.actor
    }

    fn account(&self) -> &AccountId {
        self.actor.account_id()
    }

    /// The manager and the actor's account, once the actor may manage keys here at all.
    pub(crate) fn confined(&self) -> Result<(&'a KeyManager, &AccountId), ManageError> {
        self.acting()?;
        Ok((self.manager, self.account()))
    }

    /// Creates a key in the actor's account, no less restricted than the actor. It gets
    /// the actor's environment unless `new` names one, and the actor's IP allowlist,
    /// expiry and rate limit where `new` leaves them open.
    pub async fn create(&self, mut new: NewKey) -> Result<CreatedKey, ManageError> {
        let actor = self.acting()?;
        if let Some(env) = actor.environment {
            if new.prefix.is_none() {
                new.environment.get_or_insert(env);
            }
        }
        self.manager
            .create_as(self.account().clone(), new, Some(&actor))
            .await
    }

    /// A key of the actor's account and environment.
    pub async fn get(&self, id: &KeyId) -> Result<KeyView, ManageError> {
        let actor = self.acting()?;
        self.manager.get_as(self.account(), id, Some(&actor)).await
    }

    /// A page of the actor's account's keys, of its environment: see [`KeyManager::list`].
    pub async fn list(&self, query: &ListQuery) -> Result<Page, ManageError> {
        let actor = self.acting()?;
        self.manager
            .list_as(self.account(), query, Some(&actor))
            .await
    }

    /// Changes a key no less restricted than the actor, keeping it so.
    pub async fn update(&self, id: &KeyId, update: KeyUpdate) -> Result<KeyView, ManageError> {
        let actor = self.acting()?;
        self.manager
            .update_as(self.account(), id, update, Some(&actor))
            .await
    }

    /// Revokes a key no less restricted than the actor.
    pub async fn revoke(&self, id: &KeyId) -> Result<Revoked, ManageError> {
        let actor = self.acting()?;
        self.manager
            .revoke_as(self.account(), id, Some(&actor))
            .await
    }

    /// Deletes a key no less restricted than the actor: see [`KeyManager::delete`].
    pub async fn delete(&self, id: &KeyId) -> Result<(), ManageError> {
        let actor = self.acting()?;
        self.manager
            .delete_as(self.account(), id, Some(&actor))
            .await
    }

    /// Rolls a key no less restricted than the actor: its new secret goes to the actor.
    pub async fn roll(
        &self,
        id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<CreatedKey, ManageError> {
        let actor = self.acting()?;
        self.manager
            .roll_as(self.account(), id, grace, Some(&actor))
            .await
    }
}
