//! Application metrics, kept as one row per series per minute.
//!
//! ```text
//!   write_metrics(project, points, max_series)          one write transaction
//!     points keyed by series: series_hash(name, service, attributes)
//!     metric_series ⋈ metric_state by (project, key_hash) ─▶ ids, kinds, cumulative state
//!     new series inserted while the project has fewer than max_series; past it, refused
//!     cumulative points ─▶ Cumulative::delta against the stored state ─▶ changes
//!     changes ─▶ Minute per (series, minute) ─▶ merged with the stored minute ─▶ upserted
//!     metric_state (state, last_seen) upserted for the series that got a point
//!
//!   metric_names(project)                ─▶ one line per metric, with its series count
//!   metric_series(project, name)         ─▶ the series, for the caller to filter and group
//!   metric_minutes(series, from, to)     ─▶ their minutes (key ranges), for the caller to merge
//!   prune_metrics(before)                ─▶ minutes before (one key range), series silent since
//! ```
//!
//! A minute row's key is (run of [`RUN`] minutes, series, minute in the run) packed in one
//! integer (`point_id`): time leads, so writes append and retention is one range delete, and
//! a series' minutes of a run are adjacent, so a chart reads a short range per series and run.
//! A series row is written once; what changes at every point is its `metric_state` row.
//!
//! A minute's arithmetic is `vigie_core::metric`'s: this module only reads and writes rows.
//! A retried cumulative export changes nothing (its totals are the stored ones: a change of
//! zero); a retried delta export counts twice, as with any delta protocol.

use crate::engine::{Db, Engine};
use crate::sql::{Columns, Value};
use crate::tx::{take_blob, Row, Tx};
use crate::{Result, StoreError};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use vigie_core::metric::{
    decode_buckets, encode_buckets, series_hash, Cumulative, MetricKind, MetricPoint, Minute,
};
use vigie_core::{ProjectId, Timestamp};

/// Series a project may have unless configured otherwise.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Most values one statement binds (both backends take this many).
const CHUNK: usize = 500;
/// A minute row's key packs (run, series, minute in the run), most significant first: a run
/// is [`RUN`] minutes. Time leads, so a write appends at the end of the table (the current
/// run of every series) and retention drops one range of keys; within a run a series' minutes
/// lie side by side, so a chart reads each series as one short range a run.
const RUN_BITS: u32 = 2;
/// Minutes per run.
pub const RUN: i64 = 1 << RUN_BITS;
const SERIES_BITS: u32 = 37;
const MINUTE_BITS: u32 = 26;
/// The first minute a key cannot hold (in 2097): points are refused well before it.
pub const MINUTE_LIMIT: i64 = 1 << MINUTE_BITS;

/// A minute row's key.
fn point_id(series: i64, minute: i64) -> i64 {
    let minute = minute.clamp(0, MINUTE_LIMIT - 1);
    let series = series & ((1 << SERIES_BITS) - 1);
    ((minute >> RUN_BITS) << (SERIES_BITS + RUN_BITS)) | (series << RUN_BITS) | (minute & (RUN - 1))
}

/// The series and minute of a minute row's key.
fn split_id(id: i64) -> (i64, i64) {
    let run = id >> (SERIES_BITS + RUN_BITS);
    let series = (id >> RUN_BITS) & ((1 << SERIES_BITS) - 1);
    (series, (run << RUN_BITS) | (id & (RUN - 1)))
}

/// The key ranges of `series`' minutes from `from` (included) to `to` (excluded): one a run.
fn key_ranges(series: i64, from: i64, to: i64) -> impl Iterator<Item = (i64, i64)> {
    let (from, to) = (from.clamp(0, MINUTE_LIMIT), to.clamp(0, MINUTE_LIMIT));
    // No run at all when the range is empty.
    let runs = (from >> RUN_BITS)..(if from < to {
        ((to - 1) >> RUN_BITS) + 1
    } else {
        0
    });
    runs.map(move |run| {
        let first = from.max(run << RUN_BITS);
        let last = (to - 1).min(((run + 1) << RUN_BITS) - 1);
        (point_id(series, first), point_id(series, last) + 1)
    })
}

