//! Monitors in the storage story: check-ins open and close runs, the periodic check finds
//! missed and timed-out runs, pausing and deleting.

use std::sync::Arc;
use vigie_core::monitor::{MonitorConfig, MonitorState, RunStatus};
use vigie_core::schedule::{IntervalUnit, Schedule};
use vigie_core::{Project, Timestamp};
use vigie_store::{CheckInReport, Store, StoreError};

const MIN: i64 = 60_000;
/// A whole hour, so an hourly schedule is due exactly at `HOUR0 + n h`.
const HOUR0: i64 = 1_800_000_000_000 / (60 * MIN) * (60 * MIN);

fn report(slug: &str, id: Option<&str>, status: RunStatus, at: i64) -> CheckInReport {
    CheckInReport {
        slug: slug.into(),
        check_in_id: id.map(str::to_string),
        status,
        duration_ms: None,
        environment: Some("production".into()),
        output: None,
        config: None,
        at: Timestamp(at),
    }
}

pub async fn monitors_story(store: &Arc<dyn Store>, project: &Project) {
    let p = project.id;
    let hourly = MonitorConfig {
        checkin_margin_min: 5,
        max_runtime_min: 20,
        ..MonitorConfig::new(Schedule::crontab("0 * * * *", "UTC").unwrap())
    };

    // The SDK's first check-in creates the monitor with its configuration and opens a run.
    let mut first = report(
        "nightly",
        Some("run-1"),
        RunStatus::InProgress,
        HOUR0 + 10_000,
    );
    first.config = Some(hourly.clone());
    let opened = store.record_check_in(p, &first).await.unwrap();
    assert_eq!(opened.previous_state, MonitorState::New);
    assert_eq!(opened.run.status, RunStatus::InProgress);
    assert_eq!(opened.monitor.config.as_ref(), Some(&hourly));
    assert_eq!(
        opened.monitor.next_expected,
        Some(Timestamp(HOUR0 + 60 * MIN)),
        "the next hour"
    );
    // Its end closes the same run, with the duration measured.
    let closed = store
        .record_check_in(
            p,
            &report("nightly", Some("run-1"), RunStatus::Ok, HOUR0 + 70_000),
        )
        .await
        .unwrap();
    assert_eq!(closed.run.id, opened.run.id);
    assert_eq!(closed.run.status, RunStatus::Ok);
    assert_eq!(closed.run.duration_ms, Some(60_000.0));
    assert_eq!(closed.monitor.state, MonitorState::Up);
    // The same end again (an SDK retry) changes nothing.
    let again = store
        .record_check_in(
            p,
            &report("nightly", Some("run-1"), RunStatus::Error, HOUR0 + 80_000),
        )
        .await
        .unwrap();
    assert_eq!(again.run.status, RunStatus::Ok);

    // Within the margin nothing is missed; after it, one missed run and state down.
    let late = Timestamp(HOUR0 + 64 * MIN);
    assert!(store.check_monitors(late).await.unwrap().is_empty());
    let m = store.monitor(p, "nightly").await.unwrap().unwrap();
    assert_eq!(m.state_at(late), MonitorState::Late);
    let missed = store
        .check_monitors(Timestamp(HOUR0 + 66 * MIN))
        .await
        .unwrap();
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0].run.status, RunStatus::Missed);
    assert_eq!(missed[0].run.started_at, Timestamp(HOUR0 + 60 * MIN));
    assert_eq!(missed[0].previous_state, MonitorState::Late);
    assert_eq!(missed[0].monitor.state, MonitorState::Down);
    assert_eq!(
        missed[0].monitor.next_expected,
        Some(Timestamp(HOUR0 + 120 * MIN))
    );
    assert!(
        store
            .check_monitors(Timestamp(HOUR0 + 67 * MIN))
            .await
            .unwrap()
            .is_empty(),
        "missed once"
    );

    // A run left in progress times out after max_runtime.
    store
        .record_check_in(
            p,
            &report(
                "nightly",
                Some("run-2"),
                RunStatus::InProgress,
                HOUR0 + 120 * MIN,
            ),
        )
        .await
        .unwrap();
    let timeouts = store
        .check_monitors(Timestamp(HOUR0 + 141 * MIN))
        .await
        .unwrap();
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].run.status, RunStatus::TimedOut);
    assert_eq!(timeouts[0].run.duration_ms, Some((21 * MIN) as f64));

    // Pings: a heartbeat without a configuration records runs and is never missed; `/start`
    // then a plain ping close one run, with the output kept.
    let beat = |status, at, output: Option<&str>| CheckInReport {
        output: output.map(str::to_string),
        ..report("backup", None, status, at)
    };
    store
        .record_check_in(p, &beat(RunStatus::InProgress, HOUR0, None))
        .await
        .unwrap();
    let done = store
        .record_check_in(p, &beat(RunStatus::Error, HOUR0 + 5_000, Some("disk full")))
        .await
        .unwrap();
    assert_eq!(done.run.status, RunStatus::Error);
    assert_eq!(done.run.duration_ms, Some(5_000.0));
    assert_eq!(done.run.output.as_deref(), Some("disk full"));
    assert_eq!(done.monitor.state, MonitorState::Down);
    assert_eq!(done.monitor.next_expected, None);
    let long = "x".repeat(20_000) + "the end";
    let kept = store
        .record_check_in(p, &beat(RunStatus::Ok, HOUR0 + 9_000, Some(&long)))
        .await
        .unwrap();
    let output = kept.run.output.unwrap();
    assert!(
        output.ends_with("the end") && output.len() < 10_100,
        "the end is kept"
    );

    // Configured afterwards (from the API or the SDK): now expected.
    let every10 = MonitorConfig::new(Schedule::interval(10, IntervalUnit::Minute).unwrap());
    let configured = store
        .configure_monitor(p, "backup", &every10, Timestamp(HOUR0 + 10_000))
        .await
        .unwrap();
    assert_eq!(
        configured.next_expected,
        Some(Timestamp(HOUR0 + 9_000 + 10 * MIN)),
        "ten minutes after the last check-in"
    );

    // Runs, newest first, per monitor; the job link.
    let list = store.list_monitors(p).await.unwrap();
    assert_eq!(
        list.iter().map(|m| m.slug.as_str()).collect::<Vec<_>>(),
        ["backup", "nightly"]
    );
    let runs = store.monitor_runs(vec![list[1].id], 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [RunStatus::TimedOut, RunStatus::Missed, RunStatus::Ok]
    );
    store.set_run_job(runs[0].id, "job-42").await.unwrap();
    assert_eq!(
        store.monitor_runs(vec![list[1].id], 1).await.unwrap()[0]
            .job_id
            .as_deref(),
        Some("job-42")
    );

    // Paused monitors are not checked; resuming starts the schedule afresh.
    let paused = store
        .set_monitor_paused(p, "nightly", true, Timestamp(HOUR0 + 150 * MIN))
        .await
        .unwrap();
    assert_eq!(
        paused.state_at(Timestamp(HOUR0 + 500 * MIN)),
        MonitorState::Paused
    );
    assert!(store
        .check_monitors(Timestamp(HOUR0 + 500 * MIN))
        .await
        .unwrap()
        .iter()
        .all(|c| c.monitor.slug != "nightly"));
    let resumed = store
        .set_monitor_paused(p, "nightly", false, Timestamp(HOUR0 + 500 * MIN))
        .await
        .unwrap();
    assert_eq!(resumed.next_expected, Some(Timestamp(HOUR0 + 540 * MIN)));

    // Bad input.
    let bad = store
        .record_check_in(p, &report("no spaces", None, RunStatus::Ok, HOUR0))
        .await;
    assert!(
        matches!(bad, Err(StoreError::Invalid { field: "slug", .. })),
        "{bad:?}"
    );
    assert!(matches!(
        store.delete_monitor(p, "nope").await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_monitor(p, "backup").await.unwrap();
    assert!(store.monitor(p, "backup").await.unwrap().is_none());
}
