//! Storing an [`ErrorBatch`] in one transaction (see the module docs of `errors` for the path).

use super::{
    compress_body, sketch_from, Dropped, ErrorBatch, ErrorsWritten, EventWritten, IssueChange,
    LooseSpan, NewEvent, NewTransaction, SpanTiming, Tx, SEGMENT_FULL, STRAY_SPANS_PER_SEGMENT,
};
use crate::feed::{self, FeedChange};
use crate::sql::{Columns, Value, Where};
use crate::traces::EncodedSpans;
use crate::tx::{Row, RowsWrite, Statement};
use crate::Result;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use vigie_core::issue::IssueId;
use vigie_core::sketch::{Apdex, Sketch};
use vigie_core::{ProjectId, Timestamp};

use super::{floor, DAY_MS, HOUR_MS};

const MINUTE_MS: i64 = 60_000;
/// Ids looked up per `IN (…)` list.
const LOOKUP_CHUNK: usize = 500;

pub(crate) async fn write_batch(
    tx: &mut dyn Tx,
    batch: ErrorBatch,
    spans: EncodedSpans,
    now: Timestamp,
) -> Result<ErrorsWritten> {
    let project = batch.project;
    let mut written = ErrorsWritten::default();
    if !batch.events.is_empty() {
        let (events, duplicates) = fresh_events(tx, project, batch.events).await?;
        written.duplicates = duplicates;
        written.events = write_events(tx, project, events, now).await?;
    }
    written.transactions = batch.transactions.len();
    write_transactions(
        tx,
        project,
        batch.transactions,
        &batch.loose_spans,
        spans,
        now,
    )
    .await?;
    written.stray_spans_dropped = keep_stray_spans(tx, project, &batch.loose_spans, now).await?;
    for s in &batch.sessions {
        tx.execute(
            "INSERT INTO release_hours (project_id, release, environment, hour, started, \
             errored, crashed, abnormal, unhandled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (project_id, release, environment, hour) DO UPDATE SET \
             started = release_hours.started + excluded.started, \
             errored = release_hours.errored + excluded.errored, \
             crashed = release_hours.crashed + excluded.crashed, \
             abnormal = release_hours.abnormal + excluded.abnormal, \
             unhandled = release_hours.unhandled + excluded.unhandled",
            &[
                project.0.into(),
                s.release.as_str().into(),
                s.environment.as_str().into(),
                floor(s.at, HOUR_MS).into(),
                s.started.into(),
                s.errored.into(),
                s.crashed.into(),
                s.abnormal.into(),
                s.unhandled.into(),
            ],
        )
        .await?;
        if let Some(user) = s.user {
            tx.execute(
                "INSERT INTO release_users (project_id, release, day, user_hash, crashed) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (project_id, release, day, user_hash) DO UPDATE SET \
                 crashed = release_users.crashed + excluded.crashed",
                &[
                    project.0.into(),
                    s.release.as_str().into(),
                    floor(s.at, DAY_MS).into(),
                    user.into(),
                    s.crashed.into(),
                ],
            )
            .await?;
        }
    }
    for f in &batch.feedback {
        tx.execute(
            "INSERT INTO feedback (project_id, event_id, time, message, name, contact_email, \
             url, associated_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (project_id, event_id) DO NOTHING",
            &[
                project.0.into(),
                f.event_id.as_str().into(),
                f.time.millis().into(),
                f.message.as_str().into(),
                f.name.as_deref().into(),
                f.contact_email.as_deref().into(),
                f.url.as_deref().into(),
                f.associated_event_id.as_deref().into(),
            ],
        )
        .await?;
    }
    for d in &batch.dropped {
        count_dropped(tx, project, d).await?;
    }
    for a in batch.attachments {
        tx.execute(
            "INSERT INTO attachments (project_id, event_id, name, content_type, size, received, \
             data) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                project.0.into(),
                a.event_id.as_str().into(),
                a.name.as_str().into(),
                a.content_type.as_str().into(),
                (a.data.len() as i64).into(),
                a.received.millis().into(),
                Value::Blob(a.data),
            ],
        )
        .await?;
    }
    Ok(written)
}

