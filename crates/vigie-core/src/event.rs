//! Error events and how they group into issues.
//!
//! An SDK sends the whole event as JSON; Vigie stores that (scrubbed, compressed) for the event
//! page, and reads from it the few things an issue needs: an [`EventSummary`]. [`group`] turns
//! a summary into the issue's identity and headline:
//!
//! 1. **A client fingerprint** (`fingerprint: [...]`) decides alone; `{{ default }}` inside it
//!    stands for the default components below, so `["{{ default }}", "tenant-7"]` splits the
//!    default issue per tenant.
//! 2. **Exceptions**: for each exception of the chain, its type and its in-app frames (module,
//!    or file name, and function; never line numbers, which move with every edit). When no frame
//!    is in-app, all frames count. An exception without frames contributes its type and its
//!    normalized value.
//! 3. **Otherwise the message**, normalized by [`normalize_message`]: numbers, UUIDs, hex ids,
//!    e-mail addresses and file-like tokens are replaced by placeholders, so
//!    "Erreur email 3/500: facture_CCT_003 - Quota exceeded" and the same line for invoice 457
//!    are one issue. A message template (`logentry.message` with params) is used as is.
//!
//! The issue key is the first 32 hex digits of the SHA-256 of the components, one per line.

use regex::Regex;
use sha2::{Digest, Sha256};

/// Sentry's levels for errors and messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventLevel {
    Debug,
    Info,
    Warning,
    #[default]
    Error,
    Fatal,
}

impl EventLevel {
    pub const ALL: [EventLevel; 5] = [
        EventLevel::Debug,
        EventLevel::Info,
        EventLevel::Warning,
        EventLevel::Error,
        EventLevel::Fatal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventLevel::Debug => "debug",
            EventLevel::Info => "info",
            EventLevel::Warning => "warning",
            EventLevel::Error => "error",
            EventLevel::Fatal => "fatal",
        }
    }

    /// Reads the spellings SDKs use (`warn`, `critical`, `log`…); unknown ones are errors.
    pub fn parse(text: &str) -> EventLevel {
        match text.to_ascii_lowercase().as_str() {
            "debug" | "trace" => EventLevel::Debug,
            "info" | "log" | "notice" => EventLevel::Info,
            "warning" | "warn" => EventLevel::Warning,
            "fatal" | "critical" => EventLevel::Fatal,
            _ => EventLevel::Error,
        }
    }
}

/// One stack frame, as much as grouping and culprits need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameSummary {
    pub module: String,
    pub filename: String,
    pub function: String,
    /// `None` when the SDK did not say: counted as in-app.
    pub in_app: Option<bool>,
}

impl FrameSummary {
    fn is_in_app(&self) -> bool {
        self.in_app != Some(false)
    }

    /// `module` (or the file name) and the function, without anything that changes between
    /// builds: memory addresses, lambda and closure numbering.
    fn component(&self) -> String {
        let place = if self.module.is_empty() {
            &self.filename
        } else {
            &self.module
        };
        format!(
            "{}:{}",
            place,
            hex_addresses().replace_all(&self.function, "<addr>")
        )
    }
}

/// One exception of a chain, oldest (cause) first, as SDKs send them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExceptionSummary {
    pub kind: String,
    pub value: String,
    pub module: String,
    /// Oldest call first, the frame that raised last.
    pub frames: Vec<FrameSummary>,
}

/// What grouping and the issue's headline need from an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventSummary {
    pub level: EventLevel,
    pub exceptions: Vec<ExceptionSummary>,
    /// The formatted message.
    pub message: String,
    /// The message template when the SDK sent one with parameters.
    pub message_template: String,
    pub transaction: String,
    pub fingerprint: Vec<String>,
}

/// An issue's identity and headline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouping {
    /// 32 hex digits.
    pub key: String,
    pub title: String,
    pub culprit: String,
}

const DEFAULT_MARKER: &str = "{{ default }}";
const TITLE_MAX: usize = 200;

/// The issue an event belongs to (see the module docs for the rules).
pub fn group(event: &EventSummary) -> Grouping {
    let defaults = default_components(event);
    let components: Vec<String> = if event.fingerprint.is_empty() {
        defaults
    } else {
        event
            .fingerprint
            .iter()
            .flat_map(|part| {
                if part.trim() == DEFAULT_MARKER || part.trim() == "{{default}}" {
                    defaults.clone()
                } else {
                    vec![format!("fingerprint:{part}")]
                }
            })
            .collect()
    };
    let digest = Sha256::digest(components.join("\n").as_bytes());
    Grouping {
        key: hex::encode(&digest[..16]),
        title: title(event),
        culprit: culprit(event),
    }
}

