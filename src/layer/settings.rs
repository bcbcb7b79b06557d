//! What one layer adds to its core: the route's scope rules, the paths it lets through
//! untouched, whether anonymous callers pass, and how its refusals are answered.

use crate::check::access::ScopeRules;
use crate::refusal::RefusalAnswer;

/// One layer's settings, shared by its services.
#[derive(Clone, Debug, Default)]
pub(crate) struct LayerSettings {
    pub(crate) scopes: ScopeRules,
    pub(crate) anonymous: bool,
    pub(crate) exempt: Vec<String>,
    pub(crate) answer: RefusalAnswer,
}

impl LayerSettings {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exempt_prefixes_match_whole_segments() {
        let settings = LayerSettings {
            exempt: vec!["/health".into(), "/grpc.health.v1.Health/".into()],
            ..LayerSettings::default()
        };
        assert!(settings.is_exempt("/health"));
        assert!(settings.is_exempt("/health/live"));
        assert!(!settings.is_exempt("/healthz"));
        assert!(settings.is_exempt("/grpc.health.v1.Health/Check"));
    }
}
