//! Accepting connections: HTTP/1.1 (what Tencent's SDKs and tccli speak) served by hyper, with
//! - a connection limit: at most `max_connections` are open; beyond it the server stops accepting and new
//!   clients wait in the kernel's backlog;
//! - hyper's header read timeout, which runs whenever a connection has no request in progress (just
//!   opened, idle between kept-alive requests, or part-way through a request head), so a silent or
//!   slow-talking client is dropped after `header_timeout`;
//! - graceful shutdown: on the signal, stop accepting and let calls in progress finish (up to a deadline).
//!
//! Body timeouts are layers of the service (`server`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// How long calls in progress may take to finish after the shutdown signal.
    pub drain_timeout: Duration,
}

/// Serve `app` on `listener` until `shutdown` completes (the listener may then serve another `app`).
pub async fn serve(
    listener: Arc<TcpListener>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            },
        ));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _open = OpenConnection::new();
            if let Err(e) = connection.await {
                tracing::debug!(client = %remote, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!("calls still in progress at shutdown were abandoned");
        }
    }
}

/// Counts a connection in the `iai_connections_open` gauge while it lives.
struct OpenConnection;

impl OpenConnection {
    fn new() -> Self {
        metrics::gauge!("iai_connections_open").increment(1.0);
        Self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("iai_connections_open").decrement(1.0);
    }
}