/// Adds `d` to its hour's dropped count.
async fn count_dropped(tx: &mut dyn Tx, project: ProjectId, d: &Dropped) -> Result<()> {
    tx.execute(
        "INSERT INTO dropped_hours (project_id, hour, reason, category, quantity) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, hour, reason, category) \
         DO UPDATE SET quantity = dropped_hours.quantity + excluded.quantity",
        &[
            project.0.into(),
            floor(d.at, HOUR_MS).into(),
            d.reason.as_str().into(),
            d.category.as_str().into(),
            d.quantity.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Drops events whose id is already stored, or repeated in the batch; counts them.
async fn fresh_events(
    tx: &mut dyn Tx,
    project: ProjectId,
    events: Vec<NewEvent>,
) -> Result<(Vec<NewEvent>, usize)> {
    let total = events.len();
    let mut seen = HashSet::new();
    let events: Vec<NewEvent> = events
        .into_iter()
        .filter(|e| seen.insert(e.event_id.clone()))
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let mut stored = HashSet::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let mut w = Where::new();
        w.push("project_id = ?", project.0);
        w.in_list("event_id", chunk.iter().copied());
        let sql = format!("SELECT event_id FROM events{}", w.sql());
        for row in tx.query(&sql, &w.values).await? {
            stored.insert(row.req_text(0)?);
        }
    }
    let fresh: Vec<NewEvent> = events
        .into_iter()
        .filter(|e| !stored.contains(&e.event_id))
        .collect();
    let duplicates = total - fresh.len();
    Ok((fresh, duplicates))
}

/// The events of one issue in this batch, in arrival order.
struct IssueGroup<'a> {
    events: Vec<&'a NewEvent>,
}

impl IssueGroup<'_> {
    fn latest(&self) -> &NewEvent {
        self.events
            .iter()
            .max_by_key(|e| e.time)
            .expect("a group has events")
    }
    fn earliest(&self) -> &NewEvent {
        self.events
            .iter()
            .min_by_key(|e| e.time)
            .expect("a group has events")
    }
}

/// Upserts the issue of each group (reopening resolved ones, see `vigie_core::issue`), then
/// stores the events and their counts.
const UPSERT_ISSUES: &str = "INSERT INTO issues (project_id, grouping_key, title, culprit, \
    level, status, first_seen, last_seen, event_count, user_count, first_release, last_release)";
/// After the rows of [`UPSERT_ISSUES`]; `$+1` is the time of the write (a regression's).
const UPSERT_ISSUES_TAIL: &str = " ON CONFLICT (project_id, grouping_key) DO UPDATE SET \
    title = excluded.title, culprit = excluded.culprit, level = excluded.level, \
    first_seen = CASE WHEN excluded.first_seen < issues.first_seen \
        THEN excluded.first_seen ELSE issues.first_seen END, \
    last_seen = CASE WHEN excluded.last_seen > issues.last_seen \
        THEN excluded.last_seen ELSE issues.last_seen END, \
    event_count = issues.event_count + excluded.event_count, \
    first_release = coalesce(issues.first_release, excluded.first_release), \
    last_release = coalesce(excluded.last_release, issues.last_release), \
    regressed_at = CASE WHEN issues.status = 'resolved' OR (issues.status = 'resolved_next' \
        AND excluded.last_release IS NOT NULL \
        AND excluded.last_release <> coalesce(issues.resolved_release, '')) \
        THEN $+1 ELSE issues.regressed_at END, \
    status = CASE WHEN issues.status = 'resolved' OR (issues.status = 'resolved_next' \
        AND excluded.last_release IS NOT NULL \
        AND excluded.last_release <> coalesce(issues.resolved_release, '')) \
        OR (issues.status = 'ignored' AND ((issues.ignore_until_count IS NOT NULL \
            AND issues.event_count + excluded.event_count >= issues.ignore_until_count) \
            OR (issues.ignore_until IS NOT NULL AND excluded.last_seen > issues.ignore_until))) \
        THEN 'unresolved' ELSE issues.status END \
    RETURNING grouping_key, id, event_count, regressed_at";

const INSERT_EVENTS: &str = "INSERT INTO events (project_id, issue_id, event_id, time, received, \
    level, title, environment, release, trace_id, job_id, user_label, body)";

