//! Bar charts drawn as SVG by the server: log histograms, issue sparklines, throughput.

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
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
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

#[cfg(test)]
mod tests {
    use super::*;

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
