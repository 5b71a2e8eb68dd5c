//! The errors-and-performance chapter of the storage story (see `story.rs`).

use std::sync::Arc;
use vigie_core::event::Grouping;
use vigie_core::issue::{IssueStatus, StatusChange};
use vigie_core::{Project, Timestamp};
use vigie_store::errors::{
    user_hash, Dropped, EventBody, IssueChange, LooseSpan, NewAttachment, NewFeedback,
    NewTransaction, SessionCounts, SpanTiming,
};
use vigie_store::{
    ErrorBatch, ErrorSettings, EventFilter, IssueFilter, IssueSort, Store, StoreError,
};

const T0: Timestamp = Timestamp(1_800_000_000_000);
const MINUTE: i64 = 60_000;

fn event(
    id: u32,
    key: &str,
    at: i64,
    release: Option<&str>,
    user: Option<&str>,
) -> vigie_store::errors::NewEvent {
    vigie_store::errors::NewEvent {
        event_id: format!("{id:032x}"),
        grouping: Grouping {
            key: key.repeat(32 / key.len()),
            title: format!("ValueError: {key}"),
            culprit: "shop.tasks in send_invoice".into(),
        },
        level: "error".into(),
        time: Timestamp(T0.0 + at),
        received: Timestamp(T0.0 + at),
        environment: Some("production".into()),
        release: release.map(str::to_string),
        trace_id: Some("ab".repeat(16)),
        job_id: Some("job-7".into()),
        user_key: user.map(str::to_string),
        user_label: user.map(str::to_string),
        tags: vec![("customer".into(), "acme".into())],
        body: EventBody::compress(
            format!("{{\"event_id\": \"{id:032x}\", \"message\": \"é\"}}").as_bytes(),
        ),
    }
}

fn transaction(id: u32, name: &str, at: i64, ms: f64, status: &str) -> NewTransaction {
    NewTransaction {
        event_id: format!("{:032x}", 0xf000_0000u32 + id),
        name: name.into(),
        op: "http.server".into(),
        time: Timestamp(T0.0 + at),
        duration_ms: ms,
        status: status.into(),
        apdex_ms: 300.0,
        trace_id: None,
        job_id: None,
        spans: vec![SpanTiming {
            op: "db".into(),
            description: "SELECT * FROM invoices WHERE id = %s".into(),
            duration_ms: ms / 2.0,
        }],
        body: b"{\"type\": \"transaction\"}".to_vec(),
    }
}

