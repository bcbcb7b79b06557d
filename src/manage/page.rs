//! The listing's input and output: [`ListQuery`] and one [`Page`] of keys.

use serde::Serialize;

use super::KeyView;
use crate::store::KeyStatusFilter;

/// One page of [`crate::KeyManager::list`].
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(
    feature = "admin",
    derive(utoipa::ToSchema),
    schema(description = "One page of keys; pass `next_cursor` as `cursor` for the next")
)]
pub struct Page {
    /// The keys, oldest first (by creation time, then by id).
    pub data: Vec<KeyView>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The input of [`crate::KeyManager::list`]: which keys, and which page of them.
///
/// ```
/// use keygate::store::KeyStatusFilter;
/// use keygate::manage::ListQuery;
///
/// let query = ListQuery::new().limit(10).status(KeyStatusFilter::All);
/// assert_eq!(query.limit, Some(10));
/// assert_eq!(ListQuery::default().status, KeyStatusFilter::Active);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// Keys per page, 1 to [`crate::manage::MAX_PAGE_SIZE`]; `None` for
    /// [`crate::manage::DEFAULT_PAGE_SIZE`].
    pub limit: Option<usize>,
    /// The [`Page::next_cursor`] of the previous page; `None` (or empty) for the first.
    pub cursor: Option<String>,
    /// Which keys: not revoked ([`KeyStatusFilter::Active`], the default), revoked, or all.
    pub status: KeyStatusFilter,
}

impl ListQuery {
    /// The first page of active keys, of the default size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the page size.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after the page whose `next_cursor` this is.
    #[must_use]
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Sets which keys are listed.
    #[must_use]
    pub fn status(mut self, status: KeyStatusFilter) -> Self {
        self.status = status;
        self
    }
}
