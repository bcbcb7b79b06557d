//! What a key acting through [`crate::manage::ActingManager`] may do: see only its own
//! environment's keys, and never make or touch a key less restricted than itself.
//!
//! A key `k` is *within* an actor `a` when every dimension of `k` is at least as narrow:
//!
//! | dimension | `k` is within `a` when |
//! |---|---|
//! | environment | `a` is environment-neutral, or `k` has `a`'s environment |
//! | scopes | everything `k`'s scopes grant (implications applied) is granted to `a`, except read-only scopes, which restrict rather than grant; and `k` keeps every read-only scope `a` holds |
//! | IP allowlist | `a` has none, or each network of `k`'s is inside one of `a`'s (an empty list is "any address": wider than any list) |
//! | expiry | `a` never expires, or `k` expires no later than `a` |
//! | rate limit | `a` has an override and `k` has one no higher in both `per_second` and `burst`; or `a` has none and `k`'s is no higher than the deployment default (anything, when the default is unlimited) |
//!
//! An actor creates, updates, rolls and revokes only keys within itself, and a key it
//! creates or updates must be within it afterwards.
//!
//! An external principal (a verified JWT, say) is an actor like a key: its expiry,
//! environment, scopes, IP allowlist and quota are its record's. With no environment it
//! acts in the deployment's one environment; a deployment serving several refuses it
//! ([`ManageError::EnvironmentRequired`]) unless
//! [`crate::manage::ManagerConfig::environment_neutral_principals`] is on.

use crate::credential::CredentialKind;
use crate::gate::Keygate;
use crate::identity::Identity;
use crate::key::Environment;
use crate::manage::ManageError;
use crate::store::record::{KeyRecord, RateLimit};

/// An authenticated key acting on management, with what it needs to judge other keys.
pub(crate) struct Actor<'a> {
    pub(crate) identity: &'a Identity,
    pub(crate) gate: &'a Keygate,
    /// The environment it acts in: its own, or for an external principal with none, the
    /// deployment's only one.
    pub(crate) environment: Option<Environment>,
    /// The metadata member that names who last changed a key, when recorded.
    pub(crate) updated_by: Option<&'a str>,
}

impl<'a> Actor<'a> {
    /// `identity` as an actor on `gate`'s keys: refused when it is an external principal
    /// with no environment on a deployment serving several, unless `neutral_principals`.
    pub(crate) fn new(
        identity: &'a Identity,
        gate: &'a Keygate,
        neutral_principals: bool,
    ) -> Result<Self, ManageError> {
        let mut environment = identity.environment();
        if identity.credential() == CredentialKind::External && environment.is_none() {
            let served = served_environments(gate);
            match served.as_slice() {
                [] => {}
                [only] => environment = Some(*only),
                _ if neutral_principals => {}
                _ => return Err(ManageError::EnvironmentRequired),
            }
        }
        Ok(Self {
            identity,
            gate,
            environment,
            updated_by: None,
        })
    }

    fn record(&self) -> &KeyRecord {
        &self.identity.0.record
    }

    /// How keys record this actor: an API key by its id, an external principal as
    /// `external:<subject>`, which no key id can be (`:` is not allowed in key ids).
    pub(crate) fn label(&self) -> String {
        actor_label(self.identity)
    }

