//! Log block groups, on every backend: blocks gathered 64 at a time answer every search
//! exactly as their own filters did; blocks merged or dropped after grouping are never
//! searched for nothing nor missed; writers grouping at once form each group once.

use std::sync::Arc;
use vigie_core::{Level, LogQuery, LogRecord, ProjectId, ProjectKey};
use vigie_store::logs::{self, bloom::Probes, groups, BlockFilter};
use vigie_store::{Store, StoreError};

const T0: i64 = 1_800_000_000_000_000_000;
const SECOND: i64 = 1_000_000_000;

/// When block `b`'s records start: blocks are not written in time order (late lines, many
/// sources), so every group spans most of the time range.
fn block_start(b: i64) -> i64 {
    T0 + (b * 37 % 268) * 10 * SECOND
}

/// Block `b`'s records: each block has its own word (`token{b}`), its own time, and words
/// every block shares.
fn block_records(b: i64) -> Vec<LogRecord> {
    (0..3)
        .map(|i| LogRecord {
            time: block_start(b) + i * SECOND,
            received: T0,
            source: if b % 2 == 0 { "web" } else { "worker" }.into(),
            level: if b % 5 == 0 {
                Level::Error
            } else {
                Level::Info
            },
            message: format!("request {i} of batch token{b} shared").into(),
            ..LogRecord::default()
        })
        .collect()
}

/// The messages a search finds, newest first, every page.
async fn found(store: &dyn Store, p: ProjectId, q: &str) -> Vec<String> {
    let query = LogQuery::parse(q, T0 + 100_000 * SECOND).unwrap();
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = logs::search(store, p, &query, 50, before).await.unwrap();
        all.extend(page.hits.iter().map(|h| h.record.message.to_string()));
        match page.next {
            Some(next) => before = Some(next),
            None => return all,
        }
    }
}

