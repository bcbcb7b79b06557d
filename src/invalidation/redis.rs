//! [`RedisChannel`]: invalidations over Redis pub/sub, for any store.

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};

use super::{ChannelError, Event, InvalidationChannel, Subscription};
use crate::key::digest::KeyDigest;

/// Invalidations over Redis pub/sub (feature `redis`).
///
/// A message is the changed digests in hex, separated by commas, or `*` for "everything".
/// Publishing goes through a [`ConnectionManager`], which reconnects by itself; each
/// subscription is a dedicated connection, probed with `PING`.
///
/// Redis keeps no history, so after a reconnect a [`super::Listener`] cannot tell what it
/// missed and flushes its sink's whole cache ([`super::Replay::Unknown`]). Pair it with
/// [`super::PublishingStore`] so that every write is published.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Clone)]
pub struct RedisChannel {
    client: redis::Client,
    publisher: ConnectionManager,
    channel: String,
}

impl std::fmt::Debug for RedisChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisChannel")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisChannel {
    /// Connects to the Redis at `url` (`redis://host:port/`) and uses the pub/sub channel
    /// named `channel`.
    pub async fn open(url: &str, channel: impl Into<String>) -> Result<Self, ChannelError> {
        let client = redis::Client::open(url).map_err(ChannelError::new)?;
        Self::new(client, channel).await
    }

    /// Uses `client` and the pub/sub channel named `channel`.
    pub async fn new(
        client: redis::Client,
        channel: impl Into<String>,
    ) -> Result<Self, ChannelError> {
        let publisher = client
            .get_connection_manager()
            .await
            .map_err(ChannelError::new)?;
        Ok(Self {
            client,
            publisher,
            channel: channel.into(),
        })
    }

    /// The pub/sub channel's name.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Tells every subscriber to flush its whole cache.
    pub async fn publish_all(&self) -> Result<(), ChannelError> {
        self.send("*".to_owned()).await
    }

    async fn send(&self, payload: String) -> Result<(), ChannelError> {
        let mut conn = self.publisher.clone();
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(ChannelError::new)
    }
}

#[async_trait]
impl InvalidationChannel for RedisChannel {
    async fn publish(&self, digests: &[KeyDigest]) -> Result<(), ChannelError> {
        if digests.is_empty() {
            return Ok(());
        }
        let payload: Vec<String> = digests.iter().map(KeyDigest::to_hex).collect();
        self.send(payload.join(",")).await
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, ChannelError> {
        let pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(ChannelError::new)?;
        let (mut sink, stream) = pubsub.split();
        sink.subscribe(&self.channel)
            .await
            .map_err(ChannelError::new)?;
        Ok(Box::new(RedisSubscription { sink, stream }))
    }
}

struct RedisSubscription {
    sink: PubSubSink,
    stream: PubSubStream,
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next(&mut self) -> Result<Event, ChannelError> {
        match self.stream.next().await {
            Some(msg) => Ok(parse(msg.get_payload_bytes())),
            None => Err(ChannelError::new("redis subscription closed")),
        }
    }

    async fn probe(&mut self) -> Result<(), ChannelError> {
        self.sink
            .ping::<redis::Value>()
            .await
            .map(drop)
            .map_err(ChannelError::new)
    }
}

/// A message's digests; anything unreadable means "everything", to be safe.
fn parse(payload: &[u8]) -> Event {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Event::All;
    };
    let digests: Option<Vec<KeyDigest>> = text.split(',').map(KeyDigest::from_hex).collect();
    match digests {
        Some(digests) => Event::Changed {
            digests,
            position: None,
        },
        None => Event::All,
    }
}
