//! What the OTLP/HTTP endpoints share (`/v1/traces`, `/v1/metrics`): the request's encoding,
//! read from `Content-Type`, which is also the answer's, and reading the body in it.

use super::ingest_body::{off_runtime_if, IngestBody, INLINE_BYTES};
use super::AppError;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The two encodings OTLP/HTTP defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The request's encoding; any other `Content-Type` is 415, as OTLP/HTTP asks.
    pub fn of(headers: &HeaderMap) -> Result<Encoding, AppError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(AppError::UnsupportedMediaType(format!(
                "Content-Type {content_type:?} is not OTLP: send application/x-protobuf or \
                 application/json"
            ))),
        }
    }

    /// Parses an export's body with the parser of this encoding (a protobuf or a JSON one,
    /// given the time it was received), once what parsing builds is reserved from the ingest
    /// budget, off the runtime when the body is large. A body that does not parse is 400.
    pub async fn parse<T, E>(
        self,
        body: &mut IngestBody,
        protobuf: fn(&[u8], i64) -> Result<T, E>,
        json: fn(&[u8], i64) -> Result<T, E>,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        use vigie_protocol::weight::{json_elements, protobuf_elements};
        let (elements, parse) = match self {
            Encoding::Protobuf => (protobuf_elements(&body.bytes), protobuf),
            Encoding::Json => (json_elements(&body.bytes), json),
        };
        body.reserve_elements(elements).await?;
        let bytes = body.bytes.clone();
        let now = vigie_core::time::now_ns();
        off_runtime_if(bytes.len() > INLINE_BYTES, move || parse(&bytes, now))
            .await?
            .map_err(|e| AppError::BadRequest(e.to_string()))
    }

    /// The export's answer in this encoding: `message` as protobuf, or its OTLP JSON form.
    pub fn answer(self, message: impl prost::Message, json: serde_json::Value) -> Response {
        match self {
            Encoding::Protobuf => (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                message.encode_to_vec(),
            )
                .into_response(),
            Encoding::Json => Json(json).into_response(),
        }
    }
}
