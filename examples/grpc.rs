//! keygate in front of a tonic gRPC server.
//!
//! ```text
//! cargo run --example grpc [-- --addr 127.0.0.1:50051]
//! ```
//!
//! It serves the standard `grpc.health.v1.Health` service behind the layer, and server
//! reflection exempted from it. At start-up it creates one admin key and prints
//! `admin key: <key>`. With `grpcurl`:
//!
//! ```text
//! # Reflection is exempt: listing services needs no key.
//! grpcurl -plaintext 127.0.0.1:50051 list
//! # Health is protected: without a key the call fails with Unauthenticated ...
//! grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check
//! # ... and with one it answers SERVING.
//! grpcurl -plaintext -H "authorization: Bearer $KEY" 127.0.0.1:50051 grpc.health.v1.Health/Check
//! ```
//!
//! Refusals reach gRPC clients as gRPC statuses: `Unauthenticated` for a missing or bad
//! key, `PermissionDenied` for a scope or IP refusal, `ResourceExhausted` when rate
//! limited, `Unavailable` when the key store is down, `InvalidArgument` for a malformed
//! `authorization` value. The client IP comes from tonic's `TcpConnectInfo`.

use std::net::SocketAddr;

use keygate::{Environment, Keygate, MemoryStore, NewKey};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

/// Paths that bypass the key check: gRPC server reflection, both versions.
const EXEMPT: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

fn parse_args() -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = "127.0.0.1:50051".parse().expect("valid");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let v = args.next().ok_or("--addr needs a value")?;
                addr = v
                    .parse()
                    .map_err(|_| format!("--addr must be HOST:PORT, got '{v}'"))?;
            }
            "-h" | "--help" => return Err("usage: grpc [--addr HOST:PORT]".into()),
            other => return Err(format!("unknown argument '{other}'; try --help")),
        }
    }
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,keygate=info".into()),
        )
        .init();

    let (gate, manager) = Keygate::managed(MemoryStore::new())
        .environment(Environment::Test)
        .build();
    let admin = manager
        .create(
            "acct_demo".into(),
            NewKey::named("demo admin key").scopes(["admin"]),
        )
        .await?;

    // `grpc.health.v1.Health` reports the overall server ("") as SERVING.
    let (_reporter, health) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let layer = EXEMPT
        .iter()
        .fold(gate.layer().grpc(), |layer, path| layer.exempt(*path));

    let incoming = match TcpIncoming::bind(addr) {
        Ok(incoming) => incoming,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = incoming.local_addr()?;
    println!("listening on http://{local} (gRPC, test environment)");
    println!("admin key: {}", admin.key.expose_secret());

    Server::builder()
        .layer(layer)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
