//! What OpenTelemetry spans feed besides the trace: endpoint and task figures on the
//! Performance page, and issues from the exceptions they recorded.
//!
//! ```text
//! spans of one OTLP request
//!   ─▶ as_sentry::{transactions, exceptions}   Sentry-shaped events
//!   ─▶ sentry::process::shaped_events          scrubbed, grouped, named as an SDK's are
//!   ─▶ the project's quotas                    refused events counted as dropped
//!   ─▶ one ErrorBatch: the events + the spans  ─▶ the error sink: one commit, shared with
//!                                                 other requests' events
//! ```
//!
//! A request served (kind SERVER) is a transaction of op `http.server`, a task run (kind
//! CONSUMER) one of `queue.task.celery` or `queue.process`: an endpoint reads the same on the
//! Performance page whichever SDK reported it. Span exceptions become error events unless the
//! project's `span_exceptions` setting is off — for a service whose Sentry SDK already reports
//! its errors, which would otherwise count twice.

use crate::http::ingest_body::off_runtime_if;
use crate::http::AppError;
use crate::sentry::process::{self, Context};
use crate::sentry::ErrorIngest;
use crate::state::AppState;
use vigie_core::span::Span;
use vigie_core::{ProjectId, Timestamp};
use vigie_protocol::otlp::as_sentry;
use vigie_store::errors::Dropped;
use vigie_store::ErrorBatch;

/// The dropped-count reason of a span-made event that could not be used (never expected: the
/// events are built by Vigie; counted rather than lost if it happens).
const UNUSABLE: &str = "unusable_span";
/// The dropped-count reason of a span's exceptions past `as_sentry::MAX_EXCEPTIONS_PER_SPAN`.
const TOO_MANY: &str = "span_exceptions_over_limit";
/// Spans above which an export's events are shaped on the blocking pool.
const INLINE_SPANS: usize = 1024;

/// What an OTLP export of `project` stores in one commit: `spans` themselves, and the
/// transactions and error events they stand for (those the project's quotas accept; the
/// others are counted as dropped).
pub async fn batch(
    state: &AppState,
    errors: &ErrorIngest,
    project: ProjectId,
    spans: Vec<Span>,
) -> Result<ErrorBatch, AppError> {
    let settings = errors.settings(state.store.as_ref(), project).await?;
    let received = Timestamp::now();
    let events_per_minute = settings.events_per_minute;
    // Shaping is CPU work in proportion to the spans: a large export's goes off the runtime.
    let (mut prepared, left_out, spans) = off_runtime_if(spans.len() > INLINE_SPANS, move || {
        let mut events = as_sentry::transactions(&spans);
        let mut left_out = 0;
        if settings.span_exceptions {
            let (exceptions, past_limit) = as_sentry::exceptions(&spans);
            events.extend(exceptions);
            left_out = past_limit;
        }
        let ctx = Context {
            project,
            settings: &settings,
            received,
            max_attachment_bytes: 0,
            js: Default::default(),
        };
        (process::shaped_events(events, &ctx), left_out, spans)
    })
    .await?;
    for why in &prepared.problems {
        tracing::warn!(%why, "a span could not be read as an event");
        prepared
            .batch
            .dropped
            .push(Dropped::new(received, UNUSABLE, "span", 1));
    }
    if left_out > 0 {
        prepared
            .batch
            .dropped
            .push(Dropped::new(received, TOO_MANY, "error", left_out));
    }
    let verdict = errors.quotas.check(
        project,
        events_per_minute,
        prepared.batch.events.len() as u64,
        prepared.batch.transactions.len() as u64,
        received,
    );
    crate::sentry::ingest::apply(&mut prepared, &verdict, received);
    for d in &prepared.batch.dropped {
        state
            .metrics
            .sentry_dropped(&d.category, &d.reason, d.quantity as u64);
    }
    // The spans are stored whatever the quotas say: they were acknowledged to the exporter.
    prepared.batch.spans = spans;
    Ok(prepared.batch)
}
