//! A trace's spans as a waterfall: one row per span, parents before their children, each bar
//! placed on the trace's time axis. Sentry transactions (Performance) and OpenTelemetry traces
//! (the trace page) both draw with it (`templates/web/waterfall.html`).
//!
//! ```text
//!   spans (any order) ─▶ roots (no parent) ─▶ depth first, children by start ─▶ bars
//!                        a span whose parent was never received hangs under the first root
//!                     ─▶ critical path: from the root that ends last, the child that ended
//!                        last before its parent's end, then the child that ended before that
//!                        one started, and so on down — the spans the trace waited on
//! ```
//!
//! Each row knows its depth and whether spans hang under it, so the page can fold a subtree
//! (`assets/app.js`, `data-fold`); a long trace opens with its deep subtrees folded.

use crate::web::format::ms;
use std::collections::{HashMap, HashSet};

/// Most rows drawn: past this a trace says how many it left out rather than freezing a phone.
pub const MAX_ROWS: usize = 1000;
/// Deepest nesting followed (and a guard against a parent loop).
const MAX_DEPTH: usize = 64;
/// Past this many rows, subtrees under [`FOLD_DEPTH`] open folded.
pub const FOLD_ROWS: usize = 100;
pub const FOLD_DEPTH: usize = 3;

/// What the waterfall needs of a span.
pub struct Timed<'a> {
    pub id: &'a str,
    /// Empty for a root.
    pub parent: &'a str,
    /// Nanoseconds, on any common origin.
    pub start: i64,
    pub end: i64,
    /// The bold part of the label (an operation, or a service's span name).
    pub op: &'a str,
    pub description: &'a str,
    pub failed: bool,
    /// Which colour the bar takes (0 for all when there is one service).
    pub colour: usize,
}

/// One row: offsets in percent of the trace's duration.
pub struct SpanBar {
    pub id: String,
    pub op: String,
    pub description: String,
    pub depth: usize,
    pub left: f64,
    pub width: f64,
    pub duration: String,
    pub failed: bool,
    pub colour: usize,
    /// On the critical path: the trace's end waited on this span.
    pub critical: bool,
    /// Spans hang under it (the row can fold).
    pub parent: bool,
    /// Opens folded (a long trace's deep subtree).
    pub folded: bool,
}

impl SpanBar {
    /// The indentation class of the row (`depth-0` … `depth-8`).
    pub fn indent(&self) -> usize {
        self.depth.min(8)
    }
}

/// The spans the trace's end waited on (indexes into `spans`): from the root that ends last,
/// repeatedly the child that ended last before the cursor (its parent's end, then that
/// child's start), and down into each.
fn critical_path(
    spans: &[Timed],
    roots: &[usize],
    children: &HashMap<&str, Vec<usize>>,
) -> HashSet<usize> {
    let mut path = HashSet::new();
    let Some(&root) = roots
        .iter()
        .max_by_key(|i| (spans[**i].end, std::cmp::Reverse(**i)))
    else {
        return path;
    };
    let mut todo = vec![(root, 0)];
    while let Some((i, depth)) = todo.pop() {
        if !path.insert(i) || depth >= MAX_DEPTH {
            continue;
        }
        let mut kids: Vec<usize> = children.get(spans[i].id).cloned().unwrap_or_default();
        kids.sort_by_key(|k| std::cmp::Reverse((spans[*k].end, spans[*k].start)));
        let mut cursor = spans[i].end;
        for k in kids {
            if spans[k].end <= cursor {
                todo.push((k, depth + 1));
                cursor = spans[k].start;
            }
        }
    }
    path
}

