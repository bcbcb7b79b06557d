//! Handling a key reported as leaked: see [`crate::leaks`].

use crate::key::digest::KeyDigest;
use crate::leaks::{KeyLeak, LeakChange, LeakOutcome, LeakPolicy, LeakReport};
use crate::store::record::KeyRecord;

use super::retry_on_conflict;
use super::webhooks::Change;
use super::*;

impl KeyManager {
    /// Handles `token`, reported as leaked by a secret scanner, under `policy`: checks it
    /// offline, looks its digest up in every account and environment, applies the policy
    /// to the key it belongs to and records the leak on it. See [`crate::leaks`].
    ///
    /// Idempotent: a repeat of a report already handled changes nothing and emits
    /// nothing ([`LeakChange::Unchanged`]). Once this returns, a revoked or disabled key
    /// is refused on its very next request in this process; other instances hear of it
    /// through the store's invalidation channel.
    ///
    /// This is the one place a leak is handled, and so the place to hook anything else
    /// that should follow a leak (an event to the operator, a count in the key's
    /// activity).
    ///
    /// ```
    /// use keygate::leaks::{LeakChange, LeakOutcome, LeakPolicy, LeakReport};
    /// use keygate::{Keygate, MemoryStore, NewKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), keygate::ManageError> {
    /// let (gate, manager) = Keygate::managed(MemoryStore::new()).build();
    /// let created = manager.create("acct_1".into(), NewKey::named("CI")).await?;
    /// let token = created.key.expose_secret();
    /// let report = LeakReport::new("keygate_api_key", "https://gist.github.com/x", "gist_content");
    /// let outcome = manager.report_leak(token, &report, LeakPolicy::Revoke).await?;
    /// assert!(matches!(outcome, LeakOutcome::Found { change: LeakChange::Revoked, .. }));
    /// assert!(gate.verify_key(token).await.is_err());
    /// // GitHub retries: the same report again changes nothing.
    /// let again = manager.report_leak(token, &report, LeakPolicy::Revoke).await?;
    /// assert!(matches!(again, LeakOutcome::Found { change: LeakChange::Unchanged, .. }));
    /// # Ok(()) }
    /// ```
    pub async fn report_leak(
        &self,
        token: &str,
        report: &LeakReport,
        policy: LeakPolicy,
    ) -> Result<LeakOutcome, ManageError> {
        if self.gate.format().parse(token).is_err() {
            return Ok(LeakOutcome::Malformed);
        }
        let digest = self.gate.hasher().digest(token);
        retry_on_conflict(|| self.report_leak_once(token, &digest, report, policy)).await
    }

    async fn report_leak_once(
        &self,
        token: &str,
        digest: &KeyDigest,
        report: &LeakReport,
        policy: LeakPolicy,
    ) -> Result<LeakOutcome, ManageError> {
        let _write = self.write.lock().await;
        let Some(old) = self.store.find_by_digest(digest).await? else {
            return Ok(LeakOutcome::Unknown);
        };
        let current = old.digest == *digest;
        let previous = old.previous.is_some_and(|p| p.digest == *digest);
        if !current && !previous {
            // A record carrying neither digest is "not found" (see `KeyStore`).
            return Ok(LeakOutcome::Unknown);
        }
        let now = self.now();
        let mut new = old.clone();
        let mut change = LeakChange::Unchanged;
        match policy {
            LeakPolicy::Revoke | LeakPolicy::Disable if !current => {
                new.previous = None;
                change = LeakChange::GraceEnded;
            }
            LeakPolicy::Revoke if old.revoked_at.is_none() => {
                new.revoked_at = Some(now);
                new.previous = None;
                change = LeakChange::Revoked;
            }
            LeakPolicy::Disable if old.revoked_at.is_none() && !old.disabled => {
                new.disabled = true;
                change = LeakChange::Disabled;
            }
            _ => {}
        }
        let this = report.to_record(token, now);
        if new.leak.is_none() {
            new.leak = Some(this.clone());
            if change == LeakChange::Unchanged {
                change = LeakChange::Recorded;
            }
        }
        if change != LeakChange::Unchanged {
            new.updated_at = now;
            let kind = if change == LeakChange::Revoked {
                Change::Revoked
            } else {
                Change::Updated
            };
            self.store_replace(&old, new.clone(), kind, None).await?;
            self.gate.invalidate_local(&old);
            self.leak_handled(&new, &this, policy, change);
            #[cfg(feature = "webhooks")]
            if let Some(webhooks) = self.webhooks() {
                let event = crate::webhooks::WebhookEvent::key_leaked(
                    &new,
                    &this.url,
                    &this.source,
                    &this.token_type,
                    change.as_str(),
                    now,
                );
                // Counted and logged by `enqueue` itself; the change is already made.
                let _ = webhooks.enqueue([event]).await;
            }
        }
        Ok(LeakOutcome::Found {
            key_id: old.id,
            account_id: old.account_id,
            change,
        })
    }

    /// Everything that follows a report (`report`, as kept: without the token) that
    /// changed `record`, once per change.
    fn leak_handled(
        &self,
        record: &KeyRecord,
        report: &KeyLeak,
        policy: LeakPolicy,
        change: LeakChange,
    ) {
        // `key.leaked` is queued by the caller, after the change (see `report_leak`).
        tracing::info!(
            target: "keygate::audit",
            action = "leak",
            key_id = record.id.as_str(),
            account_id = record.account_id.as_str(),
            policy = policy.as_str(),
            change = change.as_str(),
            token_type = report.token_type.as_str(),
            source = report.source.as_str(),
            url = report.url.as_str(),
            "api key reported as leaked"
        );
    }
}