    /// What the actor is, for messages: an API key, or a verified credential.
    fn noun(&self) -> &'static str {
        match self.identity.credential() {
            CredentialKind::External => "credential",
            _ => "API key",
        }
    }

    /// Records the actor as the last to change `key`, when the router asks for it.
    pub(crate) fn stamp(&self, key: &mut KeyRecord) {
        if let Some(field) = self.updated_by {
            key.metadata
                .insert(field.to_owned(), serde_json::Value::from(self.label()));
        }
    }

    /// Whether the actor may see `key` at all: keys of another environment (and, for an
    /// actor of one environment, environment-neutral keys, which work everywhere) are
    /// treated as absent.
    pub(crate) fn sees(&self, key: &KeyRecord) -> bool {
        key.account_id == self.record().account_id
            && match self.environment {
                None => true,
                Some(env) => key.environment == Some(env),
            }
    }

    /// Gives a new key the actor's own restrictions where it leaves them open: an empty
    /// IP allowlist, no expiry, or no rate limit.
    pub(crate) fn inherit(&self, key: &mut KeyRecord) {
        let actor = self.record();
        if key.ips.is_empty() {
            key.ips = actor.ips.clone();
        }
        if key.expires_at.is_none() {
            key.expires_at = actor.expires_at;
        }
        if key.rate_limit.is_none() {
            key.rate_limit = actor.rate_limit;
        }
    }

    /// Refuses a new key that would draw from a balance the actor does not draw from:
    /// an actor with credits or quotas of its own may create keys only when its account
    /// has shared ones, which every key of the account, the new one included, draws
    /// from. Otherwise the new key would add a balance of its own (or none at all) to
    /// what the account can draw.
    pub(crate) fn usage_bounds_new(&self, key: &KeyRecord) -> Result<(), ManageError> {
        let actor = self.record();
        if actor.usage.own.is_empty() {
            return Ok(());
        }
        let shared = key.usage.account.as_ref().or(actor.usage.account.as_ref());
        if shared.is_none_or(|a| a.credits.is_none() && a.quotas.is_empty() && a.plan.is_none()) {
            return Err(ManageError::Widening(format!(
                "usage: this {} draws from credits or quotas of its own, and a key it creates                  would draw from a new balance; only server-side code can create it, or                  give the account shared credits",
                self.noun()
            )));
        }
        Ok(())
    }

    /// Refuses a change of a key's credits, quotas or plan by a metered actor: it could
    /// only add to what its account can draw.
    pub(crate) fn usage_change(&self, old: &KeyRecord, new: &KeyRecord) -> Result<(), ManageError> {
        if old.usage.own != new.usage.own && !self.record().usage.is_empty() {
            return Err(ManageError::Widening(format!(
                "usage: this {} draws from credits or quotas, and cannot change any key's",
                self.noun()
            )));
        }
        Ok(())
    }

    /// Refuses `key` unless it is within the actor (see the module documentation).
    /// Scope and environment violations are [`ManageError::Escalation`]; IP, expiry and
    /// rate-limit ones are [`ManageError::Widening`].
    pub(crate) fn bounds(&self, key: &KeyRecord) -> Result<(), ManageError> {
        self.environment_within(key)?;
        self.scopes_within(key)?;
        self.restrictions_within(key)
    }

    fn environment_within(&self, key: &KeyRecord) -> Result<(), ManageError> {
        match self.environment {
            Some(env) if key.environment != Some(env) => Err(ManageError::Escalation(format!(
                "A {env} {} can only create {env} keys",
                self.noun()
            ))),
            _ => Ok(()),
        }
    }

    fn scopes_within(&self, key: &KeyRecord) -> Result<(), ManageError> {
        let restricting = self.gate.read_only_scopes();
        let actor = self.identity;
        // The actor's own restrictions stay with every key it manages.
        if actor
            .scopes()
            .iter()
            .any(|s| restricting.contains(s.as_str()) && !key.scopes.contains(s.as_str()))
        {
            return Err(ManageError::Escalation(format!(
                "A read-only {} can only manage read-only keys",
                self.noun()
            )));
        }
        // Direct scopes first, for the clearest message, then what they imply.
        if let Some(s) = key
            .scopes
            .iter()
            .find(|s| !restricting.contains(s.as_str()) && !actor.has_scope(s.as_str()))
        {
            return Err(ManageError::Escalation(format!(
                "This {} cannot grant the '{s}' scope, which it does not hold itself",
                self.noun()
            )));
        }
        let granted = self.gate.scope_implications().expand(&key.scopes);
        if granted.has_all() && !actor.0.granted.has_all() {
            return Err(ManageError::Escalation(format!(
                "This {} cannot grant every scope, which it does not hold itself",
                self.noun()
            )));
        }
        if let Some(s) = granted
            .iter()
            .find(|s| !restricting.contains(s.as_str()) && !actor.has_scope(s.as_str()))
        {
            return Err(ManageError::Escalation(format!(
                "This {} cannot grant the '{s}' scope (implied by the key's scopes), \
                 which it does not hold itself",
                self.noun()
            )));
        }
        Ok(())
    }

    fn restrictions_within(&self, key: &KeyRecord) -> Result<(), ManageError> {
        let actor = self.record();
        if !actor.ips.covers(&key.ips) {
            return Err(ManageError::Widening(format!(
                "ips: this {} is restricted to its own IP allowlist; every address \
                 or network given must lie inside it",
                self.noun()
            )));
        }
        if let Some(limit) = actor.expires_at {
            if key.expires_at.is_none_or(|t| t > limit) {
                return Err(ManageError::Widening(format!(
                    "expires_at: must be no later than this {}'s own expiry, {}",
                    self.noun(),
                    crate::manage::rfc3339(limit)
                )));
            }
        }
        if !rate_within(actor.rate_limit, self.gate.default_quota(), key.rate_limit) {
            return Err(ManageError::Widening(
                match actor.rate_limit.or(self.gate.default_quota()) {
                    Some(q) => format!(
                        "rate_limit: must be no higher than this {}'s own, {} per second \
                     with a burst of {}{}",
                        self.noun(),
                        q.per_second,
                        q.burst,
                        if actor.rate_limit.is_some() {
                            ", and set explicitly"
                        } else {
                            ""
                        }
                    ),
                    None => format!(
                        "rate_limit: must be no higher than this {}'s own",
                        self.noun()
                    ),
                },
            ));
        }
        Ok(())
    }
}

