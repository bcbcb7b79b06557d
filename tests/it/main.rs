//! keygate's integration tests: one binary, a module per capability, so that the crate
//! and its dependencies are linked once.
//!
//! | Module | Capability |
//! |---|---|
//! | `gate` | reading the key, checking it, caching it and answering; formats, layering |
//! | `authz` | scopes, implications, read-only keys, policy tables, IP allowlists, client IP |
//! | `ratelimit` | per-key rate limiting, its headers and its state |
//! | `shared_limits` | rate limits shared through Redis, and Redis outages |
//! | `ledger` | credits and quotas: the balance of record in PostgreSQL, leases, many instances |
//! | `lifecycle` | creating, listing, updating, revoking, rolling, importing, deleting keys |
//! | `activity` | usage counters per key, account and deployment; the API log, its bounds and reads; operators' key search |
//! | `metering` | credits, quotas per period and plans: spending, refills, costs, charges |
//! | `console` | the embeddable key console: sessions, pages, forms, confinement, headers |
//! | `admin` | the management HTTP API, its configurable router and its OpenAPI document |
//! | `hardening` | each defect of the adversarial review, shown fixed |
//! | `credential_hook` | credentials other than keygate's keys, through a verifier |
//! | `jwt` | JWTs as credentials |
//! | `principals` | verified credentials managing keys: confined like keys, recorded as external |
//! | `jwks` | a JWT verifier's keys from an issuer's JWKS URL over TLS |
//! | `invalidation` | revocation reaching every cache, in-process and across instances |
//! | `postgres` | the PostgreSQL store |
//! | `scanning` | the secret-scanning partner endpoint and leaked keys |
//! | `failures` | store faults, hostile input, a soak under churn |
//! | `telemetry` | audit events and metrics |
//! | `servers` | hyper, tonic, the demo server and a cluster of them |
//! | `cli` | the `keygate` command line |
//! | `seeds` | one conformance test per reference service |
//! | `quickstart` | the README's quick start is the example, and it serves |
//! | `webhooks` | signed webhooks for key events: delivery, retries, the outbox, expiry notices |
//!
//! Shared helpers are in `common/`. The tests run concurrently in this one process:
//! each isolates what it shares (its own PostgreSQL schema, Redis key prefix or
//! channel, loopback port, and a recorder or subscriber local to its thread).

mod common;

mod activity;
mod admin;
mod authz;
mod cli;
mod console;
mod credential_hook;
mod failures;
mod gate;
mod hardening;
mod invalidation;
mod jwks;
mod jwt;
mod ledger;
mod lifecycle;
mod metering;
mod postgres;
mod principals;
mod quickstart;
mod ratelimit;
mod scanning;
mod seeds;
mod servers;
mod shared_limits;
mod telemetry;
mod webhooks;
