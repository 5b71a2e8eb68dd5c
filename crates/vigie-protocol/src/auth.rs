//! Where clients put their project key, and the DSN that tells them where to send data.
//!
//! Sentry SDKs authenticate ingest requests three ways, and Vigie's own ingest endpoints accept
//! the same plus a bearer token, so one function serves them all:
//!
//! 1. `X-Sentry-Auth: Sentry sentry_version=7, sentry_client=…, sentry_key=<key>` (server SDKs);
//! 2. `Authorization: Sentry sentry_key=<key>, …` or `Authorization: Bearer <key>`;
//! 3. `?sentry_key=<key>&sentry_version=7` in the query string (browser SDKs, to avoid CORS
//!    preflights).
//!
//! Log shippers that only know HTTP Basic auth (Promtail's `basic_auth`, Vector's `auth`) send
//! `Authorization: Basic base64(user:key)`: the password is the key, or the user name when the
//! password is empty.
//!
//! The first source that names a key wins, in that order. The key is returned as given: the
//! caller looks it up, so an unknown key and a malformed one are both simply "not a project".

use percent_encoding::percent_decode_str;
use std::fmt;
use thiserror::Error;

/// The raw request parts a project key may be found in.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeySources<'a> {
    pub x_sentry_auth: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub query: Option<&'a str>,
}

/// The project key a request presents, if any (see the module docs for where it is looked for).
pub fn find_project_key(sources: KeySources<'_>) -> Option<String> {
    sources
        .x_sentry_auth
        .and_then(sentry_auth_key)
        .or_else(|| sources.authorization.and_then(authorization_key))
        .or_else(|| sources.query.and_then(query_key))
}

/// `Sentry k=v, k=v` → the value of `sentry_key`.
fn sentry_auth_key(header: &str) -> Option<String> {
    let rest = strip_prefix_ignore_case(header.trim(), "sentry")?;
    rest.split(',')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.trim() == "sentry_key")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

fn authorization_key(header: &str) -> Option<String> {
    match bearer_token(header) {
        Some(token) => Some(token.to_string()),
        None => basic_key(header).or_else(|| sentry_auth_key(header.trim())),
    }
}

/// `Basic base64(user:password)` → the password, or the user when the password is empty.
fn basic_key(header: &str) -> Option<String> {
    use base64::Engine;
    let encoded = strip_prefix_ignore_case(header.trim(), "basic")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':').unwrap_or((&text, ""));
    let key = if password.is_empty() { user } else { password };
    (!key.is_empty()).then(|| key.to_string())
}

/// The token of an `Authorization: Bearer <token>` header (scheme matched without regard to
/// case, surrounding spaces trimmed); `None` for other schemes or an empty token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let token = strip_prefix_ignore_case(header.trim(), "bearer")?.trim();
    (!token.is_empty()).then_some(token)
}

/// The user name and password of an `Authorization: Basic …` header (RFC 7617), as Flower's
/// `--basic-auth` scripts send them.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = strip_prefix_ignore_case(header.trim(), "basic")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn query_key(query: &str) -> Option<String> {
    query_value(query, "sentry_key")
}

/// The non-empty value of `name` in a query string, decoded (`%XX` and `+`).
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|v| !v.is_empty())
}

/// `prefix` followed by whitespace (or the end), matched without regard to case.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    let rest = &s[prefix.len()..];
    (head.eq_ignore_ascii_case(prefix)
        && (rest.is_empty() || rest.starts_with(char::is_whitespace)))
    .then_some(rest)
}

/// A Sentry DSN: `{scheme}://{public_key}@{host}[:{port}]{path}/{project_id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dsn {
    pub scheme: String,
    pub public_key: String,
    pub host: String,
    pub port: Option<u16>,
    /// Any path before the project id, without a trailing slash (usually empty).
    pub path: String,
    pub project_id: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DsnError {
    #[error("a DSN starts with http:// or https://")]
    Scheme,
    #[error("a DSN names its public key before '@'")]
    MissingKey,
    #[error("a DSN names a host")]
    MissingHost,
    #[error("the DSN's port is not a number from 1 to 65535")]
    BadPort,
    #[error("a DSN ends with the project id")]
    MissingProject,
    #[error("a DSN holds no spaces or control characters (was it pasted with a line break?)")]
    Unprintable,
}

impl Dsn {
    /// The DSN of a project served at `base_url` (e.g. `http://127.0.0.1:8610`).
    pub fn for_project(base_url: &str, public_key: &str, project_id: i64) -> Result<Dsn, DsnError> {
        let mut dsn = Dsn::parse(&format!(
            "{}/{}",
            insert_key(base_url.trim_end_matches('/'), public_key)?,
            project_id
        ))?;
        dsn.public_key = public_key.to_string();
        Ok(dsn)
    }