/// How management records `identity` as an actor: see [`Actor::label`].
pub(crate) fn actor_label(identity: &Identity) -> String {
    match identity.credential() {
        CredentialKind::External => format!("external:{}", identity.key_id()),
        _ => identity.key_id().as_str().to_owned(),
    }
}

/// The environments `gate` serves: its own when restricted to one, otherwise those its
/// key format's prefixes name.
fn served_environments(gate: &Keygate) -> Vec<Environment> {
    if let Some(env) = gate.environment() {
        return vec![env];
    }
    let mut envs: Vec<Environment> = gate
        .format()
        .prefixes()
        .iter()
        .filter_map(|p| p.environment())
        .collect();
    envs.sort_by_key(|e| e.as_str());
    envs.dedup();
    envs
}

/// Whether a key with quota `key` is limited at least as tightly as an actor with quota
/// `actor`, where `None` means the deployment's `default` (`None`: unlimited).
///
/// An actor with its own quota bounds the key explicitly: the key must have an override
/// no higher, since the deployment default may be raised later.
pub(crate) fn rate_within(
    actor: Option<RateLimit>,
    default: Option<RateLimit>,
    key: Option<RateLimit>,
) -> bool {
    let le = |k: RateLimit, a: RateLimit| k.per_second <= a.per_second && k.burst <= a.burst;
    match (actor, key) {
        (Some(a), Some(k)) => le(k, a),
        (Some(_), None) => false,
        (None, key) => match (default, key) {
            (None, _) | (Some(_), None) => true,
            (Some(d), Some(k)) => le(k, d),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_compare_both_numbers() {
        let q = RateLimit::new;
        let d = Some(q(100, 200));
        // Actor with an override: the key needs an explicit one, no higher.
        assert!(rate_within(Some(q(2, 4)), d, Some(q(2, 4))));
        assert!(rate_within(Some(q(2, 4)), d, Some(q(1, 1))));
        assert!(!rate_within(Some(q(2, 4)), d, Some(q(3, 4))));
        assert!(!rate_within(Some(q(2, 4)), d, Some(q(2, 5))));
        assert!(!rate_within(Some(q(2, 4)), d, None));
        assert!(!rate_within(Some(q(2, 4)), None, None));
        // Actor on the default: the key may use it, or anything below it.
        assert!(rate_within(None, d, None));
        assert!(rate_within(None, d, Some(q(100, 200))));
        assert!(!rate_within(None, d, Some(q(101, 1))));
        assert!(!rate_within(None, d, Some(q(u32::MAX, u32::MAX))));
        // Unlimited deployment, unlimited actor: anything.
        assert!(rate_within(None, None, Some(q(u32::MAX, u32::MAX))));
        assert!(rate_within(None, None, None));
    }
}
