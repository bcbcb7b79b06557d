//! Limiter namespaces over HTTP: key ids, account ids and verified credentials' subjects
//! name buckets in separate namespaces, so that no id one tenant chooses (an imported
//! key's id, a token's subject, an account id) draws on another tenant's bucket. Time
//! stands still on the manual clock: no token comes back during a test.

use crate::common::*;
use keygate::credential::{BearerCredential, CredentialError, Principal};
use keygate::key::KeyFormat;
use keygate::manage::ImportedKey;
use keygate::ratelimit::{RateLimitConfig, RateLimitKey};
use keygate::store::{AccountId, KeyId, RateLimit};
use keygate::{Environment, NewKey};

/// One token a second, five at once: the quota of every bucket here.
const QUOTA: RateLimit = RateLimit::new(1, 5);

fn per_account() -> RateLimitConfig {
    RateLimitConfig::default()
        .default_quota(Some(QUOTA))
        .key(RateLimitKey::PerAccount)
}

/// A fresh key of the default format, for an import.
fn plaintext() -> String {
    let format = KeyFormat::default();
    let prefix = format.prefix_for(Some(Environment::Live)).unwrap();
    format.generate(prefix).unwrap().expose_secret().to_owned()
}

#[tokio::test]
async fn an_imported_key_named_like_another_account_does_not_draw_from_its_bucket() {
    let h = Harness::with(|b| b.rate_limits(per_account()));
    let (_, victim) = h.key("acct_victim", &[]).await;
    // Another tenant imports a key whose id is the victim's account id, with a quota
    // equal to the deployment's, so that both buckets are in the same tier.
    let own = plaintext();
    h.manager
        .import(
            AccountId::from("acct_other"),
            ImportedKey::plaintext("named like an account", own.clone())
                .id(KeyId::new("acct_victim"))
                .rate_limit(QUOTA),
        )
        .await
        .unwrap();
    let mut svc = h.service();
    for n in 1..=5 {
        let a = send(&mut svc, get("/", Some(&own))).await;
        assert_eq!(a.status, 200, "request {n} with the imported key");
    }
    assert_eq!(
        send(&mut svc, get("/", Some(&own))).await.status,
        429,
        "the imported key has spent its own quota"
    );
    let first = send(&mut svc, get("/", Some(&victim))).await;
    assert_eq!(
        first.status, 200,
        "the victim account's first request draws from its own, full bucket: {}",
        first.body
    );
    assert_eq!(first.header("x-ratelimit-remaining"), Some("4"));
}

#[tokio::test]
async fn a_subject_equal_to_a_key_id_or_account_id_shares_no_bucket_with_them() {
    let h = Harness::with(|b| {
        b.rate_limits(per_account()).credential_verifier(
            |credential: BearerCredential| async move {
                match credential.expose_secret().strip_prefix("token-") {
                    Some(subject) => {
                        Ok(Principal::new(subject.into(), "acct_ext".into()).rate_limit(QUOTA))
                    }
                    None => Err(CredentialError::refused("Unknown session token")),
                }
            },
        )
    });
    // A key with a bucket of its own, and an account named like the subject's bucket
    // used to be.
    let (key_id, key) = h
        .key_with("acct_keys", NewKey::named("own quota").rate_limit(QUOTA))
        .await;
    let (_, neighbour) = h.key(&format!("external:{key_id}"), &[]).await;
    let token = format!("token-{key_id}");
    let mut svc = h.service();
    for n in 1..=5 {
        let a = send(&mut svc, get("/", Some(&token))).await;
        assert_eq!(a.status, 200, "request {n} with the token: {}", a.body);
    }
    assert_eq!(send(&mut svc, get("/", Some(&token))).await.status, 429);
    for (what, credential) in [("the key", &key), ("the account", &neighbour)] {
        let a = send(&mut svc, get("/", Some(credential))).await;
        assert_eq!(a.status, 200, "{what} has a full bucket of its own");
        assert_eq!(a.header("x-ratelimit-remaining"), Some("4"), "{what}");
    }
}
