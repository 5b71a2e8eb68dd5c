//! The Sentry protocol, as the unchanged SDKs speak it.
//!
//! - [`envelope`]: the envelope container (`/api/<project>/envelope/`), items borrowed from
//!   the body.
//! - [`event`]: reading an event's JSON (also the body of `/api/<project>/store/`): id, time,
//!   and the summary grouping needs.
//! - [`transaction`]: a transaction's name, operation, status, duration and spans.
//! - [`as_spans`]: a transaction as the spans of its trace, for the one trace store.
//! - [`spans`]: streamed spans (`span` items), assembled into transactions.
//! - [`items`]: the other items: sessions, client reports, check-ins, logs.
//! - [`artifact_bundle`]: the zip files `sentry-cli` uploads, holding minified files and maps.
//! - [`symbolicate`]: minified JavaScript frames resolved through those maps.
//! - [`rate_limits`]: the `X-Sentry-Rate-Limits` header that makes SDKs back off per category.

pub mod artifact_bundle;
pub mod as_spans;
pub mod envelope;
pub mod event;
pub mod items;
pub mod spans;
pub mod symbolicate;
pub mod transaction;

/// `X-Sentry-Rate-Limits` for a refusal: `retry_after:categories:scope`. SDKs stop sending
/// the named categories (all of them when the list is empty) for `retry_after` seconds.
pub fn rate_limits(retry_after_secs: u64, categories: &[&str], scope: &str) -> String {
    format!(
        "{}:{}:{scope}",
        retry_after_secs.max(1),
        categories.join(";")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rate_limit_header() {
        assert_eq!(
            super::rate_limits(60, &["error", "transaction"], "project"),
            "60:error;transaction:project"
        );
        assert_eq!(
            super::rate_limits(0, &[], "organization"),
            "1::organization"
        );
    }

    /// Untrusted bytes: envelopes parse or are refused, items summarize, group and scrub.
    /// (`fuzz/` runs the same property guided.)
    #[test]
    fn random_envelopes_never_panic() {
        use rand::{Rng, SeedableRng};
        use vigie_core::scrub::Scrubber;
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let pieces: [&[u8]; 12] = [
            b"{}",
            b"\n",
            b"{\"type\":\"event\"",
            b",\"length\":",
            b"3",
            b"}",
            b"{\"exception\":{\"values\":[{\"type\":\"E\",\"stacktrace\":{\"frames\":[{}]}}]}}",
            b"{\"message\":\"4111 1111 1111 1111\",\"password\":1}",
            b"[",
            b"\"",
            b"\xff",
            b"99",
        ];
        for _ in 0..5_000 {
            let body: Vec<u8> = (0..rng.gen_range(0..12))
                .flat_map(|_| pieces[rng.gen_range(0..pieces.len())].iter().copied())
                .collect();
            let Ok(parsed) = super::envelope::parse(&body) else {
                continue;
            };
            for item in parsed.envelope.items {
                if let Ok(mut value) = serde_json::from_slice(item.payload) {
                    let _ = vigie_core::event::group(&super::event::summarize(&value));
                    Scrubber::default().scrub_event(&mut value);
                    assert_eq!(Scrubber::default().scrub_event(&mut value), 0);
                }
            }
        }
    }
}
