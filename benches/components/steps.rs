//! One benchmark group per step of the check: key, hash, header, cache, scope, IP,
//! limiter headers and extensions.

use crate::setup::*;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use http::header::AUTHORIZATION;
use http::HeaderMap;
use keygate::client_ip::{IpAllowlist, PeerAddr};
use keygate::gate::CacheConfig;
use keygate::key::{KeyDigest, KeyFormat, KeyHasher};
use keygate::ratelimit::RateLimitStatus;
use keygate::scope::{ScopeImplications, ScopeSet};
use keygate::store::RateLimit;
use keygate::ScopeRequirement;

pub(crate) fn key_parsing(c: &mut Criterion) {
    let format = KeyFormat::default();
    let key = a_key();
    let mut bad = key.clone().into_bytes();
    let last = bad.last_mut().expect("not empty");
    *last = if *last == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).expect("ASCII");
    let mut g = c.benchmark_group("key");
    g.bench_function("parse_valid", |b| {
        b.iter(|| format.parse(black_box(&key)).is_ok())
    });
    g.bench_function("parse_bad_checksum", |b| {
        b.iter(|| format.parse(black_box(&bad)).is_err())
    });
    g.bench_function("parse_unknown_prefix", |b| {
        b.iter(|| format.parse(black_box("xx_0123456789")).is_err())
    });
    g.finish();
}

pub(crate) fn hashing(c: &mut Criterion) {
    let key = a_key();
    let plain = KeyHasher::sha256();
    let peppered = KeyHasher::with_pepper(b"a server-side pepper of 32 bytes");
    let mut g = c.benchmark_group("hash");
    g.bench_function("sha256", |b| b.iter(|| plain.digest(black_box(&key))));
    g.bench_function("hmac_sha256_peppered", |b| {
        b.iter(|| peppered.digest(black_box(&key)))
    });
    g.finish();
}

pub(crate) fn header_parsing(c: &mut Criterion) {
    let key = a_key();
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        format!("Bearer {key}").parse().expect("valid header"),
    );
    headers.insert("accept", "application/json".parse().expect("valid header"));
    headers.insert("user-agent", "bench/1".parse().expect("valid header"));
    let mut g = c.benchmark_group("header");
    // What the layer does: the only Authorization value, as text, then the scheme and
    // the token68 check.
    g.bench_function("bearer_extract", |b| {
        b.iter(|| {
            let headers = black_box(&headers);
            let mut values = headers.get_all(AUTHORIZATION).iter();
            let first = values.next().expect("present");
            assert!(values.next().is_none());
            let text = first.to_str().expect("ASCII");
            keygate::check::parse_bearer(text).expect("valid").len()
        })
    });
    g.finish();
}

pub(crate) fn cache_lookup(c: &mut Criterion) {
    // keygate's cache: moka's sync cache keyed by digest with the pass-through hasher,
    // values `Arc<_>`, a per-entry expiry, the default capacity.
    struct Ttl;
    impl moka::Expiry<KeyDigest, Arc<[u8; 256]>> for Ttl {
        fn expire_after_create(
            &self,
            _: &KeyDigest,
            _: &Arc<[u8; 256]>,
            _: std::time::Instant,
        ) -> Option<Duration> {
            Some(Duration::from_secs(30))
        }
    }
    let cache: moka::sync::Cache<KeyDigest, Arc<[u8; 256]>, DigestHasher> =
        moka::sync::Cache::builder()
            .max_capacity(CacheConfig::default().max_entries)
            .expire_after(Ttl)
            .build_with_hasher(DigestHasher);
    let hasher = KeyHasher::sha256();
    let digests: Vec<KeyDigest> = (0..10_000)
        .map(|i| hasher.digest(&format!("key {i}")))
        .collect();
    for d in &digests {
        cache.insert(*d, Arc::new([0; 256]));
    }
    cache.run_pending_tasks();
    let hit = digests[4_321];
    let miss = hasher.digest("not cached");

    let rt = runtime();
    let _guard = rt.enter();
    let (gate, key) = deployment(&rt, Deployment::FULL);
    assert!(now(gate.verify_key(&key)).is_ok());

    let mut g = c.benchmark_group("cache");
    g.bench_function("moka_hit", |b| {
        b.iter(|| cache.get(black_box(&hit)).is_some())
    });
    g.bench_function("moka_miss", |b| {
        b.iter(|| cache.get(black_box(&miss)).is_none())
    });
    g.bench_function("verify_key_cached", |b| {
        b.iter(|| now(gate.verify_key(black_box(&key))).is_ok())
    });
    g.finish();
}

