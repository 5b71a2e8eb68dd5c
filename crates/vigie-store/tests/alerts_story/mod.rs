//! Alerts in the storage story: channels and rules with their checks, the cooldown and
//! resolution memory, deliveries with retries and the channel's health.

use std::sync::Arc;
use vigie_core::alert::{Notification, RuleKind, Target};
use vigie_core::{Project, Timestamp};
use vigie_store::{Firing, NewDelivery, NewRule, Store, StoreError};

const T: i64 = 1_800_000_000_000;

pub async fn alerts_story(store: &Arc<dyn Store>, project: &Project) {
    let p = project.id;
    let hook = Target::Webhook {
        url: "http://127.0.0.1:9/hook".into(),
        secret: Some("s3cret".into()),
    };
    let ops = store
        .create_channel(p, "ops webhook", &hook, false, Timestamp(T))
        .await
        .unwrap();
    assert_eq!(ops.target, hook);
    assert!(matches!(
        store
            .create_channel(p, "ops webhook", &hook, false, Timestamp(T))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let bad = Target::Email {
        to: vec!["nobody".into()],
    };
    assert!(matches!(
        store
            .create_channel(p, "mail", &bad, false, Timestamp(T))
            .await,
        Err(StoreError::Invalid {
            field: "target",
            ..
        })
    ));

    let rule = NewRule {
        name: "failed jobs".into(),
        kind: RuleKind::JobFailed { job_kind: None },
        environment: None,
        channels: vec![ops.id],
        cooldown_s: 600,
        renotify_s: 0,
        from_config: false,
    };
    let failed = store.create_rule(p, &rule, Timestamp(T)).await.unwrap();
    assert_eq!(failed.kind, rule.kind);
    assert_eq!(failed.channels, vec![ops.id]);
    let no_channel = NewRule {
        name: "x".into(),
        channels: vec![],
        ..rule.clone()
    };
    assert!(store
        .create_rule(p, &no_channel, Timestamp(T))
        .await
        .is_err());
    let foreign = NewRule {
        name: "y".into(),
        channels: vec![9_999],
        ..rule.clone()
    };
    assert!(store.create_rule(p, &foreign, Timestamp(T)).await.is_err());

    // A rule changed wholly keeps its id, its mute and when it was made; the same rules apply.
    let muted = store
        .mute_rule(p, failed.id, Some(Timestamp(T + 60_000)))
        .await
        .unwrap();
    let email_only = NewRule {
        kind: RuleKind::JobFailed {
            job_kind: Some("email".into()),
        },
        cooldown_s: 900,
        ..rule.clone()
    };
    let changed = store.update_rule(p, failed.id, &email_only).await.unwrap();
    assert_eq!(
        (changed.id, changed.kind.clone(), changed.cooldown_s),
        (failed.id, email_only.kind.clone(), 900)
    );
    assert_eq!(
        (changed.muted_until, changed.created_at),
        (muted.muted_until, failed.created_at)
    );
    assert!(store.update_rule(p, failed.id, &no_channel).await.is_err());
    assert!(matches!(
        store.update_rule(p, 9_999, &email_only).await,
        Err(StoreError::NotFound(_))
    ));
    let unmuted = store.mute_rule(p, failed.id, None).await.unwrap();
    assert_eq!(unmuted.muted_until, None);
    let restored = store.update_rule(p, failed.id, &rule).await.unwrap();
    assert_eq!(restored.kind, rule.kind);

    // Cooldown per key; a resolution only after a problem that was sent.
    assert!(store
        .fire(failed.id, "monitor:m", Timestamp(T), Firing::Resolved)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .fire(
            failed.id,
            "job:1",
            Timestamp(T),
            Firing::Opened { cooldown_s: 600 }
        )
        .await
        .unwrap()
        .is_some());
    assert!(store
        .fire(
            failed.id,
            "job:1",
            Timestamp(T + 599_000),
            Firing::Opened { cooldown_s: 600 }
        )
        .await
        .unwrap()
        .is_none());
    assert!(store
        .fire(
            failed.id,
            "job:2",
            Timestamp(T + 1_000),
            Firing::Opened { cooldown_s: 600 }
        )
        .await
        .unwrap()
        .is_some());
    assert!(store
        .fire(
            failed.id,
            "job:1",
            Timestamp(T + 600_000),
            Firing::Opened { cooldown_s: 600 }
        )
        .await
        .unwrap()
        .is_some());
    assert!(store
        .fire(failed.id, "job:1", Timestamp(T + 600_001), Firing::Resolved)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .fire(failed.id, "job:1", Timestamp(T + 600_002), Firing::Resolved)
        .await
        .unwrap()
        .is_none());

    // A monitor down for an hour fails every 2 minutes: one message, then a count of the
    // failures held back, given with the next message and with the resolution.
    let down = |minute: i64| {
        store.fire(
            failed.id,
            "monitor:sync",
            Timestamp(T + minute * 60_000),
            Firing::Opened { cooldown_s: 1800 },
        )
    };
    assert_eq!(down(0).await.unwrap(), Some(0), "the first failure is sent");
    for minute in (2..30).step_by(2) {
        assert_eq!(
            down(minute).await.unwrap(),
            None,
            "held back at {minute} min"
        );
    }
    assert_eq!(
        down(30).await.unwrap(),
        Some(14),
        "sent again, with 14 held back"
    );
    for minute in (32..60).step_by(2) {
        assert_eq!(down(minute).await.unwrap(), None);
    }
    let resolved = store
        .fire(
            failed.id,
            "monitor:sync",
            Timestamp(T + 3_600_000),
            Firing::Resolved,
        )
        .await
        .unwrap();
    assert_eq!(
        resolved,
        Some(14),
        "the resolution counts what came after the last message"
    );
    assert_eq!(
        down(61).await.unwrap(),
        Some(0),
        "a new problem starts from nothing"
    );

    // A threshold rule: its kind is checked; it reminds while open, every renotify_s.
    let bad_query = NewRule {
        name: "invoice errors".into(),
        kind: RuleKind::LogMatches {
            query: "level:>=error since:1h".into(),
            above: 50,
            window_s: 300,
        },
        renotify_s: 3600,
        ..rule.clone()
    };
    assert!(matches!(
        store.create_rule(p, &bad_query, Timestamp(T)).await,
        Err(StoreError::Invalid { field: "rule", .. })
    ));
    let threshold = store
        .create_rule(
            p,
            &NewRule {
                kind: RuleKind::LogMatches {
                    query: "level:>=error logger:invoices*".into(),
                    above: 50,
                    window_s: 300,
                },
                ..bad_query.clone()
            },
            Timestamp(T),
        )
        .await
        .unwrap();
    assert_eq!(threshold.renotify_s, 3600);
    let remind = Firing::Reminder { renotify_s: 3600 };
    assert!(store
        .fire(threshold.id, "logs", Timestamp(T), remind)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .fire(
            threshold.id,
            "logs",
            Timestamp(T),
            Firing::Opened { cooldown_s: 600 }
        )
        .await
        .unwrap()
        .is_some());
    assert!(store
        .fire(threshold.id, "logs", Timestamp(T + 3_599_000), remind)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .fire(threshold.id, "logs", Timestamp(T + 3_600_000), remind)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .fire(
            threshold.id,
            "logs",
            Timestamp(T + 3_700_000),
            Firing::Resolved
        )
        .await
        .unwrap()
        .is_some());
    assert!(store
        .fire(threshold.id, "logs", Timestamp(T + 7_300_000), remind)
        .await
        .unwrap()
        .is_none());

    // From the configuration file: the same name replaces instead of conflicting, and the
    // mute set in the UI stays.
    let muted = store
        .mute_rule(p, threshold.id, Some(Timestamp(T + 60_000)))
        .await
        .unwrap();
    let from_config = NewRule {
        cooldown_s: 60,
        from_config: true,
        ..bad_query.clone()
    };
    let replaced = store
        .create_rule(
            p,
            &NewRule {
                kind: threshold.kind.clone(),
                ..from_config
            },
            Timestamp(T),
        )
        .await
        .unwrap();
    assert_eq!(
        (replaced.id, replaced.cooldown_s, replaced.from_config),
        (threshold.id, 60, true)
    );
    assert_eq!(replaced.muted_until, muted.muted_until);
    let replaced_channel = store
        .create_channel(p, "ops webhook", &hook, true, Timestamp(T))
        .await
        .unwrap();
    assert_eq!(
        (replaced_channel.id, replaced_channel.from_config),
        (ops.id, true)
    );
    store.delete_rule(p, threshold.id).await.unwrap();

    // Muting.
    let muted = store
        .mute_rule(p, failed.id, Some(Timestamp(T + 3_600_000)))
        .await
        .unwrap();
    assert!(muted.muted_at(Timestamp(T)) && !muted.muted_at(Timestamp(T + 3_600_001)));

    // Deliveries: due, retried, sent; the channel's health follows.
    let message = Notification {
        title: "Job failed: nightly".into(),
        ..Notification::default()
    };
    let ids = store
        .enqueue(vec![NewDelivery {
            project: p,
            channel: ops.id,
            rule: Some("failed jobs".into()),
            message: message.clone(),
            at: Timestamp(T),
        }])
        .await
        .unwrap();
    let lease = Timestamp(T + 120_000);
    let due = store
        .claim_deliveries(Timestamp(T), lease, 10)
        .await
        .unwrap();
    assert_eq!(
        (due.len(), due[0].id, &due[0].message),
        (1, ids[0], &message)
    );
    // Claimed: another notifier finds nothing until the claim runs out, then the delivery
    // again (its sender died without a word).
    let again = store.claim_deliveries(Timestamp(T + 1), lease, 10);
    let again = again.await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    let after_claim = Timestamp(T + 120_000);
    let reclaimed = store
        .claim_deliveries(after_claim, Timestamp(T + 240_000), 10)
        .await
        .unwrap();
    assert_eq!(reclaimed.iter().map(|d| d.id).collect::<Vec<_>>(), ids);
    store
        .delivered(
            ids[0],
            Err("connection refused".into()),
            Some(Timestamp(T + 30_000)),
            Timestamp(T),
        )
        .await
        .unwrap();
    assert!(store
        .claim_deliveries(Timestamp(T + 29_000), Timestamp(T + 149_000), 10)
        .await
        .unwrap()
        .is_empty());
    let channel = store.channel(ops.id).await.unwrap().unwrap();
    assert_eq!(channel.failing_since, Some(Timestamp(T)));
    assert_eq!(channel.last_error.as_deref(), Some("connection refused"));
    store
        .delivered(ids[0], Ok(()), None, Timestamp(T + 30_000))
        .await
        .unwrap();
    let log = store.list_deliveries(p, 10).await.unwrap();
    assert_eq!((log[0].status.as_str(), log[0].attempts), ("sent", 2));
    assert_eq!(log[0].sent_at, Some(Timestamp(T + 30_000)));
    assert_eq!(
        store.channel(ops.id).await.unwrap().unwrap().failing_since,
        None
    );

    // Deleting a channel takes its deliveries; rules go by id.
    store.delete_rule(p, failed.id).await.unwrap();
    assert!(store.list_rules(p).await.unwrap().is_empty());
    store.delete_channel(p, ops.id).await.unwrap();
    assert!(store.list_deliveries(p, 10).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_channel(p, ops.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// The change feed: a job that fails is on it with the job's own write, read in order; the
/// alert engine's transaction moves its cursor once, and an entry acted on twice queues once.
pub async fn feed_story(store: &Arc<dyn Store>, project: &Project) {
    use vigie_core::job::{JobUpdate, NewJob};
    use vigie_core::{Job, JobStatus};
    use vigie_store::{Alerting, FeedChange, FeedMove};

    let p = project.id;
    let start = store.feed_head().await.unwrap();
    let new = NewJob {
        project: p,
        name: "Nightly export".into(),
        start: true,
        ..Default::default()
    };
    let job = Job::create(&new, "export-1".into(), Timestamp(T)).unwrap();
    store.create_job(&job, "hash-feed").await.unwrap();
    let heartbeat = JobUpdate::Heartbeat { messages: vec![] };
    store
        .update_job(p, "export-1", &heartbeat, Timestamp(T + 1))
        .await
        .unwrap();
    assert_eq!(
        store.feed_head().await.unwrap(),
        start,
        "a running job is not news"
    );
    let failed = JobUpdate::Finish {
        status: JobStatus::Failed,
        messages: vec!["SMTP refused".into()],
    };
    store
        .update_job(p, "export-1", &failed, Timestamp(T + 2))
        .await
        .unwrap();
    let entries = store.feed_after(start, 10).await.unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!((entry.project, entry.at), (p, Timestamp(T + 2)));
    assert!(matches!(
        &entry.change,
        FeedChange::Job { id, status: JobStatus::Failed, .. } if id == "export-1"
    ));

    // A project's change is news to every instance's caches.
    store.rename_project(p, &project.name).await.unwrap();
    let project_entry = store.feed_after(entry.seq, 10).await.unwrap();
    assert_eq!(project_entry.len(), 1);
    assert_eq!(project_entry[0].change, FeedChange::Project);

    let channel = store
        .create_channel(
            p,
            "feed hook",
            &Target::Webhook {
                url: "http://127.0.0.1:9/feed".into(),
                secret: None,
            },
            false,
            Timestamp(T),
        )
        .await
        .unwrap();
    let rule = store
        .create_rule(
            p,
            &NewRule {
                name: "jobs that fail".into(),
                kind: RuleKind::JobFailed { job_kind: None },
                environment: None,
                channels: vec![channel.id],
                cooldown_s: 0,
                renotify_s: 0,
                from_config: false,
            },
            Timestamp(T),
        )
        .await
        .unwrap();
    // A rule's change is news to every instance: each counts for its threshold rules.
    let rules_entry = store.feed_after(project_entry[0].seq, 10).await.unwrap();
    assert_eq!(
        rules_entry.iter().map(|e| &e.change).collect::<Vec<_>>(),
        [&FeedChange::Rules]
    );
    let alerting = Alerting {
        rule: rule.clone(),
        key: "job:export-1".into(),
        firing: Firing::Opened { cooldown_s: 0 },
        message: Notification {
            title: "Job failed: Nightly export".into(),
            ..Notification::default()
        },
        at: Timestamp(T + 3),
        once: Some(format!("feed:{}:rule:{}", entry.seq, rule.id)),
    };
    let reader = store.feed_cursor("story").await.unwrap();
    let moved = |from: i64| FeedMove {
        reader: "story".into(),
        from,
        to: entry.seq,
    };
    let queued = store
        .alert(vec![alerting.clone()], Some(moved(reader)))
        .await
        .unwrap();
    assert_eq!(queued, 1);
    assert_eq!(store.feed_cursor("story").await.unwrap(), entry.seq);
    // A second engine that read from the same place finds the cursor moved: nothing done.
    assert!(matches!(
        store
            .alert(vec![alerting.clone()], Some(moved(reader)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // The same entry acted on again (no cooldown to hold it back): its key queues nothing.
    assert_eq!(store.alert(vec![alerting], None).await.unwrap(), 0);
    let log = store.list_deliveries(p, 10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].title, "Job failed: Nightly export");
    store.delete_channel(p, channel.id).await.unwrap();
}

/// Failed logins are counted in the database, so every instance sees the same throttle.
pub async fn login_failures_story(store: &Arc<dyn Store>) {
    use vigie_core::login_limiter::LoginKeys;
    let keys = LoginKeys::new("mallory", "203.0.113.5");
    assert!(store.login_failures(&keys.all()).await.unwrap().is_empty());
    store
        .record_login_failure(&keys.all(), Timestamp(T))
        .await
        .unwrap();
    store
        .record_login_failure(&keys.all(), Timestamp(T + 1_000))
        .await
        .unwrap();
    let counted = store.login_failures(&keys.all()).await.unwrap();
    assert_eq!(counted.len(), 3);
    for (_, f) in &counted {
        assert_eq!((f.count, f.blocked_until), (2, Timestamp(T + 3_000)));
    }
    store
        .clear_login_failures(&keys.cleared_by_success())
        .await
        .unwrap();
    let left = store.login_failures(&keys.all()).await.unwrap();
    assert_eq!(
        left.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["ip:203.0.113.5"]
    );
    assert_eq!(
        store
            .forget_login_failures(Timestamp(T + 2_000))
            .await
            .unwrap(),
        1
    );
    assert!(store.login_failures(&keys.all()).await.unwrap().is_empty());

    // Failures recorded at once (on several instances) each count.
    let keys = LoginKeys::new("trudy", "203.0.113.6");
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (store, keys) = (store.clone(), keys.all());
        writers.spawn(async move { store.record_login_failure(&keys, Timestamp(T + i)).await });
    }
    while let Some(recorded) = writers.join_next().await {
        recorded.unwrap().unwrap();
    }
    let counted = store.login_failures(&keys.all()).await.unwrap();
    assert_eq!(counted.len(), 3);
    for (key, f) in &counted {
        assert_eq!(f.count, 6, "{key}");
    }
}

/// Counts several instances add up: quota counts per scope and minute (each instance's
/// replaced, the others' summed), and threshold tallies taken once.
pub async fn shared_counts_story(store: &Arc<dyn Store>) {
    use vigie_store::MinuteCount;
    let count = |scope: &str, minute: i64, count: u64| MinuteCount {
        scope: scope.into(),
        minute,
        count,
    };
    let heard = store
        .share_counts(
            "a",
            vec![count("events", 100, 15), count("events", 99, 4)],
            99,
        )
        .await
        .unwrap();
    assert!(heard.is_empty(), "nobody else counted: {heard:?}");
    store
        .share_counts("b", vec![count("events", 100, 7)], 99)
        .await
        .unwrap();
    // A's count is a whole count: saying it again replaces it.
    store
        .share_counts("a", vec![count("events", 100, 16)], 99)
        .await
        .unwrap();
    store
        .share_counts(
            "c",
            vec![count("events", 100, 1), count("transactions", 100, 9)],
            99,
        )
        .await
        .unwrap();
    let mut heard = store.share_counts("b", vec![], 99).await.unwrap();
    heard.sort_by(|x, y| (&x.scope, x.minute).cmp(&(&y.scope, y.minute)));
    assert_eq!(
        heard,
        [
            count("events", 99, 4),
            count("events", 100, 17),
            count("transactions", 100, 9)
        ]
    );
    // Minutes before the horizon are forgotten.
    let heard = store.share_counts("b", vec![], 100).await.unwrap();
    assert!(heard.iter().all(|c| c.minute == 100), "{heard:?}");

    // Tallies: each taken once, in the order they were left.
    assert!(store.take_tallies().await.unwrap().is_empty());
    for body in ["[1]", "[2]", "[3]"] {
        store
            .hand_over_tallies("b", body.into(), Timestamp(T))
            .await
            .unwrap();
    }
    assert_eq!(store.take_tallies().await.unwrap(), ["[1]", "[2]", "[3]"]);
    assert!(store.take_tallies().await.unwrap().is_empty());
}
