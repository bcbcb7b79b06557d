//! Caching for the document's lifetime, rotation, removal, and unknown-kid storms.

use futures_util::future::join_all;

use super::support::tokens::{jwks, secs, SigningKey};
use super::support::{Answer, Issuer, TestCa};
use super::*;

use SigningKey::{Ed25519, P256};

#[tokio::test]
async fn a_token_verifies_with_a_key_fetched_over_tls_and_the_document_is_cached() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1"), (P256, "k2")]), 300);
    let s = Setup::new(source(&issuer, &ca));

    assert_eq!(s.verify(Ed25519, "k1").await.unwrap(), "user_1");
    assert_eq!(s.verify(P256, "k2").await.unwrap(), "user_1");
    s.time.advance(secs(299));
    assert_eq!(s.verify(Ed25519, "k1").await.unwrap(), "user_1");
    assert_eq!(
        issuer.fetches(),
        1,
        "one fetch serves the document's lifetime"
    );
    // A token signed by another key than its kid names is still refused.
    assert_eq!(
        s.verify(P256, "k1").await,
        refused("The token's signing algorithm is not accepted")
    );
}

#[tokio::test]
async fn a_rotated_in_kid_verifies_after_one_refetch_once_the_interval_has_passed() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 300);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();

    issuer.serve(&jwks(&[(Ed25519, "k1"), (P256, "k2")]), 300);
    // Within the refetch interval of the last fetch, an unknown kid fetches nothing.
    assert_eq!(s.verify(P256, "k2").await, refused(UNKNOWN_KID));
    assert_eq!(issuer.fetches(), 1);

    s.time.advance(secs(10));
    assert_eq!(s.verify(P256, "k2").await.unwrap(), "user_1");
    assert_eq!(issuer.fetches(), 2, "one refetch for the unknown kid");
    s.verify(Ed25519, "k1").await.unwrap();
    s.verify(P256, "k2").await.unwrap();
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn a_kid_removed_from_the_jwks_stops_verifying_after_the_next_refresh() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1"), (P256, "k2")]), 120);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();

    issuer.serve(&jwks(&[(P256, "k2")]), 120);
    s.time.advance(secs(119));
    assert!(
        s.verify(Ed25519, "k1").await.is_ok(),
        "still within max-age"
    );
    assert_eq!(issuer.fetches(), 1);

    s.time.advance(secs(1));
    assert_eq!(s.verify(Ed25519, "k1").await, refused(UNKNOWN_KID));
    assert_eq!(issuer.fetches(), 2, "the lifetime ended: one refresh");
    s.verify(P256, "k2").await.unwrap();
    // Once the interval allows, the removed kid is looked up again, and stays refused.
    s.time.advance(secs(10));
    assert_eq!(s.verify(Ed25519, "k1").await, refused(UNKNOWN_KID));
    assert_eq!(issuer.fetches(), 3);
}

#[tokio::test]
async fn the_lifetime_is_max_age_clamped_between_the_floor_and_the_ceiling() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 5);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();

    // max-age=5 is raised to the 60 s floor.
    s.time.advance(secs(59));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 1);
    s.time.advance(secs(1));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 2);

    // max-age of a day is cut to the 600 s ceiling.
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 86_400);
    s.time.advance(secs(60));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 3);
    s.time.advance(secs(599));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 3);
    s.time.advance(secs(1));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 4);

    // No Cache-Control at all: the floor.
    issuer.answer(Answer::Jwks {
        body: jwks(&[(Ed25519, "k1")]).to_string(),
        cache_control: None,
    });
    s.time.advance(secs(600));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 5);
    s.time.advance(secs(59));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 5);
    s.time.advance(secs(1));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 6);
}

#[tokio::test]
async fn an_unknown_kid_storm_fetches_at_most_once_per_interval_and_shares_the_fetch() {
    let ca = TestCa::new("keygate test CA");
    let issuer = Issuer::tls(&ca, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 600);
    let s = Setup::new(source(&issuer, &ca));
    s.verify(Ed25519, "k1").await.unwrap();
    issuer.serve(&jwks(&[(Ed25519, "k1"), (P256, "k2")]), 600);
    s.time.advance(secs(10));

    // 200 tokens with made-up kids and 20 with the rotated-in k2, all at once: they
    // share one fetch, the k2 tokens verify with it, the others are refused. (On the
    // test's single-threaded runtime every token has asked before the fetch task
    // runs, so a k2 token that did not wait for the shared fetch would be refused.)
    let storm = (0..220).map(|i| {
        let s = &s;
        async move {
            if i % 11 == 0 {
                (true, s.verify(P256, "k2").await)
            } else {
                (false, s.verify(Ed25519, &random_kid()).await)
            }
        }
    });
    for (rotated, result) in join_all(storm).await {
        if rotated {
            assert_eq!(result.unwrap(), "user_1");
        } else {
            assert_eq!(result, refused(UNKNOWN_KID));
        }
    }
    assert_eq!(issuer.fetches(), 2, "one fetch for the whole storm");

    // More made-up kids within the interval fetch nothing at all.
    for _ in 0..100 {
        assert_eq!(s.verify(Ed25519, &random_kid()).await, refused(UNKNOWN_KID));
    }
    assert_eq!(issuer.fetches(), 2);

    // Over a minute of storms, one fetch per 10 s at most.
    for _ in 0..6 {
        s.time.advance(secs(10));
        let storm = (0..50).map(|_| async { s.verify(Ed25519, &random_kid()).await });
        assert!(join_all(storm)
            .await
            .into_iter()
            .all(|r| r == refused(UNKNOWN_KID)));
    }
    assert_eq!(issuer.fetches(), 8);
    s.verify(Ed25519, "k1").await.unwrap();
}
