//! A GitHub stand-in for the secret-scanning tests: P-256 signing keys made here, the
//! public-key document that lists them, and alerts signed as GitHub's documentation
//! describes (ECDSA P-256 over SHA-256 of the raw body, ASN.1 DER, base64), written
//! with p256's own signer rather than anything of keygate's.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use base64::Engine as _;
use http::Method;
use keygate::admin::scanning::{ScanningKeys, SecretScanning};
use keygate::leaks::LeakPolicy;
use keygate::KeyManager;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{json, Value};

use crate::common::*;

/// Where the tests mount the endpoint: any path the operator chooses.
pub const PATH: &str = "/hooks/github/secret-scanning";

/// A signing key GitHub would hold, and its identifier.
pub struct GithubKey {
    pub id: String,
    key: SigningKey,
}

impl GithubKey {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            // 32 random bytes are a valid scalar but with negligible probability.
            key: SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap(),
        }
    }

    /// The `Github-Public-Key-Signature` of `body`: base64 of the DER signature.
    pub fn sign(&self, body: &[u8]) -> String {
        let signature: Signature = self.key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    fn entry(&self, current: bool) -> Value {
        let pem = self
            .key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        json!({"key_identifier": self.id, "key": pem, "is_current": current})
    }
}

/// The public-key document listing `keys` (the first one current).
pub fn document(keys: &[&GithubKey]) -> String {
    let entries: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| k.entry(i == 0))
        .collect();
    json!({ "public_keys": entries }).to_string()
}

/// An alert body reporting `tokens`, each as found in a public gist.
pub fn alert(tokens: &[&str]) -> String {
    let matches: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({
                "token": t,
                "type": "keygate_api_key",
                "url": "https://gist.github.com/someone/0123abcd",
                "source": "gist_content",
            })
        })
        .collect();
    Value::Array(matches).to_string()
}

/// A harness with the endpoint served on loopback, trusting `github`'s key.
pub struct Scanning {
    pub h: Harness,
    pub github: GithubKey,
    pub addr: SocketAddr,
}

impl Scanning {
    pub async fn new(policy: LeakPolicy) -> Self {
        let h = Harness::new();
        let github = GithubKey::new("github-key-1");
        let keys = ScanningKeys::from_document(document(&[&github]).as_bytes()).unwrap();
        let addr = serve_endpoint(&h.manager, keys, policy, None).await;
        Self { h, github, addr }
    }

    /// POSTs `body` signed by `signer` (under its own identifier).
    pub async fn post_signed(&self, body: &str, signer: &GithubKey) -> Answer {
        post(
            self.addr,
            body,
            Some((&signer.id, &signer.sign(body.as_bytes()))),
        )
        .await
    }

    /// POSTs `body` signed by the trusted key.
    pub async fn post(&self, body: &str) -> Answer {
        self.post_signed(body, &self.github).await
    }
}

/// Serves the endpoint for `manager` at [`PATH`].
pub async fn serve_endpoint(
    manager: &KeyManager,
    keys: ScanningKeys,
    policy: LeakPolicy,
    max_body: Option<usize>,
) -> SocketAddr {
    let mut builder = SecretScanning::builder(manager.clone(), keys).policy(policy);
    if let Some(max) = max_body {
        builder = builder.max_body_bytes(max);
    }
    serve(builder.build().router(PATH)).await
}

/// POSTs `body` with these signature headers (identifier, signature), if any.
pub async fn post(addr: SocketAddr, body: &str, signature: Option<(&str, &str)>) -> Answer {
    let mut headers = vec![("content-type", "application/json")];
    if let Some((id, sig)) = signature {
        headers.push(("github-public-key-identifier", id));
        headers.push(("github-public-key-signature", sig));
    }
    http(addr, Method::POST, PATH, &headers, body).await
}

/// The labels of a feedback answer, in order.
pub fn labels(answer: &Answer) -> Vec<String> {
    answer
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", answer.body))
        .iter()
        .map(|e| e["label"].as_str().unwrap().to_owned())
        .collect()
}

/// SHA-256 hex of `token`, written here from FIPS 180-4's definition by way of `sha2`.
pub fn sha256_hex(token: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}
