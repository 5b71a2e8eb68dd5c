//! What every live page's stream shares.

use axum::http::{header, HeaderMap};

/// Whether a live URL is asked for as Server-Sent Events (else it answers one JSON snapshot).
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}