/// The rows of `spans`, parents first, at most [`MAX_ROWS`].
pub fn bars(spans: &[Timed]) -> Vec<SpanBar> {
    let Some(start) = spans.iter().map(|s| s.start).min() else {
        return Vec::new();
    };
    let end = spans.iter().map(|s| s.end).max().unwrap_or(start);
    let total = (end - start).max(1) as f64;
    let ids: HashSet<&str> = spans.iter().map(|s| s.id).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    let mut orphans = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        if span.parent.is_empty() {
            roots.push(i);
        } else if ids.contains(span.parent) && span.parent != span.id {
            children.entry(span.parent).or_default().push(i);
        } else {
            orphans.push(i);
        }
    }
    let by_start = |list: &mut Vec<usize>| list.sort_by_key(|i| (spans[*i].start, *i));
    by_start(&mut roots);
    for list in children.values_mut() {
        by_start(list);
    }
    by_start(&mut orphans);
    // Spans whose parent never arrived (another service not instrumented, a lost export) hang
    // under the first root, or stand as roots when there is none.
    match roots.first() {
        Some(first) => children
            .entry(spans[*first].id)
            .or_default()
            .extend(orphans),
        None => roots = orphans,
    }
    let critical = critical_path(spans, &roots, &children);
    let fold = spans.len() > FOLD_ROWS;
    let place = |i: usize, depth: usize| {
        let s = &spans[i];
        let parent = children.get(s.id).is_some_and(|c| !c.is_empty());
        SpanBar {
            id: s.id.to_string(),
            op: s.op.to_string(),
            description: s.description.to_string(),
            depth,
            left: ((s.start - start) as f64 / total * 100.0).clamp(0.0, 100.0),
            width: ((s.end - s.start) as f64 / total * 100.0).clamp(0.3, 100.0),
            duration: ms(&Some((s.end - s.start) as f64 / 1e6)),
            failed: s.failed,
            colour: s.colour,
            critical: critical.contains(&i),
            parent,
            folded: fold && parent && depth + 1 >= FOLD_DEPTH,
        }
    };
    let mut out = Vec::new();
    let mut drawn = HashSet::new();
    let mut draw = |first: usize, out: &mut Vec<SpanBar>| {
        let mut stack = vec![(first, 0)];
        while let Some((i, depth)) = stack.pop() {
            if out.len() >= MAX_ROWS || !drawn.insert(i) {
                continue;
            }
            out.push(place(i, depth));
            if depth < MAX_DEPTH {
                if let Some(list) = children.get(spans[i].id) {
                    stack.extend(list.iter().rev().map(|c| (*c, depth + 1)));
                }
            }
        }
    };
    for root in roots {
        draw(root, &mut out);
    }
    // What no root reaches (parents that form a loop) is drawn too, from its earliest span.
    if out.len() < spans.len().min(MAX_ROWS) {
        let mut rest: Vec<usize> = (0..spans.len()).collect();
        by_start(&mut rest);
        for i in rest {
            draw(i, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed<'a>(id: &'a str, parent: &'a str, start: i64, end: i64) -> Timed<'a> {
        Timed {
            id,
            parent,
            start,
            end,
            op: id,
            description: "",
            failed: false,
            colour: 0,
        }
    }

    #[test]
    fn children_follow_their_parents_in_start_order_and_orphans_hang_under_the_root() {
        let spans = [
            timed("b", "a", 200, 300),
            timed("a", "root", 100, 600),
            timed("root", "", 0, 1000),
            timed("c", "elsewhere", 700, 900),
            timed("a2", "root", 50, 60),
        ];
        let rows = bars(&spans);
        let shape: Vec<(&str, usize)> = rows.iter().map(|b| (b.op.as_str(), b.depth)).collect();
        assert_eq!(
            shape,
            [("root", 0), ("a2", 1), ("a", 1), ("b", 2), ("c", 1)]
        );
        assert!((rows[3].left - 20.0).abs() < 1e-9 && (rows[3].width - 10.0).abs() < 1e-9);
        assert_eq!(rows[2].duration, "0.0 ms");
    }

    #[test]
    fn the_critical_path_is_what_the_end_waited_on() {
        // Under root (ends 1000): e ended last (950); b ended (700) before e started (750);
        // a ended (400) when b started; c ran beside a and nothing waited on it. Inside b, d.
        let spans = [
            timed("root", "", 0, 1000),
            timed("a", "root", 0, 400),
            timed("c", "root", 100, 300),
            timed("b", "root", 400, 700),
            timed("d", "b", 450, 650),
            timed("e", "root", 750, 950),
        ];
        let rows = bars(&spans);
        let critical: Vec<&str> = rows
            .iter()
            .filter(|r| r.critical)
            .map(|r| r.op.as_str())
            .collect();
        assert_eq!(critical, ["root", "a", "b", "d", "e"]);
        assert!(rows[0].parent && !rows[1].parent);
        assert!(rows.iter().all(|r| !r.folded), "a short trace opens whole");
    }

    #[test]
    fn a_long_trace_opens_with_deep_subtrees_folded() {
        let ids: Vec<String> = (0..FOLD_ROWS).map(|i| format!("leaf{i}")).collect();
        let mut spans = vec![
            timed("root", "", 0, 100),
            timed("mid", "root", 0, 90),
            timed("deep", "mid", 0, 80),
        ];
        spans.extend(ids.iter().map(|id| timed(id, "deep", 1, 2)));
        let rows = bars(&spans);
        let folded: Vec<&str> = rows
            .iter()
            .filter(|r| r.folded)
            .map(|r| r.op.as_str())
            .collect();
        assert_eq!(folded, ["deep"], "the subtree at depth {FOLD_DEPTH}");
    }

    #[test]
    fn a_parent_loop_or_a_flood_is_drawn_once_and_bounded() {
        let looped = [timed("x", "y", 0, 10), timed("y", "x", 5, 10)];
        // Neither is a root: both stand as roots, each drawn once.
        assert_eq!(bars(&looped).len(), 2);
        let ids: Vec<String> = (0..MAX_ROWS + 50).map(|i| format!("s{i}")).collect();
        let mut flood = vec![timed("root", "", 0, 100)];
        flood.extend(ids.iter().map(|id| timed(id, "root", 1, 2)));
        assert_eq!(bars(&flood).len(), MAX_ROWS);
        assert!(bars(&[]).is_empty());
    }
}
