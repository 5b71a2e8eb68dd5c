//! Celery's remote control on the wire: a command broadcast to the workers' mailboxes
//! (kombu's "pidbox") and the replies they send back.
//!
//! ```text
//! command ─► exchange celery.pidbox (fanout; on Redis: PUBLISH <prefix>/<db>.celery.pidbox)
//!   {"method": "ping", "arguments": {}, "destination": null | [hostnames],
//!    "reply_to": {"exchange": "reply.celery.pidbox", "routing_key": <oid>}, "ticket": <uuid>}
//!   headers {"clock": n, "expires": <epoch s>}: a worker drops a command once it expired
//! each worker ─► exchange reply.celery.pidbox (direct), routing key <oid>
//!   body {"<hostname>": <reply>}, headers {"ticket": <uuid>}
//!   RabbitMQ: a queue bound with <oid>; Redis: the list <oid>.reply.celery.pidbox, found by
//!   workers through the binding set _kombu.binding.reply.celery.pidbox
//! ```
//!
//! A command without `reply_to` is a cast: workers act and answer nothing.

use super::{open_envelope, CeleryError};
use base64::Engine;
use serde_json::{json, Map, Value};

/// The exchange commands are broadcast on.
pub const PIDBOX_EXCHANGE: &str = "celery.pidbox";
/// The exchange workers reply on.
pub const REPLY_EXCHANGE: &str = "reply.celery.pidbox";
/// kombu's separator in Redis binding members and priority queue names.
pub const REDIS_SEP: &str = "\x06\x16";
/// The priority steps kombu's Redis transport keeps a list for (`queue`, `queue\x06\x163`, …).
pub const REDIS_PRIORITY_STEPS: [u8; 4] = [0, 3, 6, 9];

/// A command for the workers.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub method: String,
    pub arguments: Value,
    /// The workers that should act; `None`: every worker.
    pub destination: Option<Vec<String>>,
}

/// Where the workers should answer: the routing key is the caller's own (kombu's `oid`), the
/// ticket tells this command's replies from another's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    pub routing_key: String,
    pub ticket: String,
}

impl ReplyTo {
    /// The queue the replies land in (a Redis list of that name on Redis).
    pub fn queue(&self) -> String {
        format!("{}.{REPLY_EXCHANGE}", self.routing_key)
    }

    /// The member of `_kombu.binding.reply.celery.pidbox` through which a worker on Redis
    /// finds the reply queue: `<routing key>\x06\x16<pattern>\x06\x16<queue>`.
    pub fn redis_binding(&self) -> String {
        format!("{}{REDIS_SEP}{REDIS_SEP}{}", self.routing_key, self.queue())
    }
}

impl Command {
    pub fn new(method: &str, arguments: Value) -> Command {
        Command {
            method: method.to_string(),
            arguments,
            destination: None,
        }
    }

    /// Addressed to these workers only (every worker when empty).
    pub fn to(mut self, workers: &[String]) -> Command {
        self.destination = (!workers.is_empty()).then(|| workers.to_vec());
        self
    }

    /// The message body, as kombu's `Mailbox._publish` writes it.
    pub fn body(&self, reply: Option<&ReplyTo>) -> Value {
        let mut body = json!({
            "method": self.method,
            "arguments": self.arguments,
            "destination": self.destination,
            "pattern": null,
            "matcher": null,
        });
        if let Some(reply) = reply {
            body["ticket"] = reply.ticket.clone().into();
            body["reply_to"] =
                json!({"exchange": REPLY_EXCHANGE, "routing_key": reply.routing_key});
        }
        body
    }

    /// The message as the Redis transport publishes it: the kombu envelope around
    /// [`Command::body`], expiring `ttl_s` seconds after `now_s`.
    pub fn redis_envelope(&self, reply: Option<&ReplyTo>, now_s: f64, ttl_s: f64) -> Vec<u8> {
        let body = base64::engine::general_purpose::STANDARD.encode(self.body(reply).to_string());
        json!({
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"clock": 1, "expires": now_s + ttl_s},
            "properties": {
                "delivery_mode": 2,
                "delivery_info": {"exchange": PIDBOX_EXCHANGE, "routing_key": ""},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": format!("vigie-{}", (now_s * 1e6) as u64),
            },
        })
        .to_string()
        .into_bytes()
    }
}

/// One worker's reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub hostname: String,
    pub value: Value,
}