pub async fn log_groups_story(store: &Arc<dyn Store>) {
    let project = store
        .create_project("grouped-logs", &ProjectKey::generate())
        .await
        .unwrap();
    let p = project.id;
    let store = store.as_ref();
    // 268 small blocks, one append each: four groups and twelve blocks after them.
    for b in 0..268 {
        logs::append(store, p, Arc::new(block_records(b)))
            .await
            .unwrap();
    }
    let queries = [
        "token7",
        "token100",
        "token267",
        "token200 token201 from:2027-01-15T08:33:00Z",
        "token7 shared",
        "token7 token8",
        "shared",
        "level:error shared",
        "source:worker token9",
        "/token1[0-3]$/",
        "nosuchword",
    ];
    let mut before = Vec::new();
    for q in queries {
        before.push(found(store, p, q).await);
    }
    assert_eq!(before[0].len(), 3);
    assert_eq!(before[3].len(), 0);
    assert_eq!(before[5].len(), 0);
    assert_eq!(before[6].len(), 804);

    // Nothing settled yet: small blocks wait, compaction may still merge them.
    assert_eq!(groups::group(store, p, 0).await.unwrap(), 0);
    // Settled: four groups of 64, twelve blocks left after them.
    assert_eq!(groups::group(store, p, i64::MAX).await.unwrap(), 4);
    assert_eq!(groups::group(store, p, i64::MAX).await.unwrap(), 0);
    let ids: Vec<i64> = {
        let mut metas = store
            .log_blocks(&BlockFilter {
                project: Some(p),
                ..BlockFilter::default()
            })
            .await
            .unwrap();
        metas.sort_by_key(|m| m.id);
        metas.iter().map(|m| m.id).collect()
    };
    assert_eq!(ids.len(), 268);
    let answer = groups::candidates(store, p, None, None, Probes::words(&["token7"]))
        .await
        .unwrap();
    assert_eq!(answer.grouped_to, ids[255]);
    assert!(answer.may_hold.contains(&ids[7]), "{answer:?}");
    assert!(answer.may_hold.len() < 10, "{answer:?}");
    // A time range outside the blocks meets no group.
    let later = groups::candidates(
        store,
        p,
        Some(T0 + 5_000 * SECOND),
        None,
        Probes::words(&["token7"]),
    )
    .await
    .unwrap();
    assert!(later.may_hold.is_empty());
    assert_eq!(later.grouped_to, ids[255]);
    for (q, was) in queries.iter().zip(&before) {
        assert_eq!(&found(store, p, q).await, was, "{q} after grouping");
    }
    // A time window inside the first group.
    let at = |ns: i64| vigie_core::Timestamp(ns / 1_000_000);
    let (start, end) = (block_start(7), block_start(7) + 5 * SECOND);
    let window = format!("token7 from:{} to:{}", at(start), at(end));
    assert_eq!(found(store, p, &window).await.len(), 3, "{window}");

    // A group is refused if groups moved since its members were read.
    let stale = store.log_blocks_to_group(p).await.unwrap();
    assert_eq!(stale.grouped_to, ids[255]);
    assert_eq!(stale.blocks.len(), 12);
    let blooms = store.log_block_blooms(vec![ids[256]]).await.unwrap();
    let refs: Vec<&[u8]> = blooms.iter().map(|(_, b)| &b[..]).collect();
    let stale_group = groups::NewGroup {
        after: ids[191],
        members: vec![ids[256]],
        min_time: 0,
        max_time: 0,
        filter: logs::group_filter::GroupFilter::build(&refs),
    };
    assert!(matches!(
        store.write_log_group(p, stale_group).await,
        Err(StoreError::Conflict(_))
    ));

    // Compaction merges grouped small blocks into new ones after the groups: every record is
    // still found, once.
    let merged = logs::compact(store, p, i64::MAX / 2, 0).await.unwrap();
    assert!(merged > 100, "{merged}");
    for (q, was) in queries.iter().zip(&before) {
        assert_eq!(&found(store, p, q).await, was, "{q} after compaction");
    }
    // Every grouped block is gone: so are the groups.
    let answer = groups::candidates(store, p, None, None, Probes::words(&["shared"]))
        .await
        .unwrap();
    assert_eq!(answer, groups::GroupAnswer::default());

    // Writers grouping at once (two instances on PostgreSQL): each group formed once.
    let second = store
        .create_project("grouped-logs-2", &ProjectKey::generate())
        .await
        .unwrap();
    let full: Vec<LogRecord> = (0..64).flat_map(block_records).collect();
    for chunk in full.chunks(3) {
        logs::append(store, second.id, Arc::new(chunk.to_vec()))
            .await
            .unwrap();
    }
    let mut formed = 0;
    let attempts = (0..4).map(|_| groups::group(store, second.id, i64::MAX));
    for result in futures_util::future::join_all(attempts).await {
        formed += result.unwrap();
    }
    assert_eq!(formed, 1);
    assert_eq!(found(store, second.id, "token63").await.len(), 3);

    // Retention drops the blocks: the group goes with the last one.
    let all = store
        .log_blocks(&BlockFilter {
            project: Some(second.id),
            ..BlockFilter::default()
        })
        .await
        .unwrap();
    store
        .delete_log_blocks(all[..32].iter().map(|m| m.id).collect())
        .await
        .unwrap();
    let half = groups::candidates(store, second.id, None, None, Probes::words(&["shared"]))
        .await
        .unwrap();
    assert_eq!(
        half.may_hold.len(),
        64,
        "deleted members' bits stay until the group goes"
    );
    store
        .delete_log_blocks(all[32..].iter().map(|m| m.id).collect())
        .await
        .unwrap();
    let none = groups::candidates(store, second.id, None, None, Probes::words(&["shared"]))
        .await
        .unwrap();
    assert_eq!(none, groups::GroupAnswer::default());
    assert!(found(store, second.id, "shared").await.is_empty());
}
