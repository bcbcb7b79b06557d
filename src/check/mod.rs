//! The checks of a request, one step per file.

pub(crate) mod access;
pub(crate) mod credentials;
pub(crate) mod external;
pub(crate) mod lookup;
mod status;
