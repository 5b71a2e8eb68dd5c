//! The storage story: one sequence of everything the server asks of a store, run on every
//! backend. SQLite always; PostgreSQL when `VIGIE_TEST_POSTGRES_URL` is set (each run in a
//! schema of its own, dropped afterwards).

mod alerts_story;
mod artifacts_story;
mod celery_story;
mod errors_story;
mod installation_story;
mod log_groups_story;
mod metrics_story;
mod monitors_story;
mod releases_story;
mod traces_story;

use std::sync::Arc;
use std::time::Duration;
use vigie_core::job::{Count, JobUpdate, Progress};
use vigie_core::{ItemStatus, Job, JobStatus, NewItem, NewJob, ProjectKey, Role, Scope, Timestamp};
use vigie_core::{Level, LogQuery, LogRecord};
use vigie_store::logs::block;
use vigie_store::{
    logs, BlockPart, ItemFilter, JobFilter, Location, NewApiToken, NewSession, NewUser, Store,
    StoreError,
};

async fn story(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(store.database_size().await.unwrap() > 0);

    // Meta: the first value inserted wins, the second caller reads it back.
    assert_eq!(store.meta("setup").await.unwrap(), None);
    assert_eq!(store.meta_get_or_insert("setup", "a").await.unwrap(), "a");
    assert_eq!(store.meta_get_or_insert("setup", "b").await.unwrap(), "a");

    // Projects.
    let key = ProjectKey::generate();
    let default = store.create_project("default", &key).await.unwrap();
    assert_eq!(default.name, "default");
    let dup = store
        .create_project("default", &ProjectKey::generate())
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict(m)) if m.contains("already exists")),
        "{dup:?}"
    );
    let shop = store
        .create_project("shop", &ProjectKey::generate())
        .await
        .unwrap();
    assert_eq!(
        store
            .list_projects()
            .await
            .unwrap()
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["default", "shop"]
    );
    assert_eq!(
        store.project_by_key(key.as_str()).await.unwrap(),
        Some(default.clone())
    );
    assert_eq!(
        store
            .project_by_key(&key.as_str().to_uppercase())
            .await
            .unwrap()
            .map(|p| p.id),
        Some(default.id)
    );
    let renamed = store.rename_project(shop.id, "boutique").await.unwrap();
    assert_eq!(renamed.name, "boutique");
    assert!(matches!(
        store.rename_project(shop.id, "default").await,
        Err(StoreError::Conflict(_))
    ));
    let new_key = ProjectKey::generate();
    let rotated = store.set_project_key(shop.id, &new_key).await.unwrap();
    assert_eq!(rotated.public_key, new_key);
    assert_eq!(
        store
            .project_by_key(shop.public_key.as_str())
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.rename_project(vigie_core::ProjectId(9999), "x").await,
        Err(StoreError::NotFound("project"))
    ));
    assert_eq!(
        store.project(vigie_core::ProjectId(9999)).await.unwrap(),
        None
    );

    // First user: exactly once, and it forgets the setup token with it.
    assert_eq!(store.count_users().await.unwrap(), 0);
    let admin = NewUser {
        username: "alice".into(),
        password_hash: "hash-a".into(),
        role: Role::Admin,
    };
    let alice = store.create_first_user(&admin, "setup").await.unwrap();
    assert_eq!(store.meta("setup").await.unwrap(), None);
    let again = NewUser {
        username: "mallory".into(),
        ..admin.clone()
    };
    assert!(matches!(
        store.create_first_user(&again, "setup").await,
        Err(StoreError::Conflict(_))
    ));
    let bob = store
        .create_user(&NewUser {
            username: "bob".into(),
            password_hash: "hash-b".into(),
            role: Role::Viewer,
        })
        .await
        .unwrap();
    assert!(matches!(
        store.create_user(&admin).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.count_users().await.unwrap(), 2);
    let creds = store.credentials("alice").await.unwrap().unwrap();
    assert_eq!(
        (creds.user.id, creds.password_hash.as_str()),
        (alice.id, "hash-a")
    );
    assert!(store.credentials("nobody").await.unwrap().is_none());
    assert_eq!(
        store.set_role(bob.id, Role::Admin).await.unwrap().role,
        Role::Admin
    );

    // Sessions: found while unexpired, gone after a password change or expiry.
    let now = Timestamp::now();
    let session = NewSession {
        token_hash: "s1".into(),
        user_id: bob.id,
        csrf_token: "csrf1".into(),
        expires_at: now.plus(Duration::from_secs(3600)),
    };
    store.create_session(&session).await.unwrap();
    let found = store.session("s1", now).await.unwrap().unwrap();
    assert_eq!(
        (found.user.id, found.csrf_token.as_str()),
        (bob.id, "csrf1")
    );
    assert!(store
        .session("s1", now.plus(Duration::from_secs(3601)))
        .await
        .unwrap()
        .is_none());
    store.set_password(bob.id, "hash-b2").await.unwrap();
    assert!(store.session("s1", now).await.unwrap().is_none());
    assert_eq!(
        store
            .credentials("bob")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "hash-b2"
    );
    store
        .create_session(&NewSession {
            token_hash: "s2".into(),
            expires_at: Timestamp(now.millis() - 1),
            ..session.clone()
        })
        .await
        .unwrap();
    store
        .create_session(&NewSession {
            token_hash: "s3".into(),
            ..session.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 1);
    store.delete_session("s3").await.unwrap();
    assert!(store.session("s3", now).await.unwrap().is_none());

    // Deleting a user ends their sessions too.
    store
        .create_session(&NewSession {
            token_hash: "s4".into(),
            ..session.clone()
        })
        .await
        .unwrap();
    store.delete_user(bob.id).await.unwrap();
    assert!(store.session("s4", now).await.unwrap().is_none());
    assert!(matches!(
        store.delete_user(bob.id).await,
        Err(StoreError::NotFound("user"))
    ));
    assert_eq!(
        store
            .list_users()
            .await
            .unwrap()
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );

    // API tokens: found by hash, touched, revoked.
    let token = store
        .create_api_token(&NewApiToken {
            name: "ci".into(),
            scope: Scope::Admin,
            token_hash: "th1".into(),
            prefix: "vigie_abc123".into(),
        })
        .await
        .unwrap();
    assert_eq!(token.last_used_at, None);
    store.touch_api_token(token.id, now).await.unwrap();
    let found = store.api_token_by_hash("th1").await.unwrap().unwrap();
    assert_eq!((found.scope, found.last_used_at), (Scope::Admin, Some(now)));
    assert_eq!(store.list_api_tokens().await.unwrap().len(), 1);
    store.revoke_api_token(token.id).await.unwrap();
    assert!(store.api_token_by_hash("th1").await.unwrap().is_none());
    assert!(matches!(
        store.revoke_api_token(token.id).await,
        Err(StoreError::NotFound(_))
    ));

    // Concurrent writes are each acknowledged after commit and all land.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_project(&format!("p{i}"), &ProjectKey::generate())
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.list_projects().await.unwrap().len(), 102);

    jobs_story(&store, &default).await;
    logs_story(&store, &default).await;
    followed_files_story(&store, &default).await;
    log_groups_story::log_groups_story(&store).await;
    errors_story::errors_story(&store, &default).await;
    monitors_story::monitors_story(&store, &default).await;
    alerts_story::alerts_story(&store, &default).await;
    alerts_story::feed_story(&store, &default).await;
    alerts_story::login_failures_story(&store).await;
    alerts_story::shared_counts_story(&store).await;
    celery_story::celery_story(&store, &default).await;
    traces_story::traces_story(&store, &default).await;
    metrics_story::metrics_story(&store, &default).await;
    artifacts_story::artifacts_story(&store, &default).await;
    releases_story::releases_story(&store, &default).await;
    store.close().await;
}

