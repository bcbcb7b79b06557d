//! Finding a key across accounts, for operators (support staff answering "whose key is
//! this?"): by id, by the hint the console and API show, or by a reported plaintext.

use super::{KeyManager, KeyView, ManageError};
use crate::store::record::{KeyId, KeyRecord};
use crate::store::StoreError;

/// Most keys [`KeyManager::find_keys_by_hint`] returns.
pub const MAX_HINT_MATCHES: usize = 100;

impl KeyManager {
    /// The key with this id, in whichever account it is (server-side code only: this is
    /// not confined to an account). Keys of an environment this deployment does not serve
    /// are absent, as everywhere.
    pub async fn find_key_by_id(&self, id: &KeyId) -> Result<Option<KeyView>, ManageError> {
        Ok(self
            .stored(id)
            .await?
            .filter(|r| self.serves_key(r))
            .map(|r| KeyView::from(&r)))
    }

    /// The keys whose hint is `hint`: the `start` the console and API show (the prefix
    /// and the first four characters after it, such as `sk_live_a1B2`), in any account,
    /// at most [`MAX_HINT_MATCHES`], oldest first. A trailing `…` or `...` is ignored.
    /// A hint names a handful of keys at most, never one for certain: confirm with the
    /// plaintext ([`KeyManager::find_key_by_plaintext`]) where you can.
    pub async fn find_keys_by_hint(&self, hint: &str) -> Result<Vec<KeyView>, ManageError> {
        let hint = hint.trim().trim_end_matches('…').trim_end_matches("...");
        if hint.is_empty() || hint.len() > 64 {
            return Err(ManageError::InvalidRequest(
                "hint: the start of a key, as the console shows it".into(),
            ));
        }
        let mut found = self.store.find_by_start(hint, MAX_HINT_MATCHES).await?;
        found.retain(|r| self.serves_key(r));
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(found.iter().map(KeyView::from).collect())
    }

    /// The key a reported plaintext is (someone found it in a log or a repository), in
    /// any account: looked up by its digest, like a request, whatever its state (revoked,
    /// expired, or the previous secret of a key rolled with a grace period). The
    /// plaintext is never logged or kept.
    pub async fn find_key_by_plaintext(
        &self,
        plaintext: &str,
    ) -> Result<Option<KeyView>, ManageError> {
        let digest = self.keygate().hasher().digest(plaintext.trim());
        Ok(self
            .store
            .find_by_digest(&digest)
            .await?
            .filter(|r| self.serves_key(r))
            .map(|r| KeyView::from(&r)))
    }

    /// The stored record of key `id`, whatever its account and environment.
    pub(crate) async fn stored(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.store.get(id).await
    }

    /// Whether this deployment serves `record`'s environment.
    pub(crate) fn serves_key(&self, record: &KeyRecord) -> bool {
        self.serves(record)
    }
}
