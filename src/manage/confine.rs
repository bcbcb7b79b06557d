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

use crate::gate::Keygate;
use crate::identity::Identity;
use crate::manage::ManageError;
use crate::store::record::{KeyRecord, RateLimit};

/// An authenticated key acting on management, with what it needs to judge other keys.
pub(crate) struct Actor<'a> {
    pub(crate) identity: &'a Identity,
    pub(crate) gate: &'a Keygate,
}

impl Actor<'_> {
    fn record(&self) -> &KeyRecord {
        &self.identity.0.record
    }

    /// Whether the actor may see `key` at all: keys of another environment (and, for an
    /// actor of one environment, environment-neutral keys, which work everywhere) are
    /// treated as absent.
    pub(crate) fn sees(&self, key: &KeyRecord) -> bool {
        key.account_id == self.record().account_id
            && match self.record().environment {
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

    /// Refuses `key` unless it is within the actor (see the module documentation).
    /// Scope and environment violations are [`ManageError::Escalation`]; IP, expiry and
    /// rate-limit ones are [`ManageError::Widening`].
    pub(crate) fn bounds(&self, key: &KeyRecord) -> Result<(), ManageError> {
        self.environment_within(key)?;
        self.scopes_within(key)?;
        self.restrictions_within(key)
    }

    fn environment_within(&self, key: &KeyRecord) -> Result<(), ManageError> {
        match self.record().environment {
            Some(env) if key.environment != Some(env) => Err(ManageError::Escalation(format!(
                "A {env} API key can only create {env} keys"
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
            return Err(ManageError::Escalation(
                "A read-only API key can only manage read-only keys".into(),
            ));
        }
        // Direct scopes first, for the clearest message, then what they imply.
        if let Some(s) = key
            .scopes
            .iter()
            .find(|s| !restricting.contains(s.as_str()) && !actor.has_scope(s.as_str()))
        {
            return Err(ManageError::Escalation(format!(
                "This API key cannot grant the '{s}' scope, which it does not hold itself"
            )));
        }
        let granted = self.gate.scope_implications().expand(&key.scopes);
        if granted.has_all() && !actor.0.granted.has_all() {
            return Err(ManageError::Escalation(
                "This API key cannot grant every scope, which it does not hold itself".into(),
            ));
        }
        if let Some(s) = granted
            .iter()
            .find(|s| !restricting.contains(s.as_str()) && !actor.has_scope(s.as_str()))
        {
            return Err(ManageError::Escalation(format!(
                "This API key cannot grant the '{s}' scope (implied by the key's scopes), \
                 which it does not hold itself"
            )));
        }
        Ok(())
    }

    fn restrictions_within(&self, key: &KeyRecord) -> Result<(), ManageError> {
        let actor = self.record();
        if !actor.ips.covers(&key.ips) {
            return Err(ManageError::Widening(
                "ips: this API key is restricted to its own IP allowlist; every address \
                 or network given must lie inside it"
                    .into(),
            ));
        }
        if let Some(limit) = actor.expires_at {
            if key.expires_at.is_none_or(|t| t > limit) {
                return Err(ManageError::Widening(format!(
                    "expires_at: must be no later than this API key's own expiry, {}",
                    crate::manage::rfc3339(limit)
                )));
            }
        }
        if !rate_within(actor.rate_limit, self.gate.default_quota(), key.rate_limit) {
            return Err(ManageError::Widening(
                match actor.rate_limit.or(self.gate.default_quota()) {
                    Some(q) => format!(
                        "rate_limit: must be no higher than this API key's own, {} per second \
                     with a burst of {}{}",
                        q.per_second,
                        q.burst,
                        if actor.rate_limit.is_some() {
                            ", and set explicitly"
                        } else {
                            ""
                        }
                    ),
                    None => "rate_limit: must be no higher than this API key's own".into(),
                },
            ));
        }
        Ok(())
    }
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
