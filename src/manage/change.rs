//! Changing a key: update, revoke, delete, roll.

use std::time::Duration;

use crate::store::record::{AccountId, GraceDigest, KeyId};

use super::confine::Actor;
use super::merge_patch::merge_object;
use super::retry_on_conflict;
use super::validate::{parse_ips, validate_name, validate_rate_limit};
use super::webhooks::Change;
use super::*;

impl KeyManager {
    /// Changes fields of key `id` of `account`.
    pub async fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        update: KeyUpdate,
    ) -> Result<KeyView, ManageError> {
        self.update_as(account, id, update, None).await
    }

    pub(crate) async fn update_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        update: KeyUpdate,
        actor: Option<&Actor<'_>>,
    ) -> Result<KeyView, ManageError> {
        retry_on_conflict(|| self.update_once(account, id, update.clone(), actor)).await
    }

    async fn update_once(
        &self,
        account: &AccountId,
        id: &KeyId,
        update: KeyUpdate,
        actor: Option<&Actor<'_>>,
    ) -> Result<KeyView, ManageError> {
        let name = update.name.as_deref().map(validate_name).transpose()?;
        let scopes = update
            .scopes
            .as_deref()
            .map(|s| self.scopes(s))
            .transpose()?;
        let ips = update.ips.as_deref().map(parse_ips).transpose()?;
        if let Some(limit) = &update.rate_limit {
            validate_rate_limit(limit.as_ref())?;
        }
        if let Some(metadata) = &update.metadata {
            self.check_metadata(metadata)?;
        }
        if let Some(patch) = &update.metadata_patch {
            self.check_metadata(patch)?;
        }
        let _write = self.write.lock().await;
        let old = self.record_in(account, id, actor).await?;
        if old.revoked_at.is_some() {
            return Err(ManageError::Revoked);
        }
        let mut new = old.clone();
        if let Some(v) = name {
            new.name = v;
        }
        if let Some(v) = scopes {
            new.scopes = v;
        }
        if let Some(v) = ips {
            new.ips = v;
        }
        if let Some(v) = update.expires_at {
            new.expires_at = v;
        }
        if let Some(v) = update.rate_limit {
            new.rate_limit = v;
        }
        if let Some(v) = update.metadata {
            new.metadata = v;
        }
        if let Some(patch) = &update.metadata_patch {
            // On the record just read: a retry after a conflict patches the newer one.
            merge_object(&mut new.metadata, patch);
            self.check_metadata(&new.metadata)?;
        }
        if let Some(v) = update.disabled {
            new.disabled = v;
        }
        let credits_set = matches!(update.credits, Some(Some(_)))
            || update
                .plan
                .as_ref()
                .is_some_and(|p| *p != old.usage.own.plan);
        if let Some(v) = update.credits {
            new.usage.own.credits = v;
        }
        if let Some(v) = update.quotas {
            new.usage.own.quotas = v;
        }
        if let Some(v) = update.plan {
            new.usage.own.plan = v;
        }
        if new.usage.own != old.usage.own || new.rate_limit != old.rate_limit {
            self.validate_usage(&new.usage.own, new.rate_limit.as_ref())
                .await?;
        }
        if let Some(actor) = actor {
            actor.bounds(&old)?;
            actor.bounds(&new)?;
            actor.usage_change(&old, &new)?;
            actor.stamp(&mut new);
        }
        new.updated_at = self.now();
        self.store_replace(&old, new.clone(), Change::Updated, actor)
            .await?;
        if credits_set {
            self.start_credits(&new).await?;
        }
        self.gate.invalidate_local(&old);
        tracing::info!(target: "keygate::audit", action = "update", key_id = id.as_str(), account_id = account.as_str(), actor = actor.map(Actor::label), "api key updated");
        Ok(self.view(&new).await)
    }

    /// Revokes key `id` of `account`. Idempotent: revoking a revoked key succeeds and
    /// changes nothing. Once this returns, the key fails on the very next request in
    /// this process.
    pub async fn revoke(&self, account: &AccountId, id: &KeyId) -> Result<Revoked, ManageError> {
        self.revoke_as(account, id, None).await
    }

    pub(crate) async fn revoke_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        actor: Option<&Actor<'_>>,
    ) -> Result<Revoked, ManageError> {
        retry_on_conflict(|| self.revoke_once(account, id, actor)).await
    }

    async fn revoke_once(
        &self,
        account: &AccountId,
        id: &KeyId,
        actor: Option<&Actor<'_>>,
    ) -> Result<Revoked, ManageError> {
        let _write = self.write.lock().await;
        let old = self.record_in(account, id, actor).await?;
        if old.revoked_at.is_some() {
            self.gate.invalidate_local(&old);
            return Ok(Revoked::Already);
        }
        if let Some(actor) = actor {
            actor.bounds(&old)?;
        }
        let mut new = old.clone();
        if let Some(actor) = actor {
            actor.stamp(&mut new);
        }
        let now = self.now();
        new.revoked_at = Some(now);
        new.updated_at = now;
        new.previous = None;
        self.store_replace(&old, new, Change::Revoked, actor)
            .await?;
        self.gate.invalidate_local(&old);
        tracing::info!(target: "keygate::audit", action = "revoke", key_id = id.as_str(), account_id = account.as_str(), actor = actor.map(Actor::label), "api key revoked");
        Ok(Revoked::Now)
    }

    /// Deletes key `id` of `account`, whatever its state: unlike [`revoke`](Self::revoke),
    /// nothing of it is kept, so it is gone from [`get`](Self::get) and
    /// [`list`](Self::list) (even with [`crate::store::KeyStatusFilter::All`]), and its
    /// secret answers as an unknown key. Once this returns, the key fails on the very
    /// next request in this process (its cached copies are invalidated through the
    /// cache's coherence protocol); other instances hear of it through the store's
    /// invalidation channel. Fails with [`ManageError::NotFound`] when there is no such
    /// key, so a second delete of one key is a `NotFound`.
    ///
    /// The key's own meters (its credits and quotas, see [`crate::metering`]) are deleted
    /// with it: by [`crate::MemoryStore`] under the lock of the delete, by `PgStore` in
    /// the delete's transaction. Its account's shared meters stay. Units another
    /// instance still holds of the key's meters are dropped when that instance forgets
    /// the key (at most one lease each).
    pub async fn delete(&self, account: &AccountId, id: &KeyId) -> Result<(), ManageError> {
        self.delete_as(account, id, None).await
    }

    pub(crate) async fn delete_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        actor: Option<&Actor<'_>>,
    ) -> Result<(), ManageError> {
        let _write = self.write.lock().await;
        let old = self.record_in(account, id, actor).await?;
        if let Some(actor) = actor {
            actor.bounds(&old)?;
        }
        let deleted = match self.store_delete(id, &old, actor).await {
            Ok(deleted) => deleted,
            Err(e) => {
                // The outcome may be unknown (a timeout after the commit): drop the
                // copies anyway, which costs at most one store lookup.
                self.gate.invalidate_local(&old);
                return Err(e.into());
            }
        };
        // The store returns what it deleted, which another instance may have rolled
        // since it was read: both sets of digests are dropped.
        self.gate.invalidate_local(&old);
        self.gate.invalidate_local(&deleted);
        // The store deleted the key's own meters with it; this instance's units of them
        // are dropped too, so that nothing is returned to (or re-creates) them.
        self.gate.metering().forget_key(id);
        tracing::info!(target: "keygate::audit", action = "delete", key_id = id.as_str(), account_id = account.as_str(), actor = actor.map(Actor::label), "api key deleted");
        Ok(())
    }

    /// Issues a new secret for key `id`, returned once. The old secret keeps working for
    /// `grace`; `None` or zero ends it at once.
    pub async fn roll(
        &self,
        account: &AccountId,
        id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<CreatedKey, ManageError> {
        self.roll_as(account, id, grace, None).await
    }

    pub(crate) async fn roll_as(
        &self,
        account: &AccountId,
        id: &KeyId,
        grace: Option<Duration>,
        actor: Option<&Actor<'_>>,
    ) -> Result<CreatedKey, ManageError> {
        retry_on_conflict(|| self.roll_once(account, id, grace, actor)).await
    }

    async fn roll_once(
        &self,
        account: &AccountId,
        id: &KeyId,
        grace: Option<Duration>,
        actor: Option<&Actor<'_>>,
    ) -> Result<CreatedKey, ManageError> {
        let _write = self.write.lock().await;
        let old = self.record_in(account, id, actor).await?;
        if old.revoked_at.is_some() {
            return Err(ManageError::Revoked);
        }
        if let Some(actor) = actor {
            actor.bounds(&old)?;
        }
        let prefix = self
            .gate
            .format()
            .prefix(&old.prefix)
            .cloned()
            .ok_or_else(|| ManageError::InvalidRequest("prefix: no longer accepted".into()))?;
        let key = self
            .gate
            .format()
            .generate(&prefix)
            .map_err(|e| ManageError::InvalidRequest(format!("prefix: {e}")))?;
        let now = self.now();
        let mut new = old.clone();
        new.digest = self.gate.hasher().digest(key.expose_secret());
        new.start = key.start().to_owned();
        new.previous = grace.filter(|g| !g.is_zero()).map(|g| GraceDigest {
            digest: old.digest,
            until: now + g,
        });
        new.updated_at = now;
        // The leaked secret is gone with the roll.
        new.leak = None;
        if let Some(actor) = actor {
            actor.stamp(&mut new);
        }
        self.store_replace(&old, new.clone(), Change::Rolled, actor)
            .await?;
        self.gate.invalidate_local(&old);
        self.gate.invalidate_local(&new);
        tracing::info!(target: "keygate::audit", action = "roll", key_id = id.as_str(), account_id = account.as_str(), actor = actor.map(Actor::label), grace_seconds = grace.map(|g| g.as_secs()), "api key rolled");
        Ok(CreatedKey {
            view: self.view(&new).await,
            key,
        })
    }
}
