//! Scopes: what a key may do, and what a route requires.
//!
//! - **Per route**, with axum's `route_layer`: `gate.layer().require_any(["admin",
//!   "read-only"])` or `.require_all([…])`. Layers of one gate nest: the outer layer
//!   verifies the key once (one lookup, one token from the rate limit) and an inner one
//!   only adds its scope rule. Every `require*` and `policy` call adds a rule; all of
//!   them must hold.
//! - **A table** for hyper and tonic, or for a whole router at once: a [`ScopePolicy`]
//!   maps methods and path patterns (`/v1/keys/{id}`, a trailing `*`) to requirements,
//!   with [`Unmatched::Deny`] for deny-by-default. A `HEAD` request is checked as `GET`,
//!   since servers answer it with the `GET` handler.
//! - **Implications** are configured, not hard-coded ([`ScopeImplications`]): by default
//!   `admin` grants every scope; add `.write_implies_read()` or `.implies("billing",
//!   [...])`.
//! - **Read-only keys**: a key holding a read-only scope (`read-only` by default, or the
//!   names given to `KeygateBuilder::read_only_scopes`) may use only GET, HEAD and
//!   OPTIONS; another method is 403 `insufficient_scope`, saying the key is read-only.
//!
//! A missing scope is 403 `insufficient_scope` with the message `This endpoint requires
//! 'admin' scope` and `WWW-Authenticate: Bearer error="insufficient_scope",
//! scope="admin"`.

pub(crate) mod bits;
pub(crate) mod policy;

pub use policy::{PolicyDecision, ScopePolicy, Unmatched};

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use bits::{HeldBits, ScopeBits};

/// Longest scope name accepted.
pub const MAX_SCOPE_LEN: usize = 64;

/// A scope name such as `admin`, `read-only` or `charges:write`.
///
/// Names are 1 to 64 characters of ASCII letters, digits and `_ - : . /`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Scope(Arc<str>);

/// A scope name that [`Scope::new`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope '{0}': use 1-64 characters of letters, digits and _ - : . /")]
pub struct InvalidScope(pub String);

impl Scope {
    /// Validates and wraps a scope name.
    pub fn new(name: &str) -> Result<Self, InvalidScope> {
        let ok = (1..=MAX_SCOPE_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-:./".contains(&b));
        if ok {
            Ok(Self(name.into()))
        } else {
            Err(InvalidScope(name.chars().take(MAX_SCOPE_LEN + 1).collect()))
        }
    }

    /// The scope name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Scope::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "admin")]
impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_SCOPE_LEN))
            .pattern(Some("^[A-Za-z0-9_:./-]+$"))
            .description(Some(
                "A scope name: 1 to 64 characters of ASCII letters, digits and `_ - : . /`",
            ))
            .examples(["admin", "read-only", "charges:write"])
            .into()
    }
}

#[cfg(feature = "admin")]
impl utoipa::ToSchema for Scope {}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Scope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::new(s)
    }
}

/// A set of scopes, kept sorted.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses scope names.
    pub fn parse<I, S>(names: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names
            .into_iter()
            .map(|n| Scope::new(n.as_ref()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) -> bool {
        self.0.insert(scope)
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

/// What a route requires of a key's scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeRequirement {
    /// At least one of these scopes.
    AnyOf(Vec<Scope>),
    /// Every one of these scopes.
    AllOf(Vec<Scope>),
}

impl ScopeRequirement {
    /// Requires at least one of `names`.
    ///
    /// # Panics
    /// If a name is not a valid [`Scope`]: requirements are written in code, so a bad
    /// one is a programming error caught at start-up.
    pub fn any_of<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::AnyOf(parse_static(names))
    }

    /// Requires every one of `names`. Panics like [`ScopeRequirement::any_of`].
    pub fn all_of<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::AllOf(parse_static(names))
    }

    /// Requires `name`. Panics like [`ScopeRequirement::any_of`].
    pub fn scope(name: &str) -> Self {
        Self::any_of([name])
    }

    /// Whether a key with `granted` scopes meets the requirement.
    pub fn is_met_by(&self, granted: &GrantedScopes) -> bool {
        match self {
            ScopeRequirement::AnyOf(list) => list.iter().any(|s| granted.has(s.as_str())),
            ScopeRequirement::AllOf(list) => list.iter().all(|s| granted.has(s.as_str())),
        }
    }

    /// The scopes named, in order.
    pub fn scopes(&self) -> &[Scope] {
        match self {
            ScopeRequirement::AnyOf(list) | ScopeRequirement::AllOf(list) => list,
        }
    }

    /// A sentence such as `This endpoint requires 'admin' scope`.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.scopes().iter().map(|s| format!("'{s}'")).collect();
        match (self, names.len()) {
            (_, 0) => "This endpoint requires a scope this key does not have".to_owned(),
            (_, 1) => format!("This endpoint requires {} scope", names[0]),
            (ScopeRequirement::AnyOf(_), _) => {
                format!("This endpoint requires {} scope", join(&names, " or "))
            }
            (ScopeRequirement::AllOf(_), _) => {
                format!("This endpoint requires {} scopes", join(&names, " and "))
            }
        }
    }
}

