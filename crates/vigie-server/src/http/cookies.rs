//! The few cookies Vigie sets, read and written without a cookie framework.
//!
//! - `vigie_session`: the login session (random, stored hashed server-side);
//! - `vigie_csrf`: the CSRF token for forms shown before login (login, setup);
//! - `vigie_project`: the project picked in the switcher (a display preference);
//! - `vigie_flash`: a one-shot message shown on the next page ("Project created").
//!
//! Every cookie is `HttpOnly`, `SameSite=Lax` and `Path=/`, plus `Secure` when the request
//! arrived over HTTPS (directly per `public_url`, or via a proxy's `X-Forwarded-Proto`).

use axum::http::{HeaderMap, HeaderValue};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

pub const SESSION: &str = "vigie_session";
pub const CSRF: &str = "vigie_csrf";
pub const PROJECT: &str = "vigie_project";
pub const FLASH: &str = "vigie_flash";

/// The value of cookie `name` in the request, if present.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value. `max_age` of `None` makes a browser-session cookie; `Some(0)` deletes.
pub fn set(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).expect("cookie names and values are ASCII")
}

pub fn delete(name: &str, secure: bool) -> HeaderValue {
    set(name, "", Some(0), secure)
}

/// A flash message for the next page: `ok` or `error`, then the text.
pub fn flash(ok: bool, message: &str, secure: bool) -> HeaderValue {
    let value = format!(
        "{}:{}",
        if ok { "ok" } else { "error" },
        utf8_percent_encode(message, NON_ALPHANUMERIC)
    );
    set(FLASH, &value, Some(60), secure)
}

/// The flash message in the request, as (is_ok, text).
pub fn read_flash(headers: &HeaderMap) -> Option<(bool, String)> {
    let (kind, text) = get(headers, FLASH)?.split_once(':')?;
    let text = percent_decode_str(text).decode_utf8_lossy().into_owned();
    (!text.is_empty()).then_some((kind == "ok", text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            HeaderValue::from_static("a=1; vigie_session=abc; b=2"),
        );
        headers.append("cookie", HeaderValue::from_static("vigie_csrf=xyz"));
        assert_eq!(get(&headers, SESSION), Some("abc"));
        assert_eq!(get(&headers, CSRF), Some("xyz"));
        assert_eq!(get(&headers, "missing"), None);
    }

    #[test]
    fn cookies_are_locked_down() {
        let c = set(SESSION, "v", Some(60), true);
        let c = c.to_str().unwrap();
        for part in ["HttpOnly", "SameSite=Lax", "Secure", "Max-Age=60", "Path=/"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set(SESSION, "v", None, false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }

    #[test]
    fn flash_round_trips_any_text() {
        let value = flash(false, "Name \"x\"; taken, été", false);
        let cookie = value
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_str(&cookie).unwrap());
        assert_eq!(
            read_flash(&headers),
            Some((false, "Name \"x\"; taken, été".to_string()))
        );
    }
}
