//! Application metrics, a row per series per minute, on every backend.

use std::sync::Arc;
use vigie_core::metric::{Histogram, MetricKind, MetricPoint, PointValue, Stat};
use vigie_core::{Project, ProjectKey, Timestamp};
use vigie_store::Store;

/// A minute boundary, in nanoseconds.
/// In the past (series are seen "now", so retention keeps them).
const T0: i64 = 1_790_000_000 / 60 * 60 * 1_000_000_000;
const MINUTE: i64 = 60_000_000_000;

fn point(name: &str, kind: MetricKind, route: &str, time: i64, value: PointValue) -> MetricPoint {
    MetricPoint {
        name: name.into(),
        kind,
        unit: "1".into(),
        description: String::new(),
        service: "Shop".into(),
        attributes: vec![("http.route".into(), route.into())],
        start: T0 - MINUTE,
        time,
        cumulative: true,
        value,
    }
}

pub async fn metrics_story(store: &Arc<dyn Store>, project: &Project) {
    let p = project.id;
    // A cumulative counter on two routes, over three minutes, and a retried export.
    let counter = |route: &str, minute: i64, total: f64| {
        point(
            "http.requests",
            MetricKind::Counter,
            route,
            T0 + minute * MINUTE + 10,
            PointValue::Number(total),
        )
    };
    let first = vec![counter("/A", 0, 10.0), counter("/b", 0, 4.0)];
    let written = store.write_metrics(p, first.clone(), 100).await.unwrap();
    assert_eq!((written.points, written.series_created), (2, 2));
    // The same export again: totals unchanged, nothing added.
    store.write_metrics(p, first, 100).await.unwrap();
    store
        .write_metrics(
            p,
            vec![
                counter("/A", 1, 70.0),
                counter("/A", 2, 70.0),
                counter("/b", 2, 5.0),
            ],
            100,
        )
        .await
        .unwrap();

    let names = store.metric_names(p).await.unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(
        (names[0].name.as_str(), names[0].series),
        ("http.requests", 2)
    );
    assert_eq!(names[0].kind, MetricKind::Counter);
    let series = store.metric_series(p, "http.requests").await.unwrap();
    assert_eq!(series.len(), 2);
    let a = series
        .iter()
        .find(|s| s.attributes[0].1 == "/A")
        .expect("case kept");
    assert_eq!(a.service, "Shop");
    let minute0 = T0 / MINUTE;
    let minutes = store
        .metric_minutes(p, vec![a.id], minute0, minute0 + 3)
        .await
        .unwrap();
    let increases: Vec<(i64, f64)> = minutes
        .iter()
        .map(|m| (m.minute - minute0, m.data.increase))
        .collect();
    assert_eq!(increases, vec![(0, 10.0), (1, 60.0), (2, 0.0)]);
    assert_eq!(minutes[1].data.stat(Stat::Rate, 60.0), Some(1.0));

    // Another project cannot read these series by id.
    let other = store
        .create_project("metrics-other", &ProjectKey::generate())
        .await
        .unwrap();
    assert!(store
        .metric_minutes(other.id, vec![a.id], minute0, minute0 + 3)
        .await
        .unwrap()
        .is_empty());

    // Delta histograms of one minute merge, buckets added.
    let histogram = |count: u64, buckets: Vec<(f64, u64)>| {
        let mut h = point(
            "http.duration",
            MetricKind::Histogram,
            "/A",
            T0 + 20,
            PointValue::Histogram(Histogram {
                count,
                sum: count as f64 * 0.2,
                min: Some(0.01),
                max: Some(0.9),
                buckets,
            }),
        );
        h.cumulative = false;
        h
    };
    store
        .write_metrics(p, vec![histogram(4, vec![(0.1, 1), (0.5, 3)])], 100)
        .await
        .unwrap();
    store
        .write_metrics(p, vec![histogram(6, vec![(0.5, 2), (1.0, 4)])], 100)
        .await
        .unwrap();
    let hs = store.metric_series(p, "http.duration").await.unwrap();
    let m = store
        .metric_minutes(p, vec![hs[0].id], minute0, minute0 + 1)
        .await
        .unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].data.count, 10);
    assert_eq!(m[0].data.buckets, vec![(0.1, 1), (0.5, 5), (1.0, 4)]);

    // Exports written at once (several instances on one PostgreSQL) into one new series and
    // minute: every one counts.
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut h = histogram(2, vec![(0.5, 2)]);
        h.name = "task.duration".into();
        let store = store.clone();
        writers.spawn(async move { store.write_metrics(p, vec![h], 100).await });
    }
    while let Some(written) = writers.join_next().await {
        assert_eq!(written.unwrap().unwrap().points, 1);
    }
    let ts = store.metric_series(p, "task.duration").await.unwrap();
    assert_eq!(ts.len(), 1);
    let m = store
        .metric_minutes(p, vec![ts[0].id], minute0, minute0 + 1)
        .await
        .unwrap();
    assert_eq!(
        (m[0].data.count, m[0].data.buckets.clone()),
        (16, vec![(0.5, 16)])
    );

    // A point of the wrong kind is refused with its reason; the series limit refuses new
    // series only.
    let mut gauge = counter("/A", 3, 1.0);
    gauge.kind = MetricKind::Gauge;
    let refused = store.write_metrics(p, vec![gauge], 100).await.unwrap();
    assert_eq!((refused.points, refused.wrong_kind), (0, 1));
    assert!(refused.refusal.unwrap().contains("counter"));
    let limited = store
        .write_metrics(
            p,
            vec![
                counter("/A", 3, 80.0),
                counter("/new", 3, 1.0),
                counter("/new2", 3, 1.0),
            ],
            5,
        )
        .await
        .unwrap();
    assert_eq!((limited.points, limited.over_limit), (2, 1), "{limited:?}");
    assert!(limited.refusal.unwrap().contains("limit"));

    // Retention drops old minutes, and series silent since.
    let dropped = store
        .prune_metrics(Timestamp((T0 + 2 * MINUTE) / 1_000_000))
        .await
        .unwrap();
    assert!(dropped >= 3, "{dropped}");
    assert_eq!(
        store
            .metric_minutes(p, vec![a.id], minute0, minute0 + 10)
            .await
            .unwrap()
            .iter()
            .map(|m| m.minute - minute0)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    // Every series was seen just now: none goes.
    assert_eq!(
        store.metric_series(p, "http.requests").await.unwrap().len(),
        3
    );
    store
        .prune_metrics(Timestamp(Timestamp::now().millis() + 1))
        .await
        .unwrap();
    assert!(store.metric_names(p).await.unwrap().is_empty());
}
