//! Counts that several instances add up: what each accepted under the Sentry quotas, and
//! what each counted for threshold alert rules. Both live in memory on the instance that
//! counted them; these tables are how the others hear of them.
//!
//! ```text
//!   every instance, every second:
//!     quotas: its own count per scope and minute ─▶ share_counts (upsert, absolute values)
//!             ◀─ the other instances' counts, summed per scope and minute
//!     thresholds (not leading): its windows' buckets ─▶ hand_over_tallies (one row)
//!   the leader, every second: take_tallies ─▶ rows deleted and answered, each exactly once
//! ```
//!
//! A quota row is this instance's whole count for its minute, so writing it again is harmless
//! and a lost write is mended by the next. A tally is a delta: it is taken (deleted) by the
//! one leader that adds it in, so no bucket is counted twice, even by two leaders during a
//! handover.

use crate::sql::Columns;
use crate::tx::Tx;
use crate::Result;
use async_trait::async_trait;
use vigie_core::Timestamp;

/// One instance's (or, when answered, all other instances') count of a scope in a minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteCount {
    /// What is counted, e.g. `events` or `events:project:3` (chosen by the quotas).
    pub scope: String,
    /// Minutes since the epoch.
    pub minute: i64,
    pub count: u64,
}

/// Counts shared between the instances of one database.
#[async_trait]
pub trait SharedStore: Send + Sync {
    /// Records `own` as `instance`'s counts (replacing what it said before for the same scope
    /// and minute), forgets rows older than `since_minute`, and answers the other instances'
    /// counts from `since_minute` on, summed per scope and minute.
    async fn share_counts(
        &self,
        instance: &str,
        own: Vec<MinuteCount>,
        since_minute: i64,
    ) -> Result<Vec<MinuteCount>>;
    /// Leaves counts (opaque to the store) for the leader to take.
    async fn hand_over_tallies(&self, instance: &str, body: String, at: Timestamp) -> Result<()>;
    /// Takes every tally left so far: each is answered once, to one caller, and is gone.
    async fn take_tallies(&self) -> Result<Vec<String>>;
}

pub(crate) async fn share_counts(
    tx: &mut dyn Tx,
    instance: &str,
    own: &[MinuteCount],
    since_minute: i64,
) -> Result<Vec<MinuteCount>> {
    for count in own {
        tx.execute(
            "INSERT INTO quota_counts (scope, minute, instance, count) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope, minute, instance) DO UPDATE SET count = excluded.count",
            &[
                count.scope.as_str().into(),
                count.minute.into(),
                instance.into(),
                (count.count.min(i64::MAX as u64) as i64).into(),
            ],
        )
        .await?;
    }
    tx.execute(
        "DELETE FROM quota_counts WHERE minute < $1",
        &[since_minute.into()],
    )
    .await?;
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back to read it as an integer.
    let rows = tx
        .query(
            "SELECT scope, minute, CAST(SUM(count) AS BIGINT) FROM quota_counts \
             WHERE minute >= $1 AND instance <> $2 GROUP BY scope, minute",
            &[since_minute.into(), instance.into()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(MinuteCount {
                scope: row.req_text(0)?,
                minute: row.req_int(1)?,
                count: row.req_int(2)?.max(0) as u64,
            })
        })
        .collect()
}

#[async_trait]
impl<E: crate::engine::Engine> SharedStore for crate::engine::Db<E> {
    async fn share_counts(
        &self,
        instance: &str,
        own: Vec<MinuteCount>,
        since_minute: i64,
    ) -> Result<Vec<MinuteCount>> {
        let instance = instance.to_string();
        self.write("share_counts", move |tx| {
            Box::pin(async move { share_counts(tx, &instance, &own, since_minute).await })
        })
        .await
    }

    async fn hand_over_tallies(&self, instance: &str, body: String, at: Timestamp) -> Result<()> {
        let instance = instance.to_string();
        self.write("hand_over_tallies", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO threshold_tallies (instance, body, at) VALUES ($1, $2, $3)",
                    &[
                        instance.as_str().into(),
                        body.as_str().into(),
                        at.millis().into(),
                    ],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn take_tallies(&self) -> Result<Vec<String>> {
        self.write("take_tallies", move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query("DELETE FROM threshold_tallies RETURNING id, body", &[])
                    .await?;
                let mut taken = rows
                    .iter()
                    .map(|row| Ok((row.req_int(0)?, row.req_text(1)?)))
                    .collect::<Result<Vec<_>>>()?;
                // In the order they were left, so windows fill as they would have here.
                taken.sort_by_key(|(id, _)| *id);
                Ok(taken.into_iter().map(|(_, body)| body).collect())
            })
        })
        .await
    }
}
