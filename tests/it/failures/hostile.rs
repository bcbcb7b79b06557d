//! Hostile input: property tests on every parser, over-long and malformed credentials,
//! and hostile JSON to the management API. Nothing panics; everything gets a clear answer.

use crate::common::*;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use keygate::check::parse_bearer;
use keygate::key::KeyFormat;
use keygate::key::MalformedKey;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn bearer_parsing_never_panics(value in any::<String>()) {
        if let Ok(token) = parse_bearer(&value) {
            prop_assert!(!token.is_empty());
            prop_assert!(value.contains(token));
        }
    }

    #[test]
    fn key_parsing_never_panics(value in any::<String>()) {
        let _ = KeyFormat::default().parse(&value);
    }

    #[test]
    fn generated_keys_always_parse_back(which in 0usize..3) {
        let format = KeyFormat::default();
        let prefix = &format.prefixes()[which];
        let key = format.generate(prefix).unwrap();
        let parsed = format.parse(key.expose_secret()).unwrap();
        prop_assert_eq!(parsed.prefix(), prefix);
    }

    #[test]
    fn the_checksum_catches_a_substitution(pos in 0usize..46, c in any::<char>()) {
        let format = KeyFormat::default();
        let key = format.generate(format.prefix("sk_live_").unwrap()).unwrap();
        let mut chars: Vec<char> = key.expose_secret().chars().collect();
        prop_assume!(chars[pos] != c);
        chars[pos] = c;
        let forged: String = chars.into_iter().collect();
        prop_assert!(format.parse(&forged).is_err());
    }
}

#[test]
fn the_checksum_catches_every_single_substitution_and_adjacent_swap() {
    let format = KeyFormat::default();
    let alphabet: Vec<u8> = (b'0'..=b'9')
        .chain(b'A'..=b'Z')
        .chain(b'a'..=b'z')
        .collect();
    let mut checked = 0usize;
    for round in 0..30 {
        let prefix = &format.prefixes()[round % 3];
        let key = format.generate(prefix).unwrap();
        let original = key.expose_secret().as_bytes().to_vec();
        let body_start = prefix.as_str().len();
        for pos in body_start..original.len() {
            for &c in &alphabet {
                if c == original[pos] {
                    continue;
                }
                let mut forged = original.clone();
                forged[pos] = c;
                let forged = String::from_utf8(forged).unwrap();
                assert!(
                    format.parse(&forged).is_err(),
                    "substitution at {pos} passed"
                );
                checked += 1;
            }
        }
        for pos in 0..original.len() - 1 {
            if original[pos] == original[pos + 1] {
                continue;
            }
            let mut swapped = original.clone();
            swapped.swap(pos, pos + 1);
            let swapped = String::from_utf8(swapped).unwrap();
            assert!(format.parse(&swapped).is_err(), "swap at {pos} passed");
            checked += 1;
        }
    }
    println!("checksum: {checked} single-character edits checked, all refused");
    assert!(checked > 70_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any header bytes at all: the answer is 400 or 401, and junk never reaches the store.
    #[test]
    fn arbitrary_authorization_bytes_get_400_or_401(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()); };
        let rt = runtime();
        let h = Harness::new();
        let res = rt.block_on(async {
            let req = Request::builder().uri("/").header("authorization", value).body(Full::new(Bytes::new())).unwrap();
            send(&mut h.service(), req).await
        });
        prop_assert!(res.status == 400 || res.status == 401, "status {}", res.status);
        prop_assert!(res.code() == "invalid_request" || res.code() == "invalid_api_key" || res.code() == "unauthorized");
        prop_assert_eq!(h.store.lookups(), 0);
    }
}

