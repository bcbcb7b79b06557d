//! A table of scope requirements by method and path, for hyper and tonic services (and
//! for axum, where it keeps the documented check order for every route at once).

use http::Method;

use crate::scope::ScopeRequirement;

/// What happens to a request that matches no row of a [`ScopePolicy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unmatched {
    /// Any valid key may pass.
    #[default]
    Allow,
    /// Refused with 403 `insufficient_scope`: deny by default.
    Deny,
}

/// Maps method and path patterns to scope requirements. The first matching row wins.
///
/// Patterns are matched segment by segment: a literal segment matches itself, `{name}`
/// or `:name` matches any one segment, and a final `*` matches the rest of the path.
///
/// ```
/// use http::Method;
/// use keygate::{ScopePolicy, ScopeRequirement};
///
/// // A management API's table.
/// let policy = ScopePolicy::new()
///     .route(Method::GET, "/v1/keys", ScopeRequirement::any_of(["admin", "read-only"]))
///     .route(Method::POST, "/v1/keys", ScopeRequirement::scope("admin"))
///     .route(Method::GET, "/v1/revocations/srl", ScopeRequirement::any_of(["authorizer", "admin"]))
///     .route(Method::POST, "/v1/revocations", ScopeRequirement::scope("admin"));
/// assert!(policy.requirement(&Method::GET, "/v1/keys").is_some());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ScopePolicy {
    rows: Vec<Row>,
    unmatched: Unmatched,
}

#[derive(Clone, Debug)]
struct Row {
    method: Option<Method>,
    segments: Vec<Segment>,
    requirement: ScopeRequirement,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
    Rest,
}

/// The result of looking a request up in a [`ScopePolicy`].
#[derive(Debug, PartialEq, Eq)]
pub enum PolicyDecision<'a> {
    /// The row's requirement applies.
    Require(&'a ScopeRequirement),
    /// No row matched and unmatched requests are allowed.
    Allow,
    /// No row matched and unmatched requests are denied.
    Deny,
}

impl ScopePolicy {
    /// An empty table that allows unmatched requests.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a row for one method. A `GET` row also covers `HEAD`.
    pub fn route(mut self, method: Method, pattern: &str, requirement: ScopeRequirement) -> Self {
        self.rows.push(Row {
            method: Some(method),
            segments: parse_pattern(pattern),
            requirement,
        });
        self
    }

    /// Adds a row for every method.
    pub fn any_method(mut self, pattern: &str, requirement: ScopeRequirement) -> Self {
        self.rows.push(Row {
            method: None,
            segments: parse_pattern(pattern),
            requirement,
        });
        self
    }

    /// Sets what happens to unmatched requests.
    pub fn unmatched(mut self, unmatched: Unmatched) -> Self {
        self.unmatched = unmatched;
        self
    }

    /// The requirement for a request, if a row matches.
    ///
    /// A `HEAD` request is checked as the `GET` it mirrors: servers (axum among them)
    /// answer `HEAD` with the `GET` handler, so a `GET` row applies to it. A row for
    /// `HEAD` itself matches too; the first matching row wins as always.
    pub fn requirement(&self, method: &Method, path: &str) -> Option<&ScopeRequirement> {
        let head = method == Method::HEAD;
        self.rows
            .iter()
            .find(|row| {
                row.method
                    .as_ref()
                    .is_none_or(|m| m == method || (head && m == Method::GET))
                    && matches(&row.segments, path)
            })
            .map(|row| &row.requirement)
    }

    /// The decision for a request.
    pub fn decide(&self, method: &Method, path: &str) -> PolicyDecision<'_> {
        match (self.requirement(method, path), self.unmatched) {
            (Some(req), _) => PolicyDecision::Require(req),
            (None, Unmatched::Allow) => PolicyDecision::Allow,
            (None, Unmatched::Deny) => PolicyDecision::Deny,
        }
    }
}

fn parse_pattern(pattern: &str) -> Vec<Segment> {
    pattern
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "*" => Segment::Rest,
            s if (s.starts_with('{') && s.ends_with('}')) || s.starts_with(':') => Segment::Param,
            s => Segment::Literal(s.to_owned()),
        })
        .collect()
}

fn matches(segments: &[Segment], path: &str) -> bool {
    let mut parts = path.split('/').filter(|s| !s.is_empty());
    for seg in segments {
        match seg {
            Segment::Rest => return true,
            Segment::Param => {
                if parts.next().is_none() {
                    return false;
                }
            }
            Segment::Literal(lit) => {
                if parts.next() != Some(lit.as_str()) {
                    return false;
                }
            }
        }
    }
    parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_segments() {
        let admin = ScopeRequirement::scope("admin");
        let p = ScopePolicy::new()
            .route(Method::GET, "/v1/keys/{id}", admin.clone())
            .any_method("/grpc.health.v1.Health/*", admin.clone());
        assert!(p.requirement(&Method::GET, "/v1/keys/ak_1").is_some());
        assert!(p.requirement(&Method::GET, "/v1/keys/ak_1/").is_some());
        assert!(p.requirement(&Method::GET, "/v1/keys").is_none());
        assert!(p.requirement(&Method::GET, "/v1/keys/a/b").is_none());
        assert!(p.requirement(&Method::POST, "/v1/keys/ak_1").is_none());
        assert!(p
            .requirement(&Method::POST, "/grpc.health.v1.Health/Check")
            .is_some());
        // HEAD is checked as GET.
        assert!(p.requirement(&Method::HEAD, "/v1/keys/ak_1").is_some());
        assert!(p.requirement(&Method::HEAD, "/v1/keys").is_none());
        assert_eq!(
            p.clone()
                .unmatched(Unmatched::Deny)
                .decide(&Method::GET, "/x"),
            PolicyDecision::Deny
        );
    }
}