    /// Where the server is: `http://host:port[/path]`, without the key and project.
    pub fn server_url(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!("/{}", self.path.trim_start_matches('/'))
        };
        format!("{}://{}{port}{path}", self.scheme, self.host)
    }

    pub fn parse(raw: &str) -> Result<Dsn, DsnError> {
        let raw = raw.trim();
        // A NUL or a line break inside would print as something that parses differently (or
        // splits a header line): a DSN is one printable word.
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(DsnError::Unprintable);
        }
        let (scheme, rest) = raw.split_once("://").ok_or(DsnError::Scheme)?;
        if scheme != "http" && scheme != "https" {
            return Err(DsnError::Scheme);
        }
        let (userinfo, rest) = rest.split_once('@').ok_or(DsnError::MissingKey)?;
        // A legacy DSN carries `key:secret`; only the key identifies the project.
        let public_key = userinfo.split(':').next().unwrap_or_default();
        if public_key.is_empty() {
            return Err(DsnError::MissingKey);
        }
        let (authority, path) = rest.split_once('/').ok_or(DsnError::MissingProject)?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port: u16 = port.parse().map_err(|_| DsnError::BadPort)?;
                if port == 0 {
                    return Err(DsnError::BadPort);
                }
                (host, Some(port))
            }
            _ => (authority, None),
        };
        if host.is_empty() {
            return Err(DsnError::MissingHost);
        }
        let path = path.trim_end_matches('/');
        let (prefix, project_id) = match path.rsplit_once('/') {
            Some((prefix, id)) => (format!("/{prefix}"), id),
            None => (String::new(), path),
        };
        if project_id.is_empty() {
            return Err(DsnError::MissingProject);
        }
        Ok(Dsn {
            scheme: scheme.to_string(),
            public_key: public_key.to_string(),
            host: host.to_string(),
            port,
            path: prefix,
            project_id: project_id.to_string(),
        })
    }
}