pub(crate) fn scope_check(c: &mut Criterion) {
    let rules = ScopeImplications::new()
        .grants_all("admin")
        .write_implies_read();
    let one = rules.expand(&ScopeSet::parse([SCOPE]).expect("valid"));
    let many = rules.expand(
        &ScopeSet::parse([
            "a:write", "b:write", "c:write", "d:write", "e:write", "f:write", "g:write", "h:write",
        ])
        .expect("valid"),
    );
    let admin = rules.expand(&ScopeSet::parse(["admin"]).expect("valid"));
    let require = ScopeRequirement::any_of([SCOPE]);
    let require_all = ScopeRequirement::all_of(["a:read", "e:write", "h:read"]);
    let mut g = c.benchmark_group("scope");
    g.bench_function("any_of_one_granted", |b| {
        b.iter(|| black_box(&require).is_met_by(black_box(&one)))
    });
    g.bench_function("all_of_three_in_sixteen", |b| {
        b.iter(|| black_box(&require_all).is_met_by(black_box(&many)))
    });
    g.bench_function("admin_grants_all", |b| {
        b.iter(|| black_box(&require).is_met_by(black_box(&admin)))
    });
    g.finish();
}

pub(crate) fn ip_check(c: &mut Criterion) {
    let one = IpAllowlist::parse(["127.0.0.0/8"]).expect("valid");
    let ten = IpAllowlist::parse([
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "2001:db8::/32",
        "203.0.113.7",
        "198.51.100.0/24",
        "fd00::/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
    ])
    .expect("valid");
    let v4: IpAddr = "127.0.0.1".parse().expect("valid");
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("valid");
    let mut g = c.benchmark_group("ip");
    g.bench_function("v4_one_cidr", |b| {
        b.iter(|| black_box(&one).allows(black_box(v4)))
    });
    g.bench_function("v4_last_of_ten", |b| {
        b.iter(|| black_box(&ten).allows(black_box(v4)))
    });
    g.bench_function("v4_mapped_v6_one_cidr", |b| {
        b.iter(|| black_box(&one).allows(black_box(mapped)))
    });
    g.finish();
}

pub(crate) fn limiter_check(c: &mut Criterion) {
    let status = RateLimitStatus::new(RateLimit::DEFAULT, 1999, 1_700_000_001, 1);
    let mut g = c.benchmark_group("limiter");
    g.bench_function("write_headers_legacy", |b| {
        b.iter_batched(
            HeaderMap::new,
            |mut headers| {
                status.write_headers(&mut headers, false);
                headers
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("write_headers_legacy_and_ietf", |b| {
        b.iter_batched(
            HeaderMap::new,
            |mut headers| {
                status.write_headers(&mut headers, true);
                headers
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

pub(crate) fn extensions(c: &mut Criterion) {
    #[derive(Clone)]
    struct Attached(#[allow(dead_code)] Arc<u64>);
    let value = Arc::new(7u64);
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("valid");
    let mut g = c.benchmark_group("extensions");
    g.bench_function("insert_arc_into_existing_map", |b| {
        b.iter_batched(
            || {
                let mut ext = http::Extensions::new();
                ext.insert(PeerAddr(peer));
                ext
            },
            |mut ext| {
                ext.insert(Attached(value.clone()));
                ext
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The cache's own hasher for digest keys (private to the crate), copied: it passes the
/// digest's randomness through instead of hashing it again.
#[derive(Clone, Copy, Default)]
struct DigestHasher;

#[derive(Default)]
struct PassThroughHasher(u64);

impl std::hash::BuildHasher for DigestHasher {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 ^= word;
    }
}
