//! Reaching into a JSON document by its keys.
//!
//! `serde_json::Value::pointer("/contexts/trace")` builds two new `String`s per step of the
//! path (it unescapes `~0` and `~1` in each), and a transaction was read through a pointer a
//! dozen times: about 8 % of its CPU before it reached the store. These take the keys as they
//! are, so a lookup allocates nothing. Array indexes are not taken: every path Vigie reads
//! goes through objects.

use serde_json::Value;

/// The value at `path` below `value`, each step an object's key.
pub fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

/// [`at`], for changing what it finds.
pub fn at_mut<'v>(value: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |value, key| value.get_mut(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_path_reads_what_a_pointer_reads() {
        let mut event = json!({
            "contexts": {"trace": {"op": "db", "data": {"http.method": "GET"}}},
            "tags": ["a", "b"],
            "a/b": {"~c": 1},
        });
        let cases: [(&[&str], &str); 5] = [
            (&["contexts", "trace", "op"], "/contexts/trace/op"),
            (
                &["contexts", "trace", "data", "http.method"],
                "/contexts/trace/data/http.method",
            ),
            (&["contexts", "missing"], "/contexts/missing"),
            (&["a/b", "~c"], "/a~1b/~0c"),
            (&[], ""),
        ];
        for (path, pointer) in cases {
            assert_eq!(at(&event, path), event.pointer(pointer), "{path:?}");
        }
        // Arrays are not indexed by a key that reads as a number, as a pointer would.
        assert_eq!(at(&event, &["tags", "0"]), None);
        *at_mut(&mut event, &["contexts", "trace", "op"]).unwrap() = json!("http.server");
        assert_eq!(event["contexts"]["trace"]["op"], "http.server");
        assert!(at_mut(&mut event, &["contexts", "nothing", "op"]).is_none());
    }
}
