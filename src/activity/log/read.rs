//! Reading and erasing the API log through the [`KeyManager`] and the [`ActingManager`].

use std::collections::HashMap;

use super::query::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use super::{cursor, ApiLogPage, ApiLogQuery, EventFilter, EventPosition, OUTCOMES};
use crate::manage::{ActingManager, KeyManager, ManageError};
use crate::store::record::{AccountId, KeyId};

impl KeyManager {
    /// A page of `account`'s API log events, newest first (by time, then by order of
    /// storage), that match every filter of `query`: `key_id`, `outcome` (one of
    /// [`OUTCOMES`]), `from` (inclusive) and `to` (exclusive). `query.limit` is 1 to 100
    /// (default 50); `query.cursor` is the previous page's `next_cursor`. Bad input is
    /// [`ManageError::InvalidRequest`] naming the field (an unknown outcome, a limit out
    /// of range, a text that is not a cursor). A window with `to` not after `from` is
    /// empty, not an error: every well-formed query is answered, as the management API's
    /// document promises.
    ///
    /// For server-side code: every event of the account, including those of keys since
    /// deleted, except keys of another environment than this deployment's. Empty when
    /// the gate has no API log ([`crate::KeygateBuilder::api_log`]).
    pub async fn api_logs(
        &self,
        account: &AccountId,
        query: &ApiLogQuery,
    ) -> Result<ApiLogPage, ManageError> {
        self.api_logs_for(account, query, None).await
    }

    /// Deletes every API log event of `account` (for a customer who leaves), after
    /// writing what is buffered, so that none of its events written before this call
    /// survives it; returns how many were deleted. Requests the account makes afterwards
    /// are recorded again.
    pub async fn erase_account_events(&self, account: &AccountId) -> Result<u64, ManageError> {
        let Some(log) = self.keygate().api_log() else {
            return Ok(0);
        };
        log.flush().await;
        let erased = log.store().erase_account_events(account).await?;
        tracing::info!(target: "keygate::audit", action = "erase_events", account_id = account.as_str(), erased, "API log events erased");
        Ok(erased)
    }

    /// [`KeyManager::api_logs`], for an actor when `actor` is set: only events of keys
    /// it sees (its account, its environment), and a `key_id` it does not see is
    /// [`ManageError::NotFound`].
    pub(crate) async fn api_logs_for(
        &self,
        account: &AccountId,
        query: &ApiLogQuery,
        acting: Option<&ActingManager<'_>>,
    ) -> Result<ApiLogPage, ManageError> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ManageError::InvalidRequest(format!(
                "limit: must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        if let Some(outcome) = &query.outcome {
            if !OUTCOMES.contains(&outcome.as_str()) {
                return Err(ManageError::InvalidRequest(format!(
                    "outcome: not a known outcome; one of {}",
                    OUTCOMES.join(", ")
                )));
            }
        }
        let mut after: Option<EventPosition> = match query.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(cursor::decode(c)?),
        };
        let mut seen: HashMap<KeyId, bool> = HashMap::new();
        if let Some(id) = &query.key_id {
            let shown = self.shows_events_of(account, id, acting).await?;
            if !shown && acting.is_some() {
                return Err(ManageError::NotFound);
            }
            seen.insert(id.clone(), shown);
        }
        let Some(log) = self.keygate().api_log() else {
            return Ok(ApiLogPage {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let mut events = Vec::with_capacity(limit + 1);
        // Events of keys this caller may not see are skipped, so a page may take several
        // store reads.
        loop {
            let want = limit + 1;
            let filter = EventFilter {
                account_id: account.clone(),
                key_id: query.key_id.clone(),
                outcome: query.outcome.clone(),
                from: query.from,
                to: query.to,
                after,
                limit: want,
            };
            let batch = log.store().query_events(&filter).await?;
            let exhausted = batch.len() < want;
            after = batch.last().map(EventPosition::of).or(after);
            for event in batch {
                let shown = match seen.get(&event.key_id) {
                    Some(shown) => *shown,
                    None => {
                        let shown = self.shows_events_of(account, &event.key_id, acting).await?;
                        seen.insert(event.key_id.clone(), shown);
                        shown
                    }
                };
                if shown {
                    events.push(event);
                }
            }
            if exhausted || events.len() > limit {
                break;
            }
        }
        let more = events.len() > limit;
        events.truncate(limit);
        let next_cursor = if more {
            events.last().map(|e| cursor::encode(&EventPosition::of(e)))
        } else {
            None
        };
        Ok(ApiLogPage {
            data: events,
            next_cursor,
        })
    }

    /// Whether events of key `id` are shown: to an actor, when it sees the key; to
    /// server-side code, unless the key is of an environment this deployment does not
    /// serve (a deleted key's events stay shown).
    async fn shows_events_of(
        &self,
        account: &AccountId,
        id: &KeyId,
        acting: Option<&ActingManager<'_>>,
    ) -> Result<bool, ManageError> {
        match acting {
            Some(acting) => match acting.get(id).await {
                Ok(_) => Ok(true),
                Err(ManageError::NotFound) => Ok(false),
                Err(e) => Err(e),
            },
            None => Ok(self
                .stored(id)
                .await?
                .is_none_or(|r| &r.account_id == account && self.serves_key(&r))),
        }
    }
}

impl ActingManager<'_> {
    /// A page of the API log of the actor's account, confined like every other call: only
    /// events of keys the actor sees (its account and environment), and a `key_id` it
    /// does not see is [`ManageError::NotFound`]. See [`KeyManager::api_logs`].
    pub async fn api_logs(&self, query: &ApiLogQuery) -> Result<ApiLogPage, ManageError> {
        let (manager, account) = self.confined()?;
        manager.api_logs_for(account, query, Some(self)).await
    }
}
