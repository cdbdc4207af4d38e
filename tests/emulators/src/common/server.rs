//! Binds an emulator to `127.0.0.1:0` and serves it until the handle is dropped.
//!
//! The listener is bound before the router is built so that the router's state can mint absolute
//! URLs (Salesforce `instance_url`, redirect targets) that point back at this very server
//! (reference §0.1). Only the loopback interface is ever bound.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

/// A bound, not yet serving, loopback listener.
#[derive(Debug)]
pub(crate) struct Bound {
    listener: TcpListener,
    pub(crate) base_url: Url,
}

impl Bound {
    /// Binds `127.0.0.1:0`.
    pub(crate) async fn loopback() -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("http://{addr}"))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Bound { listener, base_url })
    }

    /// Starts serving `router` on a background task.
    pub(crate) fn serve(self, router: Router) -> RunningServer {
        let task = tokio::spawn(async move {
            // An accept error ends the emulator; the test using it then fails on connect.
            let _ = axum::serve(self.listener, router).await;
        });
        RunningServer {
            base_url: self.base_url,
            task,
        }
    }
}

/// A serving emulator. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct RunningServer {
    base_url: Url,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
