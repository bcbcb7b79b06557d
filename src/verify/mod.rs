//! Checking a presented key: credentials, refusal rendering.

pub(crate) mod credentials;
pub(crate) mod render;
