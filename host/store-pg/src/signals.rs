//! Signals between the nodes sharing a database: PostgreSQL's `NOTIFY` and `LISTEN`.
//!
//! One channel per schema (`proofpix.<schema>`), so clusters in separate schemas of one
//! database never hear each other. A message is sent with `pg_notify` (delivered when its
//! transaction commits, to every listening connection, the sender's own included); a
//! listener holds a connection of its own, outside the pool, and calls its callback on the
//! store's runtime thread for every message. When that connection is lost (the server
//! restarted, a network cut) it reconnects with back-off (0.1 s doubling to 10 s) and tells
//! its callback [`Signal::Reconnected`]: whatever was sent meanwhile is lost, and the
//! listener looks in the store instead. Signals are hints that save a poll, never the only
//! record of anything.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use proofpix_store::{MAX_SIGNAL_BYTES, Signal, StoreError};
use tokio_postgres::AsyncMessage;

use crate::PgStore;

/// The shortest and longest wait before reconnecting.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// The channel of the nodes sharing `schema` (`None`: the connection's default schema).
pub(crate) fn channel(schema: Option<&str>) -> String {
    format!("proofpix.{}", schema.unwrap_or("public"))
}

/// Refuses a message `NOTIFY` would refuse.
pub(crate) fn check_len(message: &str) -> Result<(), StoreError> {
    if message.len() > MAX_SIGNAL_BYTES {
        return Err(StoreError::Backend {
            message: format!(
                "a signal between nodes is {} bytes, over the limit of {MAX_SIGNAL_BYTES}; \
                 it was not sent",
                message.len()
            ),
            source: None,
        });
    }
    Ok(())
}

/// Starts a listener on the store's runtime; it runs until the store is dropped.
pub(crate) fn listen(store: &PgStore, on: Box<dyn Fn(Signal) + Send + Sync>) {
    let config = store.pool.config().clone();
    let tls = store.pool.tls().clone();
    // The channel is a quoted identifier: `valid_schema` allows only [a-z0-9_] in it.
    let statement = format!("LISTEN \"{}\"", store.channel);
    let url = store.url.clone();
    let on: Arc<dyn Fn(Signal) + Send + Sync> = Arc::from(on);
    store.pool.handle().spawn(async move {
        let mut backoff = BACKOFF.0;
        let mut listened_before = false;
        loop {
            match crate::pool::connect_raw(&config, &tls).await {
                Ok((client, mut messages)) => {
                    let relay = on.clone();
                    let driver = tokio::spawn(async move {
                        loop {
                            match messages.next().await {
                                Some(Ok(AsyncMessage::Notification(n))) => {
                                    relay(Signal::Message(n.payload().to_owned()));
                                }
                                Some(Ok(_)) => {}
                                Some(Err(e)) => {
                                    tracing::warn!(error = %e, "the listening connection ended");
                                    break;
                                }
                                None => break,
                            }
                        }
                    });
                    let listening = client.batch_execute(&statement).await;
                    let client = match listening {
                        Ok(()) => {
                            if listened_before {
                                tracing::info!(database = %url, "listening again for other nodes' signals");
                                on(Signal::Reconnected);
                            }
                            listened_before = true;
                            backoff = BACKOFF.0;
                            Some(client)
                        }
                        Err(e) => {
                            tracing::warn!(database = %url, error = %e, "cannot listen for other nodes' signals");
                            // Dropping the client closes the connection, which ends the driver:
                            // tried again after the back-off.
                            None
                        }
                    };
                    // Until the connection ends; the client is kept alive as long.
                    let _ = driver.await;
                    drop(client);
                }
                Err(e) => {
                    tracing::warn!(
                        database = %url,
                        error = %e,
                        retry_in_ms = backoff.as_millis() as u64,
                        "cannot connect to listen for other nodes' signals"
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    });
}
