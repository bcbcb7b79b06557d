//! Tenbyte's live-stream key reset on keygate: a JWT route and API-key
//! stream keys behind one gate.
//!
//! ```text
//! cargo run --example stream_keys [-- 127.0.0.1:3004]
//! ```
//!
//! - `POST /v1/livestream/streams/{streamId}/reset-key` takes an RSA-signed JWT bearer
//!   (RS256, checked by keygate's `JwtVerifier`) with the `livestream:write` scope, for
//!   the stream's organisation (`organization_id` claim). It rolls the stream key with no
//!   grace period through `KeyManager::roll` and answers with the seed's response
//!   shape, the new secret in `data.stream_key`. The old stream key stops working at once.
//! - `POST /v1/livestream/ingest` stands in for the RTMP/SRT ingest handshake: it takes
//!   the stream key as the bearer (a keygate key with the `ingest` scope) and names the
//!   stream it belongs to.
//!
//! At start-up it creates one stream and prints its id, its stream key and a JWT for its
//! organisation, signed with the test-only key in `tests/fixtures/jwt/`. Then:
//!
//! ```text
//! curl -X POST -H "Authorization: Bearer $STREAM_KEY" http://127.0.0.1:3004/v1/livestream/ingest
//! curl -X POST -H "Authorization: Bearer $JWT" \
//!      http://127.0.0.1:3004/v1/livestream/streams/$STREAM_ID/reset-key
//! curl -X POST -H "Authorization: Bearer $STREAM_KEY" http://127.0.0.1:3004/v1/livestream/ingest  # 401 now
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use keygate::clock::Clock;
use keygate::credential::jwt::{JwtKey, JwtVerifier};
use keygate::refusal::Refusal;
use keygate::store::KeyId;
use keygate::{Environment, Identity, KeyManager, Keygate, MemoryStore, NewKey};
use serde_json::{json, Value};

/// The public half of the identity provider's RSA signing key (test-only).
pub const JWT_PUBLIC_KEY: &str = include_str!("../tests/fixtures/jwt/rsa_public.pem");
/// Who issues the JWTs, and for whom.
pub const ISSUER: &str = "https://auth.tenbyte.io/";
pub const AUDIENCE: &str = "https://api.tenbyte.io";
/// The scope a JWT needs to reset a stream key.
pub const RESET_SCOPE: &str = "livestream:write";

/// One live stream. Its key is a keygate key; only its id is kept here.
#[derive(Clone)]
struct Stream {
    id: String,
    organization_id: String,
    name: String,
    region: String,
    key_id: KeyId,
    created_at: SystemTime,
    updated_at: SystemTime,
    last_live_at: Option<SystemTime>,
    last_ended_at: Option<SystemTime>,
}

/// The stream service: keygate's core and manager, and the streams.
#[derive(Clone)]
pub struct Tenbyte {
    pub gate: Keygate,
    pub manager: KeyManager,
    streams: Arc<Mutex<HashMap<String, Stream>>>,
}

impl Tenbyte {
    /// The service on `clock`, trusting JWTs signed by `jwt_public_key` (PEM).
    pub fn new(clock: Clock, jwt_public_key: &str) -> Self {
        let jwt = JwtVerifier::builder()
            .key(JwtKey::rs256_pem(jwt_public_key.as_bytes()).expect("an RSA public key"))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .account_claim("organization_id")
            .build()
            .expect("a valid verifier");
        let (gate, manager) = Keygate::managed(MemoryStore::new())
            .clock(clock)
            .credential_verifier(jwt)
            .renderer(|r: &Refusal<'_>| {
                envelope_error(r.error.status(), &r.error.message(), r.error.code())
            })
            .build();
        Self {
            gate,
            manager,
            streams: Arc::default(),
        }
    }

    /// Creates a stream for `organization_id`; returns its id and its stream key.
    pub async fn create_stream(&self, organization_id: &str, name: &str) -> (String, String) {
        let id = format!("str_{}", self.streams.lock().unwrap().len() + 1);
        let mut metadata = serde_json::Map::new();
        metadata.insert("stream_id".into(), json!(id));
        let created = self
            .manager
            .create(
                organization_id.into(),
                NewKey::named(format!("stream key of {id}"))
                    .environment(Environment::Live)
                    .scopes(["ingest"])
                    .metadata(metadata),
            )
            .await
            .expect("stream key created");
        let now = self.gate.clock().now();
        let stream = Stream {
            id: id.clone(),
            organization_id: organization_id.to_owned(),
            name: name.to_owned(),
            region: "eu-central".into(),
            key_id: created.view.id.clone(),
            created_at: now,
            updated_at: now,
            last_live_at: None,
            last_ended_at: None,
        };
        self.streams.lock().unwrap().insert(id.clone(), stream);
        (id, created.key.expose_secret().to_owned())
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        let reset = post(reset_key).route_layer(self.gate.layer().require_any([RESET_SCOPE]));
        let ingest = post(ingest).route_layer(self.gate.layer().require_any(["ingest"]));
        Router::new()
            .route("/v1/livestream/streams/{stream_id}/reset-key", reset)
            .route("/v1/livestream/ingest", ingest)
            .with_state(self.clone())
    }
}