pub async fn errors_story(store: &Arc<dyn Store>, project: &Project) {
    let p = project.id;

    // Settings: defaults until set; bad values refused.
    assert_eq!(
        store.error_settings(p).await.unwrap(),
        ErrorSettings::default()
    );
    let settings = ErrorSettings {
        apdex_ms: 500,
        events_per_minute: Some(1000),
        keep_user_contact: true,
        scrub_keys: vec!["iban_hint".into(), "siret".into()],
        span_exceptions: false,
        span_retention_days: Some(7),
    };
    store.set_error_settings(p, &settings).await.unwrap();
    assert_eq!(store.error_settings(p).await.unwrap(), settings);
    let bad = ErrorSettings {
        apdex_ms: 0,
        ..settings.clone()
    };
    assert!(matches!(
        store.set_error_settings(p, &bad).await,
        Err(StoreError::Invalid {
            field: "apdex_ms",
            ..
        })
    ));
    for days in [0, -1, 3651] {
        let bad = ErrorSettings {
            span_retention_days: Some(days),
            ..settings.clone()
        };
        assert!(
            matches!(
                store.set_error_settings(p, &bad).await,
                Err(StoreError::Invalid {
                    field: "span_retention_days",
                    ..
                })
            ),
            "{days} days"
        );
    }
    assert_eq!(
        store.error_settings(p).await.unwrap(),
        settings,
        "unchanged"
    );

    // Three events of issue "aa" (two users), one of "bb"; then a retry of two of them.
    let mut batch = ErrorBatch::new(p);
    batch.events = vec![
        event(1, "aa", 0, Some("1.0"), Some("u1")),
        event(2, "aa", MINUTE, Some("1.0"), Some("u2")),
        event(3, "bb", 2 * MINUTE, Some("1.0"), None),
        event(4, "aa", 90 * MINUTE, Some("1.1"), Some("u1")),
        event(4, "aa", 90 * MINUTE, Some("1.1"), Some("u1")),
    ];
    let written = store.write_errors(batch, T0).await.unwrap();
    assert_eq!(written.duplicates, 1);
    assert_eq!(written.events.len(), 4);
    let changes: Vec<IssueChange> = written.events.iter().map(|e| e.change).collect();
    assert_eq!(
        changes.iter().filter(|c| **c == IssueChange::New).count(),
        2
    );
    let mut retry = ErrorBatch::new(p);
    retry.events = vec![
        event(1, "aa", 0, Some("1.0"), Some("u1")),
        event(5, "aa", 91 * MINUTE, Some("1.1"), Some("u3")),
    ];
    let again = store.write_errors(retry, T0).await.unwrap();
    assert_eq!(again.duplicates, 1);
    assert_eq!(again.events[0].change, IssueChange::Seen);

    let page = store
        .list_issues(&IssueFilter {
            project: p,
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    let aa = page.issues[0].clone();
    assert_eq!(aa.title, "ValueError: aa");
    assert_eq!((aa.event_count, aa.user_count), (4, 3));
    assert_eq!(aa.first_seen, T0);
    assert_eq!(aa.last_seen, Timestamp(T0.0 + 91 * MINUTE));
    assert_eq!(aa.first_release.as_deref(), Some("1.0"));
    assert_eq!(aa.last_release.as_deref(), Some("1.1"));
    assert_eq!(aa.status, IssueStatus::Unresolved);

    // Filters and sorts.
    let find = |f: IssueFilter| async move {
        store
            .list_issues(&f)
            .await
            .unwrap()
            .issues
            .into_iter()
            .map(|i| i.title)
            .collect::<Vec<_>>()
    };
    let base = IssueFilter {
        project: p,
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        find(IssueFilter {
            sort: IssueSort::FirstSeen,
            ..base.clone()
        })
        .await,
        ["ValueError: bb", "ValueError: aa"]
    );
    assert_eq!(
        find(IssueFilter {
            release: Some("1.1".into()),
            ..base.clone()
        })
        .await,
        ["ValueError: aa"]
    );
    assert_eq!(
        find(IssueFilter {
            tags: vec![("customer".into(), "acme".into())],
            ..base.clone()
        })
        .await
        .len(),
        2
    );
    assert!(find(IssueFilter {
        tags: vec![("customer".into(), "other".into())],
        ..base.clone()
    })
    .await
    .is_empty());
    // Several pairs: an issue must have every one (a pair named twice counts once).
    assert_eq!(
        find(IssueFilter {
            release: Some("1.1".into()),
            tags: vec![("customer".into(), "acme".into())],
            ..base.clone()
        })
        .await,
        ["ValueError: aa"]
    );
    assert_eq!(
        find(IssueFilter {
            environment: Some("production".into()),
            tags: vec![
                ("customer".into(), "acme".into()),
                ("customer".into(), "acme".into()),
                ("environment".into(), "production".into()),
            ],
            ..base.clone()
        })
        .await
        .len(),
        2
    );
    assert!(find(IssueFilter {
        tags: vec![
            ("customer".into(), "acme".into()),
            ("customer".into(), "other".into()),
        ],
        ..base.clone()
    })
    .await
    .is_empty());
    assert_eq!(
        find(IssueFilter {
            text: Some("BB".into()),
            ..base.clone()
        })
        .await,
        ["ValueError: bb"]
    );
    assert_eq!(
        find(IssueFilter {
            environment: Some("production".into()),
            level: Some("error".into()),
            ..base.clone()
        })
        .await
        .len(),
        2
    );
    assert!(find(IssueFilter {
        status: Some(IssueStatus::Resolved),
        ..base.clone()
    })
    .await
    .is_empty());

    // Tags, hours, events and bodies.
    let tags = store.issue_tags(aa.id).await.unwrap();
    let count_of = |k: &str, v: &str| {
        tags.iter()
            .find(|t| t.key == k && t.value == v)
            .map(|t| t.count)
    };
    assert_eq!(count_of("release", "1.0"), Some(2));
    assert_eq!(count_of("release", "1.1"), Some(2));
    assert_eq!(count_of("customer", "acme"), Some(4));
    let hours = store.issue_hours(vec![aa.id], T0).await.unwrap();
    assert_eq!(
        hours,
        vec![
            (aa.id, T0.0 - T0.0 % 3_600_000, 2),
            (aa.id, T0.0 - T0.0 % 3_600_000 + 3_600_000, 2)
        ]
    );
    let events = store
        .events(&EventFilter {
            project: p,
            issue: Some(aa.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0].event_id, format!("{:032x}", 5));
    let older = store
        .events(&EventFilter {
            project: p,
            issue: Some(aa.id),
            before_seq: Some(events[0].seq),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(older[0].event_id, format!("{:032x}", 4));
    let by_job = store
        .events(&EventFilter {
            project: p,
            job_id: Some("job-7".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_job.len(), 5);
    let (meta, body) = store
        .event(p, &format!("{:032x}", 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.environment.as_deref(), Some("production"));
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!("{{\"event_id\": \"{:032x}\", \"message\": \"é\"}}", 3)
    );
    assert!(store.event(p, &"0".repeat(32)).await.unwrap().is_none());
    // A body rewritten (frames resolved later) is read back; its summary and issue stay.
    let id3 = format!("{:032x}", 3);
    let resolved_body = format!("{{\"event_id\": \"{id3}\", \"message\": \"resolved\"}}");
    assert!(store
        .set_event_body(p, &id3, resolved_body.as_bytes())
        .await
        .unwrap());
    let (again, body) = store.event(p, &id3).await.unwrap().unwrap();
    assert_eq!(String::from_utf8(body).unwrap(), resolved_body);
    assert_eq!(again, meta);
    assert!(!store
        .set_event_body(p, &"0".repeat(32), b"{}")
        .await
        .unwrap());
    assert!(!store
        .set_event_body(vigie_core::ProjectId(p.0 + 1000), &id3, b"{}")
        .await
        .unwrap());

    // Resolved, then an event: a regression. Resolved in next release: the same release does
    // not reopen it, another does. Ignored until 2 more events.
    let resolved = store
        .set_issue_status(p, aa.id, &StatusChange::Resolve)
        .await
        .unwrap();
    assert_eq!(resolved.status, IssueStatus::Resolved);
    let later = Timestamp(T0.0 + 100 * MINUTE);
    let mut b = ErrorBatch::new(p);
    b.events = vec![event(6, "aa", 100 * MINUTE, Some("1.1"), None)];
    let w = store.write_errors(b, later).await.unwrap();
    assert_eq!(w.events[0].change, IssueChange::Regression);
    let issue = store.issue(p, aa.id).await.unwrap().unwrap();
    assert_eq!(
        (issue.status, issue.regressed_at),
        (IssueStatus::Unresolved, Some(later))
    );

    let next = store
        .set_issue_status(p, aa.id, &StatusChange::ResolveInNextRelease)
        .await
        .unwrap();
    assert_eq!(
        (
            next.status,
            next.resolved_release.as_deref(),
            next.regressed_at
        ),
        (IssueStatus::ResolvedNext, Some("1.1"), None)
    );
    let mut b = ErrorBatch::new(p);
    b.events = vec![event(7, "aa", 101 * MINUTE, Some("1.1"), None)];
    assert_eq!(
        store.write_errors(b, later).await.unwrap().events[0].change,
        IssueChange::Seen
    );
    assert_eq!(
        store.issue(p, aa.id).await.unwrap().unwrap().status,
        IssueStatus::ResolvedNext
    );
    let mut b = ErrorBatch::new(p);
    b.events = vec![event(8, "aa", 102 * MINUTE, Some("1.2"), None)];
    let at = Timestamp(T0.0 + 102 * MINUTE);
    assert_eq!(
        store.write_errors(b, at).await.unwrap().events[0].change,
        IssueChange::Regression
    );
    // Each regression is kept with the release that brought the issue back.
    let regressions = store.issue_regressions(aa.id).await.unwrap();
    let seen: Vec<(Timestamp, Option<&str>)> = regressions
        .iter()
        .map(|r| (r.at, r.release.as_deref()))
        .collect();
    assert_eq!(seen, [(at, Some("1.2")), (later, Some("1.1"))]);
    let brought = store.release_issues(p, "1.2", 10).await.unwrap();
    assert_eq!(
        brought.regressed.iter().map(|i| i.id).collect::<Vec<_>>(),
        [aa.id]
    );
    assert!(brought.new.iter().all(|i| i.id != aa.id));
    let figures = store.release_figures(p).await.unwrap();
    let of = |v: &str| figures.iter().find(|f| f.version == v).unwrap().regressions;
    assert_eq!((of("1.1"), of("1.2")), (1, 1));

    let ignored = store
        .set_issue_status(
            p,
            aa.id,
            &StatusChange::Ignore {
                more_events: Some(2),
                until: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (ignored.status, ignored.ignore_until_count),
        (IssueStatus::Ignored, Some(ignored.event_count + 2))
    );
    for (id, expect) in [(9, IssueStatus::Ignored), (10, IssueStatus::Unresolved)] {
        let mut b = ErrorBatch::new(p);
        b.events = vec![event(id, "aa", 103 * MINUTE, Some("1.2"), None)];
        assert_eq!(
            store.write_errors(b, at).await.unwrap().events[0].change,
            IssueChange::Seen
        );
        assert_eq!(store.issue(p, aa.id).await.unwrap().unwrap().status, expect);
    }
    assert!(matches!(
        store
            .set_issue_status(
                p,
                aa.id,
                &StatusChange::Ignore {
                    more_events: Some(0),
                    until: None
                }
            )
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .set_issue_status(
                p,
                vigie_core::issue::IssueId(999_999),
                &StatusChange::Resolve
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .set_issue_status(p, aa.id, &StatusChange::Reopen)
            .await
            .unwrap()
            .status,
        IssueStatus::Unresolved
    );

    // Transactions in two batches merge into the same minutes.
    let mut first = ErrorBatch::new(p);
    first.transactions = (0..100)
        .map(|i| {
            transaction(
                i,
                "/invoices/{id}",
                i64::from(i % 2) * MINUTE,
                f64::from(i + 1) * 10.0,
                if i == 50 { "internal_error" } else { "ok" },
            )
        })
        .collect();
    store.write_errors(first, T0).await.unwrap();
    let mut second = ErrorBatch::new(p);
    second.transactions = (100..200)
        .map(|i| {
            transaction(
                i,
                "/invoices/{id}",
                i64::from(i % 2) * MINUTE,
                f64::from(i + 1) * 10.0,
                "ok",
            )
        })
        .collect();
    second
        .transactions
        .push(transaction(999, "/health", 0, 1.0, "ok"));
    assert_eq!(
        store.write_errors(second, T0).await.unwrap().transactions,
        101
    );
    let list = store
        .transactions(p, T0, Timestamp(T0.0 + 10 * MINUTE), 0)
        .await
        .unwrap();
    assert_eq!(
        list.iter()
            .map(|t| (t.name.as_str(), t.count))
            .collect::<Vec<_>>(),
        [("/invoices/{id}", 200), ("/health", 1)]
    );
    let inv = &list[0];
    assert_eq!(inv.failures, 1);
    // 200 over its two active minutes of the ten asked: 100 a minute, not 20.
    assert_eq!(inv.active, Some((T0, Timestamp(T0.0 + MINUTE))));
    assert_eq!(inv.per_minute(), 100.0);
    assert_eq!(list[1].per_minute(), 1.0);
    // In five slices of two minutes each, all 200 fall in the first; none is lost at the edges.
    let sliced = store
        .transactions(p, T0, Timestamp(T0.0 + 10 * MINUTE), 5)
        .await
        .unwrap();
    assert_eq!(sliced[0].counts, [200, 0, 0, 0, 0]);
    assert_eq!(sliced[1].counts, [1, 0, 0, 0, 0]);
    assert!(inv.counts.is_empty(), "no slices unless asked");

    // Batches written at once (several instances on one PostgreSQL) each find the minute not
    // yet stored; every one of them still counts.
    let export = -120 * MINUTE;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8u32 {
        let mut batch = ErrorBatch::new(p);
        batch.transactions = (0..10)
            .map(|i| transaction(7000 + w * 10 + i, "/export", export, 100.0, "ok"))
            .collect();
        let store = store.clone();
        writers.spawn(async move { store.write_errors(batch, T0).await });
    }
    while let Some(written) = writers.join_next().await {
        assert_eq!(written.unwrap().unwrap().transactions, 10);
    }
    let exports = store
        .transactions(
            p,
            Timestamp(T0.0 + export),
            Timestamp(T0.0 + export + MINUTE),
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        exports
            .iter()
            .map(|t| (t.name.as_str(), t.count, t.sketch.count()))
            .collect::<Vec<_>>(),
        [("/export", 80, 80)]
    );
    // Durations 10..2000 ms with T = 300: 30 satisfied, 90 tolerated less the failure (510 ms).
    assert_eq!((inv.satisfied, inv.tolerated), (30, 89));
    let p50 = inv.sketch.quantile(0.5).unwrap();
    assert!((p50 - 1005.0).abs() < 15.0, "{p50}");
    assert_eq!(inv.sketch.quantile(1.0), Some(2000.0));
    let series = store
        .transaction_series(
            p,
            "/invoices/{id}",
            T0,
            Timestamp(T0.0 + 10 * MINUTE),
            MINUTE,
        )
        .await
        .unwrap();
    assert_eq!(
        series
            .iter()
            .map(|(t, s)| (t.0 - T0.0, s.count))
            .collect::<Vec<_>>(),
        [(0, 100), (MINUTE, 100)]
    );
    let samples = store
        .transaction_samples(p, Some("/invoices/{id}"), T0, None, 50)
        .await
        .unwrap();
    assert!(
        samples.len() >= 3 && samples.len() <= 9,
        "{}",
        samples.len()
    );
    assert_eq!(samples[0].duration_ms, 2000.0);
    assert!(samples.iter().any(|s| s.status == "internal_error"));
    let (sample, body) = store
        .transaction_sample(p, &samples[0].event_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sample.name, "/invoices/{id}");
    assert_eq!(body, b"{\"type\": \"transaction\"}");
    let spans = store.span_stats(p, "/invoices/{id}", T0, 10).await.unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].count, 200);
    assert_eq!(spans[0].max_ms, 1000.0);

    // Release health, dropped events, check-ins, attachments.
    let mut other = ErrorBatch::new(p);
    other.sessions = vec![
        SessionCounts {
            release: "1.1".into(),
            environment: "production".into(),
            at: T0,
            started: 10,
            errored: 2,
            crashed: 1,
            abnormal: 0,
            unhandled: 0,
            user: Some(user_hash("ada")),
        },
        SessionCounts {
            release: "1.1".into(),
            environment: "production".into(),
            at: T0,
            started: 10,
            errored: 0,
            crashed: 1,
            abnormal: 0,
            unhandled: 3,
            user: Some(user_hash("ada")),
        },
    ];
    // Two more people, whose sessions ended well (one of them twice); anonymous sessions
    // count for sessions only.
    for did in ["bob", "cyd", "bob"] {
        other.sessions.push(SessionCounts {
            release: "1.1".into(),
            environment: "staging".into(),
            at: T0,
            user: Some(user_hash(did)),
            ..SessionCounts::default()
        });
    }
    other.dropped = vec![
        Dropped {
            at: T0,
            reason: "queue_overflow".into(),
            category: "error".into(),
            quantity: 3,
        },
        Dropped {
            at: T0,
            reason: "queue_overflow".into(),
            category: "error".into(),
            quantity: 4,
        },
    ];
    other.attachments = vec![NewAttachment {
        event_id: format!("{:032x}", 3),
        name: "report.csv".into(),
        content_type: "text/csv".into(),
        received: T0,
        data: b"a,b\n1,2\n".to_vec(),
    }];
    store.write_errors(other, T0).await.unwrap();
    let health = store.release_health(p, T0).await.unwrap();
    assert_eq!(
        (
            health[0].release.as_str(),
            health[0].started,
            health[0].crashed
        ),
        ("1.1", 20, 2)
    );
    assert_eq!(health[0].crash_free(), Some(0.9));
    assert_eq!(health[0].unhandled, 3);
    assert_eq!(health[0].unhandled_share(), Some(0.15));
    assert_eq!((health[0].users, health[0].crashed_users), (3, 1));
    assert_eq!(health[0].crash_free_users(), Some(1.0 - 1.0 / 3.0));
    // Sessions are kept per hour: the hour `since` falls in counts whole, so a window that
    // began a minute after those sessions' hour did still holds them, until the hour after.
    let (minute, hour) = (60_000, 3_600_000);
    for since in [T0.millis() + minute, T0.millis() + hour - minute] {
        let health = store.release_health(p, Timestamp(since)).await.unwrap();
        assert_eq!(health[0].started, 20, "{since}");
    }
    let next_hour = store
        .release_health(p, Timestamp(T0.millis() + hour))
        .await
        .unwrap();
    assert!(next_hour.is_empty(), "{next_hour:?}");
    let days = store.release_days(p, Some("1.1".into()), T0).await.unwrap();
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!(
        (
            days[0].started,
            days[0].crashed,
            days[0].users,
            days[0].crashed_users
        ),
        (20, 2, 3, 1)
    );
    assert_eq!(days[0].day.millis() % 86_400_000, 0, "a day's start");
    assert!(store
        .release_days(p, Some("9.9".into()), T0)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .release_days(p, None, T0)
        .await
        .unwrap()
        .iter()
        .any(|d| d.release == "1.1"));
    let dropped = store.dropped_events(p, T0).await.unwrap();
    assert_eq!(dropped[0].quantity, 7);
    let files = store.attachments(p, &format!("{:032x}", 3)).await.unwrap();
    assert_eq!((files[0].name.as_str(), files[0].size), ("report.csv", 8));
    let (_, data) = store.attachment(p, files[0].id).await.unwrap().unwrap();
    assert_eq!(data, b"a,b\n1,2\n");

    // Feedback: linked to the issue of the event it is about (event 4, issue "aa"), kept
    // once when an SDK sends it again; loose spans count in their transaction's breakdown.
    let note = |id: u32, at: i64, about: Option<u32>| NewFeedback {
        event_id: format!("{:032x}", 0xfeed_0000u32 + id),
        time: Timestamp(T0.0 + at),
        message: format!("note {id} — é"),
        name: Some("Grace".into()),
        contact_email: Some("grace@example.com".into()),
        url: None,
        associated_event_id: about.map(|e| format!("{e:032x}")),
    };
    let mut b = ErrorBatch::new(p);
    b.feedback = vec![
        note(1, 0, Some(4)),
        note(2, 96 * MINUTE, Some(4)),
        note(3, 97 * MINUTE, None),
    ];
    // Two children of segment "5e9" of trace "7ace" came before it (one of them twice, a
    // retried envelope), one names no segment; the segment's sample shows each child once.
    let stray = |span_id: &str, segment: Option<&str>| LooseSpan {
        transaction: "GET /invoices".into(),
        time: T0,
        span: SpanTiming {
            op: "resource.script".into(),
            description: "main.js".into(),
            duration_ms: 40.0,
        },
        trace_id: "7ace".into(),
        segment_id: segment.map(str::to_string),
        body: format!("{{\"span_id\": \"{span_id}\", \"op\": \"resource.script\"}}").into_bytes(),
    };
    b.loose_spans = vec![
        stray("c1", Some("5e9")),
        stray("c2", Some("5e9")),
        stray("c3", None),
    ];
    store.write_errors(b.clone(), T0).await.unwrap();
    b.loose_spans = vec![stray("c1", Some("5e9"))];
    store.write_errors(b, T0).await.unwrap();
    let mut segment = ErrorBatch::new(p);
    let mut late = transaction(900, "GET /invoices", 0, 50.0, "ok");
    late.trace_id = Some("7ace".into());
    late.body = br#"{"type": "transaction", "contexts": {"trace": {"trace_id": "7ace", "span_id": "5e9"}}, "spans": [{"span_id": "own"}]}"#.to_vec();
    segment.transactions = vec![late.clone()];
    store.write_errors(segment, T0).await.unwrap();
    let (_, body) = store
        .transaction_sample(p, &late.event_id)
        .await
        .unwrap()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<&str> = body["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["own", "c1", "c2"], "{body}");

    // A sender streaming spans under one segment forever: 1,000 bodies are kept for it (three
    // are there already: c1 twice, as sent), the rest are timed but counted as dropped.
    let flood = |from: usize, n: usize| {
        let mut batch = ErrorBatch::new(p);
        batch.loose_spans = (from..from + n)
            .map(|i| LooseSpan {
                // Timed under a name of its own, so the breakdowns read below stay as sent.
                transaction: "flood".into(),
                ..stray(&format!("f{i}"), Some("5e9"))
            })
            .collect();
        batch
    };
    let first = store.write_errors(flood(0, 900), T0).await.unwrap();
    assert_eq!(first.stray_spans_dropped, 0);
    let second = store.write_errors(flood(900, 300), T0).await.unwrap();
    assert_eq!(
        second.stray_spans_dropped, 203,
        "3 + 900 held, room for 97 of 300"
    );
    let third = store.write_errors(flood(1200, 5), T0).await.unwrap();
    assert_eq!(third.stray_spans_dropped, 5);
    let dropped = store.dropped_events(p, T0).await.unwrap();
    let full: i64 = dropped
        .iter()
        .filter(|d| d.reason == vigie_store::errors::SEGMENT_FULL && d.category == "span")
        .map(|d| d.quantity)
        .sum();
    assert_eq!(full, 208);
    // Drops are kept per hour: a window opening inside their hour still holds them.
    let later = Timestamp(T0.millis() + 30 * 60_000);
    let dropped = store.dropped_events(p, later).await.unwrap();
    assert!(
        dropped
            .iter()
            .any(|d| d.reason == vigie_store::errors::SEGMENT_FULL
                && d.category == "span"
                && d.quantity == 208),
        "{dropped:?}"
    );
    let (_, body) = store
        .transaction_sample(p, &late.event_id)
        .await
        .unwrap()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // Its own span, and the 1,000 kept less c1's second copy.
    assert_eq!(body["spans"].as_array().unwrap().len(), 1 + 999);
    let all = store.feedback(p, None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|f| f.message.as_str()).collect::<Vec<_>>(),
        ["note 3 — é", "note 2 — é", "note 1 — é"],
        "newest first, each once"
    );
    assert_eq!(
        (all[1].issue_id, all[1].issue_title.as_deref()),
        (Some(aa.id), Some("ValueError: aa"))
    );
    assert_eq!(all[0].issue_id, None);
    assert_eq!(store.feedback(p, Some(aa.id), 10).await.unwrap().len(), 2);
    assert_eq!(store.feedback(p, None, 1).await.unwrap().len(), 1);
    let spans = store.span_stats(p, "GET /invoices", T0, 10).await.unwrap();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let script = spans.iter().find(|s| s.op == "resource.script").unwrap();
    assert_eq!(
        script.count, 4,
        "every loose span counts in the breakdown, as sent"
    );

    // Retention: everything before the cutoff goes, issues not seen since with it.
    let cutoff = Timestamp(T0.0 + 95 * MINUTE);
    assert!(store.prune_errors(cutoff).await.unwrap() > 0);
    let left = store
        .list_issues(&IssueFilter {
            project: p,
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        left.issues
            .iter()
            .map(|i| i.title.as_str())
            .collect::<Vec<_>>(),
        ["ValueError: aa"]
    );
    let events = store
        .events(&EventFilter {
            project: p,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(events.iter().all(|e| e.time >= cutoff), "{events:?}");
    assert!(store
        .transactions(p, T0, Timestamp(T0.0 + 10 * MINUTE), 0)
        .await
        .unwrap()
        .is_empty());
    let notes = store.feedback(p, None, 10).await.unwrap();
    assert_eq!(
        notes.len(),
        2,
        "feedback before the cutoff is deleted: {notes:?}"
    );
    assert_eq!(store.prune_errors(cutoff).await.unwrap(), 0);
}
