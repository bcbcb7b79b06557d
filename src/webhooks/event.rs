//! The events and their payloads.

use std::time::SystemTime;

use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::manage::rfc3339;
use crate::store::record::{AccountId, KeyId, KeyRecord};

/// The retry horizon of an event until [`super::Webhooks`] sets its own.
const DEFAULT_HORIZON: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What happened, the payload's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum EventType {
    /// `key.created`: a key was created or imported.
    #[serde(rename = "key.created")]
    KeyCreated,
    /// `key.updated`: a key's fields changed; `data.changed` names them.
    #[serde(rename = "key.updated")]
    KeyUpdated,
    /// `key.rolled`: a key got a new secret; `data.grace_until` is when the old one stops.
    #[serde(rename = "key.rolled")]
    KeyRolled,
    /// `key.revoked`: a key was revoked.
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    /// `key.deleted`: a key was deleted.
    #[serde(rename = "key.deleted")]
    KeyDeleted,
    /// `key.leaked`: a key was found in public (by a secret scanner).
    #[serde(rename = "key.leaked")]
    KeyLeaked,
    /// `key.expiring`: a key's `expires_at` is near; sent once per key and expiry.
    #[serde(rename = "key.expiring")]
    KeyExpiring,
    /// `credits.low`: a key's or an account's credits fell to their threshold
    /// ([`crate::metering::Credits::low`]); sent once per crossing.
    #[serde(rename = "credits.low")]
    CreditsLow,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 8] = [
        EventType::KeyCreated,
        EventType::KeyUpdated,
        EventType::KeyRolled,
        EventType::KeyRevoked,
        EventType::KeyDeleted,
        EventType::KeyLeaked,
        EventType::KeyExpiring,
        EventType::CreditsLow,
    ];

    /// The payload's `type`, such as `key.revoked`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::KeyCreated => "key.created",
            EventType::KeyUpdated => "key.updated",
            EventType::KeyRolled => "key.rolled",
            EventType::KeyRevoked => "key.revoked",
            EventType::KeyDeleted => "key.deleted",
            EventType::KeyLeaked => "key.leaked",
            EventType::KeyExpiring => "key.expiring",
            EventType::CreditsLow => "credits.low",
        }
    }

    /// The type named `name`, such as `key.revoked`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event, with its payload already serialised: the bytes every delivery of it
/// sends and signs.
///
/// The payload is `{"type":"key.revoked","timestamp":"<RFC 3339>","data":{…}}`, where
/// `data` names the key by `key_id` and `account_id` and carries its `name`,
/// `environment` and the `actor` that made the change (a key id, `external:<subject>`,
/// or `null` for server-side code), plus fields of the event type. Never the key's
/// secret, its digest, its first characters or its metadata.
#[derive(Clone, Debug)]
pub struct WebhookEvent {
    pub(crate) id: String,
    pub(crate) event_type: EventType,
    pub(crate) account_id: AccountId,
    pub(crate) key_id: Option<KeyId>,
    /// For `key.expiring`, the expiry announced: one event per key and expiry.
    pub(crate) subject_at: Option<SystemTime>,
    pub(crate) created_at: SystemTime,
    /// Tried until then; then failed.
    pub(crate) deadline: SystemTime,
    pub(crate) body: String,
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: &'a Map<String, Value>,
}

impl WebhookEvent {
    /// An event of `event_type` about `key` at `at`, with the common fields, `actor`,
    /// and `details` added to `data` (a detail never replaces a common field).
    pub fn for_key(
        event_type: EventType,
        key: &KeyRecord,
        actor: Option<&str>,
        at: SystemTime,
        details: Map<String, Value>,
    ) -> Self {
        let mut data = Map::new();
        data.insert("key_id".into(), key.id.as_str().into());
        data.insert("account_id".into(), key.account_id.as_str().into());
        data.insert("name".into(), key.name.clone().into());
        data.insert(
            "environment".into(),
            key.environment.map_or(Value::Null, |e| e.as_str().into()),
        );
        data.insert("actor".into(), actor.map_or(Value::Null, Value::from));
        for (name, value) in details {
            data.entry(name).or_insert(value);
        }
        Self::new(
            event_type,
            key.account_id.clone(),
            Some(key.id.clone()),
            at,
            data,
        )
    }

