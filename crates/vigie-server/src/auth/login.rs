//! Checking a user's password, throttled: the login form and HTTP Basic credentials on the
//! API (Flower's `--basic-auth` scripts) both go through [`check`].
//!
//! ```text
//! check(username, ip, password)
//!   ─► failures of this username / ip / pair (in the database: every instance sees them)
//!   ─► too many lately: Throttled (wait_s) — the password is not even looked at
//!   ─► a slowdown that grows with the username's failures
//!   ─► a turn to hash (at most `password::AT_ONCE` at once) ─► throttled again, counting the
//!      failures recorded while it waited ─► the password hash compared
//!   ─► wrong: a failure recorded for each key; right: the username's and pair's cleared
//! ```

use crate::auth::password;
use crate::http::AppError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::SocketAddr;
use vigie_core::login_limiter::{self, Failures as LoginFailures, LoginKeys};
use vigie_core::{Timestamp, User};

/// Why a password was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures lately: try again after `wait_s` seconds.
    Throttled { wait_s: u64 },
    /// No such user, or not their password (not told apart).
    Wrong,
}

/// The user whose password this is, or why not.
pub async fn check(
    state: &AppState,
    username: &str,
    ip: &str,
    given: String,
) -> Result<Result<User, Refused>, AppError> {
    let keys = LoginKeys::new(username, ip);
    let username_failures = match throttle(state, &keys).await? {
        Ok(failures) => failures,
        Err(throttled) => return Ok(Err(throttled)),
    };
    let slowdown = login_limiter::slowdown(username_failures.as_ref(), Timestamp::now());
    if !slowdown.is_zero() {
        tokio::time::sleep(slowdown).await;
    }
    // Hashes take turns (`password`); the failures recorded while this attempt waited count
    // for it, so a burst of wrong passwords is throttled rather than hashed in a queue.
    let turn = password::turn().await;
    if let Err(throttled) = throttle(state, &keys).await? {
        return Ok(Err(throttled));
    }
    let credentials = state.store.credentials(username).await?;
    let hash = credentials.as_ref().map(|c| c.password_hash.clone());
    if !password::verify(turn, given, hash).await {
        state
            .store
            .record_login_failure(&keys.all(), Timestamp::now())
            .await?;
        tracing::info!(%username, %ip, "failed login");
        return Ok(Err(Refused::Wrong));
    }
    state
        .store
        .clear_login_failures(&keys.cleared_by_success())
        .await?;
    Ok(Ok(credentials.expect("verified credentials exist").user))
}

/// The username's recent failures (for the slowdown), or `Throttled` when any of `keys` had
/// too many lately.
async fn throttle(
    state: &AppState,
    keys: &LoginKeys,
) -> Result<Result<Option<LoginFailures>, Refused>, AppError> {
    let failures = state.store.login_failures(&keys.all()).await?;
    let counted = |key: &String| failures.iter().find(|(k, _)| k == key).map(|(_, f)| f);
    let wait = login_limiter::wait(keys.refusing.iter().filter_map(counted), Timestamp::now());
    if wait.is_zero() {
        Ok(Ok(counted(&keys.username).copied()))
    } else {
        Ok(Err(Refused::Throttled {
            wait_s: wait.as_secs_f64().ceil() as u64,
        }))
    }
}

/// The client's address, for login throttling.
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        Ok(ClientIp(client_ip(peer, forwarded)))
    }
}

/// Who is on the other end: the peer, or, when the peer is a reverse proxy on this machine
/// (a loopback address), the last address the proxy added to `X-Forwarded-For` (nginx's
/// `$proxy_add_x_forwarded_for`). Without this, every login behind the proxy would share the
/// proxy's address, and one guesser would lock everyone out. Addresses further left were
/// written by the client and could be anything; they are not read.
fn client_ip(peer: Option<std::net::IpAddr>, forwarded: Option<&str>) -> String {
    let Some(peer) = peer else {
        return "unknown".into();
    };
    if peer.is_loopback() {
        let last = forwarded
            .and_then(|f| f.rsplit(',').next())
            .and_then(|a| a.trim().parse::<std::net::IpAddr>().ok());
        if let Some(client) = last {
            return client.to_string();
        }
    }
    peer.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_proxy_names_the_client_and_nobody_else_can() {
        let local = Some("127.0.0.1".parse().unwrap());
        let remote = Some("203.0.113.7".parse().unwrap());
        let chain = Some("10.9.9.9, 198.51.100.4");
        assert_eq!(client_ip(local, chain), "198.51.100.4");
        assert_eq!(
            client_ip(remote, chain),
            "203.0.113.7",
            "a remote peer's header is not trusted"
        );
        assert_eq!(client_ip(local, None), "127.0.0.1");
        assert_eq!(client_ip(local, Some("not an address")), "127.0.0.1");
        assert_eq!(client_ip(None, chain), "unknown");
    }
}
