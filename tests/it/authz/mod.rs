//! Authorization: scopes, implications, read-only keys, policy tables, IP
//! allowlists, client-IP resolution and the order of checks.

mod check_order;
mod client_ip;
mod implications;
mod ip_allowlist;
mod policy;
mod read_only;
mod scopes;
mod support;
