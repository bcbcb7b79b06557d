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
    /// The path is worked out of the URI only when there are exemptions.
    #[inline]
    pub(crate) fn is_exempt(&self, uri: &http::Uri) -> bool {
        !self.exempt.is_empty() && self.exempt_path(uri.path())
    }

    fn exempt_path(&self, path: &str) -> bool {
        self.exempt
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
        let exempt = |path: &str| settings.is_exempt(&path.parse().unwrap());
        assert!(exempt("/health"));
        assert!(exempt("/health/live?x=1"));
        assert!(!exempt("/healthz"));
        assert!(exempt("/grpc.health.v1.Health/Check"));
    }
}
