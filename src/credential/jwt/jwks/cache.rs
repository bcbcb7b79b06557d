//! The keys last fetched, when to fetch again, and the one fetch in flight that every
//! waiting token shares.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures_util::future::{BoxFuture, FutureExt as _, Shared};

use super::fetch::Fetcher;
use crate::credential::jwt::keys::JwtKey;
use crate::credential::CredentialError;

/// How long documents live, and how often the issuer may be asked.
#[derive(Clone, Copy, Debug)]
pub(super) struct Policy {
    pub(super) min_lifetime: Duration,
    pub(super) max_lifetime: Duration,
    pub(super) min_refetch_interval: Duration,
    pub(super) stale_while_unreachable: Duration,
}

impl Policy {
    /// A document's lifetime: its `max-age` (the floor when it gives none) clamped
    /// between the floor and the ceiling.
    fn lifetime(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.min_lifetime)
            .clamp(self.min_lifetime, self.max_lifetime)
    }
}

pub(super) struct JwksCache {
    pub(super) fetcher: Fetcher,
    pub(super) policy: Policy,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    current: Option<Arc<Snapshot>>,
    /// When the last fetch started, successful or not: the next may start only
    /// `min_refetch_interval` later.
    last_attempt: Option<SystemTime>,
    in_flight: Option<Shared<BoxFuture<'static, ()>>>,
}

/// The keys of the last document fetched.
struct Snapshot {
    keys: Arc<[JwtKey]>,
    /// Until then the keys are used without asking the issuer (except for an unknown
    /// `kid`).
    fresh_until: SystemTime,
    /// Until then the keys are used while the issuer cannot be reached; after it, fail
    /// closed.
    usable_until: SystemTime,
}

impl Snapshot {
    fn knows(&self, kid: Option<&str>) -> bool {
        kid.is_none_or(|kid| self.keys.iter().any(|k| k.key_id() == Some(kid)))
    }
}

impl JwksCache {
    pub(super) fn new(fetcher: Fetcher, policy: Policy) -> Self {
        Self {
            fetcher,
            policy,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys to check a token naming `kid` with, at `now`. Fetches first when no
    /// document is held, when it has outlived its lifetime, or when it does not know
    /// `kid`; at most once per `min_refetch_interval`, and joining a fetch already in
    /// flight. Fails closed when no document, or only one past its stale bound, is held.
    pub(super) async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        now: SystemTime,
    ) -> Result<Arc<[JwtKey]>, CredentialError> {
        let fetch = self.fetch_to_wait_for(kid, now)?;
        if let Some(fetch) = fetch {
            fetch.await;
        }
        match &self.state().current {
            None => Err(CredentialError::unavailable(format!(
                "no JWKS document could be fetched from {}",
                self.fetcher.origin
            ))),
            Some(snapshot) if now >= snapshot.usable_until => {
                Err(CredentialError::unavailable(format!(
                    "the JWKS document from {} is past its lifetime and its stale bound, \
                     and no fresh one could be fetched",
                    self.fetcher.origin
                )))
            }
            Some(snapshot) => Ok(snapshot.keys.clone()),
        }
    }

    /// The fetch this token waits for: the one in flight, a new one, or none.
    fn fetch_to_wait_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        now: SystemTime,
    ) -> Result<Option<Shared<BoxFuture<'static, ()>>>, CredentialError> {
        let mut state = self.state();
        let wanted = match &state.current {
            None => true,
            Some(snapshot) => now >= snapshot.fresh_until || !snapshot.knows(kid),
        };
        if !wanted {
            return Ok(None);
        }
        // A finished fetch whose task could not clear it (it panicked) is not waited for.
        if let Some(fetch) = state.in_flight.as_ref().filter(|f| f.peek().is_none()) {
            return Ok(Some(fetch.clone()));
        }
        let allowed = state.last_attempt.is_none_or(|last| {
            now.duration_since(last)
                .is_ok_and(|since| since >= self.policy.min_refetch_interval)
        });
        if !allowed {
            return Ok(None);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            CredentialError::unavailable("fetching a JWKS document needs a Tokio runtime")
        })?;
        state.last_attempt = Some(now);
        let this = Arc::clone(self);
        // A task of its own: a token that stops waiting (its request was dropped or
        // timed out) does not cancel the fetch the others wait for.
        let task = runtime.spawn(async move { this.refresh(now).await });
        let fetch = async move {
            let _ = task.await;
        }
        .boxed()
        .shared();
        state.in_flight = Some(fetch.clone());
        Ok(Some(fetch))
    }

    /// Fetches, and replaces the keys held on success; keeps them on failure.
    async fn refresh(&self, started: SystemTime) {
        let outcome = self.fetcher.fetch().await;
        let mut state = self.state();
        state.in_flight = None;
        match outcome {
            Ok(document) => {
                let fresh_until = started + self.policy.lifetime(document.max_age);
                tracing::debug!(
                    origin = %self.fetcher.origin,
                    keys = document.keys.len(),
                    "JWKS document fetched"
                );
                state.current = Some(Arc::new(Snapshot {
                    keys: document.keys.into(),
                    fresh_until,
                    usable_until: fresh_until + self.policy.stale_while_unreachable,
                }));
            }
            Err(error) => tracing::warn!(
                origin = %self.fetcher.origin,
                %error,
                "JWKS fetch failed; the keys fetched before stay in use within their stale bound"
            ),
        }
    }
}
