//! The HTTP layer every request crosses, whatever its route.
//!
//! Outermost first: [`security`] sets the security headers and shapes every error as JSON under
//! `/api` or a page elsewhere; [`decompress`] inflates `Content-Encoding` bodies under a size
//! cap; `crate::metrics` counts and times the request. [`error::AppError`] is the one error type
//! handlers return; [`cookies`] reads and writes the few cookies Vigie uses.

pub mod cookies;
pub mod decompress;
pub mod error;
pub mod security;

pub use error::{ApiError, AppError, PageError};
