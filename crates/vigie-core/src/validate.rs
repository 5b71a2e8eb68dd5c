//! Rules for the names people type, with messages that say how to fix them.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidName {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} must be at most {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} may contain only {allowed}")]
    BadCharacter {
        what: &'static str,
        allowed: &'static str,
    },
    #[error("password must be at least {min} characters")]
    PasswordTooShort { min: usize },
}

/// A project name: trimmed, 1–64 characters, no control characters.
pub fn project_name(raw: &str) -> Result<String, InvalidName> {
    display_name(raw, "project name", 64)
}

/// An API token's name: trimmed, 1–64 characters, no control characters.
pub fn token_name(raw: &str) -> Result<String, InvalidName> {
    display_name(raw, "token name", 64)
}

fn display_name(raw: &str, what: &'static str, max: usize) -> Result<String, InvalidName> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(InvalidName::Empty { what });
    }
    if name.chars().count() > max {
        return Err(InvalidName::TooLong { what, max });
    }
    if name.chars().any(char::is_control) {
        return Err(InvalidName::BadCharacter {
            what,
            allowed: "printable characters",
        });
    }
    Ok(name.to_string())
}

/// A username: lowercased, 1–64 of `a-z 0-9 . _ - @`, so it is easy to type at a login prompt and
/// cannot be confused with another by case.
pub fn username(raw: &str) -> Result<String, InvalidName> {
    let what = "username";
    let name = raw.trim().to_lowercase();
    if name.is_empty() {
        return Err(InvalidName::Empty { what });
    }
    if name.len() > 64 {
        return Err(InvalidName::TooLong { what, max: 64 });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if !name.chars().all(allowed) {
        return Err(InvalidName::BadCharacter {
            what,
            allowed: "letters, digits, '.', '_', '-' and '@'",
        });
    }
    Ok(name)
}

/// The shortest password Vigie accepts.
/// Words one search box of a list takes (jobs, items, issues, Celery tasks): each must match,
/// so a person never needs more, and each is one more condition (and statement shape) for the
/// database. Longer searches are refused, not cut short.
pub const MAX_SEARCH_WORDS: usize = 8;

/// `count` words in a search box, refused past [`MAX_SEARCH_WORDS`] with a message that says so.
pub fn search_words(count: usize) -> Result<(), String> {
    at_most(count, MAX_SEARCH_WORDS, "words", ", which must all match")
}

/// Tag filters (`key:value`) one issue search takes: far more than a person types, few
/// enough that each count is one more statement shape on the database.
pub const MAX_TAG_FILTERS: usize = 20;

/// `count` tag filters in an issue search, refused past [`MAX_TAG_FILTERS`].
pub fn tag_filters(count: usize) -> Result<(), String> {
    at_most(count, MAX_TAG_FILTERS, "tag filters (key:value)", "")
}

/// `count` of `what` in a search, refused past `most` with a message naming both.
fn at_most(count: usize, most: usize, what: &str, then: &str) -> Result<(), String> {
    if count > most {
        return Err(format!(
            "{count} {what}; a search takes at most {most}{then}"
        ));
    }
    Ok(())
}

pub const MIN_PASSWORD_LEN: usize = 8;

pub fn password(raw: &str) -> Result<(), InvalidName> {
    if raw.chars().count() < MIN_PASSWORD_LEN {
        return Err(InvalidName::PasswordTooShort {
            min: MIN_PASSWORD_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_trimmed_and_bounded() {
        assert_eq!(project_name("  shop  ").unwrap(), "shop");
        assert_eq!(
            project_name("   "),
            Err(InvalidName::Empty {
                what: "project name"
            })
        );
        assert!(project_name(&"x".repeat(65)).is_err());
        assert!(project_name("a\u{7}b").is_err());
        assert_eq!(project_name("Facturation été").unwrap(), "Facturation été");
    }

    #[test]
    fn usernames_are_lowercase_and_plain() {
        assert_eq!(username(" Alice ").unwrap(), "alice");
        assert_eq!(username("ops@example.org").unwrap(), "ops@example.org");
        assert!(username("a b").is_err());
        assert!(username("<script>").is_err());
    }

    #[test]
    fn passwords_have_a_minimum_length() {
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
    }

    #[test]
    fn searches_are_refused_one_past_their_limits_and_say_the_limit() {
        assert!(search_words(MAX_SEARCH_WORDS).is_ok());
        let words = search_words(MAX_SEARCH_WORDS + 1).unwrap_err();
        assert!(
            words.starts_with("9 words;") && words.contains("at most 8"),
            "{words}"
        );
        assert!(tag_filters(MAX_TAG_FILTERS).is_ok());
        let tags = tag_filters(MAX_TAG_FILTERS + 1).unwrap_err();
        assert!(
            tags.starts_with("21 tag filters") && tags.contains("at most 20"),
            "{tags}"
        );
    }
}
