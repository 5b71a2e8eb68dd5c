//! What a body will cost to parse, told before it is parsed.
//!
//! A parser turns a few bytes into much larger values: `{}` on a line is 3 bytes and a
//! 300-byte `LogRecord`; an empty protobuf message is 2 bytes and a 100-byte struct. The
//! ingest handlers ask these scans how many *elements* a body holds (JSON values, protobuf
//! fields) — one linear pass, no allocation — and reserve memory for them from a global
//! budget before the parser runs, or refuse the request. So a 59 KiB gzip body of 21 million
//! `{}` lines is refused for what it would cost instead of taking the server past 8 GiB.
//!
//! Both counts are upper bounds of what the parsers materialise: every JSON value starts a
//! container or follows a `,` (or is the only value of its line); every protobuf value is a
//! field with a tag of at least one byte.

/// Bytes of memory one parsed element may hold beyond its own bytes in the body, for the
/// budget: a `serde_json::Value` or a prost struct with its container slot, and a share of the
/// `LogRecord` built from it. Measured (`ingest_bombs_stay_bounded` samples RSS) rather than
/// derived: generous, since underestimating is what lets memory run away.
pub const BYTES_PER_ELEMENT: usize = 160;

/// How many JSON values `body` holds at most: containers opened, plus separators, plus one per
/// non-blank line (JSON lines hold one value each; a single document is one line). Strings are
/// skipped, escapes included, so text inside them counts nothing.
pub fn json_elements(body: &[u8]) -> usize {
    let mut count = 0usize;
    let mut line_has_value = false;
    let mut at = 0;
    while let Some(&b) = body.get(at) {
        at += 1;
        match b {
            b'"' => {
                line_has_value = true;
                // Most of a body's bytes are text inside strings: jump to the next byte that
                // may end one rather than looking at each.
                loop {
                    let rest = body.get(at..).unwrap_or_default();
                    let Some(found) = memchr::memchr3(b'"', b'\\', b'\n', rest) else {
                        at = body.len();
                        break;
                    };
                    at += found + 1;
                    match rest[found] {
                        b'\\' => at += 1,
                        b'"' => break,
                        _ => {
                            // Not valid JSON; the line ends here for the line-based readers
                            // too.
                            line_has_value = false;
                            break;
                        }
                    }
                }
            }
            b'{' | b'[' | b',' | b':' => {
                count += 1;
                line_has_value = true;
            }
            b'\n' => {
                if line_has_value {
                    count += 1;
                }
                line_has_value = false;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => line_has_value = true,
        }
    }
    count + usize::from(line_has_value)
}

/// How many fields a protobuf message holds at most, counting the fields of every
/// length-delimited field that itself reads as a message (strings that happen to read as one
/// count too: an upper bound is what is asked). Malformed input counts what was read before
/// the fault; the parser refuses it anyway.
pub fn protobuf_elements(body: &[u8]) -> usize {
    count_fields(body, 0).unwrap_or_else(|partial| partial)
}

/// Past this depth the count stops walking (each level re-reads its bytes, so depth costs
/// time) and assumes the worst: one element per two bytes, the smallest a field can be.
const MAX_DEPTH: usize = 32;

/// `Ok(n)`: the bytes are a well-formed message of `n` elements (fields, nested ones
/// included). `Err(n)`: they are not, after `n` elements.
fn count_fields(mut buf: &[u8], depth: usize) -> Result<usize, usize> {
    let mut count = 0usize;
    while !buf.is_empty() {
        let Some((key, rest)) = varint(buf) else {
            return Err(count);
        };
        buf = rest;
        count += 1;
        if key >> 3 == 0 {
            return Err(count);
        }
        match key & 7 {
            0 => match varint(buf) {
                Some((_, rest)) => buf = rest,
                None => return Err(count),
            },
            1 if buf.len() >= 8 => buf = &buf[8..],
            5 if buf.len() >= 4 => buf = &buf[4..],
            2 => {
                let Some((len, rest)) = varint(buf) else {
                    return Err(count);
                };
                let Some(inner) = usize::try_from(len).ok().and_then(|n| rest.get(..n)) else {
                    return Err(count);
                };
                if depth >= MAX_DEPTH {
                    count += inner.len() / 2;
                } else if let Ok(nested) = count_fields(inner, depth + 1) {
                    count += nested;
                }
                buf = &rest[inner.len()..];
            }
            _ => return Err(count),
        }
    }
    Ok(count)
}

fn varint(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &buf[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn json_counts_values_not_text() {
        assert_eq!(json_elements(b""), 0);
        assert_eq!(json_elements(b"{}\n{}\n\n{}"), 6);
        // One object, two members: `{`, `:` x2, `,` and the line.
        assert_eq!(json_elements(br#"{"a": 1, "b": "x,y:{["}"#), 5);
        // Escaped quotes do not end a string.
        assert_eq!(json_elements(br#"["a\",[", 2]"#), 3);
        // A plain text line is one record.
        assert_eq!(json_elements(b"not json at all\n"), 1);
    }

    /// The count made one byte at a time, as `json_elements` was written before it skipped
    /// through strings: the two must agree on every input.
    fn json_elements_bytewise(body: &[u8]) -> usize {
        let (mut count, mut in_string, mut escaped, mut line_has_value) = (0, false, false, false);
        for &b in body {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                } else if b == b'\n' {
                    in_string = false;
                    line_has_value = false;
                }
                continue;
            }
            match b {
                b'"' => (in_string, line_has_value) = (true, true),
                b'{' | b'[' | b',' | b':' => (count, line_has_value) = (count + 1, true),
                b'\n' => (count, line_has_value) = (count + usize::from(line_has_value), false),
                b' ' | b'\t' | b'\r' => {}
                _ => line_has_value = true,
            }
        }
        count + usize::from(line_has_value)
    }

    #[test]
    fn skipping_through_strings_counts_as_reading_every_byte() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Bodies made of the bytes that matter, so strings open, escape, end and break often;
        // with strings left open and escapes as the last byte.
        let alphabet = b"\"\\\n{[,: a\t\r}]";
        for _ in 0..20_000 {
            let len = rng.gen_range(0..40);
            let body: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            assert_eq!(
                json_elements(&body),
                json_elements_bytewise(&body),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
        }
        let event = include_bytes!("../tests/fixtures/sentry/transaction.envelope");
        assert_eq!(json_elements(event), json_elements_bytewise(event));
    }

    #[test]
    fn json_counts_grow_with_what_a_parser_would_build() {
        let lines = "{}\n".repeat(1000);
        assert!(json_elements(lines.as_bytes()) >= 1000);
        let array = format!("[{}]", vec!["1"; 1000].join(","));
        assert!(json_elements(array.as_bytes()) >= 1000);
    }

    #[derive(Clone, PartialEq, Message)]
    struct Outer {
        #[prost(message, repeated, tag = "1")]
        inner: Vec<Inner>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Inner {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(uint64, tag = "2")]
        n: u64,
    }

    #[test]
    fn protobuf_counts_nested_messages() {
        let empty = Outer {
            inner: vec![Inner::default(); 500],
        }
        .encode_to_vec();
        assert_eq!(empty.len(), 1000);
        assert_eq!(protobuf_elements(&empty), 500);
        let full = Outer {
            inner: vec![
                Inner {
                    name: "x".into(),
                    n: 300,
                };
                10
            ],
        }
        .encode_to_vec();
        // Each inner: the field itself, its name, its number (the name "x" reads as no
        // message: tag 0x78 is field 15 of wire type 0 with nothing after it).
        assert_eq!(protobuf_elements(&full), 30);
    }

    #[test]
    fn protobuf_garbage_counts_what_it_read() {
        assert_eq!(protobuf_elements(b""), 0);
        assert!(protobuf_elements(b"\xff\xff\xff") <= 1);
    }

    #[test]
    fn protobuf_past_the_walked_depth_assumes_the_worst() {
        // 40 levels of one-field messages around 64 empty ones: deeper than the walk goes.
        let mut message = [0x0a, 0x00].repeat(64);
        for _ in 0..40 {
            let mut outer = vec![0x0a];
            let mut len = message.len();
            while len >= 0x80 {
                outer.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            outer.push(len as u8);
            outer.extend(message);
            message = outer;
        }
        assert!(protobuf_elements(&message) >= 64 + 40);
    }
}
