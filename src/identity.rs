//! The typed identity attached to an authenticated request.

use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::Serialize;

use crate::cache::entry::ResolvedKey;
use crate::check::usage::Spent;
use crate::credential::CredentialKind;
use crate::key::Environment;
use crate::scope::{ScopeImplications, ScopeSet};
use crate::store::record::{AccountId, KeyId, KeyRecord};

/// Who is calling: inserted into the request's extensions after a key passes every check.
///
/// Read it with `req.extensions().get::<Identity>()` (hyper, tonic), or as an axum
/// extractor with the `axum` feature. Cheap to clone. It holds no secret and no digest.
///
/// ```
/// use axum::{routing::get, Json, Router};
/// use keygate::{Identity, Keygate, MemoryStore};
///
/// async fn whoami(identity: Identity) -> Json<Identity> {
///     // `{"id":…,"account_id":…,"name":…,"environment":…,"scopes":[…]}`
///     Json(identity)
/// }
/// async fn maybe(identity: Option<Identity>) -> String {
///     identity.map_or("anonymous".into(), |i| i.account_id().to_string())
/// }
/// let gate = Keygate::builder(MemoryStore::new()).build();
/// let app: Router = Router::new()
///     .route("/whoami", get(whoami))
///     .route("/maybe", get(maybe).route_layer(gate.layer().allow_anonymous()))
///     .layer(gate.layer());
/// ```
#[derive(Clone)]
pub struct Identity(pub(crate) Arc<ResolvedKey>, pub(crate) Spent);

impl Identity {
    /// The identity of `key`, which spent nothing.
    pub(crate) fn new(key: Arc<ResolvedKey>) -> Self {
        Self(key, Spent(0))
    }

    /// The key's public id; for a credential from the
    /// [credential verifier](crate::credential), its principal's subject (a JWT's `sub`).
    pub fn key_id(&self) -> &KeyId {
        &self.0.record.id
    }

    /// The owning account.
    pub fn account_id(&self) -> &AccountId {
        &self.0.record.account_id
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.0.record.name
    }

    /// The key's environment.
    pub fn environment(&self) -> Option<Environment> {
        self.0.record.environment
    }

    /// The scopes the key was given.
    pub fn scopes(&self) -> &ScopeSet {
        &self.0.record.scopes
    }

