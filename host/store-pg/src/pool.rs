//! A small connection pool with a prepared-statement cache per connection.
//!
//! Each store call takes one connection for the length of its transaction. Statements are
//! prepared once per connection (the first call that needs one pays a round trip) and then
//! only executed, so a statement costs one round trip, or a share of one when pipelined.
//! A connection whose socket closed (the server restarted, a network cut) is dropped instead
//! of being returned; the next call opens a new one. While the server cannot be reached,
//! new connections are tried with back-off (0.1 s doubling to 2 s between attempts, one
//! schedule for the whole pool): a call waits for the next attempt instead of adding to a
//! storm of connects, then fails with the connection error if that attempt fails too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::pin::Pin;

use futures_util::Stream;
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement, Transaction};

use crate::tls::Tls;

use crate::Counters;

/// The shortest and longest wait between connection attempts while the server is away.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// When the next connection may be tried, and the wait after that one fails.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    next_try: Instant,
    wait: Duration,
}

/// What a connection delivers besides query results (notifications, notices); polling it
/// to its end drives the connection.
pub(crate) type Messages =
    Pin<Box<dyn Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>>;

/// Opens one connection with `tls`.
pub(crate) async fn connect_raw(
    config: &tokio_postgres::Config,
    tls: &Tls,
) -> Result<(Client, Messages), tokio_postgres::Error> {
    fn messages<S, T>(mut connection: tokio_postgres::Connection<S, T>) -> Messages
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        Box::pin(futures_util::stream::poll_fn(move |cx| {
            connection.poll_message(cx)
        }))
    }
    match tls {
        Tls::Plain => {
            let (client, connection) = config.connect(NoTls).await?;
            Ok((client, messages(connection)))
        }
        Tls::Verified(make) => {
            let (client, connection) = config.connect(make.clone()).await?;
            Ok((client, messages(connection)))
        }
    }
}

pub(crate) struct Pool {
    config: tokio_postgres::Config,
    tls: Tls,
    backoff: Mutex<Option<Backoff>>,
    handle: tokio::runtime::Handle,
    idle: Mutex<Vec<Conn>>,
    permits: tokio::sync::Semaphore,
    counters: Arc<Counters>,
}

pub(crate) struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// A connection taken from the pool; it goes back when dropped (unless it closed).
pub(crate) struct Pooled<'a> {
    conn: Option<Conn>,
    pool: &'a Pool,
    _permit: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl Pool {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        tls: Tls,
        handle: tokio::runtime::Handle,
        max: usize,
        counters: Arc<Counters>,
    ) -> Pool {
        Pool {
            config,
            tls,
            backoff: Mutex::new(None),
            handle,
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(max),
            counters,
        }
    }

    /// A connection: an idle one, or a new one while fewer than the maximum are out.
    pub(crate) async fn get(&self) -> Result<Pooled<'_>, tokio_postgres::Error> {
        // The semaphore is never closed, so acquiring only waits.
        let permit = self.permits.acquire().await.ok();
        let idle = loop {
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match next {
                Some(c) if c.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match idle {
            Some(c) => c,
            None => {
                // Called under the store's runtime context (`PgStore::block_on`), so the
                // socket registers with the runtime that then drives it.
                let (client, mut messages) = self.connect().await?;
                self.counters.waited(0);
                self.handle.spawn(async move {
                    use futures_util::StreamExt as _;
                    while let Some(m) = messages.next().await {
                        if let Err(e) = m {
                            tracing::warn!(error = %e, "a PostgreSQL connection ended with an error");
                            break;
                        }
                    }
                });
                Conn {
                    client,
                    statements: HashMap::new(),
                }
            }
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: self,
            _permit: permit,
        })
    }

    /// A new connection, after the back-off of earlier failed attempts.
    async fn connect(&self) -> Result<(Client, Messages), tokio_postgres::Error> {
        let pending = *self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = pending {
            tokio::time::sleep_until(b.next_try.into()).await;
        }
        let result = connect_raw(&self.config, &self.tls).await;
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(_) => *backoff = None,
            Err(e) => {
                let wait = backoff.map_or(BACKOFF.0, |b| (b.wait * 2).min(BACKOFF.1));
                if backoff.is_none() {
                    tracing::warn!(error = %e, "cannot connect to PostgreSQL; retrying with back-off");
                }
                *backoff = Some(Backoff {
                    next_try: Instant::now() + wait,
                    wait,
                });
            }
        }
        result
    }

    /// The connection settings (for a connection outside the pool, such as a listener's).
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// How connections are made (plain or TLS).
    pub(crate) fn tls(&self) -> &Tls {
        &self.tls
    }

    /// The runtime that drives the connections.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Drops the idle connections (the store is closing).
    pub(crate) fn close(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.client.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
    }
}

impl Pooled<'_> {
    fn conn(&mut self) -> &mut Conn {
        // Only `drop` takes it out.
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }

    /// The prepared statements for `sql`, preparing the ones this connection has not seen.
    pub(crate) async fn prepare<const N: usize>(
        &mut self,
        sql: [&'static str; N],
    ) -> Result<[Statement; N], tokio_postgres::Error> {
        let counters = self.pool.counters.clone();
        let conn = self.conn();
        for s in sql {
            if !conn.statements.contains_key(s) {
                let st = conn.client.prepare(s).await?;
                counters.waited(0);
                conn.statements.insert(s, st);
            }
        }
        Ok(sql.map(|s| conn.statements[&s].clone()))
    }

    /// The connection's client, for statements outside a transaction.
    pub(crate) fn client(&mut self) -> &Client {
        &self.conn().client
    }

    /// Begins a transaction (one round trip).
    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_>, tokio_postgres::Error> {
        let counters = self.pool.counters.clone();
        let txn = self.conn().client.transaction().await?;
        counters.waited(1);
        Ok(txn)
    }
}