async fn write_events(
    tx: &mut dyn Tx,
    project: ProjectId,
    events: Vec<NewEvent>,
    now: Timestamp,
) -> Result<Vec<EventWritten>> {
    let mut groups: BTreeMap<&str, IssueGroup> = BTreeMap::new();
    for e in &events {
        groups
            .entry(e.grouping.key.as_str())
            .or_insert_with(|| IssueGroup { events: Vec::new() })
            .events
            .push(e);
    }
    // Every issue of the batch in one statement (or a few), in key order.
    let rows = groups
        .iter()
        .map(|(key, group)| {
            let (latest, earliest) = (group.latest(), group.earliest());
            vec![
                project.0.into(),
                (*key).into(),
                latest.grouping.title.as_str().into(),
                latest.grouping.culprit.as_str().into(),
                latest.level.as_str().into(),
                "unresolved".into(),
                earliest.time.millis().into(),
                latest.time.millis().into(),
                (group.events.len() as i64).into(),
                0.into(),
                earliest.release.as_deref().into(),
                latest.release.as_deref().into(),
            ]
        })
        .collect();
    let upserted = tx
        .insert_rows_returning(
            UPSERT_ISSUES,
            UPSERT_ISSUES_TAIL,
            rows,
            &[now.millis().into()],
        )
        .await?;
    let mut issues: HashMap<String, (IssueId, i64, Option<i64>)> = HashMap::new();
    for row in &upserted {
        issues.insert(
            row.req_text(0)?,
            (IssueId(row.req_int(1)?), row.req_int(2)?, row.int(3)?),
        );
    }
    let mut written = Vec::with_capacity(events.len());
    let mut details = IssueDetails::default();
    let mut users = Vec::new();
    for (key, group) in &groups {
        let &(issue_id, event_count, regressed_at) = issues
            .get(*key)
            .ok_or_else(|| crate::StoreError::database("the issue upsert skipped an issue"))?;
        let count = group.events.len() as i64;
        let change = if event_count == count {
            IssueChange::New
        } else if regressed_at == Some(now.millis()) {
            IssueChange::Regression
        } else {
            IssueChange::Seen
        };
        if change != IssueChange::Seen {
            let entry = FeedChange::Issue {
                issue: issue_id,
                regression: change == IssueChange::Regression,
            };
            feed::record(tx, project, &entry, now).await?;
        }
        if change == IssueChange::Regression {
            tx.execute(
                "INSERT INTO issue_regressions (issue_id, at, release) VALUES ($1, $2, $3) \
                 ON CONFLICT (issue_id, at) DO NOTHING",
                &[
                    issue_id.into(),
                    now.millis().into(),
                    group.latest().release.as_deref().into(),
                ],
            )
            .await?;
        }
        for (i, e) in group.events.iter().enumerate() {
            written.push(EventWritten {
                event_id: e.event_id.clone(),
                issue_id,
                // Only the first event of a batch opens (or reopens) the issue.
                change: if i == 0 { change } else { IssueChange::Seen },
                environment: e.environment.clone(),
            });
        }
        details.add(issue_id, &group.events);
        let keys: BTreeSet<&str> = group
            .events
            .iter()
            .filter_map(|e| e.user_key.as_deref())
            .collect();
        users.extend(
            keys.into_iter()
                .map(|user| vec![issue_id.into(), user.into()]),
        );
    }
    let events = events
        .iter()
        .zip(order_like(&events, &written))
        .map(|(e, w)| {
            vec![
                project.0.into(),
                w.into(),
                e.event_id.as_str().into(),
                e.time.millis().into(),
                e.received.millis().into(),
                e.level.as_str().into(),
                e.grouping.title.as_str().into(),
                e.environment.as_deref().into(),
                e.release.as_deref().into(),
                e.trace_id.as_deref().into(),
                e.job_id.as_deref().into(),
                e.user_label.as_deref().into(),
                Value::Blob(e.body.stored().to_vec()),
            ]
        })
        .collect();
    // With the issues' ids known, the rest of the batch is four independent writes.
    let answers = tx
        .together(vec![
            Statement::Rows(RowsWrite {
                insert: "INSERT INTO issue_users (issue_id, user_key)",
                tail: " ON CONFLICT (issue_id, user_key) DO NOTHING RETURNING issue_id",
                rows: users,
            }),
            Statement::Rows(RowsWrite {
                insert: "INSERT INTO issue_hours (issue_id, hour, count)",
                tail: " ON CONFLICT (issue_id, hour) DO UPDATE SET \
                       count = issue_hours.count + excluded.count",
                rows: details.hours,
            }),
            Statement::Rows(RowsWrite {
                insert: "INSERT INTO issue_tags (issue_id, key, value, count, last_seen)",
                tail: " ON CONFLICT (issue_id, key, value) DO UPDATE SET \
                       count = issue_tags.count + excluded.count, last_seen = CASE WHEN \
                       excluded.last_seen > issue_tags.last_seen THEN excluded.last_seen \
                       ELSE issue_tags.last_seen END",
                rows: details.tags,
            }),
            Statement::Rows(RowsWrite {
                insert: INSERT_EVENTS,
                tail: " ON CONFLICT (project_id, event_id) DO NOTHING",
                rows: events,
            }),
        ])
        .await?;
    count_new_users(tx, &answers[0]).await?;
    Ok(written)
}