    /// `key.leaked` for `key`: it was found at `url` (may be empty) by a scanner that
    /// calls the token type `token_type` and the place `source`; `action` is what was
    /// done about it (`revoked`, `disabled` or `recorded`).
    pub fn key_leaked(
        key: &KeyRecord,
        url: &str,
        source: &str,
        token_type: &str,
        action: &str,
        at: SystemTime,
    ) -> Self {
        let mut details = Map::new();
        details.insert("url".into(), url.into());
        details.insert("source".into(), source.into());
        details.insert("token_type".into(), token_type.into());
        details.insert("action".into(), action.into());
        details.insert("leaked_at".into(), rfc3339(at).into());
        Self::for_key(EventType::KeyLeaked, key, None, at, details)
    }

    /// `credits.low` for `key`'s own credits: `remaining` credits are left, at or below
    /// `threshold`; `data.meter` is `key_credits`.
    pub fn credits_low(key: &KeyRecord, remaining: u64, threshold: u64, at: SystemTime) -> Self {
        let mut details = Map::new();
        details.insert("meter".into(), "key_credits".into());
        details.insert("remaining".into(), remaining.into());
        details.insert("threshold".into(), threshold.into());
        Self::for_key(EventType::CreditsLow, key, None, at, details)
    }

    /// `credits.low` for the credits `account` shares among its keys: `data.meter` is
    /// `account_credits`, and `key_id`, `name`, `environment` and `actor` are `null`.
    pub fn credits_low_account(
        account: &AccountId,
        remaining: u64,
        threshold: u64,
        at: SystemTime,
    ) -> Self {
        let mut data = Map::new();
        data.insert("key_id".into(), Value::Null);
        data.insert("account_id".into(), account.as_str().into());
        data.insert("name".into(), Value::Null);
        data.insert("environment".into(), Value::Null);
        data.insert("actor".into(), Value::Null);
        data.insert("meter".into(), "account_credits".into());
        data.insert("remaining".into(), remaining.into());
        data.insert("threshold".into(), threshold.into());
        Self::new(EventType::CreditsLow, account.clone(), None, at, data)
    }

    /// `key.expiring` for `key`, which expires at `expires_at`.
    pub(crate) fn key_expiring(key: &KeyRecord, expires_at: SystemTime, at: SystemTime) -> Self {
        let mut details = Map::new();
        details.insert("expires_at".into(), rfc3339(expires_at).into());
        let mut event = Self::for_key(EventType::KeyExpiring, key, None, at, details);
        event.subject_at = Some(expires_at);
        event
    }

    fn new(
        event_type: EventType,
        account_id: AccountId,
        key_id: Option<KeyId>,
        at: SystemTime,
        data: Map<String, Value>,
    ) -> Self {
        let payload = Payload {
            kind: event_type.as_str(),
            timestamp: rfc3339(at),
            data: &data,
        };
        let body = serde_json::to_string(&payload).unwrap_or_else(|_| "{}".to_owned());
        Self {
            id: new_id(),
            event_type,
            account_id,
            key_id,
            subject_at: None,
            created_at: at,
            deadline: at + DEFAULT_HORIZON,
            body,
        }
    }

    /// The `webhook-id`, `msg_` and 24 random characters: the same on every try.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event's type.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The account of the key it is about.
    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }

    /// The serialised payload, exactly as it is sent.
    pub fn payload(&self) -> &str {
        &self.body
    }
}

/// A new event id: `msg_` and 24 random alphanumeric characters (about 143 bits).
pub(crate) fn new_id() -> String {
    format!("msg_{}", Alphanumeric.sample_string(&mut rand::rng(), 24))
}

/// The names of the fields that differ between `old` and `new`, for `key.updated`.
pub(crate) fn changed_fields(old: &KeyRecord, new: &KeyRecord) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("name", old.name != new.name);
    check("scopes", old.scopes != new.scopes);
    check("ips", old.ips != new.ips);
    check("expires_at", old.expires_at != new.expires_at);
    check("rate_limit", old.rate_limit != new.rate_limit);
    check("metadata", old.metadata != new.metadata);
    check("disabled", old.disabled != new.disabled);
    changed
}
