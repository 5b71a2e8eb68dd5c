//! Every request gets its answer, even one answered before its body was read.
//!
//! Vigie answers many requests without reading their bodies: an unknown key (401), too much in
//! flight (503), a declared length over the limit (413) — on purpose, so a refused body costs
//! nothing. But when a server closes a connection whose socket still holds unread bytes, the
//! kernel sends a reset, and the reset can destroy the answer before the client reads it: the
//! client sees "broken pipe" or "connection reset" and no status at all (curl's `000`), and
//! cannot know whether to retry. Measured: 4–15 of 600 parallel uploads, every run, whenever
//! the ingest budget was taken.
//!
//! ```text
//! request ─▶ body behind a shared handle ─▶ handler (reads all, some, or none of it)
//!                                              │ response
//!                                              ▼
//!            body left unread? read and discard up to DRAIN_BYTES within DRAIN_TIME
//!                 │ all of it: the connection stays open for the next request
//!                 │ more, or too slow: the answer says `Connection: close`
//!                 ▼
//!            response
//! ```
//!
//! Discarding costs bandwidth, not memory: frames are dropped as they arrive.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The most of an unread body discarded so its sender reads the answer (a bigger one is a
/// refused upload by design; closing costs it its answer, and its sender was told the limit).
pub const DRAIN_BYTES: usize = 32 << 20;
/// The longest Vigie waits for the rest of an unread body.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

type Shared = Arc<Mutex<Option<Body>>>;

/// The request's body as the handler sees it: frames come from the body kept in the
/// middleware, so whatever the handler leaves stays there to be drained.
struct SharedBody(Shared);

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().is_none_or(http_body::Body::is_end_stream)
    }
}

/// Middleware: hands the handler a shared view of the body, then drains what it left.
pub async fn drain(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if http_body::Body::is_end_stream(&body) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let shared: Shared = Arc::new(Mutex::new(Some(body)));
    let req = Request::from_parts(parts, Body::new(SharedBody(shared.clone())));
    let mut response = next.run(req).await;
    let left = shared.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(body) = left {
        if !http_body::Body::is_end_stream(&body) && !discard(body).await {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Reads and drops the rest of `body`; `true` when it ended within the limits.
async fn discard(mut body: Body) -> bool {
    let read_all = async {
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > DRAIN_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read_all)
        .await
        .unwrap_or(false)
}