/// The issue id of each event, in the order of `events`.
fn order_like(events: &[NewEvent], written: &[EventWritten]) -> Vec<IssueId> {
    let by_id: HashMap<&str, IssueId> = written
        .iter()
        .map(|w| (w.event_id.as_str(), w.issue_id))
        .collect();
    events.iter().map(|e| by_id[e.event_id.as_str()]).collect()
}

/// Hourly counts and tag values of the batch's issues, gathered issue by issue into rows of
/// multi-row writes (each issue's keys are summed first, so no statement names a row twice).
#[derive(Default)]
struct IssueDetails {
    hours: Vec<Vec<Value>>,
    tags: Vec<Vec<Value>>,
}

impl IssueDetails {
    fn add(&mut self, issue_id: IssueId, events: &[&NewEvent]) {
        let mut hours: BTreeMap<i64, i64> = BTreeMap::new();
        let mut tags: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
        for e in events {
            *hours.entry(floor(e.time, HOUR_MS)).or_default() += 1;
            let built_in = [
                ("environment", e.environment.as_deref()),
                ("release", e.release.as_deref()),
                ("level", Some(e.level.as_str())),
            ];
            let pairs = built_in
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .chain(e.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            for pair in pairs {
                let slot = tags.entry(pair).or_default();
                slot.0 += 1;
                slot.1 = slot.1.max(e.time.millis());
            }
        }
        self.hours.extend(
            hours
                .into_iter()
                .map(|(hour, count)| vec![issue_id.into(), hour.into(), count.into()]),
        );
        self.tags
            .extend(tags.into_iter().map(|((key, value), (count, last_seen))| {
                vec![
                    issue_id.into(),
                    key.into(),
                    value.into(),
                    count.into(),
                    last_seen.into(),
                ]
            }));
    }
}

/// Counts, per issue, the users it had not seen before: `added` are the issue ids of the
/// (issue, user) pairs the batch stored first.
async fn count_new_users(tx: &mut dyn Tx, added: &[Row]) -> Result<()> {
    let mut new_users: BTreeMap<i64, i64> = BTreeMap::new();
    for row in added {
        *new_users.entry(row.req_int(0)?).or_default() += 1;
    }
    for (issue, n) in new_users {
        tx.execute(
            "UPDATE issues SET user_count = user_count + $1 WHERE id = $2",
            &[n.into(), issue.into()],
        )
        .await?;
    }
    Ok(())
}

/// One minute of one transaction name, as aggregated from this batch.
#[derive(Default)]
struct MinuteAggregate<'a> {
    count: i64,
    failures: i64,
    satisfied: i64,
    tolerated: i64,
    sketch: Sketch,
    transactions: Vec<&'a NewTransaction>,
}

