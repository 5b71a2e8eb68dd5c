//! Spans, stored in blocks and found by trace id, on every backend.

use std::sync::Arc;
use vigie_core::span::{Span, SpanKind, SpanStatus};
use vigie_core::trace_keep::{Keep, KeepRules};
use vigie_core::tracequery::TraceQuery;
use vigie_core::{Project, ProjectKey, Timestamp};
use vigie_store::traces::{TraceOrder, BLOCK_SPANS};
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

    search_story(store, project, &other).await;
    keep_story(store).await;

    // Retention drops the blocks whose spans all ended before the time, and their index rows,
    // of one project: another project's spans of the same time stay.
    let just_after = Timestamp((T0 + 10_000_000) / 1_000_000);
    store
        .write_spans(other.id, (0..4).map(|n| span(small, n)).collect())
        .await
        .unwrap();
    assert_eq!(
        store
            .prune_spans(p, Timestamp(T0 / 1_000_000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.prune_spans(p, just_after).await.unwrap(),
        (BLOCK_SPANS + 104) as u64
    );
    assert_eq!(store.trace(other.id, small).await.unwrap().len(), 4);
    assert_eq!(store.prune_spans(other.id, just_after).await.unwrap(), 4);
    assert!(store.trace(p, big).await.unwrap().is_empty());
    assert!(store.trace(p, small).await.unwrap().is_empty());
    // And the entries that began before it.
    let everything = TraceQuery::default();
    let left = store
        .search_traces(p, &everything, TraceOrder::Newest, 500)
        .await
        .unwrap();
    assert!(left.iter().all(|e| e.start >= T0 + 10_000_000), "{left:?}");
    assert_eq!(left.len(), 4, "the search story's traces began later");
}

/// A span that begins a trace: `ms` long, starting `n` seconds after T0.
fn entry(n: u8, service: &str, kind: SpanKind, attrs: &[(&str, &str)], ms: i64) -> Span {
    let start = T0 + i64::from(n) * 1_000_000_000;
    Span {
        trace_id: format!("{n:032x}"),
        span_id: "00000000000000aa".into(),
        service: service.into(),
        name: "GET".into(),
        kind,
        start,
        end: start + ms * 1_000_000,
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Span::default()
    }
}

async fn search_story(store: &Arc<dyn Store>, project: &Project, other: &Project) {
    let p = project.id;
    let route = |r: &'static str| [("http.route", r), ("http.request.method", "GET")];
    let mut failed = entry(2, "api", SpanKind::Server, &route("/invoices/{id}"), 900);
    failed.status = SpanStatus::Error;
    failed.attributes.push(("job_id".into(), "bulk-7".into()));
    let mut child = entry(2, "api", SpanKind::Client, &[], 10);
    child.span_id = "00000000000000bb".into();
    child.parent_span_id = failed.span_id.clone();
    let spans = vec![
        entry(1, "api", SpanKind::Server, &route("/invoices/{id}"), 120),
        failed.clone(),
        child,
        entry(
            3,
            "worker",
            SpanKind::Consumer,
            &[("celery.task_name", "invoices.send")],
            3000,
        ),
        entry(4, "api", SpanKind::Server, &route("/health"), 5),
    ];
    store.write_spans(p, spans).await.unwrap();
    // The exporter sends a batch again: the entry is not found twice.
    store.write_spans(p, vec![failed]).await.unwrap();

    let find = |text: &str, order: TraceOrder| {
        let query = TraceQuery::parse(text, T0).unwrap();
        let store = store.clone();
        async move {
            let found = store.search_traces(p, &query, order, 50).await.unwrap();
            found
                .iter()
                .map(|e| e.trace_id[24..].trim_start_matches('0').to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    use TraceOrder::{Newest, Slowest};
    // Newest first; the blocks story's two roots began at T0, before these.
    let all = find("", Newest).await;
    assert!(all.starts_with("4 3 2 1 "), "{all}");
    assert_eq!(all.split(' ').count(), 6, "{all}");
    assert_eq!(find("service:api", Newest).await, "4 2 1");
    assert_eq!(find("service:api", Slowest).await, "2 1 4");
    assert_eq!(find(r#"name:"GET /invoices/{id}""#, Slowest).await, "2 1");
    assert_eq!(find("name:GET*", Newest).await, "4 2 1");
    assert_eq!(find("min:500ms", Newest).await, "3 2");
    assert_eq!(find("error", Newest).await, "2");
    assert_eq!(find("status:ok service:api", Newest).await, "4 1");
    assert_eq!(find("job:bulk-7", Newest).await, "2");
    assert_eq!(
        find("attr.http.route:/inv* service:api", Newest).await,
        "2 1"
    );
    // Like log fields, attributes match ignoring case: the blocks story's roots too.
    let any_case = find("attr.HTTP.route:/INVOICES/*", Newest).await;
    assert_eq!(any_case.split(' ').count(), 4, "{any_case}");
    assert_eq!(find("attr.http.route:/health", Newest).await, "4");
    assert_eq!(find("attr.celery.task_name:*", Newest).await, "3");
    assert_eq!(
        find("service:WORK*", Newest).await,
        "3",
        "a glob ignores case"
    );
    assert_eq!(
        find("service:Api", Newest).await,
        "",
        "an exact name keeps it"
    );
    assert_eq!(
        find("invoices", Newest).await,
        "3 2 1",
        "a word of the name"
    );
    assert_eq!(find("INVOICES.send", Newest).await, "3");
    assert_eq!(find(&format!("{:032x}", 2), Newest).await, "2");
    let at = |n: i64| T0 + n * 1_000_000_000;
    let range = TraceQuery {
        from: Some(at(2)),
        to: Some(at(4)),
        ..TraceQuery::default()
    };
    let found = store.search_traces(p, &range, Newest, 50).await.unwrap();
    assert_eq!(found.len(), 2);
    let newest = &found[0];
    assert_eq!(
        (
            newest.service.as_str(),
            newest.name.as_str(),
            newest.kind.as_str()
        ),
        ("worker", "invoices.send", "consumer")
    );
    assert_eq!(newest.duration_ns, 3_000_000_000);
    assert!(!newest.failed && found[1].failed);
    assert_eq!(found[1].job_id.as_deref(), Some("bulk-7"));
    assert_eq!(found[1].name, "GET /invoices/{id}");
    let one = store
        .search_traces(p, &TraceQuery::default(), Slowest, 1)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, "invoices.send");
    // Nothing of it in another project.
    assert!(store
        .search_traces(other.id, &TraceQuery::default(), Newest, 50)
        .await
        .unwrap()
        .is_empty());
}

/// The tail-based keep rules: a settle pass keeps a trace that failed anywhere (even in a
/// block not settled yet), one slower than its endpoint's p95, and those in the rate; it drops
/// the rest, spans and entries, and never judges a block twice.
async fn keep_story(store: &Arc<dyn Store>) {
    let p = store
        .create_project("keep-rules", &ProjectKey::generate())
        .await
        .unwrap()
        .id;
    let request = |id: &str, route: &'static str, ms: i64| {
        let mut span = entry(
            1,
            "api",
            SpanKind::Server,
            &[("http.route", route), ("http.request.method", "GET")],
            ms,
        );
        span.trace_id = id.into();
        span
    };
    let failing = "aaaaaaaaaaaaaaaaffffffffffffffff";
    let slow = "bbbbbbbbbbbbbbbbffffffffffffffff";
    let in_rate = "cccccccccccccccc0000000000000001";
    let ordinary = "ddddddddddddddddffffffffffffffff";
    let late = "eeeeeeeeeeeeeeeeffffffffffffffff";
    let mut ordinary_child = request(ordinary, "/invoices", 5);
    ordinary_child.span_id = "00000000000000cc".into();
    ordinary_child.parent_span_id = "00000000000000aa".into();
    ordinary_child.kind = SpanKind::Client;
    let slow_span = request(slow, "/slow", 500);
    let first = vec![
        request(failing, "/invoices", 5),
        slow_span.clone(),
        request(in_rate, "/invoices", 5),
        request(ordinary, "/invoices", 5),
        ordinary_child,
    ];
    store.write_spans(p, first).await.unwrap();
    // The failure arrives in a later export: another block.
    let mut error = request(failing, "/invoices", 1);
    error.span_id = "00000000000000dd".into();
    error.parent_span_id = "00000000000000aa".into();
    error.kind = SpanKind::Internal;
    error.status = SpanStatus::Error;
    store.write_spans(p, vec![error]).await.unwrap();
    // A trace still going on at the settle time.
    let mut going = request(late, "/invoices", 5);
    going.start += 3_600 * 1_000_000_000;
    going.end += 3_600 * 1_000_000_000;
    store.write_spans(p, vec![going]).await.unwrap();

    let rules = KeepRules {
        rate: 0.5,
        p95_ns: [(slow_span.entry_name(), 100_000_000)]
            .into_iter()
            .collect(),
    };
    let before = Timestamp((T0 + 600 * 1_000_000_000) / 1_000_000);
    let settled = store.settle_spans(p, before, rules.clone()).await.unwrap();
    assert_eq!(settled.blocks, 2, "{settled:?}");
    for (outcome, n) in [
        (Keep::Error, 1),
        (Keep::Slow, 1),
        (Keep::Sampled, 1),
        (Keep::Dropped, 1),
    ] {
        assert_eq!(
            settled.traces.get(&outcome).copied().unwrap_or(0),
            n,
            "{outcome:?}: {settled:?}"
        );
    }
    assert_eq!(settled.spans_dropped, 2, "the ordinary trace's two spans");
    assert_eq!(
        store.trace(p, failing).await.unwrap().len(),
        2,
        "both blocks' spans"
    );
    assert_eq!(store.trace(p, slow).await.unwrap(), vec![slow_span]);
    assert_eq!(store.trace(p, in_rate).await.unwrap().len(), 1);
    assert!(store.trace(p, ordinary).await.unwrap().is_empty());
    let found = |id: &str| {
        let query = TraceQuery {
            trace_id: Some(id.into()),
            ..Default::default()
        };
        let store = store.clone();
        async move {
            store
                .search_traces(p, &query, TraceOrder::Newest, 10)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(found(ordinary).await, 0, "its entry went with it");
    assert_eq!(found(failing).await, 1);
    assert_eq!(found(late).await, 1);

    // Settled blocks are final: a second pass finds nothing; the late trace waits its turn.
    let again = store.settle_spans(p, before, rules.clone()).await.unwrap();
    assert_eq!(again.blocks, 0, "{again:?}");
    assert_eq!(store.trace(p, late).await.unwrap().len(), 1);
    // At rate 1 a pass only marks blocks settled.
    let later = Timestamp(before.0 + 7_200_000);
    let all = KeepRules {
        rate: 1.0,
        ..KeepRules::default()
    };
    let marked = store.settle_spans(p, later, all).await.unwrap();
    assert_eq!((marked.blocks, marked.traces.len()), (1, 0), "{marked:?}");
    assert_eq!(store.trace(p, late).await.unwrap().len(), 1);
    assert_eq!(store.settle_spans(p, later, rules).await.unwrap().blocks, 0);
}
