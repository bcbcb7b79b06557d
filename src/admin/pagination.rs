//! [`Pagination`]: how lists are paged, by cursor (`limit`, `cursor`) or by offset
//! (`limit`, `page`), and the list query's parsing.

use serde_json::Value;

use super::envelope::{NextPage, Reply};
use super::error::AdminError;
use super::fields::KeyFields;
use crate::manage::{ActingManager, KeyView, ListQuery, MAX_PAGE_SIZE};
use crate::store::KeyStatusFilter;

/// Furthest an offset page may start, in keys: deeper pages are refused, as each one
/// reads every key before it.
pub const MAX_OFFSET: usize = 10_000;

/// How the list route pages keys. Either way, `?status=active|revoked|all` picks which
/// keys are listed (active, not revoked, by default).
///
/// ```
/// use keygate::admin::Pagination;
///
/// // `?limit=&cursor=`, 25 keys by default.
/// let cursor = Pagination::cursor().default_limit(25);
/// // `?limit=20&page=2`.
/// let offset = Pagination::offset().default_limit(20);
/// # let _ = (cursor, offset);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Pagination {
    offset: bool,
    default_limit: usize,
    max_limit: usize,
}

impl Default for Pagination {
    /// [`Pagination::cursor`].
    fn default() -> Self {
        Self::cursor()
    }
}

impl Pagination {
    /// `?limit=&cursor=`: the answer names the next page's cursor. Stable while keys are
    /// created or removed. Default limit 25, at most 100.
    pub fn cursor() -> Self {
        Self {
            offset: false,
            default_limit: crate::manage::DEFAULT_PAGE_SIZE,
            max_limit: MAX_PAGE_SIZE,
        }
    }

    /// `?limit=&page=` (pages from 1): the answer names the next page's number. A key
    /// created or removed meanwhile shifts later pages by one. Pages starting past
    /// [`MAX_OFFSET`] keys are refused. Default limit 25, at most 100.
    pub fn offset() -> Self {
        Self {
            offset: true,
            ..Self::cursor()
        }
    }

    /// Keys per page when the request names no `limit`. Panics unless it is between 1
    /// and the largest limit.
    pub fn default_limit(mut self, limit: usize) -> Self {
        assert!(
            (1..=self.max_limit).contains(&limit),
            "default limit must be between 1 and {}",
            self.max_limit
        );
        self.default_limit = limit;
        self
    }

    /// Largest `limit` a request may ask for. Panics unless it is between 1 and 100;
    /// lowers the default limit to it if needed.
    pub fn max_limit(mut self, limit: usize) -> Self {
        assert!(
            (1..=MAX_PAGE_SIZE).contains(&limit),
            "largest limit must be between 1 and {MAX_PAGE_SIZE}"
        );
        self.max_limit = limit;
        self.default_limit = self.default_limit.min(limit);
        self
    }

    /// Reads the list query: `limit`, `status` and `cursor` or `page`; other
    /// parameters are ignored.
    fn query(&self, query: Option<&str>) -> Result<Params, AdminError> {
        let mut limit = self.default_limit;
        let mut status = None;
        let mut position = if self.offset {
            Position::Page(1)
        } else {
            Position::Cursor(None)
        };
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes()).take(32);
        for (name, value) in pairs {
            match (name.as_ref(), &mut position) {
                ("limit", _) => {
                    limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|l| (1..=self.max_limit).contains(l))
                        .ok_or_else(|| {
                            AdminError::invalid(format!(
                                "limit: must be a whole number between 1 and {}",
                                self.max_limit
                            ))
                        })?;
                }
                ("status", _) => {
                    status = Some(value.parse::<KeyStatusFilter>().map_err(|_| {
                        AdminError::invalid("status: must be active, revoked or all")
                    })?);
                }
                ("cursor", Position::Cursor(cursor)) => {
                    *cursor = Some(value.into_owned()).filter(|c| !c.is_empty())
                }
                ("page", Position::Page(page)) => {
                    *page = value.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                        AdminError::invalid("page: must be a whole number of at least 1")
                    })?;
                }
                _ => {}
            }
        }
        Ok(Params {
            limit,
            status,
            position,
        })
    }

    /// One page of `acting`'s keys for the query, as a [`Reply::Page`] whose next page
    /// is linked under `path`.
    pub(super) async fn page(
        &self,
        acting: &ActingManager<'_>,
        fields: &KeyFields,
        path: &str,
        query: Option<&str>,
    ) -> Result<Reply<'static>, AdminError> {
        let Params {
            limit,
            status,
            position,
        } = self.query(query)?;
        let link = |param: &str, value: &str| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &limit.to_string());
            if let Some(status) = status {
                query.append_pair("status", status.as_str());
            }
            format!("{path}?{}", query.append_pair(param, value).finish())
        };
        let render = |views: &[KeyView]| -> Vec<Value> {
            views.iter().map(|v| fields.render(v, None)).collect()
        };
        let list = |limit: usize, cursor: Option<String>| {
            let mut query = ListQuery::new().limit(limit);
            query.cursor = cursor;
            query.status = status.unwrap_or_default();
            async move { acting.list(&query).await }
        };
        match position {
            Position::Cursor(cursor) => {
                let page = list(limit, cursor).await?;
                let next = page.next_cursor.map(|c| NextPage {
                    url: link("cursor", &c),
                    cursor: Some(c),
                    page: None,
                });
                Ok(Reply::Page {
                    keys: render(&page.data),
                    page: None,
                    next,
                })
            }
            Position::Page(number) => {
                let skip = (number as usize - 1).saturating_mul(limit);
                if skip > MAX_OFFSET {
                    return Err(AdminError::invalid(format!(
                        "page: starts past the first {MAX_OFFSET} keys; narrow the list"
                    )));
                }
                // Walk the cursor pages up to this one, and one key past it.
                let mut views = Vec::with_capacity(skip + limit + 1);
                let mut cursor = None;
                loop {
                    let batch = list(MAX_PAGE_SIZE, cursor).await?;
                    views.extend(batch.data);
                    cursor = batch.next_cursor;
                    if cursor.is_none() || views.len() > skip + limit {
                        break;
                    }
                }
                let more = views.len() > skip + limit;
                let shown: Vec<_> = views.into_iter().skip(skip).take(limit).collect();
                let next = more.then(|| NextPage {
                    url: link("page", &(number + 1).to_string()),
                    cursor: None,
                    page: Some(number + 1),
                });
                Ok(Reply::Page {
                    keys: render(&shown),
                    page: Some(number),
                    next,
                })
            }
        }
    }
}

/// A list query.
struct Params {
    limit: usize,
    /// As asked; `None` lists the default, active keys.
    status: Option<KeyStatusFilter>,
    position: Position,
}

/// Where a list starts.
enum Position {
    Cursor(Option<String>),
    Page(u32),
}
