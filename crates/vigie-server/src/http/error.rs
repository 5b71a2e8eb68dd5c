//! One error type for every handler, rendered as JSON for the API and as a page for people.
//!
//! Handlers return [`ApiError`] (under `/api`) or [`PageError`] (the UI); both wrap [`AppError`].
//! Errors raised before a handler runs (body limits, decompression, unknown routes, axum's own
//! rejections) are rendered by [`AppError::respond_for`], which picks the form from the path.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vigie_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "authentication required: log in, or send an API token as 'Authorization: Bearer <token>'"
    )]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A value breaks a rule; `field` names it (`items[3].status`).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests { retry_after: u64, message: String },
    #[error("{0}")]
    Unavailable(String),
    /// Too much at once (writes queued, memory reserved): come back after `retry_after` s.
    #[error("{message}")]
    Overloaded { retry_after: u64, message: String },
    /// Storage refuses writes (disk full): nothing of the request was kept.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// Any other status, for errors raised outside Vigie's handlers (e.g. 405).
    #[error("{message}")]
    Other { status: StatusCode, message: String },
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) | AppError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Other { status, .. } => *status,
        }
    }

    /// A stable machine-readable name for the JSON form.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::Invalid { .. } => "invalid",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::Unavailable(_) => "unavailable",
            AppError::Overloaded { .. } => "overloaded",
            AppError::InsufficientStorage(_) => "disk_full",
            AppError::Internal(_) => "internal",
            AppError::Other { status, .. } if *status == StatusCode::METHOD_NOT_ALLOWED => {
                "method_not_allowed"
            }
            AppError::Other { status, .. } if *status == StatusCode::UNPROCESSABLE_ENTITY => {
                "unprocessable_entity"
            }
            AppError::Other { .. } => "request_failed",
        }
    }

    /// The error for a bare status and message (from outside Vigie's handlers).
    pub fn from_status(status: StatusCode, message: String) -> AppError {
        match status {
            StatusCode::BAD_REQUEST => AppError::BadRequest(message),
            StatusCode::NOT_FOUND => AppError::NotFound(message),
            StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(message),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(message),
            status => AppError::Other { status, message },
        }
    }

    /// An error a person caused and can fix (shown back on the form), as opposed to a fault.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            AppError::BadRequest(_)
                | AppError::Conflict(_)
                | AppError::NotFound(_)
                | AppError::Invalid { .. }
        )
    }

    /// A message that is safe to show: internal details go to the log, not the client.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "something went wrong inside Vigie; the details are in its log".to_string()
            }
            other => other.to_string(),
        }
    }

    /// The error as JSON: `{"error": {"code": …, "message": …}}`.
    pub fn to_json_response(&self) -> Response {
        let mut body = json!({"error": {"code": self.code(), "message": self.public_message()}});
        if let AppError::Invalid { field, .. } = self {
            body["error"]["field"] = json!(field);
        }
        self.finish(axum::Json(body).into_response())
    }

    /// The error as a standalone page with a way back.
    pub fn to_page_response(&self) -> Response {
        let page = ErrorPage {
            status: self.status().as_u16(),
            title: self.status().canonical_reason().unwrap_or("Error"),
            message: self.public_message(),
        };
        let html = page
            .render()
            .unwrap_or_else(|_| "<h1>Error</h1>".to_string());
        self.finish(axum::response::Html(html).into_response())
    }

    /// JSON for API paths, a page for everything else.
    pub fn respond_for(&self, path: &str) -> Response {
        if is_api_path(path) {
            self.to_json_response()
        } else {
            self.to_page_response()
        }
    }

    fn finish(&self, mut response: Response) -> Response {
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        match self {
            AppError::TooManyRequests { retry_after, .. }
            | AppError::Overloaded { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            AppError::InsufficientStorage(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(60));
            }
            AppError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"vigie\""),
                );
            }
            _ => {}
        }
        response
    }
}

/// Paths answered in JSON: the API, ingest endpoints and machine endpoints.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || path.starts_with("/live/")
        // OTLP and Loki push: their senders read JSON errors, never pages.
        || path.starts_with("/v1/")
        || path.starts_with("/loki/")
        // Monitor pings come from cron lines and scripts (`curl`), which read JSON as the
        // pings' own errors already are.
        || path.starts_with("/ping/")
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => AppError::NotFound(format!("{what} not found")),
            StoreError::Conflict(message) => AppError::Conflict(message),
            StoreError::Invalid { field, message } => AppError::Invalid {
                field: field.to_string(),
                message,
            },
            StoreError::WriterStopped => AppError::Unavailable("Vigie is shutting down".into()),
            StoreError::DiskFull(detail) => AppError::InsufficientStorage(format!(
                "disk full: Vigie's storage refuses writes ({detail}); nothing of this request \
                 was kept, send it again once space is freed"
            )),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<vigie_protocol::jobs::FieldError> for AppError {
    fn from(err: vigie_protocol::jobs::FieldError) -> Self {
        AppError::Invalid {
            field: err.field,
            message: err.message,
        }
    }
}

impl From<vigie_core::validate::InvalidName> for AppError {
    fn from(err: vigie_core::validate::InvalidName) -> Self {
        AppError::BadRequest(err.to_string())
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

/// An [`AppError`] answered as JSON.
#[derive(Debug)]
pub struct ApiError(pub AppError);

/// An [`AppError`] answered as a page.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(err: E) -> Self {
        ApiError(err.into())
    }
}

impl<E: Into<AppError>> From<E> for PageError {
    fn from(err: E) -> Self {
        PageError(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.to_json_response()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.to_page_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_stay_in_the_log() {
        let err = AppError::Internal("disk I/O error at /secret/path".into());
        let response = err.to_json_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.public_message().contains("/secret/path"));
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let err = AppError::TooManyRequests {
            retry_after: 4,
            message: "slow down".into(),
        };
        let response = err.respond_for("/login");
        assert_eq!(response.headers()[header::RETRY_AFTER], "4");
    }

    #[test]
    fn store_errors_map_to_statuses() {
        assert_eq!(
            AppError::from(StoreError::Conflict("dup".into())).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            AppError::from(StoreError::NotFound("project")).to_string(),
            "project not found"
        );
    }
}