fn default_components(event: &EventSummary) -> Vec<String> {
    if !event.exceptions.is_empty() {
        let mut parts = Vec::new();
        for exception in &event.exceptions {
            parts.push(format!("type:{}", exception.kind));
            let in_app: Vec<&FrameSummary> =
                exception.frames.iter().filter(|f| f.is_in_app()).collect();
            let frames: Vec<&FrameSummary> = if in_app.is_empty() {
                exception.frames.iter().collect()
            } else {
                in_app
            };
            if frames.is_empty() {
                parts.push(format!("value:{}", normalize_message(&exception.value)));
            }
            parts.extend(frames.iter().map(|f| format!("frame:{}", f.component())));
        }
        return parts;
    }
    let message = if event.message_template.is_empty() {
        normalize_message(&event.message)
    } else {
        event.message_template.clone()
    };
    vec![format!("message:{message}")]
}

fn title(event: &EventSummary) -> String {
    let text = match event.exceptions.last() {
        // The JavaScript SDK's `captureMessage` with a stack trace sends an exception with no
        // type: the message is the title, not ": message".
        Some(e) if e.kind.is_empty() && !event.message.is_empty() => event.message.clone(),
        Some(e) if e.kind.is_empty() => e.value.clone(),
        Some(e) if e.value.is_empty() => e.kind.clone(),
        Some(e) => format!("{}: {}", e.kind, e.value),
        None if !event.message.is_empty() => event.message.clone(),
        None => "<no message>".to_string(),
    };
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(TITLE_MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Where it happened: the transaction, else the last in-app frame of the raised exception.
fn culprit(event: &EventSummary) -> String {
    if !event.transaction.is_empty() {
        return event.transaction.clone();
    }
    event
        .exceptions
        .last()
        .and_then(|e| {
            e.frames
                .iter()
                .rev()
                .find(|f| f.is_in_app())
                .or(e.frames.last())
        })
        .map(|f| {
            let place = if f.module.is_empty() {
                &f.filename
            } else {
                &f.module
            };
            format!("{place} in {}", f.function)
        })
        .unwrap_or_default()
}

fn hex_addresses() -> &'static Regex {
    static_regex!(r"0x[0-9a-fA-F]+")
}

fn variable_parts() -> &'static Regex {
    static_regex!(concat!(
        r"(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})",
        r"|(?P<uuid>\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b)",
        // Files: absolute paths with a letter in them, relative ones of 3+ parts, or a
        // name with a document extension ("3/500" and "and/or" are not files).
        r"|(?P<file>(?:[A-Za-z]:)?[/\\](?:[\w.-]+[/\\])*[\w.-]*[A-Za-z][\w.-]*",
        r"|[\w.-]+(?:[/\\][\w.-]+){2,}",
        r"|\b[\w-]+\.(?:pdf|csv|xlsx?|docx?|txt|json|xml|zip|png|jpe?g|log|py)\b)",
        r"|(?P<hex>\b(?:0x)?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\b|\b(?:0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b)",
        r"|(?P<int>\d+(?:[.,]\d+)*)",
    ))
}

/// A message with its variable parts replaced: `<email>`, `<uuid>`, `<file>`, `<hex>`
/// (hex ids of 8+ digits mixing letters and digits) and `<int>` (any run of digits, also
/// inside words: `facture_CCT_003` → `facture_CCT_<int>`).
pub fn normalize_message(message: &str) -> String {
    variable_parts()
        .replace_all(message.trim(), |c: &regex::Captures| {
            let name = ["email", "uuid", "file", "hex"]
                .into_iter()
                .find(|n| c.name(n).is_some())
                .unwrap_or("int");
            if name == "hex" && c[0].trim_start_matches("0x").len() < 8 {
                // Short letter-digit mixes are words (utf8, v2, md5), not ids: keep the letters.
                return digits().replace_all(&c[0], "<int>").into_owned();
            }
            format!("<{name}>")
        })
        .into_owned()
}

