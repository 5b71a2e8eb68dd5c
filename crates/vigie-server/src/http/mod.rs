//! The HTTP layer every request crosses, whatever its route.
//!
//! Outermost first: [`security`] sets the security headers and shapes every error as JSON under
//! `/api` (and the OTLP and Loki paths) or a page elsewhere; `crate::metrics` counts and times
//! the request. Ingest handlers read their bodies through [`ingest_body`] after the caller is
//! authenticated: under a global memory budget, inflated under a cap; [`unread_body`] drains
//! what a handler answered without reading, so its sender gets the answer.
//! [`error::AppError`] is the one error type handlers return; [`cookies`] reads and writes the
//! few cookies Vigie uses; [`otlp`] reads the encoding of an OTLP export; [`paging`] sizes a list. [`Routes`] is what a feature serves, by the guard each part needs.
//! Beneath them all, [`connections`] accepts connections and holds each request's headers to a
//! deadline.

pub mod connections;
pub mod cookies;
pub mod error;
pub mod ingest_body;
pub mod otlp;
pub mod paging;
mod routes;
pub mod security;
pub mod sentry_api;
pub mod unread_body;

pub use error::{ApiError, AppError, PageError};
pub use routes::{Routes, Table};
