//! CSRF protection for every state-changing form.
//!
//! Each session has its own CSRF token; forms carry it in a hidden `csrf` field. Forms shown
//! before login (login, setup) use a random token set in the `vigie_csrf` cookie and echoed in
//! the form (double submit). [`guard`] runs before every UI handler: a POST whose `csrf` field
//! does not match is refused with 403 and never reaches the handler. `SameSite=Lax` cookies are
//! a second line of defence.

use super::session::{self, Resolved};
use crate::http::{cookies, AppError};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use vigie_core::secret::{constant_time_eq, random_hex};

/// Largest form body the UI accepts.
pub const MAX_FORM_BYTES: usize = 64 << 10;

/// The name of the hidden field.
pub const FIELD: &str = "csrf";

/// The pre-login CSRF token: the one in the cookie, or a new one with the cookie to set.
pub fn anonymous_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookies::get(headers, cookies::CSRF).filter(|t| t.len() == 32) {
        Some(token) => (token.to_string(), None),
        None => {
            let token = random_hex(16);
            let cookie = cookies::set(cookies::CSRF, &token, None, state.secure_cookies(headers));
            (token, Some(cookie))
        }
    }
}

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    match check(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(err) => err.respond_for(&path),
    }
}

async fn check(state: &AppState, req: Request) -> Result<Request, AppError> {
    let session = session::current(state, req.headers()).await?;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let mut req = req;
        req.extensions_mut().insert(Resolved(session));
        return Ok(req);
    }
    let expected = match &session {
        Some(s) => Some(s.csrf_token.clone()),
        None => cookies::get(req.headers(), cookies::CSRF).map(str::to_string),
    };
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| AppError::PayloadTooLarge("the form is larger than 64 KiB".into()))?;
    let given = form_field(&bytes, FIELD);
    let valid = matches!((&expected, &given), (Some(e), Some(g)) if constant_time_eq(e, g));
    if !valid {
        return Err(AppError::Forbidden(
            "this form has expired or did not come from this Vigie; reload the page and try again"
                .into(),
        ));
    }
    parts.extensions.insert(Resolved(session));
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field_among_others() {
        assert_eq!(
            form_field(b"name=a%20b&csrf=abc123&x=1", FIELD).as_deref(),
            Some("abc123")
        );
        assert_eq!(form_field(b"name=x", FIELD), None);
    }
}
