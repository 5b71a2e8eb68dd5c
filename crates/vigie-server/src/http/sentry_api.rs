//! Errors as Sentry's web API answers them, for the part of it Vigie serves to `sentry-cli`
//! and the bundler plugins (`/api/0/…`): `{"detail": "…"}` with the status, which the CLI
//! prints as "sentry reported an error: …".

use super::AppError;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error as Sentry's API says it: `{"detail": "…"}` with the status.
pub struct SentryApiError(pub AppError);

impl<E: Into<AppError>> From<E> for SentryApiError {
    fn from(err: E) -> Self {
        SentryApiError(err.into())
    }
}

impl IntoResponse for SentryApiError {
    fn into_response(self) -> Response {
        let mut response = self.0.to_json_response();
        let detail = self.0.public_message();
        *response.body_mut() = axum::body::Body::from(json!({ "detail": detail }).to_string());
        response
            .headers_mut()
            .remove(axum::http::header::CONTENT_LENGTH);
        response
    }
}
