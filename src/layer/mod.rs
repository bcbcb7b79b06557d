//! The tower layer, its service, response future and body.

pub(crate) mod body;
pub(crate) mod future;
#[allow(clippy::module_inception)]
pub(crate) mod layer;
pub(crate) mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::KeygateLayer;
pub use service::KeygateService;
