//! External principals as actors: a verified credential (a JWT, say) whose expiry,
//! environment, scopes, IP allowlist and quota come from a drawn [`Shape`].

use super::*;
use bytes::Bytes;
use http_body_util::Full;
use keygate::client_ip::{IpAllowlist, PeerAddr};
use keygate::credential::{BearerCredential, Principal};
use keygate::key::KeyDigest;
use keygate::store::AccountId;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The subject of every drawn principal.
pub(super) const SUBJECT: &str = "user_7";

/// The principal `shape` describes, acting for `account`.
pub(super) fn principal(shape: &Shape, account: &AccountId) -> Principal {
    let mut p = Principal::new(SUBJECT.into(), account.clone())
        .scopes(ScopeSet::parse(shape.scopes.iter().copied()).unwrap())
        .ips(IpAllowlist::parse(shape.ips.iter().copied()).unwrap());
    p.expires_at = shape.expires_at();
    p.rate_limit = shape.rate();
    p.environment = shape.environment;
    p
}

/// What the no-widening property compares a key with: the principal as a record.
pub(super) fn as_record(p: &Principal) -> KeyRecord {
    let mut r = KeyRecord::new(
        KeyId::new(SUBJECT),
        p.account.clone(),
        KeyDigest::from_bytes([0; 32]),
        t0(),
    );
    r.scopes = p.scopes.clone();
    r.ips = p.ips.clone();
    r.expires_at = p.expires_at;
    r.rate_limit = p.rate_limit;
    r.environment = p.environment;
    r
}

/// A verifier that accepts any token as `principal`.
pub(super) fn verifier_of(
    principal: Principal,
) -> impl Fn(
    BearerCredential,
) -> std::future::Ready<Result<Principal, keygate::credential::CredentialError>>
       + Send
       + Sync
       + 'static {
    move |_| std::future::ready(Ok(principal.clone()))
}

/// The identity the gate makes of its verifier's principal: a request through the layer,
/// from an address the principal's allowlist allows.
pub(super) async fn identity(h: &Harness, ips: &IpAllowlist) -> Identity {
    let seen: Arc<Mutex<Option<Identity>>> = Arc::default();
    let capture = seen.clone();
    let inner = tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let capture = capture.clone();
        async move {
            *capture.lock().unwrap() = req.extensions().get::<Identity>().cloned();
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
        }
    });
    let mut svc = tower::Layer::layer(&h.gate.layer(), inner);
    let peer = PROBES
        .iter()
        .map(|p| p.parse::<IpAddr>().unwrap())
        .find(|ip| ips.allows(*ip))
        .expect("every drawn allowlist allows one probe");
    let mut req = get("/", Some("a.verified.token"));
    req.extensions_mut()
        .insert(PeerAddr(SocketAddr::new(peer, 1)));
    let answer = send(&mut svc, req).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let identity = seen.lock().unwrap().take();
    identity.expect("the principal reached the service")
}
