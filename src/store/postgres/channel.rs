//! [`PgChannel`]: `LISTEN/NOTIFY` on a dedicated connection, and replays from the log.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::rows::digest_from;
use super::{pg_error, PgStore};
use crate::invalidation::{ChannelError, Event, InvalidationChannel, Replay, Subscription};
use crate::key::digest::KeyDigest;

static NEXT_SUBSCRIPTION: AtomicU64 = AtomicU64::new(1);

/// The invalidation channel of a [`PgStore`] (feature `postgres`): see
/// [`PgStore::listen`].
///
/// Each subscription is a dedicated connection (not from the pool, and not through
/// PgBouncer in transaction mode, where `LISTEN` does not work) whose
/// `application_name` is the store's with `.listener` appended. It is probed with a
/// `NOTIFY` to a channel of its own, which proves the notification path alive. Replays
/// read the store's `changes` table by sequence number.
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Clone, Debug)]
pub struct PgChannel {
    store: PgStore,
}

impl PgChannel {
    pub(super) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

fn channel_error(e: crate::store::StoreError) -> ChannelError {
    ChannelError::new(e.to_string())
}

#[async_trait]
impl InvalidationChannel for PgChannel {
    /// Appends to the change log and notifies, in one transaction. [`PgStore`]'s own
    /// writes do this inside their transaction; this is for changes made around it.
    async fn publish(&self, digests: &[KeyDigest]) -> Result<(), ChannelError> {
        let store = &self.store;
        store
            .timed(async {
                let mut client = store.client().await?;
                let tx = client.transaction().await.map_err(pg_error)?;
                store.publish(&tx, digests).await?;
                tx.commit().await.map_err(pg_error)
            })
            .await
            .map_err(channel_error)
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, ChannelError> {
        let inner = &self.store.inner;
        let mut config = inner.config.clone();
        let name = format!(
            "{}.listener",
            config.get_application_name().unwrap_or("keygate")
        );
        config.application_name(name);
        let (client, mut connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| channel_error(pg_error(e)))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let pump = tokio::spawn(async move {
            loop {
                let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                match message {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx
                            .send(Some((n.channel().to_owned(), n.payload().to_owned())))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        let _ = tx.send(None);
                        return;
                    }
                }
            }
        });
        let heartbeat = format!(
            "{}.hb.{}.{}",
            inner.schema,
            std::process::id(),
            NEXT_SUBSCRIPTION.fetch_add(1, Ordering::Relaxed)
        );
        let listen = format!("LISTEN \"{}\"; LISTEN \"{}\"", inner.channel, heartbeat);
        if let Err(e) = client.batch_execute(&listen).await {
            pump.abort();
            return Err(channel_error(pg_error(e)));
        }
        Ok(Box::new(PgSubscription {
            client,
            rx,
            pump,
            changes: inner.channel.clone(),
            heartbeat,
        }))
    }

    async fn replay(&self, after: Option<u64>) -> Result<Replay, ChannelError> {
        let store = &self.store;
        let sql = &store.inner.sql;
        store
            .timed(async {
                let client = store.client().await?;
                let Some(after) = after else {
                    let row = client
                        .query_one(&sql.position, &[])
                        .await
                        .map_err(pg_error)?;
                    let position = row.get::<_, Option<i64>>(0).unwrap_or(0);
                    return Ok(Replay::Changes {
                        digests: Vec::new(),
                        position: u64::try_from(position).unwrap_or(0),
                    });
                };
                let after = i64::try_from(after).unwrap_or(i64::MAX);
                let rows = client
                    .query(&sql.replay, &[&after])
                    .await
                    .map_err(pg_error)?;
                let mut digests = Vec::new();
                let mut position = after;
                for row in &rows {
                    if row.get::<_, i64>(0) > after {
                        // Entries after our position were trimmed: we cannot tell.
                        return Ok(Replay::Unknown);
                    }
                    if row.get::<_, Option<bool>>(3) == Some(true) {
                        // A change of every key (a plan): flush everything.
                        return Ok(Replay::Unknown);
                    }
                    if let Some(seq) = row.get::<_, Option<i64>>(1) {
                        position = position.max(seq);
                        let list: Vec<&[u8]> = row.get(2);
                        digests.extend(list.into_iter().filter_map(digest_from));
                    }
                }
                Ok(Replay::Changes {
                    digests,
                    position: u64::try_from(position).unwrap_or(0),
                })
            })
            .await
            .map_err(channel_error)
    }
}

struct PgSubscription {
    client: tokio_postgres::Client,
    /// Notifications as (channel, payload); `None` when the connection ended.
    rx: mpsc::UnboundedReceiver<Option<(String, String)>>,
    pump: tokio::task::JoinHandle<()>,
    changes: String,
    heartbeat: String,
}

impl Drop for PgSubscription {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

#[async_trait]
impl Subscription for PgSubscription {
    async fn next(&mut self) -> Result<Event, ChannelError> {
        loop {
            let Some(Some((channel, payload))) = self.rx.recv().await else {
                return Err(ChannelError::new("listener connection closed"));
            };
            if channel == self.heartbeat {
                return Ok(Event::Heartbeat);
            }
            if channel == self.changes {
                return Ok(parse(&payload));
            }
        }
    }

    async fn probe(&mut self) -> Result<(), ChannelError> {
        self.client
            .execute("SELECT pg_notify($1, '')", &[&self.heartbeat])
            .await
            .map(drop)
            .map_err(|e| channel_error(pg_error(e)))
    }
}

/// `seq:hex,hex,...`, `seq:` (no digests), or `seq:*` when the digests did not fit:
/// then everything. Anything else did not come from keygate: [`Event::Malformed`].
fn parse(payload: &str) -> Event {
    let Some((seq, list)) = payload.split_once(':') else {
        return Event::Malformed;
    };
    let Ok(position) = seq.parse::<u64>() else {
        return Event::Malformed;
    };
    if list == "*" {
        return Event::All;
    }
    if list.is_empty() {
        return Event::Changed {
            digests: Vec::new(),
            position: Some(position),
        };
    }
    match list
        .split(',')
        .map(KeyDigest::from_hex)
        .collect::<Option<Vec<_>>>()
    {
        Some(digests) => Event::Changed {
            digests,
            position: Some(position),
        },
        None => Event::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygate_payloads_are_read_and_anything_else_is_malformed() {
        let d = KeyDigest::from_bytes([7; 32]);
        assert_eq!(
            parse(&format!("12:{},{}", d.to_hex(), d.to_hex())),
            Event::Changed {
                digests: vec![d, d],
                position: Some(12)
            }
        );
        assert_eq!(
            parse("12:"),
            Event::Changed {
                digests: vec![],
                position: Some(12)
            }
        );
        assert_eq!(parse("12:*"), Event::All);
        for bad in [
            "",
            "garbage",
            "x:",
            "-1:",
            "12",
            "12:zz",
            "1:*,*",
            ":*",
            "18446744073709551616:",
        ] {
            assert_eq!(parse(bad), Event::Malformed, "{bad:?}");
        }
    }
}