const T0: i64 = 1_800_000_000_000_000_000;
const SECOND: i64 = 1_000_000_000;

fn line(i: i64, source: &str) -> LogRecord {
    LogRecord {
        time: T0 + i * SECOND,
        received: T0 + i * SECOND,
        source: source.into(),
        level: if i % 10 == 0 {
            Level::Error
        } else {
            Level::Info
        },
        logger: "invoices.send".into(),
        message: format!("sent invoice {i} to client {}", i % 7).into(),
        fields: vec![("n".into(), i.to_string().into())],
        job_id: if i < 5 {
            "nightly-1".into()
        } else {
            vigie_core::Text::default()
        },
        ..LogRecord::default()
    }
}

async fn logs_story(store: &Arc<dyn Store>, project: &vigie_core::Project) {
    let p = project.id;
    let store = store.as_ref();
    let query = |q: &str| LogQuery::parse(q, T0 + 10_000 * SECOND).unwrap();
    // One line at a time from a quiet source: many small blocks. A busy one arrives at once.
    for i in 0..30 {
        logs::append(store, p, Arc::new(vec![line(i, "worker")]))
            .await
            .unwrap();
    }
    let busy: Vec<_> = (0..5000).map(|i| line(i, "nginx")).collect();
    let appended = logs::append(store, p, Arc::new(busy)).await.unwrap();
    assert_eq!((appended.records, appended.blocks.len()), (5000, 2));
    assert!(
        appended
            .blocks
            .iter()
            .all(|(id, source)| *id > 0 && source == "nginx"),
        "{appended:?}"
    );

    let sources = store.log_sources(p).await.unwrap();
    let names: Vec<_> = sources
        .iter()
        .map(|s| (s.name.as_str(), s.records, s.blocks))
        .collect();
    assert_eq!(names, [("nginx", 5000, 2), ("worker", 30, 30)]);
    assert_eq!(sources[1].first_time, Some(T0));
    assert_eq!(sources[1].last_time, Some(T0 + 29 * SECOND));

    // Newest first, paged by cursor with nothing lost or repeated.
    let all = query("source:worker");
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = logs::search(store, p, &all, 7, before).await.unwrap();
        seen.extend(page.hits.iter().map(|h| h.record.time));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<i64> = (0..30).rev().map(|i| T0 + i * SECOND).collect();
    assert_eq!(seen, expected);

    // The same through blocks of thousands of records, each read from its newest end: pages
    // of 450 and of a regex's matches, nothing lost or repeated.
    for (q, expected) in [
        ("source:nginx", (0..5000).rev().collect::<Vec<i64>>()),
        (
            r"/invoice 4\d\d9 to/",
            (0..5000)
                .rev()
                .filter(|i| (4009..5000).contains(i) && i % 10 == 9)
                .collect(),
        ),
    ] {
        let (q, mut seen, mut before) = (query(q), Vec::new(), None);
        loop {
            let page = logs::search(store, p, &q, 450, before).await.unwrap();
            seen.extend(page.hits.iter().map(|h| (h.record.time - T0) / SECOND));
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
    }
    // A regex whose literal no block holds reads no record (every block passed over whole),
    // and a negated one is no filter.
    assert!(logs::search(store, p, &query("/invoice 99999/"), 10, None)
        .await
        .unwrap()
        .hits
        .is_empty());
    let not_errors = logs::search(store, p, &query("source:nginx -/^sent/"), 10, None)
        .await
        .unwrap();
    assert!(not_errors.hits.is_empty());

    // A rare word: the bloom filters skip the blocks that cannot hold it.
    let rare = logs::search(store, p, &query("4321"), 10, None)
        .await
        .unwrap();
    assert_eq!(rare.hits.len(), 1);
    assert_eq!(rare.hits[0].record.source, "nginx");
    assert_eq!(rare.hits[0].record.field("n"), Some("4321"));
    assert!(rare.blocks_scanned < rare.blocks_considered, "{rare:?}");
    let none = logs::search(store, p, &query("nosuchword"), 10, None)
        .await
        .unwrap();
    assert!(none.hits.is_empty());
    assert_eq!(none.blocks_scanned, 0);

    // Filters: level, job, time, negation.
    let errors = logs::search(store, p, &query("level:error source:worker"), 100, None)
        .await
        .unwrap();
    assert_eq!(errors.hits.len(), 3);
    let job = logs::search(store, p, &query("job:nightly-1"), 100, None)
        .await
        .unwrap();
    assert_eq!(job.hits.len(), 10, "5 per source");
    let window = query(&format!(
        "from:{} to:{} source:nginx",
        vigie_core::Timestamp((T0 + 100 * SECOND) / 1_000_000),
        vigie_core::Timestamp((T0 + 160 * SECOND) / 1_000_000)
    ));
    assert_eq!(
        logs::search(store, p, &window, 1000, None)
            .await
            .unwrap()
            .hits
            .len(),
        60
    );

    // Counts per level and over time, with and without text terms.
    let stats = logs::stats(store, p, &query("source:worker"), 3)
        .await
        .unwrap();
    assert_eq!(stats.total, 30);
    assert_eq!(stats.per_level[Level::Error as usize], 3);
    assert_eq!(stats.buckets, [10, 10, 10]);
    let stats = logs::stats(store, p, &query("client -level:error"), 10)
        .await
        .unwrap();
    assert_eq!(stats.total, 5030 - 503);
    // Blocks within one bucket are counted from their summaries, the others from their heads:
    // the answers agree whatever the split.
    for buckets in [1, 7, 500] {
        let errors = logs::stats(store, p, &query("level:error"), buckets)
            .await
            .unwrap();
        assert_eq!(errors.total, 503, "{buckets} buckets");
        assert_eq!(errors.per_level[Level::Error as usize], 503);
        assert_eq!(errors.buckets.iter().sum::<u64>(), 503, "{buckets} buckets");
    }
    // A head is read as a prefix of the block's data, and decodes as the whole block's does.
    let ids: Vec<i64> = appended.blocks.iter().map(|(id, _)| *id).collect();
    let whole = store
        .log_block_data(ids.clone(), BlockPart::Whole)
        .await
        .unwrap();
    let heads = store.log_block_data(ids, BlockPart::Head).await.unwrap();
    assert_eq!(heads.len(), 2);
    for ((id, whole), (head_id, head)) in whole.iter().zip(&heads) {
        assert_eq!(id, head_id);
        assert!(
            head.len() < whole.len() / 2,
            "{} of {}",
            head.len(),
            whole.len()
        );
        assert!(whole.starts_with(head));
        let (a, b) = (
            block::decode_head(whole).unwrap(),
            block::decode_head(head).unwrap(),
        );
        assert_eq!((a.times, a.levels), (b.times, b.levels));
    }

    // Oldest first across overlapping blocks, for downloads.
    let mut times = Vec::new();
    let mut oldest_first = logs::OldestFirst::new(p, query("source:worker"));
    while let Some(batch) = oldest_first.next_batch(store).await.unwrap() {
        times.extend(batch.iter().map(|r| r.time));
    }
    assert_eq!(times, expected.iter().rev().copied().collect::<Vec<_>>());

    // Compaction merges the quiet source's blocks; answers do not change.
    let merged = logs::compact(store, p, i64::MAX / 2, 0).await.unwrap();
    assert_eq!(merged, 30);
    let worker = &store.log_sources(p).await.unwrap()[1];
    assert_eq!((worker.records, worker.blocks), (30, 1));
    let again = logs::search(store, p, &all, 100, None).await.unwrap();
    assert_eq!(
        again.hits.iter().map(|h| h.record.time).collect::<Vec<_>>(),
        expected
    );
    // Replacing blocks that are gone is a conflict, and changes nothing.
    let gone = store
        .write_log_blocks(p, logs::encode_by_source(&[line(1, "worker")]), vec![-1])
        .await;
    assert!(matches!(gone, Err(StoreError::Conflict(_))), "{gone:?}");

    // Retention drops whole blocks, oldest first.
    let by_size = logs::Retention {
        per_source_bytes: vec![("nginx".into(), 1)],
        ..Default::default()
    };
    let (dropped, _) = logs::retain(store, &by_size, T0).await.unwrap();
    assert_eq!(dropped, 2);
    let by_age = logs::Retention {
        max_age_ns: Some(SECOND),
        ..Default::default()
    };
    let (dropped, _) = logs::retain(store, &by_age, T0 + 31 * SECOND)
        .await
        .unwrap();
    assert_eq!(dropped, 1);
    assert!(logs::search(store, p, &query(""), 10, None)
        .await
        .unwrap()
        .hits
        .is_empty());

    // Clearing a source removes it; an unknown one is NotFound.
    let worker = store.log_sources(p).await.unwrap()[1].id;
    store.delete_log_source(p, worker).await.unwrap();
    assert_eq!(store.log_sources(p).await.unwrap().len(), 1);
    assert!(matches!(
        store.delete_log_source(p, worker).await,
        Err(StoreError::NotFound(_))
    ));
    // Lines sent again under the deleted source's name make a new source, named as sent.
    logs::append(store, p, Arc::new(vec![line(99, "worker")]))
        .await
        .unwrap();
    let again = store.log_sources(p).await.unwrap();
    assert_ne!(again[1].id, worker);
    let hits = logs::search(store, p, &query("source:worker"), 10, None)
        .await
        .unwrap()
        .hits;
    let named: Vec<&str> = hits.iter().map(|h| h.record.source.as_ref()).collect();
    assert_eq!(named, ["worker"]);
}

/// A followed file's position goes in with the records read before it: both or neither.
async fn followed_files_story(store: &Arc<dyn Store>, project: &vigie_core::Project) {
    let store = store.as_ref();
    let at = |host: &str, path: &str, read_to| logs::FilePosition {
        host: host.into(),
        path: path.into(),
        project: project.id,
        file_id: "2049:77".into(),
        head_len: 12,
        head_sha1: "ab".repeat(20),
        read_to,
    };
    assert!(store.followed_files("web-1").await.unwrap().is_empty());
    let records = Arc::new(vec![line(1, "app.log"), line(2, "app.log")]);
    let stored = logs::append_at(
        store,
        project.id,
        records,
        vec![
            at("web-1", "/srv/app.log", 4096),
            at("web-2", "/srv/app.log", 7),
        ],
    )
    .await
    .unwrap();
    assert_eq!((stored.records, stored.blocks.len()), (2, 1));
    // A position alone (blank lines read) moves on; the host's other files are its own.
    logs::append_at(
        store,
        project.id,
        Arc::new(Vec::new()),
        vec![
            at("web-1", "/srv/app.log", 5000),
            at("web-1", "/srv/b.log", 1),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        store.followed_files("web-1").await.unwrap(),
        [
            at("web-1", "/srv/app.log", 5000),
            at("web-1", "/srv/b.log", 1)
        ]
    );
    assert_eq!(
        store.followed_files("web-2").await.unwrap(),
        [at("web-2", "/srv/app.log", 7)]
    );
    let found = logs::search(
        store,
        project.id,
        &LogQuery::parse("source:app.log", T0 + 10_000 * SECOND).unwrap(),
        10,
        None,
    )
    .await
    .unwrap();
    assert_eq!(found.hits.len(), 2);
}

fn item(key: Option<&str>, status: ItemStatus, target: &str) -> NewItem {
    NewItem {
        key: key.map(str::to_string),
        status,
        name: Some(format!("Invoice for {target}")),
        file: Some("invoice.pdf".into()),
        target: Some(target.into()),
        comment: None,
        error: (status == ItemStatus::Error).then(|| "550 mailbox unavailable".into()),
        duration_ms: Some(12.5),
        at: None,
        fields: Some(r#"{"attempt":1}"#.into()),
    }
}

async fn jobs_story(store: &Arc<dyn Store>, project: &vigie_core::Project) {
    let t0 = Timestamp(1_800_000_000_000);
    let new = NewJob {
        project: project.id,
        name: "Send invoices".into(),
        kind: Some("email".into()),
        application: Some("invoices".into()),
        flow: Some("monthly".into()),
        launched_by: Some("1".into()),
        total: Some(5),
        stall_after_ms: Some(5_000),
        meta: Some(r#"{"month":"2026-11"}"#.into()),
        start: true,
        ..Default::default()
    };
    let job = Job::create(&new, "send-1".into(), t0).unwrap();
    let stored = store.create_job(&job, "hash-1").await.unwrap();
    assert!(stored.pk > 0);
    assert_eq!(
        Job {
            pk: 0,
            ..stored.clone()
        },
        job,
        "a job reads back as written"
    );
    assert!(matches!(
        store.create_job(&job, "hash-2").await,
        Err(StoreError::Conflict(m)) if m.contains("send-1")
    ));
    assert_eq!(
        store
            .job_by_read_token("hash-1")
            .await
            .unwrap()
            .map(|j| j.id),
        Some("send-1".to_string())
    );

    // Items move the counters; a retried key is not counted twice.
    let added = store
        .add_items(
            project.id,
            "send-1",
            vec![
                item(Some("1"), ItemStatus::Ok, "a@example.com"),
                item(Some("2"), ItemStatus::Error, "b@example.com"),
                item(Some("1"), ItemStatus::Ok, "a@example.com"),
                item(None, ItemStatus::Skipped, "c@example.com"),
            ],
            Timestamp(t0.0 + 1_000),
        )
        .await
        .unwrap();
    assert_eq!((added.items.len(), added.duplicates), (3, 1));
    assert_eq!(
        (added.job.processed, added.job.failed, added.job.skipped),
        (3, 1, 1)
    );
    assert_eq!(
        added.items[1].error.as_deref(),
        Some("550 mailbox unavailable")
    );
    let again = store
        .add_items(
            project.id,
            "send-1",
            vec![item(Some("2"), ItemStatus::Error, "b@example.com")],
            Timestamp(t0.0 + 1_500),
        )
        .await
        .unwrap();
    assert_eq!(
        (again.items.len(), again.duplicates, again.job.processed),
        (0, 1, 3)
    );

    // Progress with messages feeds the message list.
    let progress = JobUpdate::Progress(Progress {
        messages: vec!["Email 3/5".into(), "Email 4/5".into()],
        ..Default::default()
    });
    let change = store
        .update_job(project.id, "send-1", &progress, Timestamp(t0.0 + 2_000))
        .await
        .unwrap();
    assert_eq!(change.job.message.as_deref(), Some("Email 4/5"));
    assert_eq!(change.messages.len(), 2);
    let bad = JobUpdate::Progress(Progress {
        processed: Some(Count::Set(-3)),
        ..Default::default()
    });
    assert!(matches!(
        store
            .update_job(project.id, "send-1", &bad, Timestamp(t0.0 + 2_100))
            .await,
        Err(StoreError::Invalid {
            field: "processed",
            ..
        })
    ));
    assert!(matches!(
        store.update_job(project.id, "nope", &progress, t0).await,
        Err(StoreError::NotFound("job"))
    ));

    // The sweep stalls it once silent past stall_after; an item revives it.
    assert!(store
        .mark_stalled_jobs(Timestamp(t0.0 + 6_999))
        .await
        .unwrap()
        .is_empty());
    let stalled = store
        .mark_stalled_jobs(Timestamp(t0.0 + 7_000))
        .await
        .unwrap();
    assert_eq!(stalled.len(), 1);
    assert_eq!(stalled[0].job.status, JobStatus::Stalled);
    assert!(stalled[0].messages[0].text.starts_with("stalled"));
    let revived = store
        .add_items(
            project.id,
            "send-1",
            vec![item(Some("5"), ItemStatus::Ok, "e@example.com")],
            Timestamp(t0.0 + 9_000),
        )
        .await
        .unwrap();
    assert_eq!(revived.job.status, JobStatus::Running);
    assert_eq!(revived.job.stalled_ms, 7_000);
    assert!(revived.messages[0].text.starts_with("resumed after"));

    // Finishing stores the summary; a finished job refuses items and leaves nothing behind.
    let finish = JobUpdate::Finish {
        status: JobStatus::Completed,
        messages: vec![],
    };
    let done = store
        .update_job(project.id, "send-1", &finish, Timestamp(t0.0 + 10_000))
        .await
        .unwrap();
    let summary = done.job.summary.clone().unwrap();
    assert_eq!((summary.total, summary.ok, summary.errors), (4, 2, 1));
    assert!(matches!(
        store
            .add_items(
                project.id,
                "send-1",
                vec![item(Some("6"), ItemStatus::Ok, "f@example.com")],
                Timestamp(t0.0 + 11_000),
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    let reread = store.job(project.id, "send-1").await.unwrap().unwrap();
    assert_eq!(reread, done.job);
    let feed = store.job_messages(&reread, 3).await.unwrap();
    assert_eq!(feed.len(), 3);
    assert!(feed[2].text.starts_with("completed: 2 ok"), "{:?}", feed[2]);

    // Lists and their filters.
    let other = Job::create(
        &NewJob {
            project: project.id,
            name: "Import 50% of stock for ÉTÉ".into(),
            kind: Some("import".into()),
            ..Default::default()
        },
        vigie_core::job::new_job_id(),
        Timestamp(t0.0 + 20_000),
    )
    .unwrap();
    store.create_job(&other, "hash-3").await.unwrap();
    let all = store
        .list_jobs(&JobFilter {
            project: project.id,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.total, 2);
    assert_eq!(all.jobs[0].id, other.id, "newest first");
    let search = |text: &str| JobFilter {
        project: project.id,
        text: Some(text.into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.list_jobs(&search("INVOICES")).await.unwrap().total, 1);
    assert_eq!(store.list_jobs(&search("50%")).await.unwrap().total, 1);
    assert_eq!(store.list_jobs(&search("5_%")).await.unwrap().total, 0);
    // Every letter's case is ignored, not only ASCII's, on both engines.
    assert_eq!(store.list_jobs(&search("été")).await.unwrap().total, 1);
    assert_eq!(store.list_jobs(&search("ÉTÉ")).await.unwrap().total, 1);
    assert_eq!(store.list_jobs(&search("Été")).await.unwrap().total, 1);
    let pending = store
        .list_jobs(&JobFilter {
            project: project.id,
            status: Some(JobStatus::Pending),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.jobs.len(), 1);

    let errors = store
        .list_items(&ItemFilter {
            project: project.id,
            with_counts: true,
            application: Some("invoices".into()),
            status: Some(ItemStatus::Error),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(errors.items.len(), 1);
    assert_eq!(errors.items[0].job_id, "send-1");
    assert_eq!(errors.counts.error, 1);
    let page = store
        .list_items(&ItemFilter {
            project: project.id,
            with_counts: true,
            job: Some("send-1".into()),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.counts.total(), 4, "counts cover every page");
    assert!(page.items[0].seq > page.items[1].seq, "newest first");
    let by_target = store
        .list_items(&ItemFilter {
            project: project.id,
            with_counts: true,
            text: Some("b@EXAMPLE".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_target.items.len(), 1);

    // Allowed origins for the embeddable progress bar.
    let origins = vec!["https://app.example.com".to_string()];
    let p = store
        .set_allowed_origins(project.id, &origins)
        .await
        .unwrap();
    assert_eq!(p.allowed_origins, origins);
    assert_eq!(
        store
            .project(project.id)
            .await
            .unwrap()
            .unwrap()
            .allowed_origins,
        origins
    );
}

#[tokio::test]
async fn story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::resolve(None, &dir.path().join("nested/data")).unwrap();
    let store = vigie_store::open(&location).await.unwrap();
    story(store).await;

    // Reopening finds the data and applies no migration twice.
    let store = vigie_store::open(&location).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 1);
    store.close().await;
}

#[tokio::test]
async fn installation_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::resolve(None, dir.path()).unwrap();
    installation_story::installation_story(vigie_store::open(&location).await.unwrap()).await;
}

#[tokio::test]
async fn installation_on_postgres() {
    let Some(admin) = vigie_store::postgres::testing::Scratch::from_env("vigie_install").await
    else {
        return;
    };
    let store = vigie_store::open(&Location::Postgres(admin.url()))
        .await
        .unwrap();
    installation_story::installation_story(store).await;
    admin.drop_schema().await.unwrap();
}

/// Blocks written before their heads were measured (`head_end` NULL after the upgrade) are read
/// whole when a head is asked for, and count the same.
/// A SQLite store at `file` with one project and `lines` nginx lines appended; answers the
/// store, the project and the ids of the blocks the lines went to.
async fn sqlite_with_nginx_lines(
    file: &std::path::Path,
    lines: i64,
) -> (Arc<dyn vigie_store::Store>, vigie_core::Project, Vec<i64>) {
    let store = vigie_store::open(&Location::Sqlite(file.to_path_buf()))
        .await
        .unwrap();
    let project = store
        .create_project("nginx", &ProjectKey::generate())
        .await
        .unwrap();
    let lines: Vec<_> = (0..lines).map(|i| line(i, "nginx")).collect();
    let appended = logs::append(store.as_ref(), project.id, Arc::new(lines))
        .await
        .unwrap();
    let ids = appended.blocks.iter().map(|(id, _)| *id).collect();
    (store, project, ids)
}

#[tokio::test]
async fn blocks_from_before_head_ends_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vigie.db");
    let (store, project, ids) = sqlite_with_nginx_lines(&file, 5000).await;
    let query = LogQuery::parse("level:error", T0 + 10_000 * SECOND).unwrap();
    let before = logs::stats(store.as_ref(), project.id, &query, 7)
        .await
        .unwrap();
    store.close().await;

    let conn = rusqlite::Connection::open(&file).unwrap();
    let cleared = conn
        .execute("UPDATE log_blocks SET head_end = NULL", [])
        .unwrap();
    assert_eq!(cleared, ids.len());
    drop(conn);

    let store = vigie_store::open(&Location::Sqlite(file)).await.unwrap();
    let whole = store
        .log_block_data(ids.clone(), BlockPart::Whole)
        .await
        .unwrap();
    assert_eq!(
        store.log_block_data(ids, BlockPart::Head).await.unwrap(),
        whole
    );
    let after = logs::stats(store.as_ref(), project.id, &query, 7)
        .await
        .unwrap();
    assert_eq!((after.total, after.buckets), (before.total, before.buckets));
    assert_eq!(after.total, 500);
    store.close().await;
}

#[tokio::test]
async fn heads_read_once_are_kept_until_their_blocks_go() {
    // Counts read block heads at every refresh; the store keeps those it read. A head from
    // memory is the head on disk, and a deleted block's head is not given again.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vigie.db");
    let (store, _, ids) = sqlite_with_nginx_lines(&file, 5000).await;
    assert!(ids.len() > 1, "{ids:?}");
    let first = store
        .log_block_data(ids.clone(), BlockPart::Head)
        .await
        .unwrap();
    assert_eq!(first.len(), ids.len());

    // The rows change under the store (as no writer of Vigie's would): the kept heads are
    // what it answers, which shows they came from memory.
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute("UPDATE log_blocks SET data = x'00', head_end = 1", [])
        .unwrap();
    drop(conn);
    let again = store
        .log_block_data(ids.clone(), BlockPart::Head)
        .await
        .unwrap();
    assert_eq!(again, first);
    let whole = store
        .log_block_data(ids.clone(), BlockPart::Whole)
        .await
        .unwrap();
    assert!(
        whole.iter().all(|(_, data)| data == &[0]),
        "whole data is read from disk"
    );

    store.delete_log_blocks(vec![ids[0]]).await.unwrap();
    let left = store
        .log_block_data(ids.clone(), BlockPart::Head)
        .await
        .unwrap();
    let left_ids: Vec<i64> = left.iter().map(|(id, _)| *id).collect();
    assert_eq!(left_ids, ids[1..]);
    store.close().await;
}

#[tokio::test]
async fn regexes_and_prefixes_read_only_blocks_with_a_word_beginning_as_theirs() {
    // A hundred blocks of one record each, `order ORD-000000 paid` to `ORD-000099` (every
    // tenth a `refund`): the word filters hold each word's first five bytes, so a regex running into `00004…`, or the
    // prefix `00004*`, reads the ten blocks that have one; a shorter beginning reads them all.
    let dir = tempfile::tempdir().unwrap();
    let store = vigie_store::open(&Location::Sqlite(dir.path().join("vigie.db")))
        .await
        .unwrap();
    let project = store
        .create_project("orders", &ProjectKey::generate())
        .await
        .unwrap();
    let blocks: Vec<_> = (0..100)
        .map(|i| {
            let mut record = line(i, "shop");
            let kind = if i % 10 == 3 { "refund" } else { "order" };
            record.message = format!("{kind} ORD-{i:06} paid").into();
            logs::NewLogBlock {
                source: "shop".into(),
                block: logs::block::encode(&mut [&record]),
            }
        })
        .collect();
    store
        .write_log_blocks(project.id, blocks, Vec::new())
        .await
        .unwrap();
    let search = |q: &'static str| {
        let store = store.clone();
        async move {
            let query = LogQuery::parse(q, T0 + 10_000 * SECOND).unwrap();
            let page = logs::search(store.as_ref(), project.id, &query, 100, None)
                .await
                .unwrap();
            (page.hits.len(), page.blocks_scanned)
        }
    };
    assert_eq!(search(r"/ORD-00004\d/").await, (10, 10));
    assert_eq!(search("00004*").await, (10, 10));
    assert_eq!(
        search(r"/(?i)paid|ord-000041/").await.0,
        100,
        "no common word"
    );
    assert_eq!(search(r"/ORD-000\d4/").await, (10, 100));
    // A regex's first word may end a longer one (`prerefund`), unless the regex opens at a
    // word start: then it is a word the filters hold whole.
    assert_eq!(search(r"/refund ORD-\d+/").await, (10, 100));
    assert_eq!(search(r"/\brefund ORD-\d+/").await, (10, 10));
    assert_eq!(search(r"/^refund ORD-\d+/").await, (10, 10));
    store.close().await;
}

#[tokio::test]
async fn a_search_reads_every_block_of_a_long_history_to_its_end() {
    // A thousand blocks (a quiet source, a line at a time): a search for what none holds
    // goes round after round to the oldest and stops there; what one old block holds is found.
    let dir = tempfile::tempdir().unwrap();
    let store = vigie_store::open(&Location::Sqlite(dir.path().join("vigie.db")))
        .await
        .unwrap();
    let project = store
        .create_project("long", &ProjectKey::generate())
        .await
        .unwrap();
    let blocks: Vec<_> = (0..1000)
        .map(|i| logs::NewLogBlock {
            source: "worker".into(),
            block: logs::block::encode(&mut [&line(i, "worker")]),
        })
        .collect();
    store
        .write_log_blocks(project.id, blocks, Vec::new())
        .await
        .unwrap();
    let query = |q: &str| LogQuery::parse(q, T0 + 10_000 * SECOND).unwrap();
    // A regex whose words no filter can rule out (`5` is too short a beginning to be kept).
    let none = logs::search(
        store.as_ref(),
        project.id,
        &query(r"/invoice 5\d{3}/"),
        100,
        None,
    )
    .await
    .unwrap();
    assert!(none.hits.is_empty());
    assert_eq!((none.blocks_considered, none.blocks_scanned), (1000, 1000));
    let oldest = logs::search(
        store.as_ref(),
        project.id,
        &query("/invoice 3 /"),
        100,
        None,
    )
    .await
    .unwrap();
    assert_eq!(oldest.hits.len(), 1);
    assert_eq!(oldest.hits[0].record.time, T0 + 3 * SECOND);
    // A page of the newest lists only the newest blocks, and pages on from where it stopped.
    let newest = logs::search(store.as_ref(), project.id, &query("invoice"), 10, None)
        .await
        .unwrap();
    let times: Vec<i64> = newest
        .hits
        .iter()
        .map(|h| (h.record.time - T0) / SECOND)
        .collect();
    assert_eq!(times, (990..1000).rev().collect::<Vec<_>>());
    assert!(
        newest.blocks_considered < 100,
        "{}",
        newest.blocks_considered
    );
    let mut seen = times;
    let mut before = newest.next;
    while let Some(cursor) = before {
        let page = logs::search(
            store.as_ref(),
            project.id,
            &query("invoice"),
            300,
            Some(cursor),
        )
        .await
        .unwrap();
        seen.extend(page.hits.iter().map(|h| (h.record.time - T0) / SECOND));
        before = page.next;
    }
    assert_eq!(seen, (0..1000).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn sqlite_migrations_land_whole_or_not_at_all() {
    // A database where migration 27's table is already taken: the migrations before it
    // apply, 27 fails, and nothing of any of them is left (one transaction).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vigie.db");
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch("CREATE TABLE followed_files (taken INTEGER)")
        .unwrap();
    drop(conn);
    let err = vigie_store::open(&Location::Sqlite(file.clone()))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("database migration 27 failed"), "{err}");
    let conn = rusqlite::Connection::open(&file).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["followed_files", "schema_migrations"]);
    let applied: i64 = conn
        .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, 0);
    // Once the way is clear, the same file migrates at once.
    conn.execute_batch("DROP TABLE followed_files").unwrap();
    drop(conn);
    let store = vigie_store::open(&Location::Sqlite(file)).await.unwrap();
    assert!(store
        .create_project("after", &ProjectKey::generate())
        .await
        .is_ok());
}

#[tokio::test]
async fn sqlite_open_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let location = Location::resolve(None, &file.join("data")).unwrap();
    let err = vigie_store::open(&location)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("cannot open database "), "{err}");
    assert!(err.contains("not-a-dir"), "{err}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![7u8; 4096]).unwrap();
    let err = vigie_store::open(&Location::Sqlite(garbage))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("garbage.db"), "{err}");
}

#[tokio::test]
async fn story_on_postgres() {
    let Some(admin) = vigie_store::postgres::testing::Scratch::from_env("vigie_story").await else {
        return;
    };
    let store = vigie_store::open(&Location::Postgres(admin.url()))
        .await
        .unwrap();
    story(store).await;
    let store = vigie_store::open(&Location::Postgres(admin.url()))
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 1);
    store.close().await;
    admin.drop_schema().await.unwrap();
}

#[tokio::test]
async fn postgres_down_is_a_clear_open_error() {
    let err = vigie_store::open(&Location::Postgres(
        "postgres://vigie:secret@127.0.0.1:1/vigie".into(),
    ))
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.starts_with("cannot open database postgres://vigie:***@127.0.0.1:1/vigie"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}
