//! Spans, stored in blocks and found by trace id, on every backend.

use std::sync::Arc;
use vigie_core::span::{Span, SpanKind, SpanStatus};
use vigie_core::{Project, ProjectKey, Timestamp};
use vigie_store::traces::BLOCK_SPANS;
use vigie_store::Store;

const T0: i64 = 1_795_295_700_000_000_000;

fn span(trace: &str, n: usize) -> Span {
    Span {
        trace_id: trace.into(),
        span_id: format!("{:016x}", n + 1),
        parent_span_id: if n == 0 {
            String::new()
        } else {
            format!("{:016x}", 1)
        },
        service: "shop".into(),
        name: format!("step {n}"),
        kind: if n == 0 {
            SpanKind::Server
        } else {
            SpanKind::Internal
        },
        start: T0 + n as i64 * 1_000,
        end: T0 + n as i64 * 1_000 + 500,
        status: if n == 3 {
            SpanStatus::Error
        } else {
            SpanStatus::Unset
        },
        attributes: vec![("Http.Route".into(), "/Invoices/{id}".into())],
        ..Span::default()
    }
}

pub async fn traces_story(store: &Arc<dyn Store>, project: &Project) {
    let p = project.id;
    let big = "5b8efff798038103d269b633813fc60c";
    let small = "0af7651916cd43dd8448eb211c80319c";
    // A trace larger than a block, sent in two requests in reverse order, beside a small one.
    let all: Vec<Span> = (0..BLOCK_SPANS + 100).map(|n| span(big, n)).collect();
    let (first, second) = all.split_at(600);
    let mut request = second.to_vec();
    request.extend((0..4).map(|n| span(small, n)));
    assert_eq!(store.write_spans(p, request).await.unwrap(), 1);
    assert_eq!(store.write_spans(p, first.to_vec()).await.unwrap(), 1);
    assert_eq!(store.write_spans(p, Vec::new()).await.unwrap(), 0);

    let read = store.trace(p, big).await.unwrap();
    assert_eq!(read.len(), BLOCK_SPANS + 100);
    assert_eq!(read, all, "every span back, by start time, as sent");
    let read = store.trace(p, &small.to_uppercase()).await.unwrap();
    assert_eq!(read.len(), 4);
    assert_eq!(read[3].status, SpanStatus::Error);
    assert_eq!(read[0].attribute("Http.Route"), Some("/Invoices/{id}"));
    assert!(store
        .trace(p, "ffffffffffffffffffffffffffffffff")
        .await
        .unwrap()
        .is_empty());

    // Another project sees none of it.
    let other = store
        .create_project("spans-elsewhere", &ProjectKey::generate())
        .await
        .unwrap();
    assert!(store.trace(other.id, big).await.unwrap().is_empty());

    // Retention drops the blocks whose spans all ended before the time, and their index rows.
    let just_after = Timestamp((T0 + 10_000_000) / 1_000_000);
    assert_eq!(
        store.prune_spans(Timestamp(T0 / 1_000_000)).await.unwrap(),
        0
    );
    assert_eq!(
        store.prune_spans(just_after).await.unwrap(),
        (BLOCK_SPANS + 104) as u64
    );
    assert!(store.trace(p, big).await.unwrap().is_empty());
    assert!(store.trace(p, small).await.unwrap().is_empty());
}
