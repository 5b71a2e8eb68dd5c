//! The trace search language: the log search's syntax, with the filters a trace has.
//!
//! ```text
//! service:invoices-api          the service of the span that began the work (glob: *)
//! name:"GET /invoices/{id}"     the endpoint, task or root span (exact; glob with *)
//! invoices                      a word of that name (any case)
//! min:500ms                     lasted at least this long (us, ms, s, m); duration:>2s too
//! error   status:error          failed only (status:ok: the others)
//! job:bulk-7                    the traces of one job
//! attr.http.route:/invoices/*   an attribute of that span (glob; attr.KEY:* = has it)
//! since:1h  from:…  to:…        the time range, as in log search
//! 0af7651916cd43dd8448eb211c80319c   a trace id alone opens that trace
//! ```
//!
//! A trace is found by its *entries*: the spans that begin a unit of work (a request served, a
//! task run, a trace's root), each stored with its service, name, duration, status and job, so
//! a search reads that index and never the span blocks. Filters are ANDed; a filter Vigie does
//! not know is an error, not a silent word search.

use crate::logquery::{check_range, lex, split_filter, time_filter, QueryError, RawKind};
use crate::span::is_trace_id;

/// The filter names the language knows, for error messages and docs.
pub const FILTERS: &[&str] = &[
    "service", "name", "min", "duration", "status", "job", "attr.KEY", "since", "from", "to",
];

/// A parsed trace search. The empty search finds every trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    /// A pasted trace id: open that trace rather than search.
    pub trace_id: Option<String>,
    /// Glob on the entry's service.
    pub service: Option<String>,
    /// The entry's name: exact, or a glob when it holds `*`.
    pub name: Option<String>,
    /// Words the name must hold (any case).
    pub words: Vec<String>,
    pub min_duration_ns: Option<i64>,
    /// `Some(true)`: failed only; `Some(false)`: succeeded only.
    pub failed: Option<bool>,
    pub job: Option<String>,
    /// Attribute key and value glob (`*`: has the attribute).
    pub attributes: Vec<(String, String)>,
    /// Earliest start wanted, ns, inclusive.
    pub from: Option<i64>,
    /// Latest start wanted, ns, exclusive.
    pub to: Option<i64>,
}

impl TraceQuery {
    /// Parses `text`; relative times (`since:1h`) count back from `now` (ns since the epoch).
    pub fn parse(text: &str, now: i64) -> Result<TraceQuery, QueryError> {
        let trimmed = text.trim();
        if is_trace_id(trimmed) {
            return Ok(TraceQuery {
                trace_id: Some(trimmed.to_ascii_lowercase()),
                ..TraceQuery::default()
            });
        }
        let mut query = TraceQuery::default();
        for raw in lex(text)? {
            let error = |message: String| QueryError {
                position: raw.position,
                message,
            };
            if raw.negated {
                return Err(error(
                    "a trace search cannot negate a term: name what you want".into(),
                ));
            }
            match raw.kind {
                RawKind::Regex(_) => {
                    return Err(error(
                        "a trace search has no /regex/: use name:\"…*\" with a glob".into(),
                    ))
                }
                RawKind::Phrase(text) => query.words.push(text.to_lowercase()),
                RawKind::Bare(text) => match split_filter(&text) {
                    Some((name, value)) => query.filter(name, value, now).map_err(error)?,
                    None if text.eq_ignore_ascii_case("error") => query.failed = Some(true),
                    None => query.words.push(text.to_lowercase()),
                },
            }
        }
        check_range(query.from, query.to)?;
        Ok(query)
    }

