//! `floor`: a hand-written, non-configurable stack that does exactly the work keygate's
//! cached hit path must do, with the cheapest code for each step, and nothing else:
//!
//! 1. the single `Authorization` value, `Bearer ` and the key's prefix;
//! 2. one scan of the body against a base62 table, and the length;
//! 3. the CRC32 checksum (six base62 digits);
//! 4. SHA-256 of the key;
//! 5. one probe of a map keyed by the digest;
//! 6. a 32-byte constant-time comparison of the digests (as four words);
//! 7. the client IP (`PeerAddr`) against one IPv4 CIDR, as a precompiled mask;
//! 8. the route's scope, as a bit;
//! 9. a GCRA update of the key's own cell (one clock read, integer nanoseconds);
//! 10. three rate-limit headers from static values (the reset second is formatted into
//!     one exact allocation);
//! 11. the identity inserted into the request's extensions.
//!
//! Any failure is a bare 401, which the benches never take.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::{Request, Response, StatusCode};
use keygate::client_ip::PeerAddr;
use pin_project::pin_project;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::Service;

const PREFIX: &[u8] = b"sk_live_";
const BODY_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 membership, one table lookup per byte.
static IS_BASE62: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 62 {
        table[BASE62[i] as usize] = true;
        i += 1;
    }
    table
};

/// The decimal text of 0..10,000, concatenated, for static header values.
const DIGITS_LEN: usize = 10 + 90 * 2 + 900 * 3 + 9000 * 4;
static DIGITS: [u8; DIGITS_LEN] = {
    let mut out = [0u8; DIGITS_LEN];
    let (mut n, mut at) = (0usize, 0usize);
    while n < 10_000 {
        let len = if n < 10 {
            1
        } else if n < 100 {
            2
        } else if n < 1000 {
            3
        } else {
            4
        };
        let mut rest = n;
        let mut i = len;
        while i > 0 {
            out[at + i - 1] = b'0' + (rest % 10) as u8;
            rest /= 10;
            i -= 1;
        }
        at += len;
        n += 1;
    }
    out
};

/// A static header value for `n` below 10,000.
fn small_number(n: usize) -> HeaderValue {
    let (start, len) = match n {
        0..=9 => (n, 1),
        10..=99 => (10 + (n - 10) * 2, 2),
        100..=999 => (190 + (n - 100) * 3, 3),
        _ => (2890 + (n - 1000) * 4, 4),
    };
    let text: &'static [u8] = &DIGITS[start..start + len];
    HeaderValue::from_static(std::str::from_utf8(text).expect("ASCII digits"))
}

/// A ten-digit reset second in one exact allocation (no shared reference count).
fn unix_seconds(n: u64) -> HeaderValue {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    HeaderValue::from_maybe_shared(bytes::Bytes::from(buf[at..].to_vec())).expect("digits")
}

/// A digest as four words, for a constant-time comparison in four steps.
fn words(digest: &[u8; 32]) -> [u64; 4] {
    std::array::from_fn(|i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[i * 8..i * 8 + 8]);
        u64::from_le_bytes(word)
    })
}

/// A digest is uniformly random: its first eight bytes are the hash.
#[derive(Default)]
struct FirstWord(u64);

impl Hasher for FirstWord {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[..8]);
        self.0 = u64::from_le_bytes(word);
    }
}

/// One key: digest, allowlist, scopes, GCRA cell.
pub struct FloorKey {
    digest: [u8; 32],
    net: u32,
    mask: u32,
    scopes: u64,
    /// Theoretical arrival time, nanoseconds since the Unix epoch.
    tat: AtomicU64,
}

/// The identity attached to an admitted request.
#[derive(Clone)]
pub struct FloorIdentity(pub Arc<FloorKey>);

/// The floor stack's state: its keys and its one quota.
pub struct Floor {
    keys: HashMap<[u8; 32], Arc<FloorKey>, BuildHasherDefault<FirstWord>>,
    /// Nanoseconds per token, and the burst tolerance in nanoseconds.
    interval: u64,
    tolerance: u64,
    burst: u64,
    limit: HeaderValue,
    required_scope: u64,
}

