//! One conformance test per seed service text (`shared/seeds/`): every documented
//! behaviour of the service, checked against an app built on keygate.
//!
//! | File | Seed | Service |
//! |---|---|---|
//! | `tenbyte.rs` | `000_*.txt` | Tenbyte: its example key imported, its error table |
//! | `tenuo.rs` | `001_*.txt` | Tenuo Cloud: `tc_` keys, scope table, error bodies |
//! | `tenbyte_streams.rs` | `004_*.txt` | Tenbyte live streams: reset-key with an RSA-signed JWT (`examples/stream_keys.rs`) |
//! | `vidbeo/` | `002_*.txt` | Vidbeo: the `/v2/keys` API of `examples/vidbeo.rs` |
//! | `bytekit.rs` | `003_*.txt` | Bytekit: `/v1/account/api-keys` of `examples/bytekit.rs` |
//!
//! Where two statements in one seed conflict, the test follows the seed's table and a
//! comment says so.

#[path = "../../../examples/stream_keys.rs"]
#[allow(dead_code)]
mod stream_keys_example;

mod bytekit;
mod client;
mod tenbyte;
mod tenbyte_streams;
mod tenuo;
mod vidbeo;
