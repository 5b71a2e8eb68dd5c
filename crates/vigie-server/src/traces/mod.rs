//! Traces in the server: OpenTelemetry spans in over OTLP/HTTP, and a trace read back whole.
//!
//! ```text
//! POST /v1/traces (OTLP, protobuf or JSON) ─▶ ingest ─▶ derive ─▶ requests, task runs, span
//!                                                        exceptions as Sentry-shaped events
//!          ─▶ the error sink: wrong clocks placed (span::place_in_time), spans + events in one
//!             commit (write_errors) ─▶ 2xx, partial_success for refused spans
//! GET  /api/v1/traces?q=                   ─▶ api    ─▶ SpanStore::search_traces ─▶ entries
//! GET  /api/v1/traces/{trace_id}           ─▶ api    ─▶ SpanStore::trace ─▶ spans by start
//! GET  /traces?q=, /traces/{trace_id}      ─▶ ui     ─▶ the same as pages
//! ```
//!
//! - [`ingest`]: the OTLP endpoint, as the OpenTelemetry exporters call it with the project
//!   key (`OTEL_EXPORTER_OTLP_ENDPOINT=http://host:8610` and the key in a header).
//! - [`derive`]: what spans feed besides the trace — requests and task runs on the
//!   Performance page, span exceptions as issues.
//! - [`api`]: trace search and one trace as JSON.
//! - [`ui`]: the search page and the trace page.
//!
//! Spans are performance data: `errors.retention` drops them with the events (see
//! `crate::sentry::retention`). A while after they ended (`traces.settle_after`), [`settle`]
//! judges each trace whole by the tail-based keep rules (`vigie_core::trace_keep`): failed and
//! slow traces are kept, the others at `traces.keep_rate`.

pub mod api;
pub mod derive;
pub mod ingest;
pub mod ui;

/// Span ingest (OTLP/HTTP, called by the OpenTelemetry exporters with the project key, bodies
/// read within the ingest limits) and reading a trace back.
///
/// `S` is the server's state: handlers take the shared `AppState`, and ingest bodies their
/// budget, from it.
pub fn routes<S>() -> crate::http::Routes<S>
where
    S: Clone + Send + Sync + 'static,
    crate::state::AppState: axum::extract::FromRef<S>,
    crate::http::ingest_body::IngestBudget: axum::extract::FromRef<S>,
    crate::sentry::ErrorIngest: axum::extract::FromRef<S>,
{
    use crate::http::Table;
    use axum::routing::{get, post};
    crate::http::Routes {
        pages: Table::new()
            .route("/traces", get(ui::search))
            .route("/traces/{trace_id}", get(ui::trace)),
        api: Table::new()
            .route("/api/v1/traces", get(api::search))
            .route("/api/v1/traces/{trace_id}", get(api::trace)),
        ingest: Table::new().route("/v1/traces", post(ingest::otlp)),
    }
}

/// Judges the traces whose spans ended `traces.settle_after` ago by the keep rules, project by
/// project (run every half minute by `crate::schedule`); counts each outcome in `/metrics`.
pub async fn settle(state: &crate::state::AppState) -> Result<String, vigie_store::StoreError> {
    use vigie_core::trace_keep::KeepRules;
    use vigie_core::Timestamp;
    use vigie_store::traces::SETTLE_BLOCKS;
    let Ok(after) = state.config.settle_after() else {
        return Ok("traces.settle_after is not a duration".into());
    };
    let now = Timestamp::now();
    let before = Timestamp(now.millis() - after.as_millis().min(i64::MAX as u128) as i64);
    let (mut blocks, mut dropped) = (0, 0);
    for project in state.store.list_projects().await? {
        let mut rules = KeepRules {
            rate: state.config.traces.keep_rate,
            ..KeepRules::default()
        };
        if !rules.keep_all() {
            // "Slower than its endpoint's p95": the Performance page's figure over the last day.
            let day_ago = Timestamp(now.millis() - 86_400_000);
            for endpoint in state
                .store
                .transactions(project.id, day_ago, now, 0)
                .await?
            {
                if let Some(p95_ms) = endpoint.sketch.quantile(0.95) {
                    let p95 = (p95_ms * 1e6) as i64;
                    let entry = rules.p95_ns.entry(endpoint.name).or_default();
                    *entry = (*entry).max(p95);
                }
            }
        }
        loop {
            if state.hub.is_shutting_down() {
                return Ok(format!("{blocks} span blocks settled before shutdown"));
            }
            let pass = state
                .store
                .settle_spans(project.id, before, rules.clone())
                .await?;
            blocks += pass.blocks;
            dropped += pass.spans_dropped;
            state.metrics.note_settled(&pass);
            if rules.keep_all() || pass.blocks < SETTLE_BLOCKS {
                break;
            }
        }
    }
    Ok(format!(
        "{blocks} span blocks settled, {dropped} spans of dropped traces"
    ))
}
