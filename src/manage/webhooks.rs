//! The manager's writes, each with its webhook event (feature `webhooks`): written in
//! the store's transaction when the store keeps the outbox, queued right after the
//! write otherwise. Without the feature, or without [`crate::webhooks::Webhooks`], the
//! plain store calls.

use std::time::SystemTime;

use super::confine::Actor;
use super::KeyManager;
use crate::store::record::{KeyId, KeyRecord};
use crate::store::StoreError;

/// What a replace did, for its event.
#[derive(Clone, Copy, Debug)]
pub(super) enum Change {
    Updated,
    Revoked,
    Rolled,
}

#[cfg(feature = "webhooks")]
mod events {
    use serde_json::{Map, Value};

    use std::sync::Arc;

    use super::*;
    use crate::manage::rfc3339;
    use crate::metering::low::LowCredits;
    use crate::metering::Meter;
    use crate::webhooks::{changed_fields, EventType, WebhookEvent, Webhooks};

    impl KeyManager {
        /// The webhooks this manager's changes are sent through, if any: to queue events
        /// of changes made elsewhere, such as `key.leaked` or `credits.low`.
        #[cfg_attr(docsrs, doc(cfg(feature = "webhooks")))]
        pub fn webhooks(&self) -> Option<&Webhooks> {
            self.webhooks.as_ref()
        }

        /// The event of a write, when webhooks are on.
        pub(super) fn event(
            &self,
            kind: EventType,
            key: &KeyRecord,
            actor: Option<&Actor<'_>>,
            details: Map<String, Value>,
        ) -> Option<(Webhooks, Vec<WebhookEvent>)> {
            let webhooks = self.webhooks.clone()?;
            let label = actor.map(Actor::label);
            let event = WebhookEvent::for_key(kind, key, label.as_deref(), self.now(), details);
            let events = webhooks.prepare(vec![event]);
            Some((webhooks, events))
        }

        /// With webhooks kept in process and the ledger in process too, sends each
        /// crossing of a low-credit threshold as `credits.low` (with the ledger in
        /// PostgreSQL, the ledger writes the event itself, see `WebhooksBuilder::postgres`).
        /// The hook holds neither the webhooks nor the store alive.
        pub(in crate::manage) fn send_low_credits(&self, webhooks: &Webhooks) {
            let metering = self.gate.metering();
            let Some(local) = metering.ledger.as_ref().and_then(|l| l.local()) else {
                return;
            };
            if webhooks.durable() {
                return;
            }
            let (hooks, store) = (webhooks.downgrade(), Arc::downgrade(&self.store));
            local.on_low_credits(Arc::new(move |crossing: LowCredits| {
                let (Some(webhooks), Some(store)) = (Webhooks::upgrade(&hooks), store.upgrade())
                else {
                    return;
                };
                let mut queue = Box::pin(async move {
                    let remaining = u64::try_from(crossing.remaining.max(0)).unwrap_or(0);
                    let (threshold, at) = (crossing.threshold, crossing.at);
                    let event = match &crossing.meter {
                        Meter::KeyCredits(id) => match store.get(id).await {
                            Ok(Some(key)) => {
                                WebhookEvent::credits_low(&key, remaining, threshold, at)
                            }
                            // Deleted since, or unreadable: nothing to name.
                            _ => return,
                        },
                        Meter::AccountCredits(account) => {
                            WebhookEvent::credits_low_account(account, remaining, threshold, at)
                        }
                        _ => return,
                    };
                    // Counted and logged by `enqueue` itself.
                    let _ = webhooks.enqueue([event]).await;
                });
                // A store in process answers at once: the event is queued before the
                // change that crossed returns. Otherwise it finishes on the runtime.
                if futures_util::FutureExt::now_or_never(&mut queue).is_some() {
                    return;
                }
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => drop(runtime.spawn(queue)),
                    Err(_) => tracing::warn!(target: "keygate::webhooks", "credits.low not queued: no tokio runtime"),
                }
            }));
        }

