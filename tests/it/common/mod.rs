//! Shared test helpers: a harness on a manual clock, a fault-injecting store, and
//! request helpers for the tower stack and for real loopback servers. Its modules:
//! real PostgreSQL and Redis servers (`services`, `pg`, `redis_support`), the
//! invalidation tests' sink and waits (`propagation`), a freezable TCP proxy
//! (`proxy`), and JWT signing with the test keys (`jwt_support`).
#![allow(dead_code, unreachable_pub)]

pub mod console;
pub mod jwt_support;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod propagation;
pub mod proxy;
#[cfg(feature = "redis")]
pub mod redis_support;
pub mod services;
pub mod webhook_receiver;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use keygate::clock::{Clock, ManualClock};
use keygate::gate::Managed;
use keygate::key::KeyDigest;
use keygate::store::{AccountId, KeyRecord};
use keygate::{
    Identity, KeyManager, KeyStore, KeyStoreWrite, Keygate, KeygateBuilder, MemoryStore, NewKey,
    StoreError,
};
use tower::{Service, ServiceExt};

/// 2023-11-14T22:13:20Z: a fixed start for manual clocks.
pub const T0: u64 = 1_700_000_000;

pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0)
}

/// What [`FaultyStore`] does on the next lookups.
#[derive(Clone, Debug, Default)]
pub enum Fault {
    /// Pass through to the in-memory store.
    #[default]
    None,
    /// Return a store error.
    Error,
    /// Wait this long (tokio time, so a paused clock applies), then pass through.
    Delay(Duration),
    /// Never answer.
    Hang,
    /// Panic inside the store call.
    Panic,
}

/// A store that counts lookups and injects faults. Writes go straight through.
#[derive(Default)]
pub struct FaultyStore {
    pub inner: MemoryStore,
    pub lookups: AtomicUsize,
    pub last_used_writes: AtomicUsize,
    pub fault: Mutex<Fault>,
}

impl FaultyStore {
    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
    pub fn last_used_writes(&self) -> usize {
        self.last_used_writes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeyStore for FaultyStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let fault = self.fault.lock().unwrap().clone();
        match fault {
            Fault::None => {}
            Fault::Error => return Err(StoreError::unavailable("injected failure")),
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Hang => std::future::pending::<()>().await,
            Fault::Panic => panic!("injected panic in store"),
        }
        self.inner.find_by_digest(digest).await
    }
    fn usage_store(&self) -> Option<Arc<dyn keygate::activity::UsageStore>> {
        self.inner.usage_store()
    }
    fn credit_ledger(&self) -> Option<Arc<dyn keygate::metering::CreditLedger>> {
        self.inner.credit_ledger()
    }
}

#[async_trait]
impl KeyStoreWrite for FaultyStore {
    async fn get(&self, id: &keygate::store::KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn insert(
        &self,
        record: KeyRecord,
        max_active: Option<usize>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.inner.insert(record, max_active, now).await
    }
    async fn replace(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.inner.replace(record).await
    }
    async fn delete(&self, id: &keygate::store::KeyId) -> Result<KeyRecord, StoreError> {
        self.inner.delete(id).await
    }
    async fn list(
        &self,
        account: &AccountId,
        status: keygate::store::KeyStatusFilter,
        after: Option<&keygate::store::ListPosition>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list(account, status, after, limit).await
    }
    async fn record_last_used(
        &self,
        id: &keygate::store::KeyId,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        self.last_used_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.record_last_used(id, at).await
    }
    async fn find_by_start(&self, start: &str, limit: usize) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.find_by_start(start, limit).await
    }
}

/// A keygate over a [`FaultyStore`] on a manual clock, with a manager.
pub struct Harness {
    pub store: Arc<FaultyStore>,
    pub gate: Keygate,
    pub manager: KeyManager,
    pub clock: Clock,
    pub time: ManualClock,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    /// A harness whose builder `configure` adjusts (the clock is already set).
    pub fn with(
        configure: impl FnOnce(KeygateBuilder<Managed>) -> KeygateBuilder<Managed>,
    ) -> Self {
        let store = Arc::new(FaultyStore::default());
        let (clock, time) = Clock::manual(t0());
        let (gate, manager) =
            configure(Keygate::managed(store.clone()).clock(clock.clone())).build();
        Self {
            store,
            gate,
            manager,
            clock,
            time,
        }
    }