#[tokio::test]
async fn over_long_credentials_are_refused_with_400_before_any_lookup() {
    let h = Harness::new();
    for size in [
        keygate::check::MAX_CREDENTIAL_LEN + 1,
        64 * 1024,
        1024 * 1024,
    ] {
        let value = format!("Bearer sk_live_{}", "a".repeat(size));
        let req = Request::builder()
            .uri("/")
            .header("authorization", value)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = send(&mut h.service(), req).await;
        assert_eq!(res.status, 400, "size {size}");
        assert_eq!(res.code(), "invalid_request");
        assert!(res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too long"));
    }
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn non_ascii_and_percent_encoded_credentials_are_invalid_requests() {
    let h = Harness::new();
    let (_, key) = h.key("acct", &[]).await;
    let percent = format!("Bearer %73k_test_{}", &key[8..]);
    let cases: Vec<HeaderValue> = vec![
        HeaderValue::from_bytes(format!("Bearer {key}\u{e9}").as_bytes()).unwrap(),
        HeaderValue::from_bytes(b"Bearer sk_live_\xff\xfe").unwrap(),
        HeaderValue::from_str(&percent).unwrap(),
        HeaderValue::from_str(&format!("Bearer {key}%00")).unwrap(),
        HeaderValue::from_str(&format!("Bearer {key} trailing")).unwrap(),
    ];
    for value in cases {
        let req = Request::builder()
            .uri("/")
            .header("authorization", value.clone())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = send(&mut h.service(), req).await;
        assert_eq!(res.status, 400, "{value:?}");
        assert_eq!(res.code(), "invalid_request");
    }
    assert_eq!(h.store.lookups(), 0);
}

#[tokio::test]
async fn nul_and_control_characters_over_tcp_are_refused_without_harm() {
    let h = Harness::new();
    let (_, key) = h.key("acct", &[]).await;
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(h.gate.layer());
    let addr = serve(app).await;
    for bad in ["\0", "\x01", "\x7f", "\r"] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bad}{key}\r\nConnection: close\r\n\r\n");
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        let status_line = String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(
            status_line.starts_with("HTTP/1.1 400"),
            "{bad:?}: {status_line}"
        );
    }
    let ok = http(
        addr,
        http::Method::GET,
        "/",
        &[("authorization", &bearer(&key))],
        "",
    )
    .await;
    assert_eq!(ok.status, 200, "the server still serves");
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ".{0,80}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("10.0.0.0/8")),
        Just(serde_json::Value::from("admin")),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("scopes".to_owned()),
                    Just("ips".to_owned()),
                    Just("expires_at".to_owned()),
                    Just("rate_limit".to_owned()),
                    Just("metadata".to_owned()),
                    Just("environment".to_owned()),
                    Just("prefix".to_owned()),
                    Just("grace_seconds".to_owned()),
                    Just("per_second".to_owned()),
                    Just("burst".to_owned()),
                    Just("disabled".to_owned()),
                    ".{0,12}",
                ],
                inner,
                0..8,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Hostile JSON to create, update and roll: never a 5xx, never a panic, and a refused
    /// write changes nothing.
    #[test]
    fn management_json_input_never_panics_or_half_writes(body in json_value(), raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        let rt = runtime();
        rt.block_on(async {
            let h = Harness::new();
            let (id, admin) = h.key("acct", &["admin"]).await;
            let app = keygate::admin::router(h.manager.clone());
            let before = h.manager.get(&"acct".into(), &id).await.unwrap();
            for (method, path, payload) in [
                ("POST", "/v1/api-keys".to_owned(), body.to_string().into_bytes()),
                ("PATCH", format!("/v1/api-keys/{id}"), body.to_string().into_bytes()),
                ("POST", format!("/v1/api-keys/{id}/roll"), raw.clone()),
                ("POST", "/v1/api-keys".to_owned(), raw.clone()),
            ] {
                let req = Request::builder()
                    .method(method)
                    .uri(&path)
                    .header("authorization", bearer(&admin))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(payload))
                    .unwrap();
                let res = app.clone().oneshot(req).await.unwrap();
                let status = res.status().as_u16();
                assert!(status < 500, "{method} {path} gave {status}");
                if status == 400 && method == "PATCH" {
                    let after = h.manager.get(&"acct".into(), &id).await.unwrap();
                    assert_eq!(after, before, "a refused update changed the key");
                }
                if path.ends_with("/roll") && status == 200 {
                    // The admin key was rolled: nothing else to check with it.
                    break;
                }
            }
        });
    }
}

#[test]
fn malformed_key_reasons_are_distinguished() {
    let format = KeyFormat::default();
    assert_eq!(
        format.parse("xx_abc").unwrap_err(),
        MalformedKey::UnknownPrefix
    );
    assert_eq!(
        format.parse("sk_live_abc").unwrap_err(),
        MalformedKey::Length
    );
    let forty_four = format!("sk_live_{}", "-".repeat(38));
    assert_eq!(
        format.parse(&forty_four).unwrap_err(),
        MalformedKey::Charset
    );
}

#[tokio::test]
async fn a_flood_of_unknown_keys_is_bounded_and_never_evicts_real_keys() {
    let h =
        Harness::with(|b| b.cache(keygate::gate::CacheConfig::default().max_negative_entries(500)));
    let (_, key) = h.key("acct", &[]).await;
    let mut svc = h.service();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    let format = KeyFormat::default();
    let prefix = format.prefix("sk_test_").unwrap().clone();
    for _ in 0..5_000 {
        let junk = format.generate(&prefix).unwrap();
        let res = send(&mut svc, get("/", Some(junk.expose_secret()))).await;
        assert_eq!(res.code(), "invalid_api_key");
    }
    h.gate.run_maintenance();
    let stats = h.gate.stats();
    assert!(stats.cached_unknown <= 500, "{stats:?}");
    assert_eq!(stats.cached_entries, 1);
    let lookups = h.store.lookups();
    assert_eq!(send(&mut svc, get("/", Some(&key))).await.status, 200);
    assert_eq!(h.store.lookups(), lookups, "the real key is still cached");
}
