//! keygate in front of a real tonic server, called over loopback TCP with tonic-health's
//! generated client: every refusal reaches the client as its gRPC status.

use crate::common::*;

use std::net::SocketAddr;

use futures_util::stream;
use keygate::store::RateLimit;
use keygate::{KeygateLayer, NewKey};
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

const REFLECTION: &str = "/grpc.reflection.v1.ServerReflection/";

/// Serves health (behind `layer`) and reflection v1 on a random loopback port.
async fn serve_grpc(layer: KeygateLayer) -> SocketAddr {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .unwrap();
    tokio::spawn(
        Server::builder()
            .layer(layer.grpc())
            .add_service(health)
            .add_service(reflection)
            .serve_with_incoming(incoming),
    );
    addr
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// `grpc.health.v1.Health/Check` with each of `authorization` as a metadata value.
async fn check(addr: SocketAddr, authorization: &[&str]) -> Result<ServingStatus, tonic::Status> {
    let mut client = HealthClient::new(channel(addr).await);
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    for value in authorization {
        req.metadata_mut()
            .append("authorization", MetadataValue::try_from(*value).unwrap());
    }
    let res = client.check(req).await?;
    Ok(ServingStatus::try_from(res.into_inner().status).unwrap())
}

fn assert_code(result: Result<ServingStatus, tonic::Status>, code: Code, outcome: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().starts_with(outcome),
        "grpc-message {:?} should name {outcome}",
        status.message()
    );
}

#[tokio::test]
async fn a_valid_key_reaches_the_health_service() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["admin"]).await;
    let addr = serve_grpc(h.gate.layer()).await;
    let status = check(addr, &[&bearer(&key)]).await.unwrap();
    assert_eq!(status, ServingStatus::Serving);
}

#[tokio::test]
async fn a_missing_key_is_unauthenticated() {
    let h = Harness::new();
    let addr = serve_grpc(h.gate.layer()).await;
    assert_code(
        check(addr, &[]).await,
        Code::Unauthenticated,
        "unauthorized",
    );
}

#[tokio::test]
async fn an_unknown_key_is_unauthenticated() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["admin"]).await;
    let addr = serve_grpc(h.gate.layer()).await;
    // Well formed, right checksum, but never issued.
    let unknown = h
        .gate
        .format()
        .generate(&h.gate.format().prefixes()[0])
        .unwrap();
    assert_ne!(unknown.expose_secret(), key);
    assert_code(
        check(addr, &[&bearer(unknown.expose_secret())]).await,
        Code::Unauthenticated,
        "invalid_api_key",
    );
    // And one whose checksum is wrong, refused before any lookup.
    let mut typo = key.clone();
    typo.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    let lookups = h.store.lookups();
    assert_code(
        check(addr, &[&bearer(&typo)]).await,
        Code::Unauthenticated,
        "invalid_api_key",
    );
    assert_eq!(h.store.lookups(), lookups);
}

#[tokio::test]
async fn a_key_without_the_required_scope_is_permission_denied() {
    let h = Harness::new();
    let (_, admin) = h.key("acct_1", &["admin"]).await;
    let (_, authorizer) = h.key("acct_1", &["authorizer"]).await;
    let addr = serve_grpc(h.gate.layer().require_any(["admin"])).await;
    assert_code(
        check(addr, &[&bearer(&authorizer)]).await,
        Code::PermissionDenied,
        "insufficient_scope",
    );
    assert_eq!(
        check(addr, &[&bearer(&admin)]).await.unwrap(),
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn a_key_over_its_rate_limit_is_resource_exhausted() {
    let h = Harness::new();
    let (_, key) = h
        .key_with(
            "acct_1",
            NewKey::named("slow key").rate_limit(RateLimit::new(1, 1)),
        )
        .await;
    let addr = serve_grpc(h.gate.layer()).await;
    assert_eq!(
        check(addr, &[&bearer(&key)]).await.unwrap(),
        ServingStatus::Serving
    );
    assert_code(
        check(addr, &[&bearer(&key)]).await,
        Code::ResourceExhausted,
        "rate_limited",
    );
    // The manual clock moves on: the bucket refills.
    h.time.advance(std::time::Duration::from_secs(1));
    assert_eq!(
        check(addr, &[&bearer(&key)]).await.unwrap(),
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn a_store_outage_is_unavailable() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["admin"]).await;
    h.store.set_fault(Fault::Error);
    let addr = serve_grpc(h.gate.layer()).await;
    assert_code(
        check(addr, &[&bearer(&key)]).await,
        Code::Unavailable,
        "store_unavailable",
    );
    assert!(h.store.lookups() >= 1);
    // Errors are not cached: once the store recovers the key works.
    h.store.set_fault(Fault::None);
    assert_eq!(
        check(addr, &[&bearer(&key)]).await.unwrap(),
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn two_authorization_values_are_invalid_argument() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["admin"]).await;
    let addr = serve_grpc(h.gate.layer()).await;
    assert_code(
        check(addr, &[&bearer(&key), &bearer(&key)]).await,
        Code::InvalidArgument,
        "invalid_request",
    );
}

#[tokio::test]
async fn a_non_bearer_scheme_is_invalid_argument() {
    let h = Harness::new();
    let (_, key) = h.key("acct_1", &["admin"]).await;
    let addr = serve_grpc(h.gate.layer()).await;
    assert_code(
        check(addr, &[&format!("Basic {key}")]).await,
        Code::InvalidArgument,
        "invalid_request",
    );
}

#[tokio::test]
async fn an_exempted_service_answers_without_a_key_while_health_stays_protected() {
    let h = Harness::new();
    let addr = serve_grpc(h.gate.layer().exempt(REFLECTION)).await;

    let mut reflection = ServerReflectionClient::new(channel(addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(stream::iter(vec![request]))
        .await
        .expect("reflection is exempt")
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer: {answer:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    assert_code(
        check(addr, &[]).await,
        Code::Unauthenticated,
        "unauthorized",
    );
}

#[tokio::test]
async fn the_client_ip_comes_from_tcp_connect_info() {
    let h = Harness::new();
    let (_, loopback) = h
        .key_with("acct_1", NewKey::named("loopback only").ips(["127.0.0.1"]))
        .await;
    let (_, private) = h
        .key_with("acct_1", NewKey::named("office only").ips(["10.0.0.0/8"]))
        .await;
    let addr = serve_grpc(h.gate.layer()).await;
    assert_eq!(
        check(addr, &[&bearer(&loopback)]).await.unwrap(),
        ServingStatus::Serving
    );
    assert_code(
        check(addr, &[&bearer(&private)]).await,
        Code::PermissionDenied,
        "ip_not_allowed",
    );
}
