//! The router's settings: which action needs which access, what `DELETE` does, and the
//! configuration every handler reads.

use std::sync::Arc;

use super::envelope::Envelope;
use super::fields::KeyFields;
use super::pagination::Pagination;
use crate::manage::KeyManager;
use crate::scope::ScopeRequirement;

/// One action of the management API, for [`RouterBuilder::access`](super::RouterBuilder::access).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `GET {base}`.
    List,
    /// `GET {base}/{id}`.
    Get,
    /// `POST {base}`.
    Create,
    /// `PATCH {base}/{id}`.
    Update,
    /// `DELETE {base}/{id}`: revoke or delete, as [`RouterBuilder::delete`](super::RouterBuilder::delete) says.
    Delete,
    /// `POST {base}/{id}/roll`.
    Roll,
    /// `GET {base}/{id}/usage`: the key's usage counts.
    Usage,
}

impl Action {
    pub(super) const ALL: [Action; 7] = [
        Action::List,
        Action::Get,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Roll,
        Action::Usage,
    ];

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Which keys may take an [`Action`].
///
/// Whoever may take it, the handler acts for the calling key through
/// [`crate::manage::ActingManager`]: only in its own account and environment, never making or
/// touching a key less restricted than itself. Read-only keys may only read, whatever
/// this says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Any authenticated key of the account.
    AnyKey,
    /// Keys that meet this requirement.
    Scopes(ScopeRequirement),
    /// The action is not served: no route (a 405 where its path serves other methods).
    Off,
}

impl Access {
    /// Keys holding at least one of `scopes`. Panics on an invalid scope name.
    pub fn any_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Self {
        Self::Scopes(ScopeRequirement::any_of(scopes))
    }
}

/// What `DELETE {base}/{id}` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteMode {
    /// Revokes the key, idempotently: a revoked key stays listed and answers 401
    /// `revoked_api_key`; deleting it again succeeds too.
    #[default]
    Revoke,
    /// Deletes the key for good ([`crate::manage::ActingManager::delete`]): it is gone from get
    /// and list, and its cached copies are dropped at once; deleting it again is a 404.
    Delete,
}

/// Everything a handler needs: the router's configuration.
pub(super) struct AdminApi {
    pub(super) manager: KeyManager,
    /// Where the links to next pages point: the base path, after the public base URL
    /// when one is set.
    pub(super) links_base: String,
    pub(super) fields: KeyFields,
    pub(super) envelope: Arc<dyn Envelope>,
    pub(super) pagination: Pagination,
    pub(super) delete: DeleteMode,
    pub(super) max_body: usize,
}
