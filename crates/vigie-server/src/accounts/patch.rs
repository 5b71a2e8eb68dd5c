//! The body of a `PATCH`: a JSON object naming the fields to change, each with a value.
//!
//! serde alone would take `[null, null]` (a struct may be read from a sequence) or
//! `{"name": null}` as "change nothing" and the handler would answer 200 having done nothing,
//! which a client reads as success. A patch is refused (422, naming the field) unless it is an
//! object with at least one field and no `null`: leaving a field out is how to keep it.

use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::extract::{FromRequest, Request};
use axum::Json;
use serde::de::DeserializeOwned;

pub struct Patch<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Patch<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(|e| AppError::from_status(e.status(), e.body_text()))?;
        Ok(Patch(fields(value)?))
    }
}

/// The patch's fields as `T`, or why they are not a patch.
pub fn fields<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    let invalid = |field: &str, message: &str| AppError::Invalid {
        field: field.into(),
        message: message.into(),
    };
    let Some(object) = value.as_object() else {
        return Err(invalid(
            "body",
            "a JSON object with the fields to change, e.g. {\"name\": \"…\"}",
        ));
    };
    if object.is_empty() {
        return Err(invalid("body", "names no field to change"));
    }
    if let Some((field, _)) = object.iter().find(|(_, v)| v.is_null()) {
        return Err(invalid(
            field,
            "may not be null: leave the field out to keep its value",
        ));
    }
    serde_json::from_value(value).map_err(|e| invalid("body", &e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Change {
        name: Option<String>,
        #[allow(dead_code)] // read by serde only: its presence is what is tested
        role: Option<String>,
    }

    fn field_of(err: AppError) -> String {
        match err {
            AppError::Invalid { field, .. } => field,
            other => panic!("not a 422: {other}"),
        }
    }

    #[test]
    fn only_objects_naming_fields_with_values_are_patches() {
        let ok: Change = fields(json!({"name": "shop"})).unwrap();
        assert_eq!(ok.name.as_deref(), Some("shop"));
        assert_eq!(
            field_of(fields::<Change>(json!([null, null])).unwrap_err()),
            "body"
        );
        assert_eq!(field_of(fields::<Change>(json!({})).unwrap_err()), "body");
        assert_eq!(
            field_of(fields::<Change>(json!({"name": null})).unwrap_err()),
            "name"
        );
        assert_eq!(
            field_of(fields::<Change>(json!({"nmae": "x"})).unwrap_err()),
            "body"
        );
        assert_eq!(
            field_of(fields::<Change>(json!("shop")).unwrap_err()),
            "body"
        );
    }
}
