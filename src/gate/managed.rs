//! [`Keygate::managed`]: a core and its [`KeyManager`] from one writable store.

use std::sync::Arc;

use super::{Keygate, KeygateBuilder};
use crate::manage::{KeyManager, ManagerConfig};
use crate::store::KeyStoreWrite;

/// The builder state of [`Keygate::managed`]: a writable store, which both the core and
/// its [`KeyManager`] use.
pub struct Managed {
    writer: Arc<dyn KeyStoreWrite>,
    config: ManagerConfig,
    #[cfg(feature = "webhooks")]
    webhooks: Option<crate::webhooks::Webhooks>,
}

impl Keygate {
    /// Starts building a core and its [`KeyManager`] over one writable `store`, so the
    /// two can never disagree about where keys live. `build` returns both.
    ///
    /// Pass an `Arc` of the store to keep a handle of your own.
    pub fn managed<S: KeyStoreWrite>(store: S) -> KeygateBuilder<Managed> {
        let store = Arc::new(store);
        let writer: Arc<dyn KeyStoreWrite> = store.clone();
        KeygateBuilder::new(
            store,
            Managed {
                writer,
                config: ManagerConfig::default(),
                #[cfg(feature = "webhooks")]
                webhooks: None,
            },
        )
    }
}

impl KeygateBuilder<Managed> {
    /// Settings for the [`KeyManager`]. Default: [`ManagerConfig::default`].
    pub fn manager_config(mut self, config: ManagerConfig) -> Self {
        self.mode_mut().config = config;
        self
    }

    /// Sends a signed webhook for every change the [`KeyManager`] makes (see
    /// [`crate::webhooks`]). Build `webhooks` with this builder's clock, and over the
    /// same `PgStore` for events written in the change's transaction.
    #[cfg(feature = "webhooks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webhooks")))]
    pub fn webhooks(mut self, webhooks: crate::webhooks::Webhooks) -> Self {
        self.mode_mut().webhooks = Some(webhooks);
        self
    }

    /// Builds the core and its manager, which share the one store. `last_used_at`
    /// tracking starts now.
    pub fn build(mut self) -> (Keygate, KeyManager) {
        let writer = self.mode_mut().writer.clone();
        let (gate, mode) = self.build_core(Some(writer));
        #[allow(unused_mut)]
        let mut manager = KeyManager::new(gate.clone(), mode.writer, mode.config);
        #[cfg(feature = "webhooks")]
        if let Some(webhooks) = mode.webhooks {
            manager.set_webhooks(webhooks);
        }
        (gate, manager)
    }
}

impl std::fmt::Debug for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