impl Floor {
    /// A floor holding `key` with the allowlist `127.0.0.0/8`, scope bit 0, and the quota
    /// `per_second`/`burst`.
    pub fn new(key: &str, per_second: u64, burst: u64) -> Arc<Self> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let entry = Arc::new(FloorKey {
            digest,
            net: u32::from(Ipv4Addr::new(127, 0, 0, 0)),
            mask: !0u32 << 24,
            scopes: 1,
            tat: AtomicU64::new(0),
        });
        let mut keys = HashMap::default();
        keys.insert(digest, entry);
        let interval = (1_000_000_000 / per_second).max(1);
        Arc::new(Self {
            keys,
            interval,
            tolerance: interval * burst,
            burst,
            limit: small_number(burst as usize),
            required_scope: 1,
        })
    }

    /// The admitted key and its three header values, or `None` (401).
    fn check<B>(&self, req: &mut Request<B>) -> Option<[HeaderValue; 3]> {
        let mut values = req.headers().get_all(AUTHORIZATION).iter();
        let value = values.next()?.as_bytes();
        if values.next().is_some()
            || value.len() < 7
            || !value[..7].eq_ignore_ascii_case(b"bearer ")
        {
            return None;
        }
        let token = &value[7..];
        let body = token.strip_prefix(PREFIX)?;
        if body.len() != BODY_LEN + CHECKSUM_LEN || !body.iter().all(|&b| IS_BASE62[usize::from(b)])
        {
            return None;
        }
        let mut sum = crc32fast::hash(&token[..token.len() - CHECKSUM_LEN]);
        for &c in body[BODY_LEN..].iter().rev() {
            if c != BASE62[(sum % 62) as usize] {
                return None;
            }
            sum /= 62;
        }
        let digest: [u8; 32] = Sha256::digest(token).into();
        let key = self.keys.get(&digest)?;
        if !bool::from(words(&key.digest).ct_eq(&words(&digest))) {
            return None;
        }
        let ip = match req.extensions().get::<PeerAddr>()?.0.ip() {
            IpAddr::V4(v4) => u32::from(v4),
            IpAddr::V6(_) => return None,
        };
        if ip & key.mask != key.net || key.scopes & self.required_scope == 0 {
            return None;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        let now = now.as_secs() * 1_000_000_000 + u64::from(now.subsec_nanos());
        let mut tat = key.tat.load(Ordering::Relaxed);
        let new_tat = loop {
            let new_tat = tat.max(now) + self.interval;
            if new_tat - now > self.tolerance {
                return None;
            }
            match key
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break new_tat,
                Err(current) => tat = current,
            }
        };
        let remaining = (self.tolerance - (new_tat - now)) / self.interval;
        let reset = new_tat.div_ceil(1_000_000_000);
        req.extensions_mut().insert(FloorIdentity(key.clone()));
        Some([
            self.limit.clone(),
            small_number(remaining.min(self.burst) as usize),
            unix_seconds(reset),
        ])
    }
}

/// The floor as a tower service around `inner`.
#[derive(Clone)]
pub struct FloorService<S> {
    floor: Arc<Floor>,
    inner: S,
}

impl<S> FloorService<S> {
    /// Wraps `inner`.
    pub fn new(floor: Arc<Floor>, inner: S) -> Self {
        Self { floor, inner }
    }
}

impl<S, B, ResB> Service<Request<B>> for FloorService<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match self.floor.check(&mut req) {
            Some(headers) => FloorFuture::Called {
                future: self.inner.call(req),
                headers: Some(headers),
            },
            None => FloorFuture::Refused,
        }
    }
}

/// The floor's response future.
#[pin_project(project = FloorProj)]
pub enum FloorFuture<F> {
    /// 401, no body.
    Refused,
    /// Waiting on the inner service; then the headers are written.
    Called {
        #[pin]
        future: F,
        headers: Option<[HeaderValue; 3]>,
    },
}

impl<F, ResB, E> Future for FloorFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    ResB: Default,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
        static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
        static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
        match self.project() {
            FloorProj::Refused => {
                let mut res = Response::new(ResB::default());
                *res.status_mut() = StatusCode::UNAUTHORIZED;
                Poll::Ready(Ok(res))
            }
            FloorProj::Called { future, headers } => {
                let mut res = std::task::ready!(future.poll(cx))?;
                if let Some([limit, remaining, reset]) = headers.take() {
                    let map = res.headers_mut();
                    map.reserve(3);
                    map.insert(LIMIT.clone(), limit);
                    map.insert(REMAINING.clone(), remaining);
                    map.insert(RESET.clone(), reset);
                }
                Poll::Ready(Ok(res))
            }
        }
    }
}
