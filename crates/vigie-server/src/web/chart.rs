//! Charts drawn as SVG by the server: bars (log histograms, issue sparklines, throughput,
//! sessions per day) and lines (metrics, crash-free rates).

/// A bar positioned in an SVG box of the caller's size.
pub struct Bar {
    pub x: f64,
    pub width: f64,
    pub y: f64,
    pub height: f64,
    pub title: String,
}

/// `counts` as bars filling a `width` × `height` box, scaled to the largest count; any
/// non-zero count stays visible. `title(i, count)` is the tooltip of bar `i`.
pub fn bars(
    counts: &[i64],
    width: f64,
    height: f64,
    title: impl Fn(usize, i64) -> String,
) -> Vec<Bar> {
    let max = counts.iter().copied().max().unwrap_or(0);
    bars_up_to(counts, max, width, height, title)
}

/// [`bars`] scaled to `max` rather than to their own largest: a part drawn over its whole
/// (failed tasks over all tasks) on the same scale.
pub fn bars_up_to(
    counts: &[i64],
    max: i64,
    width: f64,
    height: f64,
    title: impl Fn(usize, i64) -> String,
) -> Vec<Bar> {
    let max = max.max(1) as f64;
    let slot = width / counts.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let h = if count > 0 {
                (count as f64 / max * height).max(height * 0.04)
            } else {
                0.0
            };
            Bar {
                x: i as f64 * slot,
                width: (slot * 0.85).max(0.5),
                y: height - h,
                height: h,
                title: title(i, count),
            }
        })
        .collect()
}

/// A line through values, some missing: polylines (`points` attributes) between the gaps,
/// and dots for values alone between two gaps.
#[derive(Debug, Default, PartialEq)]
pub struct LinePath {
    pub runs: Vec<String>,
    pub dots: Vec<(f64, f64)>,
}

/// `values` spread over `[pad, width - pad]` (one value: in the middle), `low` at the
/// bottom of a box `height` high and `high` at its top.
pub fn line(
    values: &[Option<f64>],
    width: f64,
    height: f64,
    pad: f64,
    (low, high): (f64, f64),
) -> LinePath {
    let steps = values.len().max(1);
    let x = |i: usize| {
        if steps == 1 {
            width / 2.0
        } else {
            pad + i as f64 * (width - 2.0 * pad) / (steps - 1) as f64
        }
    };
    let range = if high > low { high - low } else { 1.0 };
    let y = |v: f64| height - (v - low) / range * height;
    let mut path = LinePath::default();
    let mut run: Vec<(f64, f64)> = Vec::new();
    let close = |run: &mut Vec<(f64, f64)>, path: &mut LinePath| {
        match run.len() {
            0 => {}
            1 => path.dots.push(run[0]),
            _ => path.runs.push(
                run.iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        }
        run.clear();
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => run.push((x(i), y(*v))),
            None => close(&mut run, &mut path),
        }
    }
    close(&mut run, &mut path);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_breaks_at_gaps_and_marks_lone_values() {
        let path = line(
            &[Some(0.0), Some(1.0), None, Some(0.5), None],
            100.0,
            10.0,
            0.0,
            (0.0, 1.0),
        );
        assert_eq!(path.runs, ["0.0,10.0 25.0,0.0"]);
        assert_eq!(path.dots, [(75.0, 5.0)]);
        let one = line(&[Some(2.0)], 100.0, 10.0, 5.0, (0.0, 4.0));
        assert_eq!(one.dots, [(50.0, 5.0)]);
        assert!(line(&[None, None], 100.0, 10.0, 0.0, (0.0, 0.0))
            .runs
            .is_empty());
    }

    #[test]
    fn bars_fill_the_box_and_keep_small_counts_visible() {
        let b = bars(&[0, 1, 100], 300.0, 24.0, |i, n| format!("{i}:{n}"));
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].height, 0.0);
        assert!(b[1].height > 0.9 && b[1].height < 1.0, "{}", b[1].height);
        assert_eq!((b[2].height, b[2].y, b[2].x), (24.0, 0.0, 200.0));
        assert_eq!(b[2].title, "2:100");
    }
}