fn digits() -> &'static Regex {
    static_regex!(r"\d+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(module: &str, function: &str, in_app: Option<bool>) -> FrameSummary {
        FrameSummary {
            module: module.into(),
            filename: format!("{}.py", module.replace('.', "/")),
            function: function.into(),
            in_app,
        }
    }

    fn error(kind: &str, value: &str, frames: Vec<FrameSummary>) -> EventSummary {
        EventSummary {
            exceptions: vec![ExceptionSummary {
                kind: kind.into(),
                value: value.into(),
                frames,
                ..ExceptionSummary::default()
            }],
            ..EventSummary::default()
        }
    }

    #[test]
    fn messages_differing_only_in_numbers_and_ids_are_one_issue() {
        assert_eq!(
            normalize_message("Erreur email 3/500: facture_CCT_003 - Quota exceeded"),
            "Erreur email <int>/<int>: facture_CCT_<int> - Quota exceeded"
        );
        let message = |m: &str| EventSummary {
            message: m.into(),
            ..EventSummary::default()
        };
        let a = group(&message(
            "Erreur email 3/500: facture_CCT_003 - Quota exceeded",
        ));
        let b = group(&message(
            "Erreur email 457/500: facture_CCT_457 - Quota exceeded",
        ));
        let c = group(&message(
            "Erreur email 3/500: facture_CCT_003 - Mailbox full",
        ));
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
        assert_eq!(
            a.title,
            "Erreur email 3/500: facture_CCT_003 - Quota exceeded"
        );
        assert_eq!(a.key.len(), 32);
    }

    #[test]
    fn variable_parts_have_placeholders() {
        let cases = [
            (
                "mail to alice@example.com refused",
                "mail to <email> refused",
            ),
            (
                "job 6f9619ff-8b86-d011-b42d-00cf4fc964ff failed",
                "job <uuid> failed",
            ),
            (
                "cannot read /srv/invoices/2026/F-1001.pdf",
                "cannot read <file>",
            ),
            ("export rapport_mars.xlsx failed", "export <file> failed"),
            (
                "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 missing",
                "commit <hex> missing",
            ),
            ("took 1.5 s, 1,024 rows", "took <int> s, <int> rows"),
            ("utf8 decode error in v2", "utf<int> decode error in v<int>"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_message(input), expected, "{input}");
        }
    }

    #[test]
    fn exceptions_group_by_type_and_in_app_frames_not_lines_or_values() {
        let frames = vec![
            frame("django.core.handlers", "inner", Some(false)),
            frame("shop.invoices", "send_invoices", None),
            frame("shop.render", "render", Some(true)),
        ];
        let a = group(&error("KeyError", "'vat_rate'", frames.clone()));
        let b = group(&error("KeyError", "'discount'", frames.clone()));
        assert_eq!(
            a.key, b.key,
            "the value does not split an issue that has frames"
        );
        assert_eq!(a.title, "KeyError: 'vat_rate'");
        assert_eq!(a.culprit, "shop.render in render");

        let mut library_changed = frames.clone();
        library_changed[0].function = "other".into();
        assert_eq!(group(&error("KeyError", "x", library_changed)).key, a.key);
        let mut app_changed = frames.clone();
        app_changed[1].function = "send_reminders".into();
        assert_ne!(group(&error("KeyError", "x", app_changed)).key, a.key);
        assert_ne!(group(&error("ValueError", "x", frames)).key, a.key);

        // Addresses in function names change between runs.
        let lambda = |addr: &str| {
            error(
                "E",
                "",
                vec![frame("m", &format!("<lambda at {addr}>"), None)],
            )
        };
        assert_eq!(group(&lambda("0x7f01")).key, group(&lambda("0x7f99")).key);
        // No frames: the normalized value decides.
        assert_eq!(
            group(&error("Timeout", "after 30 s", vec![])).key,
            group(&error("Timeout", "after 45 s", vec![])).key
        );
    }

    #[test]
    fn client_fingerprints_and_default() {
        let base = error("KeyError", "x", vec![frame("shop.render", "render", None)]);
        let with = |fingerprint: &[&str]| EventSummary {
            fingerprint: fingerprint.iter().map(|s| s.to_string()).collect(),
            ..base.clone()
        };
        let default = group(&base).key;
        assert_eq!(group(&with(&["{{ default }}"])).key, default);
        let tenant7 = group(&with(&["{{ default }}", "tenant-7"])).key;
        let tenant8 = group(&with(&["{{ default }}", "tenant-8"])).key;
        assert_ne!(tenant7, default);
        assert_ne!(tenant7, tenant8);
        let custom = group(&with(&["smtp-quota"])).key;
        let other_error = EventSummary {
            fingerprint: vec!["smtp-quota".into()],
            ..error("OSError", "y", vec![])
        };
        assert_eq!(
            group(&other_error).key,
            custom,
            "a fingerprint alone decides"
        );
    }

    #[test]
    fn chained_exceptions_all_count_and_the_last_is_the_title() {
        let mut chained = error(
            "ConnectionError",
            "refused",
            vec![frame("shop.smtp", "connect", None)],
        );
        chained.exceptions.push(ExceptionSummary {
            kind: "InvoiceNotSent".into(),
            value: "F-1001".into(),
            frames: vec![frame("shop.invoices", "send", None)],
            ..ExceptionSummary::default()
        });
        let g = group(&chained);
        assert_eq!(g.title, "InvoiceNotSent: F-1001");
        assert_eq!(g.culprit, "shop.invoices in send");
        let mut other_cause = chained.clone();
        other_cause.exceptions[0].kind = "TimeoutError".into();
        assert_ne!(group(&other_cause).key, g.key);
    }

    #[test]
    fn titles_are_one_line_and_bounded() {
        let long = EventSummary {
            message: format!("{}\nsecond line", "é".repeat(300)),
            ..EventSummary::default()
        };
        let title = group(&long).title;
        assert_eq!(title.chars().count(), TITLE_MAX + 1);
        assert!(title.ends_with('…'));
        let untyped = |message: &str| EventSummary {
            message: message.into(),
            exceptions: vec![ExceptionSummary {
                value: "browser hello".into(),
                ..ExceptionSummary::default()
            }],
            ..EventSummary::default()
        };
        assert_eq!(group(&untyped("browser hello")).title, "browser hello");
        assert_eq!(group(&untyped("")).title, "browser hello");
        assert_eq!(EventLevel::parse("WARN"), EventLevel::Warning);
        assert_eq!(EventLevel::parse("critical"), EventLevel::Fatal);
        assert_eq!(EventLevel::parse("nonsense"), EventLevel::Error);
    }
}
