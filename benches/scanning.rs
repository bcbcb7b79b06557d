//! The secret-scanning endpoint answering one alert of 1,000 tokens, end to end through
//! its axum route: the ECDSA P-256 signature over the raw body (about 157 KB), the JSON
//! parse, the offline check of every token, a lookup for each well-formed one, and the
//! feedback array.
//!
//! ```text
//! cargo bench --bench scanning
//! ```
//!
//! `1000_tokens_10_known`: 10 real keys (already reported, so unchanged: the steady
//! state of GitHub's retries) among 990 well-formed unknown keys, on a `MemoryStore`.
//! `signature_only`: the same body with a wrong signature, refused before parsing.

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use keygate::admin::scanning::{ScanningKeys, SecretScanning};
use keygate::leaks::LeakPolicy;
use keygate::{Keygate, MemoryStore, NewKey};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::json;
use tower::ServiceExt as _;

fn scanning(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let signer = SigningKey::from_slice(&[7u8; 32]).expect("a valid scalar");
    let pem = signer
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    let document =
        json!({"public_keys": [{"key_identifier": "k1", "key": pem, "is_current": true}]});
    let keys = ScanningKeys::from_document(document.to_string().as_bytes()).expect("keys");
    let (gate, manager) = Keygate::managed(MemoryStore::new()).build();
    let format = gate.format().clone();
    let mut tokens = Vec::new();
    for i in 0..1000 {
        let token = if i % 100 == 0 {
            let created = rt
                .block_on(manager.create("acct".into(), NewKey::named(format!("k{i}"))))
                .expect("created");
            created.key.expose_secret().to_owned()
        } else {
            let prefix = format.prefix("sk_test_").expect("prefix");
            format
                .generate(prefix)
                .expect("key")
                .expose_secret()
                .to_owned()
        };
        tokens.push(json!({"token": token, "type": "keygate_api_key", "url": "https://gist.github.com/x", "source": "gist_content"}));
    }
    let body = serde_json::Value::Array(tokens).to_string();
    let sign = |bytes: &[u8]| {
        let signature: Signature = signer.sign(bytes);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    };
    let good = sign(body.as_bytes());
    let bad = sign(b"another body");
    let router = SecretScanning::builder(manager, keys)
        .policy(LeakPolicy::RecordOnly)
        .build()
        .router("/v1/secret-scanning");
    let request = |signature: &str| {
        Request::post("/v1/secret-scanning")
            .header("content-type", "application/json")
            .header("github-public-key-identifier", "k1")
            .header("github-public-key-signature", signature)
            .body(axum::body::Body::from(body.clone()))
            .expect("request")
    };

    let mut group = c.benchmark_group("scanning");
    group.sample_size(20);
    group.bench_function("1000_tokens_10_known", |b| {
        b.iter(|| {
            let res = rt
                .block_on(router.clone().oneshot(request(&good)))
                .expect("infallible");
            assert_eq!(res.status(), 200);
        })
    });
    group.bench_function("signature_only", |b| {
        b.iter(|| {
            let res = rt
                .block_on(router.clone().oneshot(request(&bad)))
                .expect("infallible");
            assert_eq!(res.status(), 401);
        })
    });
    group.finish();
}

criterion_group!(benches, scanning);
criterion_main!(benches);