/// What a write kept and refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsWritten {
    pub points: usize,
    pub series_created: usize,
    /// Points refused because their series would pass the project's limit.
    pub over_limit: usize,
    /// Points refused because their metric already has series of another kind.
    pub wrong_kind: usize,
    /// The first refusal, in words for the sender.
    pub refusal: Option<String>,
}

/// One metric of a project, as the metric picker lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricName {
    pub name: String,
    pub kind: MetricKind,
    pub unit: String,
    pub description: String,
    pub series: u64,
    pub last_seen: Timestamp,
}

/// One series of a metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub id: i64,
    pub service: String,
    pub attributes: Vec<(String, String)>,
    pub kind: MetricKind,
    pub unit: String,
}

/// One series over one minute, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesMinute {
    pub series: i64,
    /// Minutes since the epoch.
    pub minute: i64,
    pub data: Minute,
}

#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Stores `points` of `project` (creating at most `max_series` series per project);
    /// acknowledged once committed.
    async fn write_metrics(
        &self,
        project: ProjectId,
        points: Vec<MetricPoint>,
        max_series: usize,
    ) -> Result<MetricsWritten>;
    /// The project's metrics, by name.
    async fn metric_names(&self, project: ProjectId) -> Result<Vec<MetricName>>;
    /// The series of one metric.
    async fn metric_series(&self, project: ProjectId, name: &str) -> Result<Vec<Series>>;
    /// The stored minutes of `series` (of `project`) from `from` (included) to `to`
    /// (excluded), in minutes since the epoch.
    async fn metric_minutes(
        &self,
        project: ProjectId,
        series: Vec<i64>,
        from: i64,
        to: i64,
    ) -> Result<Vec<SeriesMinute>>;
    /// Drops the minutes before `before` and the series silent since; answers the minutes
    /// dropped.
    async fn prune_metrics(&self, before: Timestamp) -> Result<u64>;
}

/// A series as the write finds or makes it.
struct Known {
    id: i64,
    kind: MetricKind,
    /// Its full key, to tell it from another series of the same hash.
    key: SeriesKey,
    cumulative: Option<Cumulative>,
    /// Whether a point of it was kept in this write (its state is written back).
    touched: bool,
}

/// A series' identity: name, service, attributes as JSON.
type SeriesKey = (String, String, String);

fn kind_of(text: &str) -> Result<MetricKind> {
    MetricKind::parse(text)
        .ok_or_else(|| StoreError::database(format!("unknown metric kind {text:?} stored")))
}

