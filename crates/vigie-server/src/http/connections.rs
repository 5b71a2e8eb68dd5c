//! Accepting connections and serving the router on them, until shutdown.
//!
//! `axum::serve` did this, but it gives hyper no timer, so a request's headers may take
//! forever: a client that opens a connection and never finishes its first line holds it, and a
//! file descriptor, for as long as it likes. About 1,000 such connections made a server with
//! systemd's default limit of 1,024 open files answer nobody, SDKs and log shippers included
//! (accept failed with "Too many open files" until they went away). Clients that vanish
//! without closing (a laptop put to sleep, a NAT that forgot the connection) leave the same
//! kind of connection behind, a few a day, for the life of the process. Here the headers of
//! each request must arrive within [`HEADER_TIMEOUT`] of the connection's turn to read them,
//! and a connection idle between requests is closed after as long. Once its headers are in, a
//! request takes the time its handler takes: a live stream (SSE) is never cut by this. (A
//! client that keeps opening such connections still needs a proxy's per-address limits in
//! front; the README's deployment section has one.)
//!
//! ```text
//! listener ─ accept (an error, e.g. no file descriptor left: wait 1 s and go on)
//!   └─ one task per connection: hyper HTTP/1 (HEADER_TIMEOUT) ─ the router, told the peer
//!      address (ConnectInfo) as `into_make_service_with_connect_info` would
//!   (connections timed out and accepts that failed are counted in `/metrics`)
//! shutdown ─ stop accepting ─ every connection finishes the request it is answering, then
//!            closes ─ all awaited
//! ```

use crate::metrics::Metrics;
use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a request's headers may take to arrive, and an idle connection may stay open
/// (hyper's own default, and half of nginx's `client_header_timeout`).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then lets every connection finish
/// the request it is answering and awaits them all.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    // Connections hold a receiver each: the sender sees when the last one is gone.
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    metrics.accept_failed.fetch_add(1, Ordering::Relaxed);
                    // Out of file descriptors, or a connection reset before it was taken:
                    // nothing to do for it, and spinning would only burn a core.
                    tracing::error!(%err, "accept failed; accepting again in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app
            .clone()
            .map_request(move |mut request: axum::extract::Request| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let service = TowerToHyperService::new(app.map_request(
            |request: hyper::Request<hyper::body::Incoming>| request.map(axum::body::Body::new),
        ));
        let mut stopping = stopped.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let mut told = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(err) = served {
                            let timed_out = err
                                .downcast_ref::<hyper::Error>()
                                .is_some_and(hyper::Error::is_timeout);
                            if timed_out {
                                metrics.connections_timed_out.fetch_add(1, Ordering::Relaxed);
                            }
                            tracing::debug!(%peer, %err, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stopping.changed(), if !told => {
                        told = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(stopping);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopped);
    stop.closed().await;
}
