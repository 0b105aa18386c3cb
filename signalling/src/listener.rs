//! The HTTP listener: the router behind hyper with the limits a public
//! server needs and `axum::serve` does not set.
//!
//! * **A deadline for request headers.** Without one, a slow-loris client
//!   that sends a header byte now and then holds its connection (and a file
//!   descriptor) forever; a few thousand of them starve everyone else.
//! * **A cap on open TCP connections per client IP**, checked at accept, before
//!   any byte is parsed. The per-IP WebSocket cap in [`crate::server`] only
//!   counts upgraded sockets; this one also counts connections that never
//!   get that far.
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! signalling::listener::serve(listener, app, signalling::listener::Limits::default(), std::future::pending()).await
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::debug;

/// Limits on what a client may hold open.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a request's headers, counted from the moment
    /// the server waits for them (a new connection, or the next request on a
    /// kept-alive one).
    pub header_timeout: Duration,
    /// Most open TCP connections from one IP address; more are closed at
    /// accept.
    pub max_connections_per_ip: usize,
}

/// Default [`Limits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Limits::max_connections_per_ip`]: room for the per-IP
/// WebSocket cap plus the page's own HTTP requests.
pub const DEFAULT_MAX_TCP_PER_IP: usize = 2 * crate::server::DEFAULT_MAX_CONNECTIONS_PER_IP;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections_per_ip: DEFAULT_MAX_TCP_PER_IP,
        }
    }
}

/// Open connections per IP; a [`Slot`] holds one until dropped.
#[derive(Default, Clone)]
struct PerIp(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct Slot {
    ip: IpAddr,
    table: PerIp,
}

impl PerIp {
    fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = t.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            table: self.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting; connections already open finish on their own tasks. Handlers
/// can extract `ConnectInfo<SocketAddr>` as with `axum::serve`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let per_ip = PerIp::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors, or the client gave up: keep serving.
                Err(e) => {
                    debug!("accept failed: {e}");
                    metrics::counter!("veil_signalling_accept_errors_total").increment(1);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let Some(slot) = per_ip.take(peer.ip(), limits.max_connections_per_ip) else {
            metrics::counter!("veil_signalling_rate_limited_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        tokio::spawn(async move {
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = connection.await {
                debug!(%peer, "connection ended: {e}");
            }
            drop(slot);
        });
    }
}

/// Where a test or tool can serve a router with the default limits:
/// binds `addr` and serves in the background, returning the bound address.
pub async fn spawn(addr: SocketAddr, app: Router) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(
        listener,
        app,
        Limits::default(),
        std::future::pending(),
    ));
    Ok(local)
}
