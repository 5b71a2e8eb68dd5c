//! Celery in the storage story: events of one task in two batches and out of order end in the
//! same task; its timeline keeps every event; filters; workers with their heartbeats.

use serde_json::{Map, Value};
use std::sync::Arc;
use vigie_core::celery::{TaskSort, TaskState};
use vigie_core::{JobStatus, Project, Timestamp};
use vigie_store::{CeleryNews, Store, TaskFilter};

const T: i64 = 1_800_000_000_000;

fn fields(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap()
}

fn task(uuid: &str, kind: &str, at: i64, json: &str) -> CeleryNews {
    CeleryNews::Task {
        uuid: uuid.into(),
        kind: kind.into(),
        hostname: if kind == "task-sent" {
            "gen1@web"
        } else {
            "celery@w1"
        }
        .into(),
        at: Timestamp(T + at),
        fields: fields(json),
    }
}

pub async fn celery_story(store: &Arc<dyn Store>, project: &Project) {
    let p = project.id;
    // The worker's batch of the end arrives before the client's task-sent.
    let first = store
        .apply_celery(
            p,
            vec![
                task("t1", "task-started", 20, "{}"),
                task("t1", "task-succeeded", 90, r#"{"result": "5", "runtime": 0.07}"#),
                task("t2", "task-received", 5, r#"{"name": "shop.boom", "args": "('BE',)"}"#),
                task("t2", "task-failed", 30, r#"{"exception": "KeyError('BE')", "traceback": "Traceback…"}"#),
                CeleryNews::Worker {
                    hostname: "celery@w1".into(),
                    kind: "worker-heartbeat".into(),
                    at: Timestamp(T + 100),
                    fields: fields(r#"{"freq": 2.0, "active": 0, "processed": 2, "loadavg": [0.1, 0.2, 0.3], "sw_ver": "5.7.0"}"#),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!((first.tasks.len(), first.workers.len()), (2, 1));
    // Each named task is a Job, moved in the same transaction; t1 has no name yet.
    let jobs: Vec<(&str, JobStatus)> = first
        .jobs
        .iter()
        .map(|c| (c.job.id.as_str(), c.job.status))
        .collect();
    assert_eq!(jobs, [("t2", JobStatus::Failed)]);
    assert!(first.jobs[0]
        .messages
        .iter()
        .any(|m| m.text.contains("KeyError('BE')")));
    assert!(store.job(p, "t1").await.unwrap().is_none());
    let second = store
        .apply_celery(
            p,
            vec![
                task(
                    "t1",
                    "task-sent",
                    0,
                    r#"{"name": "shop.add", "args": "(2, 3)", "queue": "celery"}"#,
                ),
                task("t1", "task-received", 10, r#"{"name": "shop.add"}"#),
                CeleryNews::Backend {
                    uuid: "t3".into(),
                    status: "PROGRESS".into(),
                    progress: Some((40, Some(100))),
                    description: Some("invoice 40 of 100".into()),
                    at: Timestamp(T + 200),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(second.tasks.len(), 2);
    let job = store.job(p, "t1").await.unwrap().expect("named now: a job");
    assert_eq!(
        (job.kind.as_deref(), job.status, job.name.as_str()),
        (Some("celery"), JobStatus::Completed, "shop.add")
    );
    assert_eq!(
        job.created_at,
        Timestamp(T),
        "the job starts when the task was sent"
    );
    let t1 = store.celery_task(p, "t1").await.unwrap().unwrap();
    assert_eq!(
        t1.state,
        TaskState::Success,
        "a late task-sent does not undo success"
    );
    assert_eq!(t1.name.as_deref(), Some("shop.add"));
    assert_eq!(
        (t1.args.as_deref(), t1.result.as_deref()),
        (Some("(2, 3)"), Some("5"))
    );
    assert_eq!(
        (t1.worker.as_deref(), t1.queue.as_deref()),
        (Some("celery@w1"), Some("celery"))
    );
    assert_eq!(t1.runtime, Some(0.07));
    assert_eq!(t1.sent_at, Some(Timestamp(T)));
    let t3 = store.celery_task(p, "t3").await.unwrap().unwrap();
    assert_eq!(t3.progress, Some((40, Some(100))));
    assert_eq!(
        t3.progress_description.as_deref(),
        Some("invoice 40 of 100"),
        "what the task says it is doing is kept with its progress"
    );

    let events = store.celery_task_events(p, "t1").await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "task-sent",
            "task-received",
            "task-started",
            "task-succeeded"
        ]
    );
    assert_eq!(events[3].fields["result"], "5");

    let filter = |f: TaskFilter| async move { store.celery_tasks(&f).await.unwrap() };
    let all = filter(TaskFilter {
        project: p,
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].uuid, "t3", "newest first");
    let failed = filter(TaskFilter {
        project: p,
        state: Some("FAILURE".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].exception.as_deref(), Some("KeyError('BE')"));
    let named = filter(TaskFilter {
        project: p,
        name: Some("shop.add".into()),
        worker: Some("celery@w1".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(named.len(), 1);
    let searched = filter(TaskFilter {
        project: p,
        args: Some("be".into()),
        words: vec!["keyerror".into()],
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(searched.len(), 1, "args and words, any case");
    assert_eq!(searched[0].uuid, "t2");
    // t1's arguments came in its second batch: found by them (the search index follows).
    let by_args = filter(TaskFilter {
        project: p,
        args: Some("(2, 3)".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(by_args.len(), 1);
    assert_eq!(by_args[0].uuid, "t1");
    let quoted = filter(TaskFilter {
        project: p,
        words: vec!["\"be\"".into(), "shop.boom".into()],
        limit: 10,
        ..Default::default()
    })
    .await;
    assert!(
        quoted.is_empty(),
        "a quote in a term is a character, not syntax"
    );
    let none = filter(TaskFilter {
        project: p,
        result: Some("6".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert!(none.is_empty());
    assert_eq!(
        store.celery_task_names(p).await.unwrap(),
        ["shop.add", "shop.boom"]
    );

    assert_eq!(store.celery_queues(p).await.unwrap(), ["celery"]);
    let workers = store.celery_workers(p).await.unwrap();
    assert_eq!(workers.len(), 1);
    let w = &workers[0];
    assert_eq!(
        (w.processed, w.sw_ver.as_deref(), w.loadavg.len()),
        (2, Some("5.7.0"), 3)
    );
    assert!(w.online(Timestamp(T + 4_000)) && !w.online(Timestamp(T + 4_101)));

    // A batch wider than one multi-row statement, with progress on its jobs.
    let many: Vec<CeleryNews> = (0..150)
        .flat_map(|i| {
            let uuid = format!("bulk-{i:03}");
            [
                task(
                    &uuid,
                    "task-received",
                    1_000 + i,
                    r#"{"name": "shop.bulk"}"#,
                ),
                task(&uuid, "task-started", 1_001 + i, "{}"),
                CeleryNews::Backend {
                    uuid,
                    status: "PROGRESS".into(),
                    progress: Some((i, Some(150))),
                    description: None,
                    at: Timestamp(T + 1_002 + i),
                },
            ]
        })
        .collect();
    let bulk = store.apply_celery(p, many).await.unwrap();
    assert_eq!((bulk.tasks.len(), bulk.jobs.len()), (150, 150));
    let job = store.job(p, "bulk-149").await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.processed, job.total),
        (JobStatus::Running, 149, Some(150))
    );
    assert_eq!(
        store.celery_task_events(p, "bulk-000").await.unwrap().len(),
        2
    );

    // Sorting: the slowest first; by name with the unnamed task last either way.
    let sorted = |sort: &str, offset: u32| {
        let filter = TaskFilter {
            project: p,
            sort: TaskSort::parse(sort).unwrap(),
            limit: 1,
            offset,
            ..Default::default()
        };
        async move { store.celery_tasks(&filter).await.unwrap()[0].uuid.clone() }
    };
    assert_eq!(sorted("-runtime", 0).await, "t1");
    assert_eq!(sorted("name", 0).await, "t1", "shop.add first");
    assert_eq!(sorted("name", 152).await, "t3", "no name: last");
    assert_eq!(
        sorted("-name", 152).await,
        "t3",
        "no name: last descending too"
    );
    assert_eq!(sorted("-name", 0).await, "bulk-149");

    // The worker went silent and came back: two online periods.
    let beat = |at: i64| CeleryNews::Worker {
        hostname: "celery@w1".into(),
        kind: "worker-heartbeat".into(),
        at: Timestamp(T + at),
        fields: fields(r#"{"freq": 2.0}"#),
    };
    store
        .apply_celery(p, vec![beat(2_000), beat(20_000)])
        .await
        .unwrap();
    let periods = store.celery_worker_periods(p, Timestamp(T)).await.unwrap();
    let spans: Vec<(i64, i64)> = periods
        .iter()
        .map(|w| (w.online_since.0 - T, w.last_heartbeat.0 - T))
        .collect();
    assert_eq!(spans, [(20_000, 20_000), (100, 2_000)]);

    // Retention: old tasks go with their events and Jobs; a silent worker is forgotten.
    let dropped = store
        .prune_celery(Some(Timestamp(T + 1_100)), Some(Timestamp(T + 20_001)))
        .await
        .unwrap();
    assert!(dropped > 3 * 100, "{dropped}");
    assert!(store.celery_task(p, "t1").await.unwrap().is_none());
    assert!(store.job(p, "t1").await.unwrap().is_none());
    assert!(store.celery_task_events(p, "t1").await.unwrap().is_empty());
    assert!(store.celery_task(p, "bulk-149").await.unwrap().is_some());
    assert!(store.job(p, "bulk-149").await.unwrap().is_some());
    assert!(store.celery_workers(p).await.unwrap().is_empty());
    let periods = |since| async move {
        store
            .celery_worker_periods(p, Timestamp(since))
            .await
            .unwrap()
            .len()
    };
    assert_eq!(periods(T).await, 2, "both periods ended after the cut");
    store
        .prune_celery(Some(Timestamp(T + 5_000)), None)
        .await
        .unwrap();
    assert_eq!(
        periods(T).await,
        1,
        "the period that ended before the cut is gone"
    );
    assert!(store.celery_task(p, "bulk-149").await.unwrap().is_none());
}
