//! Which environment a verified token acts in: none, a fixed one per verifier, or the
//! one a claim names.

use serde_json::{Map, Value};

use super::JwtVerifierBuilder;
use crate::credential::CredentialError;
use crate::key::Environment;

/// Where a [`super::JwtVerifier`] takes its principals' environment from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum EnvironmentSource {
    /// None: the principal has no environment.
    #[default]
    None,
    /// The same for every token.
    Fixed(Environment),
    /// The claim of this name, which every token must carry: `live` or `test`.
    Claim(String),
}

impl EnvironmentSource {
    /// The environment of a token with `claims`; a token without the configured claim,
    /// or naming no known environment, is refused.
    pub(super) fn of(
        &self,
        claims: &Map<String, Value>,
    ) -> Result<Option<Environment>, CredentialError> {
        match self {
            EnvironmentSource::None => Ok(None),
            EnvironmentSource::Fixed(env) => Ok(Some(*env)),
            EnvironmentSource::Claim(name) => match claims.get(name) {
                Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
                    CredentialError::refused(format!(
                        "The token's '{name}' claim names no known environment ('live' or 'test')"
                    ))
                }),
                _ => Err(CredentialError::refused(format!(
                    "The token has no '{name}' claim naming its environment"
                ))),
            },
        }
    }
}

impl JwtVerifierBuilder {
    /// Every token acts in `environment`: it manages only keys of that environment, as
    /// an API key of that environment does. For a verifier per environment (one issuer
    /// or audience for live, another for test). Replaces an
    /// [`environment_claim`](Self::environment_claim). Default: no environment.
    ///
    /// A principal with no environment acts in the deployment's environment when it
    /// serves one, and may not manage keys on a deployment serving several (403
    /// `environment_required`) unless [`crate::manage::ManagerConfig::environment_neutral_principals`]
    /// is on.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = EnvironmentSource::Fixed(environment);
        self
    }

    /// Every token names its environment in the claim `name`, as `"live"` or `"test"`;
    /// a token without it, or naming another value, is refused (401 `invalid_token`).
    /// Replaces an [`environment`](Self::environment). Default: no environment.
    pub fn environment_claim(mut self, name: impl Into<String>) -> Self {
        self.environment = EnvironmentSource::Claim(name.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_claim_names_the_environment_or_the_token_is_refused() {
        let source = EnvironmentSource::Claim("env".into());
        assert_eq!(
            source.of(&claims(json!({"env": "live"}))),
            Ok(Some(Environment::Live))
        );
        for bad in [json!({}), json!({"env": "prod"}), json!({"env": 1})] {
            assert!(source.of(&claims(bad)).is_err());
        }
        let fixed = EnvironmentSource::Fixed(Environment::Test);
        assert_eq!(
            fixed.of(&claims(json!({"env": "live"}))),
            Ok(Some(Environment::Test))
        );
        assert_eq!(EnvironmentSource::None.of(&claims(json!({}))), Ok(None));
    }
}
