//! Step 5: access. The key's IP allowlist, the route's scopes, then read-only keys on
//! unsafe methods: the checks keys and verified credentials share before the limiter.

use std::net::IpAddr;

use http::Method;

use crate::cache::entry::ResolvedKey;
use crate::client_ip::ClientIpResolver;
use crate::error::AuthError;
use crate::scope::bits::ScopeMask;
use crate::scope::policy::{PolicyDecision, ScopePolicy};
use crate::scope::{GrantedScopes, ScopeRequirement};

/// What one layer's routes require of a key's scopes. Every requirement and every
/// policy must hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScopeRules {
    pub(crate) requirements: Vec<ScopeRequirement>,
    /// `requirements` precompiled into bits, where the layer could ([`ScopeRules::require`]);
    /// a requirement without one is checked by name.
    pub(crate) masks: Vec<Option<ScopeMask>>,
    pub(crate) policies: Vec<ScopePolicy>,
    /// What a request admitted here costs in credits and quotas; `None` for 1.
    pub(crate) cost: Option<u64>,
}

/// The key's IP allowlist, the route's scopes, then read-only.
pub(crate) fn check<B>(
    ip_resolver: &dyn ClientIpResolver,
    key: &ResolvedKey,
    req: &http::Request<B>,
    scopes: &ScopeRules,
) -> Result<(), AuthError> {
    if !key.record.ips.is_empty() {
        let ip: Option<IpAddr> = ip_resolver.client_ip(req.headers(), req.extensions());
        if !ip.is_some_and(|ip| key.record.ips.allows(ip)) {
            return Err(AuthError::IpNotAllowed);
        }
    }
    scopes.check(&key.granted, req.method(), req.uri())?;
    // After the route's scopes, so that a read-only key on a route it lacks the scope
    // for hears which scope the route requires, as any other key would.
    if key.read_only && !is_safe(req.method()) {
        return Err(AuthError::ReadOnlyKey);
    }
    Ok(())
}

fn is_safe(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD || method == Method::OPTIONS
}

impl ScopeRules {
    /// Adds `requirement`, with its precompiled `mask` when there is one.
    pub(crate) fn require(&mut self, requirement: ScopeRequirement, mask: Option<ScopeMask>) {
        self.masks.resize(self.requirements.len(), None);
        self.requirements.push(requirement);
        self.masks.push(mask);
    }

    /// The route's scope rules: every requirement, then every policy, in the order they
    /// were added. The first one not met is the refusal. The path is worked out of the
    /// URI only for policies.
    #[inline]
    pub(crate) fn check(
        &self,
        granted: &GrantedScopes,
        method: &Method,
        uri: &http::Uri,
    ) -> Result<(), AuthError> {
        for (at, requirement) in self.requirements.iter().enumerate() {
            let by_bits = self.masks.get(at).copied().flatten();
            let met = by_bits.and_then(|mask| mask.is_met_by(granted));
            if !met.unwrap_or_else(|| requirement.is_met_by(granted)) {
                return Err(AuthError::InsufficientScope(requirement.clone()));
            }
        }
        if self.policies.is_empty() {
            return Ok(());
        }
        let path = uri.path();
        for policy in &self.policies {
            match policy.decide(method, path) {
                PolicyDecision::Allow => {}
                PolicyDecision::Require(r) if r.is_met_by(granted) => {}
                PolicyDecision::Require(r) => return Err(AuthError::InsufficientScope(r.clone())),
                PolicyDecision::Deny => {
                    return Err(AuthError::InsufficientScope(ScopeRequirement::AnyOf(
                        vec![],
                    )))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::{ScopeImplications, ScopeSet};

    fn granted(names: &[&str]) -> GrantedScopes {
        ScopeImplications::new().expand(&ScopeSet::parse(names).unwrap())
    }

    #[test]
    fn every_requirement_must_hold() {
        let rules = ScopeRules {
            requirements: vec![
                ScopeRequirement::any_of(["admin"]),
                ScopeRequirement::all_of(["billing"]),
            ],
            ..ScopeRules::default()
        };
        let root = http::Uri::from_static("/");
        let check = |names: &[&str]| rules.check(&granted(names), &Method::GET, &root);
        assert!(check(&["admin", "billing"]).is_ok());
        assert!(matches!(
            check(&["billing"]),
            Err(AuthError::InsufficientScope(r)) if r == ScopeRequirement::any_of(["admin"])
        ));
        assert!(check(&["admin"]).is_err());
    }
}