fn insert_key(base_url: &str, key: &str) -> Result<String, DsnError> {
    let (scheme, rest) = base_url.split_once("://").ok_or(DsnError::Scheme)?;
    Ok(format!("{scheme}://{key}@{rest}"))
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}@{}", self.scheme, self.public_key, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}/{}", self.path, self.project_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_as_rfc_7617_says() {
        // "alice:s3cr:et" — a colon in the password stays in it.
        assert_eq!(
            basic_credentials("Basic YWxpY2U6czNjcjpldA=="),
            Some(("alice".into(), "s3cr:et".into()))
        );
        assert_eq!(
            basic_credentials("basic   YWxpY2U6czNjcjpldA== "),
            Some(("alice".into(), "s3cr:et".into()))
        );
        for bad in [
            "Bearer abc",
            "Basic",
            "Basic !!!",
            "Basic YWxpY2U=",
            "Basicx YQ==",
        ] {
            assert_eq!(basic_credentials(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_dsn_names_its_server() {
        let dsn = Dsn::parse("http://abc@127.0.0.1:8610/1").unwrap();
        assert_eq!(dsn.server_url(), "http://127.0.0.1:8610");
        let dsn = Dsn::parse("https://abc@vigie.example.org/sub/7").unwrap();
        assert_eq!(dsn.server_url(), "https://vigie.example.org/sub");
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn find(x: Option<&str>, a: Option<&str>, q: Option<&str>) -> Option<String> {
        find_project_key(KeySources {
            x_sentry_auth: x,
            authorization: a,
            query: q,
        })
    }

    #[test]
    fn reads_the_sentry_python_header() {
        let header = format!(
            "Sentry sentry_key={KEY}, sentry_version=7, sentry_client=sentry.python/2.19.0"
        );
        assert_eq!(find(Some(&header), None, None).as_deref(), Some(KEY));
        let spaced = format!("Sentry sentry_version=7,sentry_client=x, sentry_key = {KEY} ");
        assert_eq!(find(Some(&spaced), None, None).as_deref(), Some(KEY));
    }

    #[test]
    fn reads_authorization_bearer_and_sentry_schemes() {
        assert_eq!(find(None, Some("Bearer abc"), None).as_deref(), Some("abc"));
        assert_eq!(
            find(None, Some("bearer   abc  "), None).as_deref(),
            Some("abc")
        );
        let sentry = format!("Sentry sentry_key={KEY}");
        assert_eq!(find(None, Some(&sentry), None).as_deref(), Some(KEY));
        assert_eq!(find(None, Some("Bearer "), None), None);
        // Basic: the password is the key (Promtail's basic_auth), else the user name.
        assert_eq!(
            find(None, Some("Basic dmlnaWU6c2VjcmV0"), None).as_deref(),
            Some("secret")
        );
        assert_eq!(
            find(None, Some("basic c2VjcmV0Og=="), None).as_deref(),
            Some("secret")
        );
        assert_eq!(find(None, Some("Basic not base64!"), None), None);
        assert_eq!(find(None, Some("Basic Og=="), None), None);
        assert_eq!(find(None, Some("Bearerabc"), None), None);
    }

    #[test]
    fn reads_the_query_string() {
        let q = format!("sentry_version=7&sentry_key={KEY}&sentry_client=js");
        assert_eq!(find(None, None, Some(&q)).as_deref(), Some(KEY));
        assert_eq!(
            find(None, None, Some("sentry_key=a%20b")).as_deref(),
            Some("a b")
        );
        assert_eq!(find(None, None, Some("sentry_key=")), None);
        assert_eq!(find(None, None, Some("other=1")), None);
    }

    #[test]
    fn header_wins_over_query() {
        let header = "Sentry sentry_key=fromheader";
        assert_eq!(
            find(
                Some(header),
                Some("Bearer fromauth"),
                Some("sentry_key=fromquery")
            )
            .as_deref(),
            Some("fromheader")
        );
        assert_eq!(
            find(Some("garbage"), None, Some("sentry_key=fromquery")).as_deref(),
            Some("fromquery")
        );
    }

    #[test]
    fn dsn_round_trips() {
        for raw in [
            format!("http://{KEY}@127.0.0.1:8610/1"),
            format!("https://{KEY}@vigie.example.org/42"),
            format!("https://{KEY}@example.org:8443/vigie/7"),
            format!("http://{KEY}@[::1]:8610/3"),
        ] {
            let dsn = Dsn::parse(&raw).unwrap();
            assert_eq!(dsn.to_string(), raw, "{dsn:?}");
        }
        let dsn = Dsn::parse(&format!("http://{KEY}@[::1]:8610/3")).unwrap();
        assert_eq!((dsn.host.as_str(), dsn.port), ("[::1]", Some(8610)));
    }

    #[test]
    fn dsn_keeps_only_the_public_part_of_legacy_keys() {
        let dsn = Dsn::parse(&format!("http://{KEY}:secret@h/5")).unwrap();
        assert_eq!(dsn.public_key, KEY);
        assert_eq!(dsn.project_id, "5");
    }

    #[test]
    fn dsn_errors_name_the_problem() {
        assert_eq!(Dsn::parse("ftp://k@h/1"), Err(DsnError::Scheme));
        assert_eq!(Dsn::parse("http://h/1"), Err(DsnError::MissingKey));
        assert_eq!(Dsn::parse("http://k@h"), Err(DsnError::MissingProject));
        assert_eq!(Dsn::parse("http://k@h:0/1"), Err(DsnError::BadPort));
        assert_eq!(Dsn::parse("http://k@h:99999/1"), Err(DsnError::BadPort));
        assert_eq!(Dsn::parse("http://k@:80/1"), Err(DsnError::MissingHost));
        for odd in [
            "http://k@h/1\0",
            "http://k\n@h/1",
            "http://k@h /1",
            "http://k@h/\r1",
        ] {
            assert_eq!(Dsn::parse(odd), Err(DsnError::Unprintable), "{odd:?}");
        }
        assert!(
            Dsn::parse("  http://k@h/1\n").is_ok(),
            "surrounding space is trimmed"
        );
    }

    #[test]
    fn dsn_for_a_served_project() {
        let dsn = Dsn::for_project("http://127.0.0.1:8610/", KEY, 1).unwrap();
        assert_eq!(dsn.to_string(), format!("http://{KEY}@127.0.0.1:8610/1"));
    }

    /// The parsers take untrusted input: random bytes must never make them panic.
    /// (`fuzz/` runs the same property coverage-guided.)
    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"Sentry sentry_key=,:@/[]%&=?bearer 0123456789abcdef\xc3\xa9";
        for _ in 0..20_000 {
            let len = rng.gen_range(0..40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            let _ = find(Some(&s), Some(&s), Some(&s));
            if let Ok(dsn) = Dsn::parse(&s) {
                assert!(Dsn::parse(&dsn.to_string()).is_ok(), "{s:?}");
            }
        }
    }
}
