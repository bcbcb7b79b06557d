//! Management on behalf of an authenticated key.

use std::time::Duration;

use crate::identity::Identity;
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
/// The plain [`KeyManager`] methods, for server-side code acting with no key, are not
/// confined by any of this (beyond the deployment's own environment).
#[derive(Debug)]
pub struct ActingManager<'a> {
    manager: &'a KeyManager,
    actor: &'a Identity,
}

impl<'a> ActingManager<'a> {
    pub(crate) fn new(manager: &'a KeyManager, actor: &'a Identity) -> Self {
        Self { manager, actor }
    }

    fn account(&self) -> &AccountId {
        self.actor.account_id()
    }

    /// Creates a key in the actor's account, no less restricted than the actor. It gets
    /// the actor's environment unless `new` names one, and the actor's IP allowlist,
    /// expiry and rate limit where `new` leaves them open.
    pub async fn create(&self, mut new: NewKey) -> Result<CreatedKey, ManageError> {
        if let Some(env) = self.actor.environment() {
            if new.prefix.is_none() {
                new.environment.get_or_insert(env);
            }
        }
        let actor = self.manager.actor(self.actor);
        self.manager
            .create_as(self.account().clone(), new, Some(&actor))
            .await
    }

    /// A key of the actor's account and environment.
    pub async fn get(&self, id: &KeyId) -> Result<KeyView, ManageError> {
        let actor = self.manager.actor(self.actor);
        self.manager.get_as(self.account(), id, Some(&actor)).await
    }

    /// A page of the actor's account's keys, of its environment: see [`KeyManager::list`].
    pub async fn list(&self, query: &ListQuery) -> Result<Page, ManageError> {
        let actor = self.manager.actor(self.actor);
        self.manager
            .list_as(self.account(), query, Some(&actor))
            .await
    }

    /// Changes a key no less restricted than the actor, keeping it so.
    pub async fn update(&self, id: &KeyId, update: KeyUpdate) -> Result<KeyView, ManageError> {
        let actor = self.manager.actor(self.actor);
        self.manager
            .update_as(self.account(), id, update, Some(&actor))
            .await
    }

    /// Revokes a key no less restricted than the actor.
    pub async fn revoke(&self, id: &KeyId) -> Result<Revoked, ManageError> {
        let actor = self.manager.actor(self.actor);
        self.manager
            .revoke_as(self.account(), id, Some(&actor))
            .await
    }

    /// Deletes a key no less restricted than the actor: see [`KeyManager::delete`].
    pub async fn delete(&self, id: &KeyId) -> Result<(), ManageError> {
        let actor = self.manager.actor(self.actor);
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
        let actor = self.manager.actor(self.actor);
        self.manager
            .roll_as(self.account(), id, grace, Some(&actor))
            .await
    }
}
