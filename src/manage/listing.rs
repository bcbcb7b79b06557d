//! Listing an account's keys, a page at a time.

use super::confine::Actor;
use super::cursor;
use super::{KeyManager, ListQuery, ManageError, Page, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::store::record::AccountId;
use crate::store::ListPosition;

impl KeyManager {
    /// A page of `account`'s keys that match `query.status` (by default the ones not
    /// revoked), oldest first: by creation time, then by id, which grows with creation
    /// (so keys created in the same millisecond keep the order they were created in).
    /// `query.limit` defaults to 25 and may be at most 100; `query.cursor` is the
    /// `next_cursor` of the previous page, an opaque token (a text that is not one is
    /// refused with `invalid_request` naming `cursor`). A cursor holds a position, not a key, so keys
    /// created, revoked or deleted meanwhile never make another key appear twice or be
    /// skipped.
    pub async fn list(&self, account: &AccountId, query: &ListQuery) -> Result<Page, ManageError> {
        self.list_as(account, query, None).await
    }

    pub(crate) async fn list_as(
        &self,
        account: &AccountId,
        query: &ListQuery,
        actor: Option<&Actor<'_>>,
    ) -> Result<Page, ManageError> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ManageError::InvalidRequest(format!(
                "limit: must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        let mut after = match query.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(cursor::decode(c)?),
        };
        // Keys this caller may not see are skipped, so a page may take several store
        // reads of a page and one key each.
        let mut records = Vec::with_capacity(limit + 1);
        loop {
            let want = limit + 1;
            let batch = self
                .store
                .list(account, query.status, after.as_ref(), want)
                .await?;
            let exhausted = batch.len() < want;
            after = batch.last().map(ListPosition::of).or(after);
            records.extend(
                batch
                    .into_iter()
                    .filter(|r| query.status.matches(r) && self.visible(account, r, actor)),
            );
            if exhausted || records.len() > limit {
                break;
            }
        }
        let more = records.len() > limit;
        records.truncate(limit);
        let next_cursor = if more {
            records.last().map(|r| cursor::encode(&ListPosition::of(r)))
        } else {
            None
        };
        let mut data = Vec::with_capacity(records.len());
        for record in &records {
            data.push(self.view(record).await);
        }
        Ok(Page { data, next_cursor })
    }
}
