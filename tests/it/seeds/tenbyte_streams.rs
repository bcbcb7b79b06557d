//! Conformance with the Tenbyte live-stream seed (`shared/seeds/004_*.txt`), against
//! `examples/stream_keys.rs` served over real HTTP: `POST
//! /v1/livestream/streams/{streamId}/reset-key` with an RSA-signed JWT bearer answers
//! with every documented field, a new `stream_key`, and the old stream key stops working
//! at once.
//!
//! The seed documents the success response only. Refusals use the example's envelope
//! (`{"success":false,"message":…,"code":…}`), the seed's `success`/`message` pair.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http::Method;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use crate::common::jwt_support::{sign, EC_PRIVATE, RSA_OTHER_PRIVATE, RSA_PRIVATE};
use crate::common::*;
use crate::seeds::stream_keys_example::{Tenbyte, AUDIENCE, ISSUER, JWT_PUBLIC_KEY, RESET_SCOPE};

/// The JSON type of each documented field of the response, by path (`[]` for the first
/// element of an array). `date-time` is an RFC 3339 string.
const DOCUMENTED: &[(&str, &str)] = &[
    ("success", "boolean"),
    ("message", "string"),
    ("data", "object"),
    ("data.id", "string"),
    ("data.organization_id", "string"),
    ("data.name", "string"),
    ("data.region", "string"),
    ("data.stream_key", "string"),
    ("data.ingest", "object"),
    ("data.ingest.protocols", "array"),
    ("data.ingest.rtmp", "string"),
    ("data.ingest.srt", "string"),
    ("data.ingest.primary", "object"),
    ("data.ingest.primary.url", "string"),
    ("data.ingest.backup", "object"),
    ("data.ingest.backup.url", "string"),
    ("data.output_protocols", "array"),
    ("data.packaging", "object"),
    ("data.packaging.hls", "object"),
    ("data.packaging.hls.playlist_size", "number"),
    ("data.packaging.hls.preserved_segments", "number"),
    ("data.packaging.hls.low_latency", "boolean"),
    ("data.packaging.dash", "object"),
    ("data.packaging.dash.window_s", "number"),
    ("data.packaging.dash.min_buffer_s", "number"),
    ("data.ladder", "object"),
    ("data.ladder.video", "array"),
    ("data.ladder.video.[].name", "string"),
    ("data.ladder.video.[].width", "number"),
    ("data.ladder.video.[].height", "number"),
    ("data.ladder.video.[].fps", "number"),
    ("data.ladder.video.[].gop", "number"),
    ("data.ladder.video.[].bitrate_kbps", "number"),
    ("data.ladder.video.[].max_bitrate_kbps", "number"),
    ("data.ladder.video.[].buf_size_kbps", "number"),
    ("data.ladder.video.[].crf", "number"),
    ("data.ladder.video.[].preset", "string"),
    ("data.ladder.video.[].profile", "string"),
    ("data.ladder.video.[].level", "string"),
    ("data.ladder.video.[].bframes", "number"),
    ("data.ladder.video.[].ref_frames", "number"),
    ("data.ladder.video.[].rc_lookahead", "number"),
    ("data.ladder.video.[].audio", "object"),
    ("data.ladder.video.[].audio.channels", "number"),
    ("data.ladder.video.[].audio.sample_rate_hz", "number"),
    ("data.ladder.video.[].audio.audio_bitrate_kbps", "number"),
    ("data.ladder.audio", "array"),
    ("data.ladder.audio.[].name", "string"),
    ("data.ladder.audio.[].channels", "number"),
    ("data.ladder.audio.[].sample_rate_hz", "number"),
    ("data.ladder.audio.[].bitrate_kbps", "number"),
    ("data.playback", "object"),
    ("data.playback.hls", "string"),
    ("data.playback.dash", "string"),
    ("data.recording", "object"),
    ("data.recording.enabled", "boolean"),
    ("data.recording.library_id", "string"),
    ("data.recording.folder_id", "string"),
    ("data.recording.prefix", "string"),
    ("data.recording.s3_config", "object"),
    ("data.webhook_url", "string"),
    ("data.meta", "object"),
    // The seed's example shows a time; a stream that has never ended has none yet.
    ("data.last_live_at", "date-time"),
    ("data.last_ended_at", "date-time or null"),
    ("data.created_at", "date-time"),
    ("data.updated_at", "date-time"),
];

fn at_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, part| match part {
        "[]" => v.as_array()?.first(),
        name => v.get(name),
    })
}

fn is_date_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| humantime::parse_rfc3339(s).is_ok() && s.ends_with('Z'))
}

fn has_type(v: &Value, ty: &str) -> bool {
    match ty {
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "date-time" => is_date_time(v),
        "date-time or null" => v.is_null() || is_date_time(v),
        other => panic!("unknown type {other}"),
    }
}

