//! JWTs as credentials (feature `jwt`): the verifier behind the layer, its keys,
//! hostile tokens, one set of refusals shared with API keys, and gRPC.

mod grpc;
mod hostile;
mod keys;
mod routes;
mod verifier;
