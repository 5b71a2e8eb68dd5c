//! What a user asks of the tasks list: the search box (`name:shop.send state:failure
//! args:INV-7` and words) and the order (`-runtime`: slowest first).

use crate::search_box::Term;

/// The tasks search box: `name:shop.send state:failure args:INV-7 kwargs:… result:…` and free
/// words (found in the name, arguments, result or exception). Values with spaces are quoted:
/// `args:"INV 7"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskSearch {
    pub name: Option<String>,
    pub state: Option<String>,
    pub worker: Option<String>,
    pub args: Option<String>,
    pub kwargs: Option<String>,
    pub result: Option<String>,
    /// Words every match contains somewhere.
    pub words: Vec<String>,
}

impl TaskSearch {
    /// Reads the search box; an unknown `filter:` is refused with the ones there are.
    pub fn parse(text: &str) -> Result<TaskSearch, String> {
        let mut search = TaskSearch::default();
        for term in crate::search_box::terms(text) {
            let (key, value) = match term {
                Term::Word(word) => {
                    search.words.push(word);
                    continue;
                }
                Term::Filter { key, value } => (key, Some(value)),
            };
            match key.as_str() {
                "name" => search.name = value,
                "state" => search.state = value.map(|v| v.to_uppercase()),
                "worker" => search.worker = value,
                "args" => search.args = value,
                "kwargs" => search.kwargs = value,
                "result" => search.result = value,
                other => {
                    return Err(format!(
                        "\"{other}:\" is not a filter: use name:, state:, worker:, args:, kwargs: \
                         or result: (a word holding a colon goes in double quotes)"
                    ))
                }
            }
        }
        crate::validate::search_words(crate::search_box::word_count(&search.words))?;
        Ok(search)
    }
}

/// What the tasks list is ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// The task's last event (the default: what moved last comes first).
    #[default]
    Updated,
    Received,
    Started,
    Runtime,
    Name,
    State,
}

/// An order of the tasks list: a key, descending or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for TaskSort {
    fn default() -> Self {
        TaskSort {
            key: SortKey::Updated,
            descending: true,
        }
    }
}

impl TaskSort {
    const KEYS: [(&'static str, SortKey); 6] = [
        ("updated", SortKey::Updated),
        ("received", SortKey::Received),
        ("started", SortKey::Started),
        ("runtime", SortKey::Runtime),
        ("name", SortKey::Name),
        ("state", SortKey::State),
    ];

    /// Reads `runtime` (ascending) or `-runtime` (descending), as Flower's `sort_by` does;
    /// empty is the default order. Unknown keys are refused with the ones there are.
    pub fn parse(text: &str) -> Result<TaskSort, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(TaskSort::default());
        }
        let (descending, key) = match text.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, text),
        };
        let key = match key {
            // Flower's name for the last event.
            "timestamp" => SortKey::Updated,
            key => Self::KEYS
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, k)| *k)
                .ok_or_else(|| {
                    format!(
                        "\"{key}\" is not a sort: use updated, received, started, runtime, name \
                         or state, with - in front for descending"
                    )
                })?,
        };
        Ok(TaskSort { key, descending })
    }

    /// The text [`TaskSort::parse`] reads back.
    pub fn as_text(&self) -> String {
        let name = Self::KEYS
            .iter()
            .find(|(_, k)| *k == self.key)
            .map_or("updated", |(name, _)| *name);
        format!("{}{name}", if self.descending { "-" } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_read_back_and_mistakes_are_named() {
        for text in [
            "-runtime", "name", "-updated", "received", "-state", "started",
        ] {
            assert_eq!(TaskSort::parse(text).unwrap().as_text(), text);
        }
        assert_eq!(TaskSort::parse("").unwrap(), TaskSort::default());
        assert_eq!(TaskSort::parse("-timestamp").unwrap(), TaskSort::default());
        let err = TaskSort::parse("-size").unwrap_err();
        assert!(err.contains("\"size\"") && err.contains("runtime"), "{err}");
    }
}
