//! Sentry envelopes: the container every current SDK posts to `/api/<project>/envelope/`.
//!
//! ```text
//! {"event_id":"…","dsn":"…","sent_at":"…"}\n        envelope header (one JSON line)
//! {"type":"event","length":6115}\n                    item header
//! <6115 bytes of payload>\n                           payload: `length` bytes, or up to \n
//! {"type":"attachment","length":…,"filename":…}\n     more items…
//! ```
//!
//! A payload whose header gives no `length` runs to the next newline. The newline after a
//! payload and a trailing newline at the end are optional. Parsing borrows the payloads from
//! the body; nothing is copied.
//!
//! A damaged envelope header refuses the whole envelope. A damaged item header (or a length
//! running past the end) stops parsing there: the items before it are returned with the error,
//! so they can still be stored while the client hears what was wrong.

use serde_json::{Map, Value};
use thiserror::Error;

/// What an item carries, from its header's `type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemType {
    Event,
    Transaction,
    Session,
    Sessions,
    ClientReport,
    Log,
    CheckIn,
    Attachment,
    /// Streamed spans (`sentry::spans`).
    Span,
    /// User feedback (`feedback`, or the older `user_report`).
    Feedback(&'static str),
    /// A type this version does not handle (profile, replay, statsd…): skipped.
    Other(String),
}

impl ItemType {
    fn parse(name: &str) -> ItemType {
        match name {
            "event" => ItemType::Event,
            "transaction" => ItemType::Transaction,
            "session" => ItemType::Session,
            "sessions" => ItemType::Sessions,
            "client_report" => ItemType::ClientReport,
            "log" => ItemType::Log,
            "check_in" => ItemType::CheckIn,
            "attachment" => ItemType::Attachment,
            "span" => ItemType::Span,
            "feedback" => ItemType::Feedback("feedback"),
            "user_report" => ItemType::Feedback("user_report"),
            other => ItemType::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ItemType::Event => "event",
            ItemType::Transaction => "transaction",
            ItemType::Session => "session",
            ItemType::Sessions => "sessions",
            ItemType::ClientReport => "client_report",
            ItemType::Log => "log",
            ItemType::CheckIn => "check_in",
            ItemType::Attachment => "attachment",
            ItemType::Span => "span",
            ItemType::Feedback(kind) => kind,
            ItemType::Other(name) => name,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Item<'a> {
    pub kind: ItemType,
    pub header: Map<String, Value>,
    pub payload: &'a [u8],
}

#[derive(Clone, Debug, Default)]
pub struct Envelope<'a> {
    pub header: Map<String, Value>,
    pub items: Vec<Item<'a>>,
}

impl Envelope<'_> {
    /// The `event_id` the envelope header names, if any.
    pub fn event_id(&self) -> Option<&str> {
        self.header.get("event_id").and_then(Value::as_str)
    }

    /// The DSN in the envelope header: one more place a project key may be given.
    pub fn dsn(&self) -> Option<&str> {
        self.header.get("dsn").and_then(Value::as_str)
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the envelope is empty")]
    Empty,
    #[error("the envelope header is not a JSON object: {0}")]
    Header(String),
    #[error("item {index}: its header is not a JSON object: {reason}")]
    ItemHeader { index: usize, reason: String },
    #[error("item {index}: its header has no type")]
    ItemType { index: usize },
    #[error("item {index}: length {length} runs past the end of the envelope")]
    Length { index: usize, length: u64 },
}

/// An envelope, and what stopped parsing early (the items before it are good).
#[derive(Clone, Debug)]
pub struct Parsed<'a> {
    pub envelope: Envelope<'a>,
    pub error: Option<EnvelopeError>,
}

fn object(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not an object".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Splits at the first newline: (line, rest after it). No newline: the whole input is the line.
fn line(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|b| *b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[]),
    }
}

