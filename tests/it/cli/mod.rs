//! The `keygate` command line (feature `cli`), run as the binary Cargo builds.

mod import;
mod offline;
mod pattern;
