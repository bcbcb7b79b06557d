//! What one layer asks of a key beyond being valid: its route rules.

use std::sync::Arc;

use http::Method;

use crate::error::AuthError;
use crate::refusal::RenderRejection;
use crate::scope::policy::{PolicyDecision, ScopePolicy};
use crate::scope::{GrantedScopes, ScopeRequirement};

/// How a layer answers refusals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum AnswerForm {
    /// HTTP status, JSON body, `WWW-Authenticate`: whatever the client sends.
    #[default]
    Http,
    /// HTTP 200 with `grpc-status` and `grpc-message` (tonic servers).
    Grpc,
}

/// The rules of one layer. Every requirement and every policy must hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rules {
    pub(crate) requirements: Vec<ScopeRequirement>,
    pub(crate) policies: Vec<ScopePolicy>,
    pub(crate) anonymous: bool,
    pub(crate) exempt: Vec<String>,
    pub(crate) answer: AnswerForm,
    /// Renders this layer's refusals instead of the core's renderer.
    pub(crate) renderer: Option<LayerRenderer>,
}

/// A layer's own refusal renderer.
#[derive(Clone)]
pub(crate) struct LayerRenderer(pub(crate) Arc<dyn RenderRejection>);

impl std::fmt::Debug for LayerRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayerRenderer")
    }
}

impl Rules {
    /// Whether `path` bypasses keygate entirely.
    ///
    /// A prefix matches whole path segments: `/health` exempts `/health` and
    /// `/health/live`, not `/healthz`. A prefix ending in `/` exempts what is below it.
    pub(crate) fn is_exempt(&self, path: &str) -> bool {
        !self.exempt.is_empty()
            && self
                .exempt
                .iter()
                .any(|p| match path.strip_prefix(p.as_str()) {
                    Some(rest) => p.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
                    None => false,
                })
    }

    /// Whether the answer is in gRPC form.
    pub(crate) fn grpc(&self) -> bool {
        self.answer == AnswerForm::Grpc
    }

    /// The route's scope rules: every requirement, then every policy, in the order they
    /// were added. The first one not met is the refusal.
    pub(crate) fn check_scopes(
        &self,
        granted: &GrantedScopes,
        method: &Method,
        path: &str,
    ) -> Result<(), AuthError> {
        for requirement in &self.requirements {
            if !requirement.is_met_by(granted) {
                return Err(AuthError::InsufficientScope(requirement.clone()));
            }
        }
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
        let rules = Rules {
            requirements: vec![
                ScopeRequirement::any_of(["admin"]),
                ScopeRequirement::all_of(["billing"]),
            ],
            ..Rules::default()
        };
        let check = |names: &[&str]| rules.check_scopes(&granted(names), &Method::GET, "/");
        assert!(check(&["admin", "billing"]).is_ok());
        assert!(matches!(
            check(&["billing"]),
            Err(AuthError::InsufficientScope(r)) if r == ScopeRequirement::any_of(["admin"])
        ));
        assert!(check(&["admin"]).is_err());
    }

    #[test]
    fn exempt_prefixes_match_whole_segments() {
        let rules = Rules {
            exempt: vec!["/health".into(), "/grpc.health.v1.Health/".into()],
            ..Rules::default()
        };
        assert!(rules.is_exempt("/health"));
        assert!(rules.is_exempt("/health/live"));
        assert!(!rules.is_exempt("/healthz"));
        assert!(rules.is_exempt("/grpc.health.v1.Health/Check"));
    }
}
