//! Browser sessions: started at login or setup, found by cookie, ended at logout or expiry.

use crate::http::{cookies, AppError};
use crate::hub::Change;
use crate::state::AppState;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use vigie_core::secret::{random_hex, token_hash};
use vigie_core::Timestamp;
use vigie_store::{NewSession, Session};

/// The session found for a request, kept in its extensions so it is read from the store once.
#[derive(Clone)]
pub struct Resolved(pub Option<Session>);

/// The unexpired session named by the request's cookie, if any.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
    let Some(token) = cookies::get(headers, cookies::SESSION).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let (store, now) = (state.store.as_ref(), Timestamp::now());
    Ok(state
        .sessions
        .by_hash(store, &token_hash(token), now)
        .await?)
}

/// The request's session: the one the CSRF guard already resolved (every UI route passes it),
/// or a lookup for routes outside the guard.
pub async fn of_request(state: &AppState, parts: &Parts) -> Result<Option<Session>, AppError> {
    match parts.extensions.get::<Resolved>() {
        Some(Resolved(session)) => Ok(session.clone()),
        None => current(state, &parts.headers).await,
    }
}

/// Starts a session for `user_id`; returns the `Set-Cookie` header value that carries it.
pub async fn start(
    state: &AppState,
    user_id: i64,
    headers: &HeaderMap,
) -> Result<HeaderValue, AppError> {
    let token = random_hex(32);
    state
        .store
        .create_session(&NewSession {
            token_hash: token_hash(&token),
            user_id,
            csrf_token: random_hex(16),
            expires_at: Timestamp::now().plus(state.session_lifetime),
        })
        .await?;
    Ok(cookies::set(
        cookies::SESSION,
        &token,
        Some(state.session_lifetime.as_secs()),
        state.secure_cookies(headers),
    ))
}

/// Ends the request's session (if any); returns the header value that clears the cookie.
pub async fn end(state: &AppState, headers: &HeaderMap) -> Result<HeaderValue, AppError> {
    if let Some(token) = cookies::get(headers, cookies::SESSION) {
        state.store.delete_session(&token_hash(token)).await?;
        // Every instance's kept sessions go stale, so the cookie is refused everywhere now.
        state.hub.publish(Change::Users);
    }
    Ok(cookies::delete(
        cookies::SESSION,
        state.secure_cookies(headers),
    ))
}
