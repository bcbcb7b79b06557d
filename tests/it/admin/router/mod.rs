//! The configurable management router (`keygate::admin::builder`, feature `admin`):
//! base path, access per action, field mapping, pagination by cursor or offset, and
//! bad input answered with clear 400s, all over real loopback TCP.

mod paths_and_access;
mod records;
mod support;
