//! Login, logout, first-run setup and the project switcher.

use crate::accounts::manage;
use crate::auth::login::{self, ClientIp, Refused};
use crate::auth::{csrf, session};
use crate::http::{cookies, AppError, PageError};
use crate::hub::Change;
use crate::state::AppState;
use crate::web::{redirect_with, safe_next};
use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use vigie_core::validate::MIN_PASSWORD_LEN;

#[derive(Template)]
#[template(path = "accounts/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    username: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "accounts/setup.html")]
struct SetupPage {
    csrf: String,
    token: String,
    username: String,
    error: Option<String>,
    min_password: usize,
}

/// A page answer with extra headers (cookies) and a status.
fn page(
    status: StatusCode,
    template: &impl Template,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Result<Response, PageError> {
    let html = template
        .render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))?;
    let mut response = (status, Html(html)).into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The request's session, if any (for pages that anonymous visitors may see too).
pub struct CurrentSession(pub Option<vigie_store::Session>);

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        Ok(CurrentSession(session::of_request(state, parts).await?))
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(state): State<AppState>,
    CurrentSession(session): CurrentSession,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(query.next.as_deref());
    if session.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let flash = cookies::read_flash(&headers);
    let notice = match flash {
        Some((_, text)) => Some(text),
        None if state.store.count_users().await? == 0 => {
            Some("No account exists yet: open the setup address that `vigie serve` printed.".into())
        }
        None => None,
    };
    let (token, cookie) = csrf::anonymous_token(&state, &headers);
    let mut set = Vec::from_iter(cookie);
    if notice.is_some() {
        set.push(cookies::delete(
            cookies::FLASH,
            state.secure_cookies(&headers),
        ));
    }
    let form = LoginPage {
        csrf: token,
        next,
        username: String::new(),
        error: None,
        notice,
    };
    page(StatusCode::OK, &form, set)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let username = form.username.trim().to_lowercase();
    let retry = |error: String, status: StatusCode| {
        let again = LoginPage {
            csrf: form.csrf.clone(),
            next: safe_next(Some(&form.next)),
            username: username.clone(),
            error: Some(error),
            notice: None,
        };
        page(status, &again, None)
    };

    let user = match login::check(&state, &username, &ip, form.password.clone()).await? {
        Ok(user) => user,
        Err(Refused::Throttled { wait_s }) => {
            let mut response = retry(
                format!("Too many failed attempts. Wait {wait_s} s, then try again."),
                StatusCode::TOO_MANY_REQUESTS,
            )?;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait_s));
            return Ok(response);
        }
        Err(Refused::Wrong) => {
            return retry(
                "Wrong username or password. Check them and try again in a moment.".into(),
                StatusCode::UNAUTHORIZED,
            )
        }
    };
    let cookie = session::start(&state, user.id, &headers).await?;
    let mut response = Redirect::to(&safe_next(Some(&form.next))).into_response();
    let secure = state.secure_cookies(&headers);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookies::delete(cookies::CSRF, secure));
    Ok(response)
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let cleared = session::end(&state, &headers).await?;
    let mut response = redirect_with(
        "/login",
        true,
        "You are logged out.",
        state.secure_cookies(&headers),
    );
    response.headers_mut().append(header::SET_COOKIE, cleared);
    Ok(response)
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

pub async fn setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SetupQuery>,
) -> Result<Response, PageError> {
    if state.store.count_users().await? > 0 {
        return Ok(redirect_with(
            "/login",
            true,
            "Setup is done: log in with your account.",
            state.secure_cookies(&headers),
        ));
    }
    if !manage::setup_token_is_valid(state.store.as_ref(), &query.token).await? {
        return Err(AppError::Forbidden(
            "this setup link is not valid: use the exact address `vigie serve` printed".into(),
        )
        .into());
    }
    let (csrf, cookie) = csrf::anonymous_token(&state, &headers);
    let form = SetupPage {
        csrf,
        token: query.token,
        username: String::new(),
        error: None,
        min_password: MIN_PASSWORD_LEN,
    };
    page(StatusCode::OK, &form, cookie)
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
    confirm: String,
    #[serde(default)]
    csrf: String,
}

pub async fn setup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    let again = |error: String| {
        let form = SetupPage {
            csrf: form.csrf.clone(),
            token: form.token.clone(),
            username: form.username.clone(),
            error: Some(error),
            min_password: MIN_PASSWORD_LEN,
        };
        page(StatusCode::BAD_REQUEST, &form, None)
    };
    if form.password != form.confirm {
        return again("The two passwords differ. Type the same password twice.".into());
    }
    let user = match manage::create_first_admin(
        state.store.as_ref(),
        &form.token,
        &form.username,
        &form.password,
    )
    .await
    {
        Ok(user) => user,
        Err(err @ manage::ManageError::Invalid(_)) => return again(capitalize(&err.to_string())),
        Err(err) => return Err(AppError::from(err).into()),
    };
    state.hub.publish(Change::Users);
    tracing::info!(username = %user.username, "first admin created");
    let cookie = session::start(&state, user.id, &headers).await?;
    let secure = state.secure_cookies(&headers);
    let mut response = redirect_with(
        "/",
        true,
        &format!("Welcome, {}! Your admin account is ready.", user.username),
        secure,
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookies::delete(cookies::CSRF, secure));
    Ok(response)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}

#[derive(Deserialize)]
pub struct SwitchQuery {
    project: i64,
    next: Option<String>,
}

/// Remembers the project picked in the switcher (a display preference, so a GET is fine).
pub async fn switch_project(
    State(state): State<AppState>,
    _who: crate::auth::LoggedIn,
    headers: HeaderMap,
    Query(query): Query<SwitchQuery>,
) -> Response {
    let cookie = cookies::set(
        cookies::PROJECT,
        &query.project.to_string(),
        Some(365 * 86_400),
        state.secure_cookies(&headers),
    );
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&safe_next(query.next.as_deref())),
    )
        .into_response()
}
