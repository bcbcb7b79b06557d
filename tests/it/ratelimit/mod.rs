//! Per-key rate limiting: the burst, 429 with `Retry-After`, replenishment,
//! overrides, per-account sharing, the headers at each step, no quota spent by refused
//! requests, and bounded limiter state. Time only moves through the manual clock.

mod header_forms;
mod headers_and_refusals;
mod limiter_state;
mod namespaces;
mod quotas;
mod retry_after;
mod support;