        /// Queues `events` written by a store that keeps no outbox. Never fails the
        /// change, which is already made: a failure is logged and counted.
        pub(super) async fn queue(&self, webhooks: &Webhooks, events: Vec<WebhookEvent>) {
            // Counted and logged by `enqueue` itself.
            let _ = webhooks.enqueue(events).await;
        }
    }

    pub(super) fn insert_details(record: &KeyRecord) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert(
            "expires_at".into(),
            record.expires_at.map_or(Value::Null, |t| rfc3339(t).into()),
        );
        details.insert(
            "scopes".into(),
            record
                .scopes
                .iter()
                .map(|s| Value::from(s.as_str()))
                .collect(),
        );
        details
    }

    pub(super) fn replace_details(
        change: Change,
        old: &KeyRecord,
        new: &KeyRecord,
    ) -> (EventType, Map<String, Value>) {
        let mut details = Map::new();
        let kind = match change {
            Change::Updated => {
                let changed = changed_fields(old, new);
                details.insert(
                    "changed".into(),
                    changed.into_iter().map(Value::from).collect(),
                );
                details.insert("disabled".into(), new.disabled.into());
                EventType::KeyUpdated
            }
            Change::Revoked => {
                let at = new.revoked_at.map_or(Value::Null, |t| rfc3339(t).into());
                details.insert("revoked_at".into(), at);
                EventType::KeyRevoked
            }
            Change::Rolled => {
                let until = new.previous.as_ref().map(|p| rfc3339(p.until));
                details.insert("grace_until".into(), until.map_or(Value::Null, Value::from));
                EventType::KeyRolled
            }
        };
        (kind, details)
    }
}

impl KeyManager {
    /// Inserts `record` (a created or imported key) with its `key.created`.
    pub(super) async fn store_insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
        actor: Option<&Actor<'_>>,
    ) -> Result<(), StoreError> {
        #[cfg(feature = "webhooks")]
        {
            use crate::webhooks::EventType;
            let details = events::insert_details(&record);
            if let Some((w, ev)) = self.event(EventType::KeyCreated, &record, actor, details) {
                let stored = if w.durable() {
                    self.store
                        .insert_with_events(record, max_active, now, &ev)
                        .await?
                } else {
                    self.store
                        .insert(record, max_active, now)
                        .await
                        .map(|()| false)?
                };
                if stored {
                    w.wake();
                } else {
                    self.queue(&w, ev).await;
                }
                return Ok(());
            }
        }
        let _ = actor;
        self.store.insert(record, max_active, now).await
    }

    /// Replaces `old` with `new`, with the event of `change`.
    pub(super) async fn store_replace(
        &self,
        old: &KeyRecord,
        new: KeyRecord,
        change: Change,
        actor: Option<&Actor<'_>>,
    ) -> Result<(), StoreError> {
        #[cfg(feature = "webhooks")]
        {
            let (kind, details) = events::replace_details(change, old, &new);
            if let Some((w, ev)) = self.event(kind, &new, actor, details) {
                let stored = if w.durable() {
                    self.store.replace_with_events(new, &ev).await?
                } else {
                    self.store.replace(new).await.map(|()| false)?
                };
                if stored {
                    w.wake();
                } else {
                    self.queue(&w, ev).await;
                }
                return Ok(());
            }
        }
        let _ = (old, change, actor);
        self.store.replace(new).await
    }

    /// Deletes `old` (key `id`) with its `key.deleted`.
    pub(super) async fn store_delete(
        &self,
        id: &KeyId,
        old: &KeyRecord,
        actor: Option<&Actor<'_>>,
    ) -> Result<KeyRecord, StoreError> {
        #[cfg(feature = "webhooks")]
        {
            use crate::webhooks::EventType;
            let details = serde_json::Map::new();
            if let Some((w, ev)) = self.event(EventType::KeyDeleted, old, actor, details) {
                let (deleted, stored) = if w.durable() {
                    self.store.delete_with_events(id, &ev).await?
                } else {
                    (self.store.delete(id).await?, false)
                };
                if stored {
                    w.wake();
                } else {
                    self.queue(&w, ev).await;
                }
                return Ok(deleted);
            }
        }
        let _ = (old, actor);
        self.store.delete(id).await
    }
}
