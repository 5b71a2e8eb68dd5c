//! Log upkeep, run every minute by the schedule (`crate::schedule`): small blocks merged into
//! full ones, settled blocks grouped (the sink groups full ones as they come), then whole
//! blocks dropped past the retention limits (age, total size, size per
//! source).

use crate::state::AppState;
use vigie_core::Timestamp;
use vigie_store::StoreError;

/// Merges small log blocks and drops what retention no longer keeps.
pub async fn upkeep(state: &AppState) -> Result<String, StoreError> {
    let store = state.store.as_ref();
    let now = Timestamp::now().millis();
    let mut merged = 0;
    let mut grouped = 0;
    let mut failed = None;
    if let Ok(projects) = store.list_projects().await {
        for project in projects {
            match vigie_store::logs::compact(store, project.id, now, 30_000).await {
                Ok(0) => {}
                Ok(n) => {
                    merged += n;
                    tracing::debug!(blocks = n, project = %project.name, "log blocks merged");
                }
                Err(err) => {
                    tracing::warn!(%err, "log compaction failed");
                    failed = Some(err);
                }
            }
            // Blocks that settled without filling (a quiet source's) are grouped here.
            let settled_before = now - vigie_store::logs::groups::SETTLE_MS;
            match vigie_store::logs::groups::group(store, project.id, settled_before).await {
                Ok(0) => {}
                Ok(n) => grouped += n,
                Err(err) => {
                    tracing::warn!(%err, "grouping log blocks failed");
                    failed = Some(err);
                }
            }
        }
    }
    let logs = &state.config.logs;
    let policy = vigie_store::logs::Retention {
        max_age_ns: state
            .config
            .log_retention()
            .ok()
            .flatten()
            .map(|d| d.as_nanos().min(i64::MAX as u128) as i64),
        max_bytes: (logs.max_size_mib > 0).then_some(logs.max_size_mib << 20),
        per_source_bytes: logs
            .source_max_mib
            .iter()
            .map(|(name, mib)| (name.clone(), mib << 20))
            .collect(),
    };
    let dropped =
        match vigie_store::logs::retain(store, &policy, now.saturating_mul(1_000_000)).await {
            Ok((0, _)) => 0,
            Ok((blocks, bytes)) => {
                tracing::info!(blocks, bytes, "old logs dropped by retention");
                blocks
            }
            Err(err) => {
                tracing::warn!(%err, "log retention failed");
                return Err(err);
            }
        };
    match failed {
        Some(err) => Err(err),
        None => Ok(format!(
            "blocks merged: {merged}, groups formed: {grouped}, dropped: {dropped}"
        )),
    }
}