fn join(names: &[String], last_sep: &str) -> String {
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{}{last_sep}{last}", rest.join(", ")),
    }
}

fn parse_static<I, S>(names: I) -> Vec<Scope>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    names
        .into_iter()
        .map(|n| Scope::new(n.as_ref()).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// How scopes imply one another, configured per deployment.
///
/// ```
/// use keygate::scope::ScopeImplications;
/// let rules = ScopeImplications::new()
///     .grants_all("admin")             // admin implies every scope
///     .write_implies_read()            // x:write implies x:read
///     .implies("billing", ["invoices:read", "charges:read"]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ScopeImplications {
    grants_all: BTreeSet<Scope>,
    implies: HashMap<Scope, Vec<Scope>>,
    write_implies_read: bool,
    /// The deployment's numbering of required scope names (shared by clones).
    pub(crate) bits: Arc<ScopeBits>,
}

impl ScopeImplications {
    /// No implications: a key has exactly the scopes it was given.
    pub fn new() -> Self {
        Self::default()
    }

    /// A key holding `scope` holds every scope. Panics on an invalid name.
    pub fn grants_all(mut self, scope: &str) -> Self {
        self.grants_all.insert(parse_static([scope]).remove(0));
        self
    }

    /// A key holding `scope` also holds `implied` (transitively). Panics on invalid names.
    pub fn implies<I, S>(mut self, scope: &str, implied: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let from = parse_static([scope]).remove(0);
        self.implies
            .entry(from)
            .or_default()
            .extend(parse_static(implied));
        self
    }

    /// A key holding `<resource>:write` also holds `<resource>:read`.
    pub fn write_implies_read(mut self) -> Self {
        self.write_implies_read = true;
        self
    }

    /// Expands a key's own scopes into everything they grant. A scope that grants all
    /// does so whether it is held directly or by implication.
    pub fn expand(&self, direct: &ScopeSet) -> GrantedScopes {
        let mut granted: BTreeSet<Scope> = BTreeSet::new();
        let mut pending: Vec<Scope> = direct.iter().cloned().collect();
        while let Some(scope) = pending.pop() {
            if !granted.insert(scope.clone()) {
                continue;
            }
            if let Some(more) = self.implies.get(&scope) {
                pending.extend(more.iter().cloned());
            }
            if self.write_implies_read {
                if let Some(resource) = scope.as_str().strip_suffix(":write") {
                    if let Ok(read) = Scope::new(&format!("{resource}:read")) {
                        pending.push(read);
                    }
                }
            }
        }
        let all = granted.iter().any(|s| self.grants_all.contains(s));
        let scopes: Vec<Scope> = granted.into_iter().collect();
        GrantedScopes {
            all,
            bits: self.bits.held(&scopes),
            scopes,
        }
    }
}

/// Every scope a key holds once implications are applied. Computed once per cached key,
/// with the bits of the names its deployment's routes require.
#[derive(Clone, Debug, Default)]
pub struct GrantedScopes {
    all: bool,
    scopes: Vec<Scope>,
    bits: HeldBits,
}

impl PartialEq for GrantedScopes {
    fn eq(&self, other: &Self) -> bool {
        self.all == other.all && self.scopes == other.scopes
    }
}

impl Eq for GrantedScopes {}

impl GrantedScopes {
    /// Whether the key holds `scope`, directly or by implication.
    pub fn has(&self, scope: &str) -> bool {
        self.all
            || self
                .scopes
                .binary_search_by(|s| s.as_str().cmp(scope))
                .is_ok()
    }

    /// Whether the key holds every scope.
    pub fn has_all(&self) -> bool {
        self.all
    }

    /// The scopes held directly or by implication, in order (not including "every
    /// scope" for [`GrantedScopes::has_all`]).
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.scopes.iter()
    }
}

#[cfg(test)]
mod tests;