/// Merges the batch into the stored minutes, keeps samples, adds span totals, and writes the
/// batch's spans: two round trips on PostgreSQL whatever the batch holds (the minutes'
/// lookup with the span blocks, then everything that needed an answer of the first).
async fn write_transactions(
    tx: &mut dyn Tx,
    project: ProjectId,
    transactions: Vec<NewTransaction>,
    loose_spans: &[LooseSpan],
    mut spans: EncodedSpans,
    now: Timestamp,
) -> Result<()> {
    let mut minutes: BTreeMap<(i64, &str, &str), MinuteAggregate> = BTreeMap::new();
    for t in &transactions {
        let slot = minutes
            .entry((floor(t.time, MINUTE_MS), t.name.as_str(), t.op.as_str()))
            .or_default();
        slot.count += 1;
        slot.failures += i64::from(t.failed());
        match t.apdex() {
            Apdex::Satisfied => slot.satisfied += 1,
            Apdex::Tolerated => slot.tolerated += 1,
            Apdex::Frustrated => {}
        }
        slot.sketch.add(t.duration_ms);
        slot.transactions.push(t);
    }
    let mut first = minute_lookups(tx.lock_rows(), project, minutes.keys());
    let lookups = first.len();
    first.extend(spans.writes(now));
    let mut answers = tx.together(first).await?;
    let blocks = answers.split_off(lookups);
    let mut stored = stored_minutes(answers)?;
    let (mut minute_rows, mut sample_rows) = (Vec::new(), Vec::new());
    for ((minute, name, op), mut agg) in minutes {
        let (before_count, before_failures, before_max) =
            match stored.remove(&(minute, name.to_string(), op.to_string())) {
                Some(row) => {
                    let sketch = sketch_from(&row.req_blob(4)?)?;
                    let before = (row.req_int(0)?, row.req_int(1)?, sketch.max_ms());
                    agg.count += row.req_int(0)?;
                    agg.failures += row.req_int(1)?;
                    agg.satisfied += row.req_int(2)?;
                    agg.tolerated += row.req_int(3)?;
                    agg.sketch.merge(&sketch);
                    before
                }
                None => (0, 0, 0.0),
            };
        for sample in samples(&agg.transactions, before_count, before_failures, before_max) {
            sample_rows.push(vec![
                project.0.into(),
                sample.name.as_str().into(),
                sample.op.as_str().into(),
                sample.event_id.as_str().into(),
                sample.time.millis().into(),
                Some(sample.duration_ms).into(),
                sample.status.as_str().into(),
                sample.trace_id.as_deref().into(),
                sample.job_id.as_deref().into(),
                Value::Blob(compress_body(&sample.body)),
            ]);
        }
        minute_rows.push(vec![
            project.0.into(),
            minute.into(),
            name.into(),
            op.into(),
            agg.count.into(),
            agg.failures.into(),
            agg.satisfied.into(),
            agg.tolerated.into(),
            Value::Blob(agg.sketch.encode()),
        ]);
    }
    let mut timings: Vec<(Timestamp, &str, &SpanTiming)> = Vec::new();
    for t in &transactions {
        timings.extend(t.spans.iter().map(|s| (t.time, t.name.as_str(), s)));
    }
    timings.extend(
        loose_spans
            .iter()
            .map(|l| (l.time, l.transaction.as_str(), &l.span)),
    );
    // Four independent writes.
    tx.together(vec![
        Statement::Rows(RowsWrite {
            insert: INSERT_MINUTES,
            tail: " ON CONFLICT (project_id, minute, name, op) DO UPDATE SET \
                   count = excluded.count, failures = excluded.failures, \
                   satisfied = excluded.satisfied, tolerated = excluded.tolerated, \
                   sketch = excluded.sketch",
            rows: minute_rows,
        }),
        Statement::Rows(RowsWrite {
            insert: "INSERT INTO transaction_samples (project_id, name, op, event_id, time, \
                     duration_ms, status, trace_id, job_id, body)",
            tail: " ON CONFLICT (project_id, event_id) DO NOTHING",
            rows: sample_rows,
        }),
        Statement::Rows(span_hours(project, &timings)),
        spans.links(&blocks)?,
    ])
    .await?;
    Ok(())
}

const INSERT_MINUTES: &str = "INSERT INTO transaction_minutes (project_id, minute, name, op, \
                              count, failures, satisfied, tolerated, sketch)";

