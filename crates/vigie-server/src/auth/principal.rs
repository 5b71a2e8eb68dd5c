//! Extractors that say who is calling and refuse those who may not.

use super::session;
use crate::http::{ApiError, AppError, PageError};
use crate::state::AppState;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Redirect, Response};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use vigie_core::secret::{constant_time_eq, token_hash};
use vigie_core::{Access, ApiToken, Timestamp, User};

/// A logged-in person (any role). Anonymous requests are sent to the login page.
pub struct LoggedIn {
    pub user: User,
    /// This session's CSRF token, for the forms on the page.
    pub csrf: String,
}

/// A logged-in admin. Viewers get 403.
pub struct AdminUser(pub LoggedIn);

/// Either extractor, as the logged-in person it holds (a page's chrome needs no more).
impl AsRef<LoggedIn> for LoggedIn {
    fn as_ref(&self) -> &LoggedIn {
        self
    }
}

impl AsRef<LoggedIn> for AdminUser {
    fn as_ref(&self) -> &LoggedIn {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LoggedIn
where
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let state = &AppState::from_ref(state);
        let session = session::of_request(state, parts)
            .await
            .map_err(|e| PageError(e).into_response())?;
        match session {
            Some(s) => Ok(LoggedIn {
                user: s.user,
                csrf: s.csrf_token,
            }),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!(
                    "/login?next={}",
                    utf8_percent_encode(next, NON_ALPHANUMERIC)
                );
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminUser
where
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let who = LoggedIn::from_request_parts(parts, state).await?;
        if who.user.role.allows(Access::Admin) {
            Ok(AdminUser(who))
        } else {
            Err(PageError(AppError::Forbidden(
                "only admins can change settings; ask an admin to do it or to make you one".into(),
            ))
            .into_response())
        }
    }
}

/// Who is calling the JSON API.
#[derive(Clone, Debug)]
pub enum Caller {
    Token(ApiToken),
    User(User),
}

/// An authenticated API caller allowed to make this request: reads (GET, HEAD) need read access,
/// every other method admin access.
pub struct ApiCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for ApiCaller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = &AppState::from_ref(state);
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        let needed = if safe { Access::Read } else { Access::Admin };

        let basic = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(vigie_protocol::basic_credentials);
        if let Some((username, given)) = basic {
            return basic_caller(state, parts, &username, given, needed).await;
        }
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(vigie_protocol::bearer_token)
                .ok_or(AppError::Unauthorized)?;
            let hash = token_hash(token);
            let found = state
                .tokens
                .by_hash(&*state.store, &hash)
                .await?
                .ok_or(AppError::Unauthorized)?;
            if !found.scope.allows(needed) {
                return Err(AppError::Forbidden(format!(
                    "token {:?} has {} scope; this request needs admin scope",
                    found.name, found.scope
                ))
                .into());
            }
            touch_later(state, &hash, &found);
            return Ok(ApiCaller(Caller::Token(found)));
        }

        // The UI's own scripts call the API with the session cookie; a state-changing call must
        // then also carry the session's CSRF token in a header, which other sites cannot read.
        let session = session::of_request(state, parts)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if !safe {
            let given = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(given, &session.csrf_token) {
                return Err(AppError::Forbidden(
                    "a cookie-authenticated API call that changes data needs the X-CSRF-Token header"
                        .into(),
                )
                .into());
            }
        }
        if !session.user.role.allows(needed) {
            return Err(AppError::Forbidden(format!(
                "user {:?} is a {}; this request needs an admin",
                session.user.username, session.user.role
            ))
            .into());
        }
        Ok(ApiCaller(Caller::User(session.user)))
    }
}

/// A user by HTTP Basic credentials (Flower's `--basic-auth` scripts), throttled as the login
/// form is. No CSRF check: a browser never sends these on its own to another site's request.
async fn basic_caller(
    state: &AppState,
    parts: &mut Parts,
    username: &str,
    given: String,
    needed: Access,
) -> Result<ApiCaller, ApiError> {
    let Ok(ip) = super::login::ClientIp::from_request_parts(parts, state).await;
    let username = username.trim().to_lowercase();
    let user = match super::login::check(state, &username, &ip.0, given).await? {
        Ok(user) => user,
        Err(super::login::Refused::Throttled { wait_s }) => {
            return Err(AppError::TooManyRequests {
                retry_after: wait_s,
                message: format!("too many failed logins: wait {wait_s} s"),
            }
            .into())
        }
        Err(super::login::Refused::Wrong) => return Err(AppError::Unauthorized.into()),
    };
    if !user.role.allows(needed) {
        return Err(AppError::Forbidden(format!(
            "user {:?} is a {}; this request needs an admin",
            user.username, user.role
        ))
        .into());
    }
    Ok(ApiCaller(Caller::User(user)))
}

/// An API caller of Sentry's web API subset (`sentry-cli`), refused as Sentry refuses
/// (`{"detail": …}`) before the body is read: an API token (or a logged-in session) with admin scope for writes.
pub struct SentryCaller(pub ApiCaller);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SentryCaller
where
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = crate::http::sentry_api::SentryApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, crate::http::sentry_api::SentryApiError> {
        ApiCaller::from_request_parts(parts, state)
            .await
            .map(SentryCaller)
            .map_err(|ApiError(err)| crate::http::sentry_api::SentryApiError(err))
    }
}

/// Records when a token was last used, at most once a minute, off the request's path.
fn touch_later(state: &AppState, hash: &str, token: &ApiToken) {
    let now = Timestamp::now();
    let stale = token
        .last_used_at
        .is_none_or(|t| now.millis() - t.millis() > 60_000);
    if stale {
        state.tokens.used(hash, now);
        let (store, id) = (state.store.clone(), token.id);
        tokio::spawn(async move {
            if let Err(err) = store.touch_api_token(id, now).await {
                tracing::warn!(%err, "could not record api token use");
            }
        });
    }
}