    /// Another deployment over the same store and clock, which `configure` adjusts, with
    /// its own manager: two deployments sharing one store.
    pub fn sibling(
        &self,
        configure: impl FnOnce(KeygateBuilder<Managed>) -> KeygateBuilder<Managed>,
    ) -> (Keygate, KeyManager) {
        configure(Keygate::managed(self.store.clone()).clock(self.clock.clone())).build()
    }

    /// Creates a key in `account` with `scopes`; returns (id, plaintext).
    pub async fn key(&self, account: &str, scopes: &[&str]) -> (keygate::store::KeyId, String) {
        self.key_with(
            account,
            NewKey::named("test key").scopes(scopes.iter().copied()),
        )
        .await
    }

    pub async fn key_with(&self, account: &str, new: NewKey) -> (keygate::store::KeyId, String) {
        let created = self
            .manager
            .create(AccountId::from(account), new)
            .await
            .expect("key created");
        (created.view.id, created.key.expose_secret().to_owned())
    }

    /// The layer over [`Echo`], ready for [`send`].
    pub fn service(&self) -> keygate::layer::KeygateService<Echo> {
        tower::Layer::layer(&self.gate.layer(), Echo)
    }
}

/// [`echo`] as a nameable service whose future is `Send`.
#[derive(Clone, Copy, Debug)]
pub struct Echo;

impl Service<Request<Full<Bytes>>> for Echo {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> Self::Future {
        let body = match req.extensions().get::<Identity>() {
            Some(id) => serde_json::to_string(id).unwrap(),
            None => "\"anonymous\"".to_owned(),
        };
        std::future::ready(Ok(Response::new(Full::new(Bytes::from(body)))))
    }
}

/// The inner service of most tests: 200 with the identity as JSON, or `anonymous`.
pub async fn echo(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.extensions().get::<Identity>() {
        Some(id) => serde_json::to_string(id).unwrap(),
        None => "\"anonymous\"".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// A GET to `path` with `Authorization: Bearer <key>` when a key is given.
pub fn get(path: &str, key: Option<&str>) -> Request<Full<Bytes>> {
    request(http::Method::GET, path, key)
}

pub fn request(method: http::Method, path: &str, key: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

/// A finished response: status, headers, body text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    /// The `error.code` of a JSON refusal.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends `req` through `svc` once and collects the answer.
pub async fn send<S, B>(svc: &mut S, req: Request<Full<Bytes>>) -> Answer
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Serves an axum router on a random loopback port, with connect info.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A real HTTP/1 client request over TCP, with hyper.
pub async fn http(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let res = sender
        .send_request(b.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A [`keygate::manage::ListQuery`] of active keys with this page size and cursor.
pub fn page_query(limit: Option<usize>, cursor: Option<&str>) -> keygate::manage::ListQuery {
    let mut query = keygate::manage::ListQuery::new();
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    if let Some(cursor) = cursor {
        query = query.cursor(cursor);
    }
    query
}

/// Makes `subscriber` this thread's default until the guard drops, for a test that
/// captures what keygate logs while other tests run on other threads of this process.
///
/// While only one dispatcher is registered, tracing-core works out a callsite's interest,
/// when the callsite is first reached, from the default of the thread reaching it: a
/// callsite first reached by another test (which has no subscriber) would be cached as
/// of no interest, and this test's events from it lost. A second dispatcher, registered
/// once and never dropped, makes tracing-core ask every registered dispatcher instead.
pub fn trace_into<S>(subscriber: S) -> tracing::subscriber::DefaultGuard
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    static ANOTHER: OnceLock<tracing::Dispatch> = OnceLock::new();
    ANOTHER.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    tracing::subscriber::set_default(subscriber)
}