/// The statements that read the stored aggregates of `keys` (minute, name, op), locked until
/// the transaction ends where others may write the same minutes at once (`lock`, see
/// [`Tx::lock_rows`]). There, the minutes not stored yet are first stored empty: a concurrent
/// writer's new minute is then waited for and read, not overwritten by an aggregate made
/// without it. The rows are locked in key order, the same in every writer.
fn minute_lookups<'k>(
    lock: &str,
    project: ProjectId,
    keys: impl Iterator<Item = &'k (i64, &'k str, &'k str)>,
) -> Vec<Statement<'static>> {
    let keys: Vec<_> = keys.collect();
    let mut statements = Vec::new();
    if keys.is_empty() {
        return statements;
    }
    if !lock.is_empty() {
        let empty = Sketch::default().encode();
        let rows = keys
            .iter()
            .map(|&&(minute, name, op)| {
                let zeros = [0i64; 4].map(Value::from);
                let key = [project.0.into(), minute.into(), name.into(), op.into()];
                key.into_iter()
                    .chain(zeros)
                    .chain([Value::Blob(empty.clone())])
                    .collect()
            })
            .collect();
        statements.push(Statement::Rows(RowsWrite {
            insert: INSERT_MINUTES,
            tail: " ON CONFLICT (project_id, minute, name, op) DO NOTHING",
            rows,
        }));
    }
    for chunk in keys.chunks(LOOKUP_CHUNK / 3) {
        let mut values: Vec<Value> = vec![project.0.into()];
        let mut wanted = Vec::with_capacity(chunk.len());
        for &&(minute, name, op) in chunk {
            let n = values.len();
            wanted.push(format!(
                "(minute = ${} AND name = ${} AND op = ${})",
                n + 1,
                n + 2,
                n + 3
            ));
            values.extend([minute.into(), name.into(), op.into()]);
        }
        let sql = format!(
            "SELECT minute, name, op, count, failures, satisfied, tolerated, sketch \
             FROM transaction_minutes WHERE project_id = $1 AND ({}) \
             ORDER BY minute, name, op{lock}",
            wanted.join(" OR ")
        );
        statements.push(Statement::Query(sql, values));
    }
    statements
}

/// The stored aggregates [`minute_lookups`] answered, by key: count, failures, satisfied,
/// tolerated, sketch.
fn stored_minutes(answers: Vec<Vec<Row>>) -> Result<HashMap<(i64, String, String), Vec<Value>>> {
    let mut stored = HashMap::new();
    for mut row in answers.into_iter().flatten() {
        let key = (row.req_int(0)?, row.req_text(1)?, row.req_text(2)?);
        stored.insert(key, row.split_off(3));
    }
    Ok(stored)
}

/// Keeps each streamed span that names its segment for that segment's waterfall, up to
/// [`STRAY_SPANS_PER_SEGMENT`] per segment; answers how many were past it (counted as dropped
/// here, [`SEGMENT_FULL`]).
async fn keep_stray_spans(
    tx: &mut dyn Tx,
    project: ProjectId,
    loose_spans: &[LooseSpan],
    now: Timestamp,
) -> Result<usize> {
    let mut by_segment: BTreeMap<(&str, &str), Vec<&LooseSpan>> = BTreeMap::new();
    for stray in loose_spans {
        if let Some(segment) = &stray.segment_id {
            by_segment
                .entry((stray.trace_id.as_str(), segment.as_str()))
                .or_default()
                .push(stray);
        }
    }
    let mut dropped = 0;
    for ((trace, segment), spans) in by_segment {
        let rows = tx
            .query(
                "SELECT COUNT(*) FROM stray_spans WHERE project_id = $1 AND trace_id = $2 \
                 AND segment_id = $3",
                &[project.0.into(), trace.into(), segment.into()],
            )
            .await?;
        let held = rows.first().map(|r| r.req_int(0)).transpose()?.unwrap_or(0);
        let room = STRAY_SPANS_PER_SEGMENT.saturating_sub(usize::try_from(held).unwrap_or(0));
        dropped += spans.len().saturating_sub(room);
        for stray in spans.into_iter().take(room) {
            tx.execute(
                "INSERT INTO stray_spans (project_id, trace_id, segment_id, time, body) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    project.0.into(),
                    trace.into(),
                    segment.into(),
                    stray.time.millis().into(),
                    Value::Blob(compress_body(&stray.body)),
                ],
            )
            .await?;
        }
    }
    if dropped > 0 {
        count_dropped(
            tx,
            project,
            &Dropped::new(now, SEGMENT_FULL, "span", dropped),
        )
        .await?;
    }
    Ok(dropped)
}