/// Tenbyte's envelope for failures: `{"success":false,"message":…,"code":…}`.
fn envelope_error(status: StatusCode, message: &str, code: &str) -> http::Response<Bytes> {
    let body = json!({ "success": false, "message": message, "code": code });
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("a valid response")
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `POST /v1/livestream/streams/{streamId}/reset-key`.
async fn reset_key(
    State(app): State<Tenbyte>,
    Path(stream_id): Path<String>,
    caller: Identity,
) -> (StatusCode, Json<Value>) {
    let not_found = || {
        let body = json!({ "success": false, "message": "Stream not found", "code": "not_found" });
        (StatusCode::NOT_FOUND, Json(body))
    };
    let found = app.streams.lock().unwrap().get(&stream_id).cloned();
    let Some(mut stream) = found.filter(|s| s.organization_id == caller.account_id().as_str())
    else {
        return not_found();
    };
    // No grace period: the old key is refused from the next request on, on every copy
    // of the cache this gate holds.
    let rolled = match app
        .manager
        .roll(caller.account_id(), &stream.key_id, None)
        .await
    {
        Ok(rolled) => rolled,
        Err(keygate::ManageError::NotFound) => return not_found(),
        Err(e) => {
            let body = json!({ "success": false, "message": e.to_string(), "code": "unavailable" });
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
        }
    };
    stream.updated_at = app.gate.clock().now();
    app.streams
        .lock()
        .unwrap()
        .insert(stream.id.clone(), stream.clone());
    let body = json!({
        "success": true,
        "message": "Stream key reset",
        "data": stream_json(&stream, rolled.key.expose_secret()),
    });
    (StatusCode::OK, Json(body))
}

/// The seed's `data` object for `stream`, with its new `stream_key`.
fn stream_json(stream: &Stream, stream_key: &str) -> Value {
    let ingest_host = format!("ingest-{}.tenbyte.io", stream.region);
    json!({
        "id": stream.id,
        "organization_id": stream.organization_id,
        "name": stream.name,
        "region": stream.region,
        "stream_key": stream_key,
        "ingest": {
            "protocols": ["rtmp", "srt"],
            "rtmp": format!("rtmp://{ingest_host}/live"),
            "srt": format!("srt://{ingest_host}:9000"),
            "primary": { "url": format!("rtmp://{ingest_host}/live") },
            "backup": { "url": format!("rtmp://backup-{ingest_host}/live") }
        },
        "output_protocols": ["hls", "dash"],
        "packaging": {
            "hls": { "playlist_size": 6, "preserved_segments": 12, "low_latency": false },
            "dash": { "window_s": 30, "min_buffer_s": 4 }
        },
        "ladder": {
            "video": [{
                "name": "1080p", "width": 1920, "height": 1080, "fps": 30, "gop": 60,
                "bitrate_kbps": 6000, "max_bitrate_kbps": 6500, "buf_size_kbps": 12000,
                "crf": 23, "preset": "veryfast", "profile": "high", "level": "4.1",
                "bframes": 2, "ref_frames": 3, "rc_lookahead": 20,
                "audio": { "channels": 2, "sample_rate_hz": 48000, "audio_bitrate_kbps": 128 }
            }],
            "audio": [{ "name": "aac-128", "channels": 2, "sample_rate_hz": 48000, "bitrate_kbps": 128 }]
        },
        "playback": {
            "hls": format!("https://play.tenbyte.io/{}/index.m3u8", stream.id),
            "dash": format!("https://play.tenbyte.io/{}/manifest.mpd", stream.id)
        },
        "recording": {
            "enabled": false, "library_id": "", "folder_id": "", "prefix": "", "s3_config": {}
        },
        "webhook_url": "",
        "meta": {},
        // `null` until the stream has been live (and has ended).
        "last_live_at": stream.last_live_at.map(rfc3339),
        "last_ended_at": stream.last_ended_at.map(rfc3339),
        "created_at": rfc3339(stream.created_at),
        "updated_at": rfc3339(stream.updated_at),
    })
}

/// `POST /v1/livestream/ingest`: the stand-in for the ingest handshake, which marks the
/// stream live.
async fn ingest(State(app): State<Tenbyte>, caller: Identity) -> Json<Value> {
    let stream_id = caller.metadata()["stream_id"].as_str().unwrap_or_default();
    let now = app.gate.clock().now();
    if let Some(stream) = app.streams.lock().unwrap().get_mut(stream_id) {
        stream.last_live_at = Some(now);
    }
    Json(json!({ "success": true, "stream_id": stream_id }))
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3004".into());
    let app = Tenbyte::new(Clock::system(), JWT_PUBLIC_KEY);
    let (stream_id, stream_key) = app.create_stream("org_demo", "Launch keynote").await;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user_demo", "organization_id": "org_demo",
        "scope": RESET_SCOPE, "iat": now, "exp": now + 3600,
    });
    let signing_key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!(
        "../tests/fixtures/jwt/rsa_private.pem"
    ))
    .expect("the test-only signing key");
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &signing_key,
    )
    .expect("signed");
    println!("stream id: {stream_id}");
    println!("stream key: {stream_key}");
    println!("jwt: {jwt}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("address free");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("bound")
    );
    axum::serve(listener, app.router()).await.expect("served");
}