    fn filter(&mut self, name: &str, value: &str, now: i64) -> Result<(), String> {
        if value.is_empty() {
            return Err(format!("`{name}:` needs a value"));
        }
        match name {
            "service" => self.service = Some(value.to_string()),
            "name" => self.name = Some(value.to_string()),
            "min" => self.min_duration_ns = Some(duration_ns(value)?),
            "duration" => {
                let at_least = value
                    .strip_prefix(">=")
                    .or_else(|| value.strip_prefix('>'))
                    .ok_or_else(|| {
                        format!("`duration:{value}`: write duration:>500ms (or min:500ms)")
                    })?;
                self.min_duration_ns = Some(duration_ns(at_least)?);
            }
            "status" => {
                self.failed = Some(match value.to_ascii_lowercase().as_str() {
                    "error" | "failed" => true,
                    "ok" | "unset" => false,
                    _ => return Err(format!("unknown status `{value}`: use error or ok")),
                })
            }
            "job" => self.job = Some(value.to_string()),
            "since" | "from" | "to" => time_filter(name, value, now, &mut self.from, &mut self.to)?,
            _ => match name.strip_prefix("attr.") {
                Some(key) if !key.is_empty() => {
                    self.attributes.push((key.to_string(), value.to_string()))
                }
                _ => {
                    return Err(format!(
                        "unknown filter `{name}:`; known filters: {} (quote the term to search \
                         for it as text)",
                        FILTERS.join(", ")
                    ))
                }
            },
        }
        Ok(())
    }
}

/// `250us`, `500ms`, `1.5s`, `2m` in nanoseconds.
pub fn duration_ns(text: &str) -> Result<i64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let wrong = || format!("`{text}` is not a duration such as 250ms, 1.5s or 2m");
    let amount: f64 = number.parse().map_err(|_| wrong())?;
    let unit_ns = match unit {
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        _ => return Err(wrong()),
    };
    let ns = amount * unit_ns;
    if !ns.is_finite() || ns > i64::MAX as f64 / 2.0 {
        return Err(format!("`{text}` is too long a duration"));
    }
    Ok(ns as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn parse(text: &str) -> TraceQuery {
        TraceQuery::parse(text, NOW).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn reads_every_filter() {
        let q = parse(
            r#"service:invoices-* name:"GET /invoices/{id}" min:1.5s status:error job:bulk-7 attr.http.route:/inv* since:1h send"#,
        );
        assert_eq!(q.service.as_deref(), Some("invoices-*"));
        assert_eq!(q.name.as_deref(), Some("GET /invoices/{id}"));
        assert_eq!(q.min_duration_ns, Some(1_500_000_000));
        assert_eq!(q.failed, Some(true));
        assert_eq!(q.job.as_deref(), Some("bulk-7"));
        assert_eq!(
            q.attributes,
            vec![("http.route".to_string(), "/inv*".to_string())]
        );
        assert_eq!(q.from, Some(NOW - 3_600_000_000_000));
        assert_eq!(q.words, vec!["send".to_string()]);
        assert_eq!(parse("duration:>250ms").min_duration_ns, Some(250_000_000));
        assert_eq!(parse("error").failed, Some(true));
        assert_eq!(parse("status:ok").failed, Some(false));
        assert_eq!(parse(""), TraceQuery::default());
    }

    #[test]
    fn a_trace_id_alone_opens_the_trace() {
        let q = parse(" 0AF7651916CD43DD8448EB211C80319C ");
        assert_eq!(
            q.trace_id.as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert!(parse("0af7651916cd43dd8448eb211c80319c service:x")
            .trace_id
            .is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| TraceQuery::parse(text, NOW).unwrap_err().message;
        assert!(err("servce:x").contains("unknown filter `servce:`"));
        assert!(err("min:fast").contains("not a duration"));
        assert!(err("min:5h").contains("not a duration"));
        assert!(err("duration:5s").contains("duration:>500ms"));
        assert!(err("-service:x").contains("cannot negate"));
        assert!(err("/x+/").contains("no /regex/"));
        assert!(err("status:maybe").contains("unknown status"));
        assert!(
            err("min:1e400s").contains("not a duration") || err("min:1e400s").contains("too long")
        );
        assert!(err("min:99999999999999999m").contains("too long"));
        assert!(err("from:2026-11-22 to:2026-11-21").contains("empty"));
    }
}