/// A reply's body: `{"<hostname>": <reply>}`.
pub fn reply_of_body(body: Value) -> Result<Reply, CeleryError> {
    let Value::Object(map) = body else {
        return Err(CeleryError::BadBody("a reply is {hostname: answer}".into()));
    };
    let mut entries = map.into_iter();
    match (entries.next(), entries.next()) {
        (Some((hostname, value)), None) => Ok(Reply { hostname, value }),
        _ => Err(CeleryError::BadBody(
            "a reply holds one worker's answer".into(),
        )),
    }
}

/// A reply as the Redis transport stores it in the reply list: a kombu envelope; `None`
/// when its ticket is another command's.
pub fn reply_of_redis(raw: &[u8], ticket: &str) -> Result<Option<Reply>, CeleryError> {
    let envelope: Map<String, Value> = serde_json::from_slice(raw)
        .map_err(|e| CeleryError::NotAnEnvelope(format!("not JSON: {e}")))?;
    let theirs = envelope
        .get("headers")
        .and_then(|h| h.get("ticket"))
        .and_then(Value::as_str);
    if theirs.is_some_and(|t| t != ticket) {
        return Ok(None);
    }
    reply_of_body(open_envelope(raw)?).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(capture: &str) -> Vec<&str> {
        capture.lines().filter(|l| l.starts_with('{')).collect()
    }

    #[test]
    fn a_broadcast_looks_like_celery_s_own() {
        const CAPTURED: &str = include_str!("../../tests/fixtures/celery/enable_events.txt");
        let captured: Value = serde_json::from_str(messages(CAPTURED)[0]).unwrap();
        let command = Command::new("enable_events", json!({}));
        let ours: Value = serde_json::from_slice(&command.redis_envelope(None, 1e9, 10.0)).unwrap();
        assert_eq!(
            open_envelope(ours.to_string().as_bytes()).unwrap(),
            open_envelope(captured.to_string().as_bytes()).unwrap(),
            "the same command body"
        );
        for key in ["content-type", "content-encoding"] {
            assert_eq!(ours[key], captured[key]);
        }
        let props = |v: &Value| v["properties"]["delivery_info"].clone();
        assert_eq!(props(&ours), props(&captured));
        assert_eq!(ours["headers"]["expires"], 1e9 + 10.0);
    }

    #[test]
    fn a_call_names_where_to_reply() {
        let reply = ReplyTo {
            routing_key: "0f3a".into(),
            ticket: "t-1".into(),
        };
        let body = Command::new("ping", json!({}))
            .to(&["celery@a".into()])
            .body(Some(&reply));
        assert_eq!(body["destination"], json!(["celery@a"]));
        assert_eq!(
            body["reply_to"],
            json!({"exchange": "reply.celery.pidbox", "routing_key": "0f3a"})
        );
        assert_eq!(body["ticket"], "t-1");
        assert_eq!(reply.queue(), "0f3a.reply.celery.pidbox");
        assert_eq!(
            reply.redis_binding(),
            "0f3a\x06\x16\x06\x160f3a.reply.celery.pidbox"
        );
        assert_eq!(
            Command::new("ping", json!({})).to(&[]).body(None)["destination"],
            Value::Null
        );
    }

    #[test]
    fn replies_are_read_and_others_tickets_left() {
        let envelope = |ticket: &str, body: &str| {
            json!({
                "body": base64::engine::general_purpose::STANDARD.encode(body),
                "content-type": "application/json",
                "content-encoding": "utf-8",
                "headers": {"ticket": ticket, "clock": 3},
                "properties": {"body_encoding": "base64"},
            })
            .to_string()
        };
        let mine = envelope("t-1", r#"{"celery@a": {"ok": "pong"}}"#);
        assert_eq!(
            reply_of_redis(mine.as_bytes(), "t-1").unwrap(),
            Some(Reply {
                hostname: "celery@a".into(),
                value: json!({"ok": "pong"})
            })
        );
        let theirs = envelope("t-2", r#"{"celery@a": {"ok": "pong"}}"#);
        assert_eq!(reply_of_redis(theirs.as_bytes(), "t-1").unwrap(), None);
        for bad in [r#"{"a": 1, "b": 2}"#, "[1]", "{}"] {
            assert!(reply_of_redis(envelope("t-1", bad).as_bytes(), "t-1").is_err());
        }
        assert!(reply_of_redis(b"not json", "t-1").is_err());
    }
}