/// `$n, $n+1, …`: the placeholders of `items`, pushed after those already in `values`.
fn marks(values: &mut Vec<Value>, items: impl IntoIterator<Item = Value>) -> String {
    items
        .into_iter()
        .map(|v| {
            values.push(v);
            format!("${}", values.len())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stored series of `project` among `hashes`, by hash.
async fn known_series(
    tx: &mut dyn Tx,
    project: ProjectId,
    hashes: &[i64],
) -> Result<HashMap<i64, Known>> {
    let mut known = HashMap::new();
    for chunk in hashes.chunks(CHUNK) {
        let mut values: Vec<Value> = vec![project.0.into()];
        let list = marks(&mut values, chunk.iter().map(|h| Value::from(*h)));
        // Where writers run at once (PostgreSQL), each holds its series until it commits: the
        // series' state and minutes are read and rewritten by one writer at a time, the rows
        // locked in hash order, the same in every writer.
        let lock = match tx.lock_rows() {
            "" => "",
            _ => " FOR UPDATE OF s",
        };
        let rows = tx
            .query(
                &format!(
                    "SELECT s.id, s.key_hash, s.name, s.service, s.attributes, s.kind, st.state \
                     FROM metric_series s LEFT JOIN metric_state st ON st.series_id = s.id \
                     WHERE s.project_id = $1 AND s.key_hash IN ({list}) \
                     ORDER BY s.key_hash{lock}"
                ),
                &values,
            )
            .await?;
        for row in rows {
            let cumulative = row
                .blob(6)?
                .filter(|b| !b.is_empty())
                .and_then(|b| Cumulative::decode(&b));
            known.insert(
                row.req_int(1)?,
                Known {
                    id: row.req_int(0)?,
                    kind: kind_of(&row.req_text(5)?)?,
                    key: (row.req_text(2)?, row.req_text(3)?, row.req_text(4)?),
                    cumulative,
                    touched: false,
                },
            );
        }
    }
    Ok(known)
}

fn minute_row(series: i64, minute: i64, m: &Minute) -> Vec<Value> {
    vec![
        point_id(series, minute).into(),
        (m.count.min(i64::MAX as u64) as i64).into(),
        Value::Real(Some(m.sum)),
        Value::Real(m.min),
        Value::Real(m.max),
        Value::Real(m.last),
        Value::Real(Some(m.increase)),
        Value::Blob(encode_buckets(&m.buckets)),
    ]
}

const MINUTE_COLUMNS: &str = "id, count, sum, min, max, last, increase, buckets";

fn read_minute(row: &mut Row) -> Result<SeriesMinute> {
    let buckets = take_blob(row, 7)?
        .map(|b| {
            decode_buckets(&b)
                .ok_or_else(|| StoreError::database("a metric minute's buckets are damaged"))
        })
        .transpose()?
        .unwrap_or_default();
    let (series, minute) = split_id(row.req_int(0)?);
    Ok(SeriesMinute {
        series,
        minute,
        data: Minute {
            count: row.req_int(1)?.max(0) as u64,
            sum: row.real(2)?.unwrap_or(0.0),
            min: row.real(3)?,
            max: row.real(4)?,
            last: row.real(5)?,
            increase: row.real(6)?.unwrap_or(0.0),
            buckets,
        },
    })
}

/// The stored minutes of `series` from `from` (included) to `to` (excluded): a key range per
/// series and run.
async fn stored_minutes(
    tx: &mut dyn Tx,
    series: &[i64],
    from: i64,
    to: i64,
) -> Result<Vec<SeriesMinute>> {
    let ranges = cluster_ranges(series, from, to);
    let wanted: std::collections::HashSet<i64> = series.iter().copied().collect();
    let mut out = Vec::new();
    for chunk in ranges.chunks(CHUNK) {
        // The ranges as a table joined to the minutes: one key range scan each, planned in
        // time proportional to their number (an `OR` of 500 ranges is not, on PostgreSQL).
        // The casts type the parameters for PostgreSQL; SQLite reads them as integers.
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 2);
        let table = chunk
            .iter()
            .map(|(from, to)| {
                values.push((*from).into());
                values.push((*to).into());
                format!(
                    "(CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
                    values.len() - 1,
                    values.len()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut rows = tx
            .query(
                &format!(
                    "SELECT m.id, m.count, m.sum, m.min, m.max, m.last, m.increase, m.buckets \
                     FROM (VALUES {table}) AS r JOIN metric_points m \
                     ON m.id >= r.column1 AND m.id < r.column2"
                ),
                &values,
            )
            .await?;
        for row in &mut rows {
            // A cluster's ranges hold its other series and the rest of its runs too.
            let (series, minute) = split_id(row.req_int(0)?);
            if wanted.contains(&series) && (from..to).contains(&minute) {
                out.push(read_minute(row)?);
            }
        }
    }
    Ok(out)
}

/// Series ids this close to the previous one asked for are read in one range with it (what
/// lies between is read and left). 1: only consecutive ids, which wastes nothing. Wider
/// clusters read fewer, longer ranges, which PostgreSQL prefers (a range costs it about 0.1
/// ms) and SQLite does not (reading rows it leaves costs it more than a seek): measured in
/// BENCHMARKS.md, "Metrics".
const CLUSTER_GAP: i64 = 1;

/// The key ranges that hold `series`' minutes from `from` to `to`: per run, one range for
/// each cluster of neighbouring series ids, so a chart of thousands of series reads a few
/// ranges rather than one per series and run.
fn cluster_ranges(series: &[i64], from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut ids = series.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut clusters: Vec<(i64, i64)> = Vec::new();
    for id in ids {
        match clusters.last_mut() {
            Some((_, hi)) if id - *hi <= CLUSTER_GAP => *hi = id,
            _ => clusters.push((id, id)),
        }
    }
    let mut ranges = Vec::new();
    for (lo, hi) in clusters {
        let first = key_ranges(lo, from, to);
        let last = key_ranges(hi, from, to);
        ranges.extend(first.zip(last).map(|((start, _), (_, end))| (start, end)));
    }
    ranges
}

/// The stored minutes among `ids` (minute keys), by key.
async fn minutes_by_id(tx: &mut dyn Tx, ids: &[i64]) -> Result<Vec<SeriesMinute>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len());
        let list = marks(&mut values, chunk.iter().map(|id| Value::from(*id)));
        let mut rows = tx
            .query(
                &format!("SELECT {MINUTE_COLUMNS} FROM metric_points WHERE id IN ({list})"),
                &values,
            )
            .await?;
        for row in &mut rows {
            out.push(read_minute(row)?);
        }
    }
    Ok(out)
}

async fn write(
    tx: &mut dyn Tx,
    project: ProjectId,
    mut points: Vec<MetricPoint>,
    max_series: usize,
    now: Timestamp,
) -> Result<MetricsWritten> {
    let mut written = MetricsWritten::default();
    points.sort_by_key(|p| p.time);
    let keyed: Vec<(i64, SeriesKey, MetricPoint)> = points
        .into_iter()
        .map(|p| {
            let key = (p.name.clone(), p.service.clone(), p.attributes_json());
            (series_hash(&key.0, &key.1, &key.2), key, p)
        })
        .collect();
    let mut hashes: Vec<i64> = keyed.iter().map(|(h, _, _)| *h).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let mut known = known_series(tx, project, &hashes).await?;

    // New series, while the project has room.
    // In the order the points came: past the limit, the first series sent are the ones kept.
    let mut new_rows: Vec<(i64, &SeriesKey, &MetricPoint)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (hash, key, point) in &keyed {
        if !known.contains_key(hash) && seen.insert(*hash) {
            new_rows.push((*hash, key, point));
        }
    }
    if !new_rows.is_empty() {
        let stored = tx
            .one(
                "SELECT count(*) FROM metric_series WHERE project_id = $1",
                &[project.0.into()],
            )
            .await?
            .req_int(0)?;
        let room = max_series.saturating_sub(stored.max(0) as usize);
        let rows: Vec<Vec<Value>> = new_rows
            .iter()
            .take(room)
            .map(|(hash, key, p)| {
                vec![
                    project.0.into(),
                    (*hash).into(),
                    key.0.as_str().into(),
                    key.1.as_str().into(),
                    key.2.as_str().into(),
                    p.kind.as_str().into(),
                    p.unit.as_str().into(),
                    p.description.as_str().into(),
                    now.millis().into(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            // Another instance may have made the same series a moment ago: it is read back.
            tx.insert_rows(
                "INSERT INTO metric_series (project_id, key_hash, name, service, attributes, \
                 kind, unit, description, created_at)",
                " ON CONFLICT (project_id, key_hash) DO NOTHING",
                rows,
            )
            .await?;
            let made: Vec<i64> = new_rows.iter().take(room).map(|(h, _, _)| *h).collect();
            let before = known.len();
            known.extend(known_series(tx, project, &made).await?);
            written.series_created = known.len() - before;
        }
    }

    // Changes per (series, minute), cumulative totals read against the stored state.
    let mut minutes: BTreeMap<(i64, i64), Minute> = BTreeMap::new();
    for (hash, key, point) in keyed {
        let Some(series) = known.get_mut(&hash) else {
            written.over_limit += 1;
            written.refusal.get_or_insert_with(|| {
                format!(
                    "the project has {max_series} metric series, its limit: points of new \
                     series (here {:?} of {}) are refused; fewer attribute values per metric, \
                     or a higher metrics.max_series, make room",
                    point.name, point.service
                )
            });
            continue;
        };
        if series.key != key {
            // Two series of one hash (about one chance in 10^12 among 10,000): the later one
            // is refused rather than mixed into the other.
            written.over_limit += 1;
            written.refusal.get_or_insert_with(|| {
                format!(
                    "series {:?} of {} cannot be stored",
                    point.name, point.service
                )
            });
            continue;
        }
        if series.kind != point.kind {
            written.wrong_kind += 1;
            written.refusal.get_or_insert_with(|| {
                format!(
                    "metric {:?} is stored as a {} and this point is a {}: points of a metric \
                     keep one kind",
                    point.name,
                    series.kind.as_str(),
                    point.kind.as_str()
                )
            });
            continue;
        }
        let change = if point.cumulative {
            let change = Cumulative::delta(series.cumulative.as_ref(), &point);
            series.cumulative = Some(Cumulative {
                start: point.start,
                value: point.value,
            });
            change
        } else {
            point.value
        };
        series.touched = true;
        minutes
            .entry((series.id, point.time.div_euclid(60_000_000_000)))
            .or_default()
            .add(point.kind, &change);
        written.points += 1;
    }

    // Merged with what the minutes already hold (most often nothing: a new minute).
    if !minutes.is_empty() {
        let ids: Vec<i64> = minutes.keys().map(|(s, m)| point_id(*s, *m)).collect();
        for stored in minutes_by_id(tx, &ids).await? {
            if let Some(m) = minutes.get_mut(&(stored.series, stored.minute)) {
                let mut merged = stored.data;
                merged.merge(m);
                *m = merged;
            }
        }
        let rows = minutes
            .iter()
            .map(|((series, minute), m)| minute_row(*series, *minute, m))
            .collect();
        tx.insert_rows(
            &format!("INSERT INTO metric_points ({MINUTE_COLUMNS})"),
            " ON CONFLICT (id) DO UPDATE SET count = excluded.count, sum = excluded.sum, \
             min = excluded.min, max = excluded.max, last = excluded.last, \
             increase = excluded.increase, buckets = excluded.buckets",
            rows,
        )
        .await?;
    }

    let states = known
        .values()
        .filter(|s| s.touched)
        .map(|s| {
            let state = s.cumulative.as_ref().map(Cumulative::encode);
            vec![
                s.id.into(),
                Value::Blob(state.unwrap_or_default()),
                now.millis().into(),
            ]
        })
        .collect::<Vec<_>>();
    tx.insert_rows(
        "INSERT INTO metric_state (series_id, state, last_seen)",
        " ON CONFLICT (series_id) DO UPDATE SET state = excluded.state, \
         last_seen = excluded.last_seen",
        states,
    )
    .await?;
    Ok(written)
}

#[async_trait]
impl<E: Engine> MetricStore for Db<E> {
    async fn write_metrics(
        &self,
        project: ProjectId,
        points: Vec<MetricPoint>,
        max_series: usize,
    ) -> Result<MetricsWritten> {
        if points.is_empty() {
            return Ok(MetricsWritten::default());
        }
        let now = Timestamp::now();
        self.write("write_metrics", move |tx| {
            Box::pin(write(tx, project, points, max_series, now))
        })
        .await
    }

    async fn metric_names(&self, project: ProjectId) -> Result<Vec<MetricName>> {
        self.read("metric_names", move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT s.name, min(s.kind), min(s.unit), max(s.description), count(*), \
                         max(st.last_seen) FROM metric_series s \
                         JOIN metric_state st ON st.series_id = s.id WHERE s.project_id = $1 \
                         GROUP BY s.name ORDER BY s.name",
                        &[project.0.into()],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(MetricName {
                            name: row.req_text(0)?,
                            kind: kind_of(&row.req_text(1)?)?,
                            unit: row.req_text(2)?,
                            description: row.req_text(3)?,
                            series: row.req_int(4)?.max(0) as u64,
                            last_seen: Timestamp(row.req_int(5)?),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn metric_series(&self, project: ProjectId, name: &str) -> Result<Vec<Series>> {
        let name = name.to_string();
        self.read("metric_series", move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT id, service, attributes, kind, unit FROM metric_series \
                         WHERE project_id = $1 AND name = $2 ORDER BY id",
                        &[project.0.into(), name.as_str().into()],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        let attributes = serde_json::from_str(&row.req_text(2)?).map_err(|e| {
                            StoreError::database(format!("a series' attributes: {e}"))
                        })?;
                        Ok(Series {
                            id: row.req_int(0)?,
                            service: row.req_text(1)?,
                            attributes,
                            kind: kind_of(&row.req_text(3)?)?,
                            unit: row.req_text(4)?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn metric_minutes(
        &self,
        project: ProjectId,
        series: Vec<i64>,
        from: i64,
        to: i64,
    ) -> Result<Vec<SeriesMinute>> {
        if series.is_empty() {
            return Ok(Vec::new());
        }
        self.read("metric_minutes", move |tx| {
            Box::pin(async move {
                // Only the project's own series: ids from elsewhere read nothing.
                let mut own = Vec::with_capacity(series.len());
                for chunk in series.chunks(CHUNK) {
                    let mut values: Vec<Value> = vec![project.0.into()];
                    let list = marks(&mut values, chunk.iter().map(|id| Value::from(*id)));
                    let rows = tx
                        .query(
                            &format!(
                                "SELECT id FROM metric_series WHERE project_id = $1 \
                                 AND id IN ({list})"
                            ),
                            &values,
                        )
                        .await?;
                    for row in rows {
                        own.push(row.req_int(0)?);
                    }
                }
                stored_minutes(tx, &own, from, to).await
            })
        })
        .await
    }

    async fn prune_metrics(&self, before: Timestamp) -> Result<u64> {
        // The runs wholly before `before`, one range of keys whatever the series; then, in
        // the run `before` falls in, the minutes before it.
        let minute = before
            .millis()
            .div_euclid(60_000)
            .clamp(0, MINUTE_LIMIT - 1);
        let run_start = point_id(0, minute & !(RUN - 1));
        let next_run = point_id(0, (minute | (RUN - 1)) + 1);
        self.write("prune_metrics", move |tx| {
            Box::pin(async move {
                let dropped = tx
                    .execute(
                        "DELETE FROM metric_points WHERE id < $1 \
                         OR (id < $2 AND (id & $3) < $4)",
                        &[
                            run_start.into(),
                            next_run.into(),
                            (RUN - 1).into(),
                            (minute & (RUN - 1)).into(),
                        ],
                    )
                    .await?;
                // Series silent since: their minutes are older, gone with the rest.
                tx.execute(
                    "DELETE FROM metric_series WHERE id IN \
                     (SELECT series_id FROM metric_state WHERE last_seen < $1)",
                    &[before.millis().into()],
                )
                .await?;
                Ok(dropped)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_run_then_series_and_read_back() {
        let minute = 29_400_123;
        for series in [1, 2, 77_000, (1 << SERIES_BITS) - 1] {
            for m in [0, minute, minute + 1, MINUTE_LIMIT - 1] {
                assert_eq!(split_id(point_id(series, m)), (series, m));
            }
        }
        // Time leads: any series' next run comes after every series' current one.
        assert!(point_id(1, minute + RUN) > point_id(9_999, minute));
        // Within a run, a series' minutes are adjacent.
        let run_start = minute & !(RUN - 1);
        assert_eq!(point_id(5, run_start + 1), point_id(5, run_start) + 1);
    }

    #[test]
    fn ranges_cover_exactly_the_minutes_asked() {
        let (from, to) = (1001, 1011);
        let covered: Vec<i64> = key_ranges(3, from, to)
            .flat_map(|(a, b)| a..b)
            .map(|id| {
                let (series, minute) = split_id(id);
                assert_eq!(series, 3);
                minute
            })
            .collect();
        assert_eq!(covered, (from..to).collect::<Vec<_>>());
        assert_eq!(key_ranges(3, 10, 10).count(), 0);
    }

    #[test]
    fn neighbouring_series_are_read_in_one_range_a_run() {
        // Every other id: one cluster if the gap allows it, else a range each, per run.
        let series: Vec<i64> = (0..100).map(|i| 1 + 2 * i).collect();
        let ranges = cluster_ranges(&series, 1000, 1012);
        let clusters = if CLUSTER_GAP >= 2 { 1 } else { 100 };
        assert_eq!(ranges.len(), 3 * clusters);
        // Each range holds every asked series' minutes of its run.
        for s in &series {
            for m in 1000..1012 {
                let id = point_id(*s, m);
                assert!(
                    ranges.iter().any(|(a, b)| (*a..*b).contains(&id)),
                    "{s} {m}"
                );
            }
        }
        // Far apart ids: a range each.
        assert_eq!(cluster_ranges(&[1, 1000, 5000], 1000, 1004).len(), 3);
        // Consecutive ids: one.
        assert_eq!(cluster_ranges(&[7, 8, 9, 10], 1000, 1004).len(), 1);
    }
}