pub fn parse(body: &[u8]) -> Result<Parsed<'_>, EnvelopeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::Empty);
    }
    let (head, mut rest) = line(body);
    let header = object(head).map_err(EnvelopeError::Header)?;
    let mut envelope = Envelope {
        header,
        items: Vec::new(),
    };
    let mut index = 0;
    let error = loop {
        // Blank lines between items (a trailing newline, a payload's own newline) are skipped.
        while let Some((b'\n' | b'\r', tail)) = rest.split_first() {
            rest = tail;
        }
        if rest.is_empty() {
            break None;
        }
        let (item_head, after) = line(rest);
        let item_header = match object(item_head) {
            Ok(h) => h,
            Err(reason) => break Some(EnvelopeError::ItemHeader { index, reason }),
        };
        let Some(kind) = item_header.get("type").and_then(Value::as_str) else {
            break Some(EnvelopeError::ItemType { index });
        };
        let kind = ItemType::parse(kind);
        let (payload, tail) = match item_header.get("length").and_then(Value::as_u64) {
            Some(length) if length as usize <= after.len() => after.split_at(length as usize),
            Some(length) => break Some(EnvelopeError::Length { index, length }),
            None => line(after),
        };
        envelope.items.push(Item {
            kind,
            header: item_header,
            payload,
        });
        rest = tail;
        index += 1;
    };
    Ok(Parsed { envelope, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_and_without_length() {
        let body =
            b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://k@h/1\"}\n\
{\"type\":\"attachment\",\"length\":10,\"filename\":\"a.txt\"}\n\xef\xbb\xbfHello\r\n\n\
{\"type\":\"event\"}\n{\"message\":\"hi\"}\n\
{\"type\":\"profile_chunk\",\"length\":0}\n";
        let parsed = parse(body).unwrap();
        assert_eq!(parsed.error, None);
        let env = parsed.envelope;
        assert_eq!(env.event_id(), Some("9ec79c33ec9942ab8353589fcb2e04dc"));
        assert_eq!(env.dsn(), Some("https://k@h/1"));
        let kinds: Vec<_> = env.items.iter().map(|i| i.kind.as_str()).collect();
        assert_eq!(kinds, ["attachment", "event", "profile_chunk"]);
        assert_eq!(env.items[0].payload, b"\xef\xbb\xbfHello\r\n");
        assert_eq!(env.items[1].payload, b"{\"message\":\"hi\"}");
        assert_eq!(env.items[2].payload, b"");
        assert_eq!(env.items[2].kind, ItemType::Other("profile_chunk".into()));
    }

    #[test]
    fn no_trailing_newline_and_header_only() {
        let parsed = parse(b"{}\n{\"type\":\"event\",\"length\":2}\n{}").unwrap();
        assert_eq!(parsed.envelope.items[0].payload, b"{}");
        let parsed = parse(b"{\"event_id\":\"x\"}").unwrap();
        assert!(parsed.envelope.items.is_empty());
        assert_eq!(parsed.error, None);
    }

    #[test]
    fn damage_is_named_and_earlier_items_are_kept() {
        assert_eq!(parse(b"").unwrap_err(), EnvelopeError::Empty);
        assert!(matches!(
            parse(b"not json\n").unwrap_err(),
            EnvelopeError::Header(_)
        ));
        assert!(matches!(
            parse(b"[1]\n").unwrap_err(),
            EnvelopeError::Header(_)
        ));

        let body = b"{}\n{\"type\":\"event\"}\n{\"message\":\"kept\"}\n{broken\n{\"type\":\"event\"}\n{}\n";
        let parsed = parse(body).unwrap();
        assert_eq!(parsed.envelope.items.len(), 1);
        assert!(
            matches!(
                &parsed.error,
                Some(EnvelopeError::ItemHeader { index: 1, .. })
            ),
            "{:?}",
            parsed.error
        );
        let parsed = parse(b"{}\n{\"type\":\"event\",\"length\":99}\n{}\n").unwrap();
        assert_eq!(
            parsed.error,
            Some(EnvelopeError::Length {
                index: 0,
                length: 99
            })
        );
        let parsed = parse(b"{}\n{\"length\":2}\n{}\n").unwrap();
        assert_eq!(parsed.error, Some(EnvelopeError::ItemType { index: 0 }));
        assert_eq!(
            parsed.error.unwrap().to_string(),
            "item 0: its header has no type"
        );
    }
}
