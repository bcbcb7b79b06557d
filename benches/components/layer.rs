//! The `layer` group: the whole hot path with one feature at a time switched off.

use crate::setup::*;
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::Full;
use keygate::client_ip::PeerAddr;
use tower::Service;

pub(crate) fn layer_variants(c: &mut Criterion) {
    let rt = runtime();
    let _guard = rt.enter();
    let inner = tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("valid");
    let variants = [
        ("full", Deployment::FULL),
        (
            "no_limiter",
            Deployment {
                limit: false,
                ..Deployment::FULL
            },
        ),
        (
            "no_ip_allowlist",
            Deployment {
                ip: false,
                ..Deployment::FULL
            },
        ),
        (
            "no_scope_requirement",
            Deployment {
                scope: false,
                ..Deployment::FULL
            },
        ),
        (
            "no_last_used_tracking",
            Deployment {
                manager: false,
                ..Deployment::FULL
            },
        ),
        (
            "minimal",
            Deployment {
                manager: false,
                ip: false,
                scope: false,
                limit: false,
            },
        ),
    ];
    let mut g = c.benchmark_group("layer");
    for (name, features) in variants {
        let (gate, key) = deployment(&rt, features);
        let layer = if features.scope {
            gate.layer().require_any([SCOPE])
        } else {
            gate.layer()
        };
        let mut svc = tower::Layer::layer(&layer, inner);
        let request = || {
            Request::builder()
                .uri("/v1/whoami")
                .header(AUTHORIZATION, format!("Bearer {key}"))
                .extension(PeerAddr(peer))
                .body(())
                .expect("valid request")
        };
        assert_eq!(now(svc.call(request())).expect("infallible").status(), 200);
        g.bench_function(name, |b| {
            b.iter_batched(
                request,
                |req| now(svc.call(req)).expect("infallible"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}
