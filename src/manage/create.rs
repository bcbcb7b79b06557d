//! Creating a key: validated, generated, stored, and its credits started.

use super::confine::Actor;
use super::validate::{parse_ips, validate_name, validate_rate_limit};
use super::*;

impl KeyManager {
    /// Creates a key in `account`. Returns the plaintext, once.
    pub async fn create(&self, account: AccountId, new: NewKey) -> Result<CreatedKey, ManageError> {
        self.create_as(account, new, None).await
    }

    pub(crate) async fn create_as(
        &self,
        account: AccountId,
        new: NewKey,
        actor: Option<&Actor<'_>>,
    ) -> Result<CreatedKey, ManageError> {
        let name = validate_name(&new.name)?;
        let scopes = self.scopes(&new.scopes)?;
        let ips = parse_ips(&new.ips)?;
        validate_rate_limit(new.rate_limit.as_ref())?;
        self.validate_usage(&new.usage, new.rate_limit.as_ref())
            .await?;
        self.check_metadata(&new.metadata)?;
        let prefix = self.prefix(&new)?;
        let now = self.now();
        let key = self
            .gate
            .format()
            .generate(&prefix)
            .map_err(|e| ManageError::InvalidRequest(format!("prefix: {e}")))?;
        let mut record = KeyRecord {
            id: KeyId::new(self.ids.next(&self.config.id_prefix, millis(now))),
            account_id: account,
            name,
            prefix: prefix.as_str().to_owned(),
            start: key.start().to_owned(),
            environment: prefix.environment(),
            scopes,
            ips,
            expires_at: new.expires_at,
            revoked_at: None,
            disabled: false,
            rate_limit: new.rate_limit,
            metadata: new.metadata,
            usage: crate::metering::KeyUsage::own(new.usage),
            digest: self.gate.hasher().digest(key.expose_secret()),
            previous: None,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            version: 0,
            leak: None,
        };
        if let Some(actor) = actor {
            actor.inherit(&mut record);
            actor.bounds(&record)?;
            actor.usage_bounds_new(&record)?;
        }
        self.store_insert(record.clone(), self.config.max_active_keys, now, actor)
            .await?;
        self.start_credits(&record).await?;
        // A "not found" may be cached for this digest by a guess; it is not any more.
        self.gate.invalidate_local(&record);
        tracing::info!(target: "keygate::audit", action = "create", key_id = record.id.as_str(), account_id = record.account_id.as_str(), actor = actor.map(Actor::label), "api key created");
        Ok(CreatedKey {
            view: self.view(&record).await,
            key,
        })
    }
}
