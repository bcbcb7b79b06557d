//! What keygate reports: audit events through `tracing`, and metrics through the
//! `metrics` facade (recorded into a recorder local to the test's thread).

mod audit;
mod metrics;
mod redis_limiter;
