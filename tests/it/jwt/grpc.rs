//! A JWT in front of a real tonic server, over loopback TCP: an accepted token reaches
//! the service, and the hook's refusals reach the client as gRPC statuses, like a key's.

use std::net::SocketAddr;

use crate::common::jwt_support::*;
use crate::common::*;
use jsonwebtoken::Algorithm;
use keygate::credential::{BearerCredential, CredentialError, Principal};
use keygate::KeygateLayer;
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Serves health behind `layer`, in gRPC form, on a random loopback port.
async fn serve_grpc(layer: KeygateLayer) -> SocketAddr {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        Server::builder()
            .layer(layer.grpc())
            .add_service(health)
            .serve_with_incoming(incoming),
    );
    addr
}

/// `grpc.health.v1.Health/Check` with `Authorization: Bearer <token>`.
async fn check(addr: SocketAddr, token: &str) -> Result<ServingStatus, tonic::Status> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    let value = MetadataValue::try_from(bearer(token)).unwrap();
    req.metadata_mut().insert("authorization", value);
    let res = HealthClient::new(channel).check(req).await?;
    Ok(ServingStatus::try_from(res.into_inner().status).unwrap())
}

fn assert_code(result: Result<ServingStatus, tonic::Status>, code: Code, outcome: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().starts_with(outcome), "{status:?}");
}

fn token(scope: &str) -> String {
    rs256(&claims("svc_1", "org_1", scope, T0, T0 + 3600))
}

#[tokio::test]
async fn a_jwt_reaches_the_service_and_refusals_are_grpc_statuses() {
    let h = Harness::with(|b| b.credential_verifier(verifier()));
    let addr = serve_grpc(h.gate.layer().require_any(["health:read"])).await;
    let status = check(addr, &token("health:read")).await.unwrap();
    assert_eq!(status, ServingStatus::Serving);

    let forged = sign(
        Algorithm::RS256,
        RSA_OTHER_PRIVATE,
        Some("rsa-1"),
        &claims("svc_1", "org_1", "health:read", T0, T0 + 3600),
    );
    assert_code(
        check(addr, &forged).await,
        Code::Unauthenticated,
        "invalid_token",
    );
    assert_code(
        check(addr, &token("other")).await,
        Code::PermissionDenied,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn a_failing_verifier_is_unavailable_to_grpc_clients() {
    let h = Harness::with(|b| {
        b.credential_verifier(|_: BearerCredential| async {
            Err::<Principal, _>(CredentialError::unavailable("key set unreachable"))
        })
    });
    let addr = serve_grpc(h.gate.layer()).await;
    assert_code(
        check(addr, &token("health:read")).await,
        Code::Unavailable,
        "verifier_unavailable",
    );
}