/// The transactions of one minute worth keeping whole: the minute's first, the slowest yet,
/// and the first failure — at most three per name and minute in a batch.
fn samples<'a>(
    batch: &[&'a NewTransaction],
    before_count: i64,
    before_failures: i64,
    before_max_ms: f64,
) -> Vec<&'a NewTransaction> {
    let mut keep: Vec<&NewTransaction> = Vec::new();
    let mut push = |t: &'a NewTransaction| {
        if !keep.iter().any(|k| k.event_id == t.event_id) {
            keep.push(t);
        }
    };
    if before_count == 0 {
        if let Some(first) = batch.first() {
            push(first);
        }
    }
    if let Some(slowest) = batch
        .iter()
        .max_by(|a, b| a.duration_ms.total_cmp(&b.duration_ms))
    {
        if slowest.duration_ms > before_max_ms {
            push(slowest);
        }
    }
    if before_failures == 0 {
        if let Some(failure) = batch.iter().find(|t| t.failed()) {
            push(failure);
        }
    }
    keep
}

/// The write that adds `timings` to their hours' span totals.
fn span_hours(
    project: ProjectId,
    timings: &[(Timestamp, &str, &SpanTiming)],
) -> RowsWrite<'static> {
    // (hour, transaction, op, description) -> (count, total ms, max ms)
    type SpanKey<'a> = (i64, &'a str, &'a str, &'a str);
    let mut spans: BTreeMap<SpanKey, (i64, f64, f64)> = BTreeMap::new();
    for &(time, name, s) in timings {
        let slot = spans
            .entry((
                floor(time, HOUR_MS),
                name,
                s.op.as_str(),
                s.description.as_str(),
            ))
            .or_default();
        slot.0 += 1;
        slot.1 += s.duration_ms;
        slot.2 = slot.2.max(s.duration_ms);
    }
    let rows = spans
        .into_iter()
        .map(|((hour, name, op, description), (count, total, max))| {
            vec![
                project.0.into(),
                name.into(),
                hour.into(),
                op.into(),
                description.into(),
                count.into(),
                Some(total).into(),
                Some(max).into(),
            ]
        })
        .collect();
    RowsWrite {
        insert: "INSERT INTO span_hours (project_id, name, hour, op, description, count, \
                 total_ms, max_ms)",
        tail: " ON CONFLICT (project_id, name, hour, op, description) DO UPDATE SET \
               count = span_hours.count + excluded.count, \
               total_ms = span_hours.total_ms + excluded.total_ms, \
               max_ms = CASE WHEN excluded.max_ms > span_hours.max_ms THEN excluded.max_ms \
               ELSE span_hours.max_ms END",
        rows,
    }
}

/// Deletes what is older than `before`: events, aggregates, samples, sessions, check-ins,
/// attachments, and the issues not seen since (with their tags and users). Answers the number
/// of rows deleted.
pub(crate) async fn prune(tx: &mut dyn Tx, before: Timestamp) -> Result<u64> {
    let cutoff = Value::from(before.millis());
    let mut deleted = 0;
    for sql in [
        "DELETE FROM events WHERE time < $1",
        "DELETE FROM issue_hours WHERE hour < $1",
        "DELETE FROM release_users WHERE day < $1",
        "DELETE FROM issue_regressions WHERE at < $1",
        "DELETE FROM transaction_minutes WHERE minute < $1",
        "DELETE FROM transaction_samples WHERE time < $1",
        "DELETE FROM stray_spans WHERE time < $1",
        "DELETE FROM span_hours WHERE hour < $1",
        "DELETE FROM release_hours WHERE hour < $1",
        "DELETE FROM dropped_hours WHERE hour < $1",
        "DELETE FROM monitor_runs WHERE started_at < $1",
        "DELETE FROM attachments WHERE received < $1",
        "DELETE FROM feedback WHERE time < $1",
        "DELETE FROM issue_tags WHERE issue_id IN (SELECT id FROM issues WHERE last_seen < $1)",
        "DELETE FROM issue_users WHERE issue_id IN (SELECT id FROM issues WHERE last_seen < $1)",
        "DELETE FROM issues WHERE last_seen < $1",
    ] {
        deleted += tx.execute(sql, std::slice::from_ref(&cutoff)).await?;
    }
    Ok(deleted)
}
