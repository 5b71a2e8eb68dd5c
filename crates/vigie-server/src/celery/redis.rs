//! Just enough of the Redis protocol (RESP2) for Celery: a subscriber that `PSUBSCRIBE`s to
//! patterns and reads what is published, and one-off commands (`LLEN` for queue lengths).
//!
//! ```text
//! connect redis://[[user]:password@]host[:port][/db] ─► AUTH when a password is given
//!   ─► PSUBSCRIBE /<db>.celeryev/* celery-task-meta-* (names: `super::broker`)
//!   ─► *4 pmessage <pattern> <channel> <payload>, one after the other
//! ```
//!
//! A whole client library would bring connection pools and cluster support Vigie does not
//! use; reading a pub/sub stream is a loop over two kinds of frames.

use std::io;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where a Redis broker is, from a Celery broker URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub db: u32,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl RedisUrl {
    /// `redis://[[user]:password@]host[:port][/db]`; the reason when it is not one.
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        let url = url::Url::parse(text).map_err(|e| format!("\"{text}\" is not a URL: {e}"))?;
        if url.scheme() != "redis" {
            return Err(format!("\"{text}\" is not a redis:// URL"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("\"{text}\" has no host"))?
            .to_string();
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            n => n
                .parse()
                .map_err(|_| format!("\"{text}\": the database must be a number, not \"{n}\""))?,
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Ok(RedisUrl {
            host,
            port: url.port().unwrap_or(6379),
            db,
            username: Some(url.username()).filter(|u| !u.is_empty()).map(decode),
            password: url.password().map(decode),
        })
    }

    /// The URL without its password, for logs and the System page.
    pub fn describe(&self) -> String {
        format!("redis://{}:{}/{}", self.host, self.port, self.db)
    }
}

/// A reply.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// One connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
}

/// A published message.
#[derive(Debug)]
pub struct Published {
    pub channel: String,
    pub payload: Vec<u8>,
}

/// Largest bulk string accepted: a broker message bigger than this is a mistake, not an event.
const MAX_BULK: usize = 64 << 20;

impl Connection {
    pub async fn open(url: &RedisUrl) -> io::Result<Connection> {
        let stream = TcpStream::connect((url.host.as_str(), url.port)).await?;
        stream.set_nodelay(true)?;
        let mut connection = Connection {
            stream: BufReader::new(stream),
        };
        if let Some(password) = &url.password {
            let mut auth = vec!["AUTH".to_string()];
            auth.extend(url.username.clone());
            auth.push(password.clone());
            connection.command(&auth).await?;
        }
        if url.db != 0 {
            connection
                .command(&["SELECT".to_string(), url.db.to_string()])
                .await?;
        }
        Ok(connection)
    }

    /// Sends a command and reads its reply; a Redis error is an `io::Error` with its text.
    pub async fn command(&mut self, args: &[String]) -> io::Result<Reply> {
        self.send(args).await?;
        match self.read().await? {
            Reply::Error(e) => Err(io::Error::other(format!("redis: {e}"))),
            reply => Ok(reply),
        }
    }

    async fn send(&mut self, args: &[String]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&out).await
    }

    /// Subscribes to `patterns`; then [`Connection::next_message`] reads what they match.
    pub async fn psubscribe(&mut self, patterns: &[String]) -> io::Result<()> {
        let mut args = vec!["PSUBSCRIBE".to_string()];
        args.extend(patterns.iter().cloned());
        self.send(&args).await?;
        for _ in patterns {
            match self.read().await? {
                Reply::Array(Some(parts)) if matches!(parts.first(), Some(Reply::Bulk(Some(k))) if k == b"psubscribe") =>
                    {}
                other => {
                    return Err(io::Error::other(format!(
                        "redis refused the subscription: {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// The next message published on a subscribed pattern.
    pub async fn next_message(&mut self) -> io::Result<Published> {
        loop {
            if let Reply::Array(Some(mut parts)) = self.read().await? {
                if parts.len() == 4 && parts[0] == Reply::Bulk(Some(b"pmessage".to_vec())) {
                    let payload = match parts.pop() {
                        Some(Reply::Bulk(Some(p))) => p,
                        _ => continue,
                    };
                    let channel = match parts.pop() {
                        Some(Reply::Bulk(Some(c))) => String::from_utf8_lossy(&c).into_owned(),
                        _ => continue,
                    };
                    return Ok(Published { channel, payload });
                }
            }
        }
    }

    async fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let n = self.stream.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "redis closed the connection",
            ));
        }
        if line.len() > 64 << 10 {
            return Err(io::Error::other("redis sent an overlong line"));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn read(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Reply>> + Send + '_>> {
        Box::pin(async move {
            let line = self.line().await?;
            let (kind, rest) = line.split_at(line.len().min(1));
            let number = || {
                rest.parse::<i64>()
                    .map_err(|_| io::Error::other(format!("redis sent a bad frame: {line:?}")))
            };
            Ok(match kind {
                "+" => Reply::Status(rest.to_string()),
                "-" => Reply::Error(rest.to_string()),
                ":" => Reply::Integer(number()?),
                "$" => match number()? {
                    n if n < 0 => Reply::Bulk(None),
                    n if n as usize > MAX_BULK => {
                        return Err(io::Error::other(format!("redis sent a {n}-byte value")))
                    }
                    n => {
                        let mut data = vec![0; n as usize + 2];
                        self.stream.read_exact(&mut data).await?;
                        data.truncate(n as usize);
                        Reply::Bulk(Some(data))
                    }
                },
                "*" => match number()? {
                    n if n < 0 => Reply::Array(None),
                    n => {
                        let mut items = Vec::with_capacity((n as usize).min(1024));
                        for _ in 0..n {
                            items.push(self.read().await?);
                        }
                        Reply::Array(Some(items))
                    }
                },
                _ => {
                    return Err(io::Error::other(format!(
                        "redis sent a bad frame: {line:?}"
                    )))
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let url = RedisUrl::parse("redis://:s3cret@cache.internal:6380/5").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.db, url.password.as_deref()),
            ("cache.internal", 6380, 5, Some("s3cret"))
        );
        assert_eq!(url.describe(), "redis://cache.internal:6380/5");
        assert_eq!(RedisUrl::parse("redis://localhost").unwrap().db, 0);
        assert!(RedisUrl::parse("amqp://guest@localhost//")
            .unwrap_err()
            .contains("not a redis://"));
        assert!(RedisUrl::parse("redis://host/x")
            .unwrap_err()
            .contains("must be a number"));
    }
}
