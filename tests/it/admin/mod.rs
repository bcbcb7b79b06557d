//! The management HTTP API (feature `admin`): the fixed router and its table of
//! routes, the configurable router, the envelope, the field mapping as a parser, and
//! the OpenAPI document checked against the running API.

mod api;
mod envelope;
mod envelope_refusals;
mod fields;
mod openapi;
mod public_base_url;
mod router;