/// A JWT for `organization_id` with `scope`, valid for an hour, signed by `private_pem`
/// with `alg`.
fn jwt_with(alg: Algorithm, private_pem: &str, organization_id: &str, scope: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user_1", "organization_id": organization_id,
        "scope": scope, "iat": now, "exp": now + 3600,
    });
    sign(alg, private_pem, None, &claims)
}

fn jwt(organization_id: &str) -> String {
    jwt_with(Algorithm::RS256, RSA_PRIVATE, organization_id, RESET_SCOPE)
}

struct Service {
    addr: SocketAddr,
}

impl Service {
    async fn start() -> (Self, Tenbyte) {
        let app = Tenbyte::new(keygate::clock::Clock::system(), JWT_PUBLIC_KEY);
        let addr = serve(app.router()).await;
        (Self { addr }, app)
    }

    async fn post(&self, path: &str, bearer_token: Option<&str>) -> Answer {
        let auth = bearer_token.map(bearer);
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        http(self.addr, Method::POST, path, &headers, "").await
    }

    async fn reset(&self, stream_id: &str, token: &str) -> Answer {
        let path = format!("/v1/livestream/streams/{stream_id}/reset-key");
        self.post(&path, Some(token)).await
    }

    async fn ingest(&self, stream_key: &str) -> Answer {
        self.post("/v1/livestream/ingest", Some(stream_key)).await
    }
}

#[tokio::test]
async fn reset_key_answers_every_documented_field() {
    let (svc, app) = Service::start().await;
    let (stream_id, old_key) = app.create_stream("org_1", "Keynote").await;
    assert_eq!(svc.ingest(&old_key).await.status, 200);
    let answer = svc.reset(&stream_id, &jwt("org_1")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    for (path, ty) in DOCUMENTED {
        let value = at_path(&body, path).unwrap_or_else(|| panic!("{path} missing: {body}"));
        assert!(has_type(value, ty), "{path} is not {ty}: {value}");
    }
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["id"], stream_id.as_str());
    assert_eq!(body["data"]["organization_id"], "org_1");
    assert_eq!(body["data"]["name"], "Keynote");
    let new_key = body["data"]["stream_key"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert!(app.gate.format().parse(new_key).is_ok(), "a keygate key");
}

#[tokio::test]
async fn the_old_stream_key_stops_at_once_and_the_new_one_works() {
    let (svc, app) = Service::start().await;
    let (stream_id, old_key) = app.create_stream("org_1", "Keynote").await;
    // Cached by the ingest route before the reset.
    for _ in 0..2 {
        let ok = svc.ingest(&old_key).await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.json()["stream_id"], stream_id.as_str());
    }
    let reset = svc.reset(&stream_id, &jwt("org_1")).await;
    let new_key = reset.json()["data"]["stream_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = svc.ingest(&old_key).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.json()["success"], false);
    let ok = svc.ingest(&new_key).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["stream_id"], stream_id.as_str());
    // Resetting again retires the second key too.
    let again = svc.reset(&stream_id, &jwt("org_1")).await;
    assert_eq!(again.status, 200);
    assert_eq!(svc.ingest(&new_key).await.status, 401);
}

#[tokio::test]
async fn only_an_rsa_signed_jwt_of_the_streams_organisation_resets_its_key() {
    let (svc, app) = Service::start().await;
    let (stream_id, key) = app.create_stream("org_1", "Keynote").await;
    let refusals = [
        (None, 401, "unauthorized"),
        (Some("not-a-jwt".to_owned()), 401, "invalid_token"),
        (
            Some(jwt_with(
                Algorithm::RS256,
                RSA_OTHER_PRIVATE,
                "org_1",
                RESET_SCOPE,
            )),
            401,
            "invalid_token",
        ),
        (
            Some(jwt_with(Algorithm::ES256, EC_PRIVATE, "org_1", RESET_SCOPE)),
            401,
            "invalid_token",
        ),
        (
            Some(jwt_with(
                Algorithm::RS256,
                RSA_PRIVATE,
                "org_1",
                "livestream:read",
            )),
            403,
            "insufficient_scope",
        ),
        // The stream key itself may ingest, not reset.
        (Some(key.clone()), 403, "insufficient_scope"),
        (Some(jwt("org_2")), 404, "not_found"),
    ];
    let path = format!("/v1/livestream/streams/{stream_id}/reset-key");
    for (token, status, code) in refusals {
        let answer = svc.post(&path, token.as_deref()).await;
        assert_eq!(answer.status, status, "{token:?}: {}", answer.body);
        let body = answer.json();
        assert_eq!(
            (&body["success"], &body["code"]),
            (&json!(false), &json!(code))
        );
        assert!(body["message"].is_string());
    }
    let unknown = svc.reset("str_404", &jwt("org_1")).await;
    assert_eq!(unknown.status, 404);
    // None of them changed the key.
    assert_eq!(svc.ingest(&key).await.status, 200);
}
