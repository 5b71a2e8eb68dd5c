//! Envelopes the real sentry-python SDK (2.x) sent, captured with a recording transport:
//! parsed, summarized, grouped and scrubbed as ingest will do it.
//!
//! `tests/fixtures/sentry/*.envelope`: `exception` (a KeyError three frames deep, with a local
//! `password`, `api_token` and card number, a user with e-mail, a breadcrumb, a `job_id` tag),
//! `message` (`capture_message` at warning level) and `transaction` (one span).

use serde_json::Value;
use vigie_core::event::{group, EventLevel};
use vigie_core::scrub::{Scrubber, FILTERED};
use vigie_protocol::sentry::envelope::{self, ItemType};
use vigie_protocol::sentry::event::{context, event_id, summarize, timestamp};
use vigie_protocol::sentry::transaction;

fn only_item(body: &[u8], kind: ItemType) -> Value {
    let parsed = envelope::parse(body).unwrap();
    assert_eq!(parsed.error, None);
    let items = parsed.envelope.items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].kind, kind);
    serde_json::from_slice(items[0].payload).unwrap()
}

#[test]
fn an_exception_with_locals_is_grouped_and_scrubbed() {
    let body = include_bytes!("fixtures/sentry/exception.envelope");
    let parsed = envelope::parse(body).unwrap();
    let header_id = parsed.envelope.event_id().unwrap().to_string();
    let mut event = only_item(body, ItemType::Event);
    assert_eq!(event_id(&event).unwrap(), header_id);
    assert!(timestamp(&event).is_some());

    let summary = summarize(&event);
    assert_eq!(summary.level, EventLevel::Error);
    let functions: Vec<_> = summary.exceptions[0]
        .frames
        .iter()
        .map(|f| f.function.as_str())
        .collect();
    assert_eq!(functions, ["<module>", "send_invoices", "render"]);
    let grouping = group(&summary);
    assert_eq!(grouping.title, "KeyError: 'vat_rate'");
    assert_eq!(grouping.culprit, "__main__ in render");

    let scrubbed = Scrubber::default().scrub_event(&mut event);
    assert!(scrubbed >= 4, "{scrubbed}");
    let frames = &event["exception"]["values"][0]["stacktrace"]["frames"];
    assert_eq!(frames[2]["vars"]["password"], FILTERED);
    assert_eq!(
        frames[2]["vars"]["api_token"], FILTERED,
        "the SDK left it; Vigie does not"
    );
    assert_eq!(frames[2]["vars"]["invoice"]["number"], "'F-1001'");
    assert_eq!(frames[1]["vars"]["card"], "'[Filtered]'");
    let source = serde_json::to_string(&frames[2]["pre_context"]).unwrap();
    assert!(!source.contains("4111 1111"), "{source}");
    let ctx = context(&event);
    assert_eq!(
        ctx.job_id.as_deref(),
        Some("nightly-7"),
        "the job_id tag links the job"
    );
    assert_eq!(ctx.user_key.as_deref(), Some("42"));
    assert!(ctx.tags.contains(&("job_id".into(), "nightly-7".into())));
    assert_eq!(event["user"]["id"], "42");
    assert!(event["user"].get("email").is_none());
    assert_eq!(event["tags"]["job_id"], "nightly-7");
    assert_eq!(
        event["breadcrumbs"]["values"][0]["message"],
        "connected to smtp.example.com"
    );
    // Scrubbing keeps nothing to scrub a second time.
    assert_eq!(Scrubber::default().scrub_event(&mut event), 0);
}

#[test]
fn messages_that_differ_in_numbers_are_one_issue() {
    let body = include_bytes!("fixtures/sentry/message.envelope");
    let event = only_item(body, ItemType::Event);
    let summary = summarize(&event);
    assert_eq!(summary.level, EventLevel::Warning);
    assert_eq!(
        summary.message,
        "Erreur email 3/500: facture_CCT_003 - Quota exceeded"
    );
    let mut other = event.clone();
    other["message"] = "Erreur email 457/500: facture_CCT_457 - Quota exceeded".into();
    assert_eq!(group(&summary).key, group(&summarize(&other)).key);
}

#[test]
fn a_transaction_envelope() {
    let body = include_bytes!("fixtures/sentry/transaction.envelope");
    let transaction = only_item(body, ItemType::Transaction);
    assert_eq!(transaction["transaction"], "/api/invoices/{id}");
    assert_eq!(transaction["contexts"]["trace"]["op"], "http.server");
    assert_eq!(transaction["spans"][0]["op"], "db");
    let summary = transaction::summarize(&transaction).unwrap();
    assert_eq!(summary.name, "/api/invoices/{id}");
    assert_eq!(
        (summary.op.as_str(), summary.status.as_str()),
        ("http.server", "ok")
    );
    assert!(summary.duration_ms > 0.0 && summary.duration_ms < 60_000.0);
    assert_eq!(summary.spans.len(), 1);
    assert!(summary.spans[0].duration_ms <= summary.duration_ms);
    assert_eq!(context(&transaction).trace_id.map(|t| t.len()), Some(32));
}
