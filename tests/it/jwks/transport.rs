//! TLS trust, plain http, and configuration mistakes.

use keygate::credential::jwt::{JwksConfigError, JwtConfigError, JwtKey};

use super::support::tokens::{jwks, secs, SigningKey};
use super::support::{Answer, Issuer, TestCa};
use super::*;

use SigningKey::Ed25519;

#[tokio::test]
async fn plain_http_is_refused_unless_allowed_for_development() {
    let issuer = Issuer::plain(Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 60);
    let refused = JwksSource::builder(&issuer.url).build();
    assert_eq!(refused.unwrap_err(), JwksConfigError::PlainHttp);

    let s = Setup::new(JwksSource::builder(&issuer.url).allow_plain_http_for_development());
    assert_eq!(s.verify(Ed25519, "k1").await.unwrap(), "user_1");
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn an_issuer_whose_certificate_is_not_from_a_trusted_ca_is_refused() {
    let trusted = TestCa::new("keygate test CA");
    let other = TestCa::new("another CA");
    let issuer = Issuer::tls(&other, Answer::Hang).await;
    issuer.serve(&jwks(&[(Ed25519, "k1")]), 60);

    let s = Setup::new(source(&issuer, &trusted));
    assert!(is_unavailable(&s.verify(Ed25519, "k1").await));
    // The system's roots do not know the test CA either.
    let s = Setup::new(JwksSource::builder(&issuer.url));
    assert!(is_unavailable(&s.verify(Ed25519, "k1").await));
    assert_eq!(
        issuer.fetches(),
        0,
        "no request is sent before the handshake"
    );

    // The same server, trusted: it was only the certificate.
    let s = Setup::new(source(&issuer, &other));
    s.verify(Ed25519, "k1").await.unwrap();
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn configuration_mistakes_are_refused_when_built() {
    let url = "https://auth.example.com/.well-known/jwks.json";
    let bad_pem = JwksSource::builder(url).root_certificates_pem("not a certificate");
    assert!(matches!(
        bad_pem.build(),
        Err(JwksConfigError::InvalidRootCertificates(_))
    ));
    let bounds = JwksSource::builder(url)
        .min_lifetime(secs(600))
        .max_lifetime(secs(60))
        .build();
    assert!(matches!(
        bounds,
        Err(JwksConfigError::LifetimeBounds { .. })
    ));
    for bad in [
        "ftp://auth.example.com/jwks",
        "https://user:pw@auth.example.com/jwks",
        "/jwks",
    ] {
        let built = JwksSource::builder(bad).build();
        assert!(
            matches!(built, Err(JwksConfigError::InvalidUrl(_))),
            "{bad}"
        );
    }

    let pem = "-----BEGIN PUBLIC KEY-----\n\
               MCowBQYDK2VwAyEA8OOLKldapI6Ti63boo2whYFkQOvfWuiPS0hTlPsnTpc=\n\
               -----END PUBLIC KEY-----\n";
    let key = JwtKey::ed25519_pem(pem.as_bytes()).unwrap();
    let both = JwtVerifier::builder()
        .key(key.clone())
        .jwks(JwksSource::builder(url).build().unwrap())
        .build();
    assert_eq!(both.unwrap_err(), JwtConfigError::KeysFromJwks);
    let from_jwks = JwtVerifier::builder()
        .jwks(JwksSource::builder(url).build().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        from_jwks.replace_keys(vec![key]),
        Err(JwtConfigError::KeysFromJwks)
    );
}
