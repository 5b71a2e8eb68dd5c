//! What a list's search box holds (Issues, Celery tasks): terms split on spaces outside double
//! quotes, each a `key:value` filter or a word. The feature decides what its keys mean.
//!
//! ```text
//!   release:shop@1.2 "disk 50% full" "http://shop/x" args:"INV 7" 12:30
//!     → Filter(release, shop@1.2), Word(disk 50% full), Word(http://shop/x),
//!       Filter(args, INV 7), Word(12:30)
//! ```
//!
//! A term is a filter only when it looks like one: a key that starts with a letter and holds
//! letters, digits, `.`, `_` or `-` (tag keys like `browser.name`, `server_name`), a value, and
//! not `//` after the colon (a URL). Anything else is a word, and double quotes make any term
//! a word: `"C:\temp"`, `"customer:acme"`.

/// One term of a search box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// `key:value`, the value's quotes taken off.
    Filter { key: String, value: String },
    /// Text the results must contain, quotes taken off.
    Word(String),
}

/// The terms of `text`, in order.
pub fn terms(text: &str) -> Vec<Term> {
    pieces(text).into_iter().map(|piece| term(&piece)).collect()
}

/// The words of a search box that takes no filters (Jobs, items): every term as text, a
/// `key:value` as typed, quotes taken off.
pub fn words(text: &str) -> Vec<String> {
    terms(text)
        .into_iter()
        .map(|term| match term {
            Term::Word(word) => word,
            Term::Filter { key, value } => format!("{key}:{value}"),
        })
        .collect()
}

/// The words `words` hold as the store matches them, each apart (a quoted phrase counts each
/// of its words): what [`crate::validate::search_words`] is given.
pub fn word_count(words: &[String]) -> usize {
    words.iter().map(|w| w.split_whitespace().count()).sum()
}

fn term(piece: &str) -> Term {
    let unquoted = || piece.replace('"', "");
    if piece.starts_with('"') {
        return Term::Word(unquoted());
    }
    match piece.split_once(':') {
        Some((key, value)) if is_key(key) && !value.starts_with("//") => {
            let value = value.replace('"', "");
            if value.is_empty() {
                Term::Word(unquoted())
            } else {
                Term::Filter {
                    key: key.to_string(),
                    value,
                }
            }
        }
        _ => Term::Word(unquoted()),
    }
}

fn is_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Splits on white space outside double quotes, keeping the quotes.
fn pieces(text: &str) -> Vec<String> {
    let (mut out, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.retain(|piece| piece.chars().any(|c| c != '"'));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str) -> Term {
        Term::Word(text.into())
    }

    fn filter(key: &str, value: &str) -> Term {
        Term::Filter {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn filters_words_and_quotes() {
        assert_eq!(
            terms(r#"release:shop@1.2 "disk 50% full" "http://shop/x" args:"INV 7" 12:30"#),
            [
                filter("release", "shop@1.2"),
                word("disk 50% full"),
                word("http://shop/x"),
                filter("args", "INV 7"),
                word("12:30"),
            ]
        );
        // Tag keys as SDKs set them.
        assert_eq!(
            terms("browser.name:Firefox server_name:web-1 x-ray:on"),
            [
                filter("browser.name", "Firefox"),
                filter("server_name", "web-1"),
                filter("x-ray", "on"),
            ]
        );
    }

    #[test]
    fn what_only_looks_like_a_filter_is_a_word() {
        assert_eq!(terms("http://shop/x"), [word("http://shop/x")]);
        assert_eq!(terms(r#""customer:acme""#), [word("customer:acme")]);
        assert_eq!(terms(r#""C:\temp""#), [word(r"C:\temp")]);
        assert_eq!(terms("Error: timeout"), [word("Error:"), word("timeout")]);
        assert_eq!(terms(":x"), [word(":x")]);
        assert_eq!(terms("été:x"), [word("été:x")]);
    }

    #[test]
    fn a_box_without_filters_reads_every_term_as_text() {
        assert_eq!(
            words(r#""bulk send" INV:7 http://x"#),
            ["bulk send", "INV:7", "http://x"]
        );
    }

    #[test]
    fn a_quoted_phrase_counts_each_of_its_words() {
        let words = ["disk 50% full".to_string(), "smtp".to_string()];
        assert_eq!(word_count(&words), 4);
    }

    #[test]
    fn empty_and_unbalanced_quotes_leave_no_empty_terms() {
        assert!(terms("").is_empty());
        assert!(terms(r#"  ""  "#).is_empty());
        // An unclosed quote runs to the end, as the user typed it.
        assert_eq!(
            terms(r#"smtp "timed out"#),
            [word("smtp"), word("timed out")]
        );
    }
}
