//! Reading back the arguments Celery reports: task events carry `args` and `kwargs` as Python
//! `repr()` text (`(2, 'INV-7', None)`, `{'to': 'a@b.c'}`), not JSON. Retrying a task with its
//! original arguments needs them as values again; [`parse`] reads the literals `repr()` writes
//! for JSON-like data and refuses the rest by name.
//!
//! [`repr`] goes the other way, for the tasks Vigie sends: the text Celery's clients put in
//! `argsrepr`, so a task sent by Vigie reads like one sent by the app.
//!
//! Read: integers, floats (`inf`/`nan` refused: JSON has none), strings in either quote with
//! their escapes, `b'…'`-free, `True`/`False`/`None`, tuples, lists, dicts with string, number
//! or boolean keys (JSON keys are strings, as Celery's JSON serializer makes them). Refused:
//! anything else (`datetime.date(…)`, `Decimal('1')`, `<object at 0x…>`) and the `...` Celery
//! puts at the end of a repr it cut short — those arguments are not all there.

use serde_json::{Map, Number, Value};

/// The deepest nesting read (a hostile repr cannot exhaust the stack).
const MAX_DEPTH: usize = 64;

/// The value of a Python literal, or why it cannot be read.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
    };
    let value = reader.value(0)?;
    reader.space();
    if reader.at != reader.bytes.len() {
        return Err(reader.unexpected());
    }
    Ok(value)
}

/// What Python's `repr()` writes for a JSON value: `None`, `True`, `'text'`, `[1, 2]`,
/// `{'k': 'v'}`.
pub fn repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", quote(k), repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// A string as `repr()` quotes it: single quotes, unless it holds one and no double quote.
fn quote(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn space(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn unexpected(&self) -> String {
        let rest = String::from_utf8_lossy(&self.bytes[self.at..]);
        if rest.trim_start().starts_with("...") {
            return "the repr was cut short (it ends in ...): the arguments are not all there"
                .into();
        }
        let shown: String = rest.chars().take(20).collect();
        format!("not a Python literal Vigie can read at {shown:?}")
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        self.space();
        match self.peek() {
            Some(b'(') => self.sequence(b')', depth, true),
            Some(b'[') => self.sequence(b']', depth, false),
            Some(b'{') => self.dict(depth),
            Some(b'\'' | b'"') => self.string().map(Value::String),
            Some(b'-' | b'+' | b'0'..=b'9' | b'.') => self.number(),
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'_') => self.word(),
            _ => Err(self.unexpected()),
        }
    }

    /// `(a, b)`, `(a,)`, `()`, `[a, b]`.
    fn sequence(&mut self, close: u8, depth: usize, tuple: bool) -> Result<Value, String> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.space();
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value(depth + 1)?);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(c) if c == close => {}
                _ if tuple && items.len() == 1 => return Err(self.unexpected()),
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value, String> {
        self.at += 1;
        let mut map = Map::new();
        loop {
            self.space();
            if self.peek() == Some(b'}') {
                self.at += 1;
                return Ok(Value::Object(map));
            }
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("a dict key Vigie cannot send as JSON: {other}")),
            };
            self.space();
            if self.peek() != Some(b':') {
                return Err(self.unexpected());
            }
            self.at += 1;
            let value = self.value(depth + 1)?;
            map.insert(key, value);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {}
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn word(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            self.at += 1;
        }
        match &self.bytes[start..self.at] {
            b"True" => Ok(Value::Bool(true)),
            b"False" => Ok(Value::Bool(false)),
            b"None" => Ok(Value::Null),
            b"inf" | b"nan" => Err("inf and nan have no JSON form".into()),
            other => Err(format!(
                "{:?} is not a literal (an object Celery could only show as text)",
                String::from_utf8_lossy(other)
            )),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_'))
        {
            self.at += 1;
        }
        let text = String::from_utf8_lossy(&self.bytes[start..self.at]).replace('_', "");
        if text == "..." || text.starts_with("..") {
            self.at = start;
            return Err(self.unexpected());
        }
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{text:?} is not a number JSON can carry"))
    }

    /// A string in single or double quotes, with Python's escapes.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.bytes[self.at];
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("a string without its closing quote".into());
            };
            self.at += 1;
            match c {
                c if c == quote => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err("a string without its closing quote".into());
                    };
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0' => out.push(0),
                        b'\\' | b'\'' | b'"' => out.push(e),
                        b'x' => out.extend(self.code_point(2)?),
                        b'u' => out.extend(self.code_point(4)?),
                        b'U' => out.extend(self.code_point(8)?),
                        other => {
                            out.push(b'\\');
                            out.push(other);
                        }
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8(out).map_err(|_| "a string that is not UTF-8".into())
    }

    /// `\xNN`, `\uNNNN`, `\UNNNNNNNN`: the character, as UTF-8.
    fn code_point(&mut self, digits: usize) -> Result<Vec<u8>, String> {
        let hex = self
            .bytes
            .get(self.at..self.at + digits)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .ok_or("a bad escape in a string")?;
        self.at += digits;
        let mut buf = [0; 4];
        Ok(hex.encode_utf8(&mut buf).as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_repr_writes_reads_back() {
        for (repr, value) in [
            ("(2, 3)", json!([2, 3])),
            ("(20,)", json!([20])),
            ("()", json!([])),
            ("{}", json!({})),
            (
                "('INV-7', \"l'été\", None, True, False, -1.5, 1e3)",
                json!(["INV-7", "l'été", null, true, false, -1.5, 1000.0]),
            ),
            (
                "{'to': ['a@b.c', 'd@e.f'], 'retries': 3, 1: {'x': (1, [2])}}",
                json!({"to": ["a@b.c", "d@e.f"], "retries": 3, "1": {"x": [1, [2]]}}),
            ),
            (
                r"'tab\there \'q\' \\ \xe9 \u20ac'",
                json!("tab\there 'q' \\ é €"),
            ),
            ("[1_000, 0.5]", json!([1000, 0.5])),
        ] {
            assert_eq!(parse(repr), Ok(value), "{repr}");
        }
    }

    #[test]
    fn repr_writes_what_python_writes_and_reads_back() {
        for (value, text) in [
            (json!([20, 22]), "[20, 22]"),
            (json!({}), "{}"),
            (json!([null, true, false, 1.5]), "[None, True, False, 1.5]"),
            (
                json!({"to": "a@b.c", "n": [1]}),
                "{'n': [1], 'to': 'a@b.c'}",
            ),
            (json!("l'été"), "\"l'été\""),
            (json!("tab\there 'q' \"d\""), "'tab\\there \\'q\\' \"d\"'"),
        ] {
            assert_eq!(repr(&value), text);
            assert_eq!(parse(text), Ok(value), "{text} reads back");
        }
    }

    #[test]
    fn what_cannot_be_sent_back_is_refused_by_name() {
        let cut = parse("('a very long text that Celery cut', ...").unwrap_err();
        assert!(cut.contains("cut short"), "{cut}");
        let object = parse("(datetime.date(2026, 11, 25),)").unwrap_err();
        assert!(object.contains("datetime.date"), "{object}");
        for bad in [
            "(1, 2",
            "'open",
            "<object at 0x7f>",
            "(inf,)",
            "{(1, 2): 3}",
            "(1 2)",
            "",
            "b'bytes'",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).unwrap_err().contains("nested deeper"));
    }
}
