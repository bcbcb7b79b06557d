//! One conformance test per seed service text (`shared/seeds/`): every documented
//! behaviour of the service, checked against an app built on keygate.
//!
//! | File | Seed | Service |
//! |---|---|---|
//! | `tenbyte.rs` | `000_*.txt` | Tenbyte: its example key imported, its error table |
//! | `tenuo.rs` | `001_*.txt` | Tenuo Cloud: `tc_` keys, scope table, error bodies |
//! | `vidbeo/` | `002_*.txt` | Vidbeo: the `/v2/keys` API of `examples/vidbeo.rs` |
//! | `bytekit.rs` | `003_*.txt` | Bytekit: `/v1/account/api-keys` of `examples/bytekit.rs` |
//!
//! Where two statements in one seed conflict, the test follows the seed's table and a
//! comment says so.

#[path = "../common/mod.rs"]
mod common;

mod bytekit;
mod client;
mod tenbyte;
mod tenuo;
mod vidbeo;
