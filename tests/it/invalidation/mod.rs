//! Revocation reaching every cache: in-process coherence under every interleaving, the
//! listener's protocol on a paused clock, and across instances over PostgreSQL
//! LISTEN/NOTIFY and Redis pub/sub.

mod change_log_trust;
mod coherence;
mod listen_notify;
mod listener;
mod pubsub;
