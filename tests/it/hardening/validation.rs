//! Validation: any RFC 3339 offset for `expires_at`; invisible or bidi-control names.

use crate::common::*;
use crate::hardening::support::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Defect 8: valid input refused, invalid input accepted.

#[tokio::test]
async fn validation_expires_at_accepts_any_rfc3339_offset_and_normalises_to_utc() {
    let api = Api::new(Harness::new()).await;
    let (_, admin) = api.h.key("acct_1", &["admin"]).await;
    let cases = [
        ("2099-01-01T00:00:00+14:00", "2098-12-31T10:00:00.000Z"),
        ("2099-01-01T00:00:00-12:00", "2099-01-01T12:00:00.000Z"),
        ("2099-06-30T23:59:59.5+05:30", "2099-06-30T18:29:59.500Z"),
        ("2099-01-01t00:00:00z", "2099-01-01T00:00:00.000Z"),
        ("2099-01-01T00:00:00Z", "2099-01-01T00:00:00.000Z"),
    ];
    for (sent, stored) in cases {
        let a = api
            .post(
                "/v1/api-keys",
                &admin,
                json!({"name": "k", "expires_at": sent}),
            )
            .await;
        assert_eq!(a.status, 201, "{sent}: {}", a.body);
        assert_eq!(a.json()["expires_at"], stored, "{sent}");
        let id = a.json()["id"].as_str().unwrap().to_owned();
        let a = api
            .patch(&key_path(&id), &admin, json!({"expires_at": sent}))
            .await;
        assert_eq!(a.status, 200, "{sent}: {}", a.body);
        assert_eq!(a.json()["expires_at"], stored, "{sent}");
    }
    for bad in [
        "2099-01-01T00:00:00",
        "2099-01-01T00:00:00+1400",
        "2099-02-30T00:00:00Z",
        "2099-01-01T00:00:00+24:00",
        "tomorrow",
    ] {
        let a = api
            .post(
                "/v1/api-keys",
                &admin,
                json!({"name": "k", "expires_at": bad}),
            )
            .await;
        assert_error_on(&a, 400, "invalid_request", "expires_at");
    }
}

#[tokio::test]
async fn validation_names_of_invisible_or_bidi_control_characters_are_refused() {
    let api = Api::new(Harness::new()).await;
    let (admin_id, admin) = api.h.key("acct_1", &["admin"]).await;
    let bad = [
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}",
        "\u{FEFF}\u{2060}",
        " \u{200B}\u{3000}",
        "invoice\u{202E}fdp.exe",
        "\u{2066}admin\u{2069}",
        "\u{200F}key",
        "tab\there",
        "bell\u{7}",
    ];
    for name in bad {
        let a = api
            .post("/v1/api-keys", &admin, json!({"name": name}))
            .await;
        assert_error_on(&a, 400, "invalid_request", "name");
        let a = api
            .patch(&key_path(admin_id.as_str()), &admin, json!({"name": name}))
            .await;
        assert_error_on(&a, 400, "invalid_request", "name");
    }
    for good in ["CI key", "clé", "👩\u{200D}💻 laptop", "ключ"] {
        let a = api
            .post("/v1/api-keys", &admin, json!({"name": good}))
            .await;
        assert_eq!(a.status, 201, "{good:?}: {}", a.body);
    }
}