    /// Whether the key holds `scope`, directly or through the configured implications.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.granted.has(scope)
    }

    /// Whether the key is read-only.
    pub fn is_read_only(&self) -> bool {
        self.0.read_only
    }

    /// Whether this identity comes from one of keygate's API keys or from a credential
    /// the [credential verifier](crate::credential) accepted.
    pub fn credential(&self) -> CredentialKind {
        if self.0.external {
            CredentialKind::External
        } else {
            CredentialKind::ApiKey
        }
    }

    /// The key's free-form metadata (a verified JWT's claims).
    pub fn metadata(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0.record.metadata
    }

    /// Charges `units` more credits after the fact, for work whose cost is known only
    /// once it is done, on every credits meter of the key (its own and its account's).
    /// A charge may take a balance below zero; nothing more is then admitted until
    /// refills cover the debt. No lock and no I/O: the charge is taken from this
    /// instance's leased units and settled with the ledger at the next lease. Does
    /// nothing for a key without credits. See [`crate::metering`].
    ///
    /// ```
    /// use keygate::Identity;
    ///
    /// async fn render(identity: Identity) -> &'static str {
    ///     let pages = 3; // known only now
    ///     identity.charge(pages);
    ///     "rendered"
    /// }
    /// ```
    pub fn charge(&self, units: u64) {
        if let Some(meters) = &self.0.metering {
            meters.charge(i64::try_from(units).unwrap_or(i64::MAX));
        }
    }

    /// Gives `units` credits back after the fact (work that failed, say), on every
    /// credits meter of the key. Does nothing for a key without credits.
    pub fn refund(&self, units: u64) {
        if let Some(meters) = &self.0.metering {
            meters.charge(-i64::try_from(units).unwrap_or(i64::MAX));
        }
    }

    /// Whether the key spends credits (its own or its account's), so that
    /// [`charge`](Self::charge) and [`refund`](Self::refund) have an effect.
    pub fn has_credits(&self) -> bool {
        self.0.metering.as_ref().is_some_and(|m| m.has_credits())
    }

    /// An identity for the tests of your own handlers, as keygate's layer would attach
    /// for a key `key_id` of `account_id` holding `scopes` (exactly these: no configured
    /// implications, not read-only), named `test key`, in no environment, without
    /// metadata. It belongs to no [`crate::Keygate`]: put it into a request's
    /// extensions, or pass it to a handler directly. Panics on an invalid id or scope
    /// name, as a test should.
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum::http::Request;
    /// use axum::{routing::get, Router};
    /// use keygate::Identity;
    /// use tower::ServiceExt as _;
    ///
    /// async fn account(identity: Identity) -> String {
    ///     identity.account_id().to_string()
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let app = Router::new().route("/account", get(account));
    /// let mut req = Request::get("/account").body(Body::empty()).unwrap();
    /// req.extensions_mut()
    ///     .insert(Identity::for_test("ak_test", "acct_1", ["billing:read"]));
    /// let res = app.oneshot(req).await.unwrap();
    /// let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    /// assert_eq!(&body[..], b"acct_1");
    /// # });
    /// ```
    pub fn for_test<I, S>(key_id: &str, account_id: &str, scopes: I) -> Identity
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let id = KeyId::parse(key_id).expect("a key id: 1 to 64 ASCII letters, digits or '_'");
        let scopes = ScopeSet::parse(scopes).expect("valid scope names");
        let now = std::time::SystemTime::now();
        let digest = crate::key::KeyHasher::default().digest(key_id);
        let mut record = KeyRecord::new(id, AccountId::new(account_id), digest, now);
        record.name = "test key".to_owned();
        record.scopes = scopes;
        let granted = ScopeImplications::default().expand(&record.scopes);
        Identity::new(Arc::new(ResolvedKey {
            record,
            granted,
            read_only: false,
            limit: None,
            account_limit: None,
            usage: Default::default(),
            metering: None,
            last_used_written: std::sync::atomic::AtomicU64::new(0),
            fresh_until: now,
            verified_at: now,
            epoch: 0,
            // Gate ids start at 1: this identity belongs to none.
            gate: 0,
            external: false,
        }))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("key_id", self.key_id())
            .field("account_id", self.account_id())
            .field("name", &self.name())
            .field("environment", &self.environment())
            .field("scopes", self.scopes())
            .field("credential", &self.credential())
            .finish()
    }
}

impl Serialize for Identity {
    /// `{"id":…,"account_id":…,"name":…,"environment":…,"scopes":[…]}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Identity", 5)?;
        st.serialize_field("id", self.key_id())?;
        st.serialize_field("account_id", self.account_id())?;
        st.serialize_field("name", self.name())?;
        st.serialize_field("environment", &self.environment())?;
        st.serialize_field("scopes", self.scopes())?;
        st.end()
    }
}

#[cfg(feature = "axum")]
mod axum_impl {
    use super::Identity;
    use axum::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum::response::{IntoResponse, Response};
    use http::request::Parts;

    /// The refusal of the [`Identity`] extractor: the request carries no identity,
    /// which means keygate's layer does not run in front of this route.
    #[derive(Debug, Clone, Copy, thiserror::Error)]
    #[error("no keygate Identity on this request: add keygate's layer in front of this route (Router::layer or route_layer)")]
    pub struct MissingIdentity;

    impl IntoResponse for MissingIdentity {
        fn into_response(self) -> Response {
            let res = crate::refusal::json_error(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "keygate_layer_missing",
                &self.to_string(),
            );
            res.map(axum::body::Body::from)
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for Identity {
        type Rejection = MissingIdentity;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<Identity>()
                .cloned()
                .ok_or(MissingIdentity)
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for Identity {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<Identity>().cloned())
        }
    }
}

#[cfg(feature = "axum")]
pub use axum_impl::MissingIdentity;
