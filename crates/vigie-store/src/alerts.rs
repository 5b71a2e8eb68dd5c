//! Alert channels, rules, the memory of what was sent, and deliveries with their retries,
//! written once for both backends (see [`crate::tx::Tx`]).
//!
//! ```text
//! a happening matches a rule -> Store::fire(rule, key): sent within the cooldown? no -> send
//!                            -> Store::enqueue: one pending delivery per channel of the rule
//! the notifier               -> Store::due_deliveries -> sends -> Store::delivered (sent, or
//!                               failed with the next attempt; the channel marked failing)
//! ```

use crate::sql::{Columns, Value};
use crate::tx::Tx;
use crate::{Result, StoreError};
use serde::Serialize;
use vigie_core::alert::{Notification, RuleKind, Target};
use vigie_core::{ProjectId, Timestamp};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Channel {
    pub id: i64,
    pub project: ProjectId,
    pub name: String,
    #[serde(skip)]
    pub target: Target,
    pub created_at: Timestamp,
    /// Set while its deliveries fail.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Written from the configuration file (changed there, not in the UI).
    pub from_config: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    pub id: i64,
    pub project: ProjectId,
    pub name: String,
    pub kind: RuleKind,
    /// Only happenings in this environment (when they have one).
    pub environment: Option<String>,
    pub channels: Vec<i64>,
    pub cooldown_s: i64,
    /// While a threshold's condition lasts, remind this often (0: never).
    pub renotify_s: i64,
    pub muted_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub from_config: bool,
}

impl Rule {
    pub fn muted_at(&self, now: Timestamp) -> bool {
        self.muted_until.is_some_and(|until| until > now)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewRule {
    pub name: String,
    pub kind: RuleKind,
    pub environment: Option<String>,
    pub channels: Vec<i64>,
    pub cooldown_s: i64,
    pub renotify_s: i64,
    pub from_config: bool,
}

/// What [`fire`] is asked to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firing {
    /// A problem starts (or happens again): sent unless the same thing was sent within the
    /// cooldown.
    Opened { cooldown_s: i64 },
    /// The problem still holds: sent if it is open and was last sent `renotify_s` ago.
    Reminder { renotify_s: i64 },
    /// The problem cleared: sent only if it was open.
    Resolved,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewDelivery {
    pub project: ProjectId,
    pub channel: i64,
    pub rule: Option<String>,
    pub message: Notification,
    pub at: Timestamp,
}

/// What the alert engine decided about one thing under one rule: [`AlertStore::alert`] asks
/// [`fire`] and, if the rule sends, queues the message on each of the rule's channels, all in
/// one transaction.
#[derive(Clone, Debug)]
pub struct Alerting {
    pub rule: Rule,
    /// The thing (`issue:42`, `job:nightly-7`, `monitor:sync`), for the cooldown.
    pub key: String,
    pub firing: Firing,
    pub message: Notification,
    pub at: Timestamp,
    /// Names the feed entry this comes from: the same entry acted on twice queues nothing
    /// more (`alert_deliveries.once_key`).
    pub once: Option<String>,
}

/// A feed reader's move, made in the transaction that acts on the entries it passes.
#[derive(Clone, Debug)]
pub struct FeedMove {
    pub reader: String,
    pub from: i64,
    pub to: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub project: ProjectId,
    pub channel: i64,
    pub rule: Option<String>,
    pub title: String,
    #[serde(skip)]
    pub message: Notification,
    /// pending, sent or failed.
    pub status: String,
    pub attempts: i64,
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        message: message.into(),
    }
}

fn name_ok(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(invalid("name", "give a name of 1 to 80 characters"));
    }
    Ok(name.to_string())
}

fn unique(err: StoreError, what: &str, name: &str) -> StoreError {
    err.or_conflict(|| format!("a {what} named \"{name}\" exists already"))
}

const CHANNEL_COLS: &str =
    "id, project_id, name, target, created_at, failing_since, last_error, from_config";
const RULE_COLS: &str = "id, project_id, name, rule, environment, channels, cooldown_s, \
     muted_until, created_at, renotify_s, from_config";
const DELIVERY_COLS: &str = "id, project_id, channel_id, rule, title, message, status, attempts, \
     next_attempt, last_error, created_at, sent_at";

fn json_column<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::database(format!("unreadable {what}: {e}")))
}

fn channel_from(row: &Vec<Value>) -> Result<Channel> {
    Ok(Channel {
        id: row.req_int(0)?,
        project: ProjectId(row.req_int(1)?),
        name: row.req_text(2)?,
        target: json_column(&row.req_text(3)?, "channel target")?,
        created_at: Timestamp(row.req_int(4)?),
        failing_since: row.int(5)?.map(Timestamp),
        last_error: row.text(6)?,
        from_config: row.req_int(7)? != 0,
    })
}

fn rule_from(row: &Vec<Value>) -> Result<Rule> {
    Ok(Rule {
        id: row.req_int(0)?,
        project: ProjectId(row.req_int(1)?),
        name: row.req_text(2)?,
        kind: json_column(&row.req_text(3)?, "alert rule")?,
        environment: row.text(4)?,
        channels: row
            .req_text(5)?
            .split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect(),
        cooldown_s: row.req_int(6)?,
        muted_until: row.int(7)?.map(Timestamp),
        created_at: Timestamp(row.req_int(8)?),
        renotify_s: row.req_int(9)?,
        from_config: row.req_int(10)? != 0,
    })
}

fn delivery_from(row: &Vec<Value>) -> Result<Delivery> {
    Ok(Delivery {
        id: row.req_int(0)?,
        project: ProjectId(row.req_int(1)?),
        channel: row.req_int(2)?,
        rule: row.text(3)?,
        title: row.req_text(4)?,
        message: json_column(&row.req_text(5)?, "alert message")?,
        status: row.req_text(6)?,
        attempts: row.req_int(7)?,
        next_attempt: Timestamp(row.req_int(8)?),
        last_error: row.text(9)?,
        created_at: Timestamp(row.req_int(10)?),
        sent_at: row.int(11)?.map(Timestamp),
    })
}

/// Saves a new channel; with `from_config`, replaces the target of a channel of that name
/// instead of refusing the name.
pub(crate) async fn create_channel(
    tx: &mut dyn Tx,
    project: ProjectId,
    name: &str,
    target: &Target,
    from_config: bool,
    now: Timestamp,
) -> Result<Channel> {
    let name = name_ok(name)?;
    target
        .validate()
        .map_err(|e| invalid("target", e.to_string()))?;
    let target_json = serde_json::to_string(target).expect("a target serializes");
    let replace = if from_config {
        "ON CONFLICT (project_id, name) DO UPDATE SET target = excluded.target, from_config = 1"
    } else {
        ""
    };
    let rows = tx
        .query(
            &format!(
                "INSERT INTO alert_channels (project_id, name, target, created_at, from_config) \
                 VALUES ($1, $2, $3, $4, $5) {replace} RETURNING {CHANNEL_COLS}"
            ),
            &[
                project.0.into(),
                name.as_str().into(),
                target_json.as_str().into(),
                now.millis().into(),
                i64::from(from_config).into(),
            ],
        )
        .await
        .map_err(|e| unique(e, "channel", &name))?;
    channel_from(rows.first().ok_or(StoreError::NotFound("channel"))?)
}

pub(crate) async fn list_channels(tx: &mut dyn Tx, project: ProjectId) -> Result<Vec<Channel>> {
    tx.all(
        &format!("SELECT {CHANNEL_COLS} FROM alert_channels WHERE project_id = $1 ORDER BY name"),
        &[project.0.into()],
        channel_from,
    )
    .await
}

pub(crate) async fn channel(tx: &mut dyn Tx, id: i64) -> Result<Option<Channel>> {
    tx.first_as(
        &format!("SELECT {CHANNEL_COLS} FROM alert_channels WHERE id = $1"),
        &[id.into()],
        channel_from,
    )
    .await
}

pub(crate) async fn delete_channel(tx: &mut dyn Tx, project: ProjectId, id: i64) -> Result<()> {
    let gone = tx
        .execute(
            "DELETE FROM alert_channels WHERE project_id = $1 AND id = $2",
            &[project.0.into(), id.into()],
        )
        .await?;
    crate::sql::found(gone, "channel")?;
    Ok(())
}

/// Saves a new rule (checked: its kind, channels, cooldown); a rule `from_config` replaces
/// the rule of that name, keeping its mute.
/// A rule's kind (as JSON), environment (trimmed, none if blank) and channels (`1,3`), as
/// they are stored.
fn stored_columns(rule: &NewRule) -> (String, Option<&str>, String) {
    let kind = serde_json::to_string(&rule.kind).expect("a rule serializes");
    let environment = rule
        .environment
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let channels: Vec<String> = rule.channels.iter().map(i64::to_string).collect();
    (kind, environment, channels.join(","))
}

/// A rule's name, once the rule is found sound: a known kind with sane figures, at least one
/// channel, each of this project.
async fn checked(tx: &mut dyn Tx, project: ProjectId, rule: &NewRule) -> Result<String> {
    let name = name_ok(&rule.name)?;
    rule.kind.validate().map_err(|e| invalid("rule", e))?;
    if rule.channels.is_empty() {
        return Err(invalid("channels", "choose at least one channel"));
    }
    if !(0..=7 * 86_400).contains(&rule.cooldown_s) {
        return Err(invalid("cooldown_s", "a cooldown is 0 s to 7 days"));
    }
    if rule.renotify_s != 0 && !(60..=7 * 86_400).contains(&rule.renotify_s) {
        return Err(invalid(
            "renotify_s",
            "a re-notify interval is 1 minute to 7 days (0: never)",
        ));
    }
    for id in &rule.channels {
        let known = tx
            .query(
                "SELECT id FROM alert_channels WHERE project_id = $1 AND id = $2",
                &[project.0.into(), (*id).into()],
            )
            .await?;
        if known.is_empty() {
            return Err(invalid(
                "channels",
                format!("no channel {id} in this project"),
            ));
        }
    }
    Ok(name)
}

/// Changes a rule wholly (name, kind, environment, channels, cooldown, re-notify); its mute
/// and what it already sent stay.
pub(crate) async fn update_rule(
    tx: &mut dyn Tx,
    project: ProjectId,
    id: i64,
    rule: &NewRule,
) -> Result<Rule> {
    let name = checked(tx, project, rule).await?;
    let (kind, environment, channels) = stored_columns(rule);
    let rows = tx
        .query(
            &format!(
                "UPDATE alert_rules SET name = $1, rule = $2, environment = $3, channels = $4, \
                 cooldown_s = $5, renotify_s = $6 WHERE project_id = $7 AND id = $8 \
                 RETURNING {RULE_COLS}"
            ),
            &[
                name.as_str().into(),
                kind.as_str().into(),
                environment.into(),
                channels.as_str().into(),
                rule.cooldown_s.into(),
                rule.renotify_s.into(),
                project.0.into(),
                id.into(),
            ],
        )
        .await
        .map_err(|e| unique(e, "rule", &name))?;
    let rule = rule_from(rows.first().ok_or(StoreError::NotFound("rule"))?)?;
    rules_changed(tx, project, Timestamp::now()).await?;
    Ok(rule)
}

pub(crate) async fn create_rule(
    tx: &mut dyn Tx,
    project: ProjectId,
    rule: &NewRule,
    now: Timestamp,
) -> Result<Rule> {
    let name = checked(tx, project, rule).await?;
    let (kind, environment, channels) = stored_columns(rule);
    let replace = if rule.from_config {
        "ON CONFLICT (project_id, name) DO UPDATE SET rule = excluded.rule, \
         environment = excluded.environment, channels = excluded.channels, \
         cooldown_s = excluded.cooldown_s, renotify_s = excluded.renotify_s, from_config = 1"
    } else {
        ""
    };
    let rows = tx
        .query(
            &format!(
                "INSERT INTO alert_rules (project_id, name, rule, environment, channels, \
                 cooldown_s, created_at, renotify_s, from_config) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) {replace} RETURNING {RULE_COLS}"
            ),
            &[
                project.0.into(),
                name.as_str().into(),
                kind.as_str().into(),
                environment.into(),
                channels.as_str().into(),
                rule.cooldown_s.into(),
                now.millis().into(),
                rule.renotify_s.into(),
                i64::from(rule.from_config).into(),
            ],
        )
        .await
        .map_err(|e| unique(e, "rule", &name))?;
    let rule = rule_from(rows.first().ok_or(StoreError::NotFound("rule"))?)?;
    rules_changed(tx, project, now).await?;
    Ok(rule)
}

/// Puts a change of `project`'s rules on the change feed, in the transaction that made it:
/// every instance reads its rules again (threshold rules count on every instance).
async fn rules_changed(tx: &mut dyn Tx, project: ProjectId, at: Timestamp) -> Result<()> {
    crate::feed::record(tx, project, &crate::feed::FeedChange::Rules, at).await
}

pub(crate) async fn list_rules(tx: &mut dyn Tx, project: ProjectId) -> Result<Vec<Rule>> {
    tx.all(
        &format!("SELECT {RULE_COLS} FROM alert_rules WHERE project_id = $1 ORDER BY name"),
        &[project.0.into()],
        rule_from,
    )
    .await
}

pub(crate) async fn delete_rule(tx: &mut dyn Tx, project: ProjectId, id: i64) -> Result<()> {
    let gone = tx
        .execute(
            "DELETE FROM alert_rules WHERE project_id = $1 AND id = $2",
            &[project.0.into(), id.into()],
        )
        .await?;
    crate::sql::found(gone, "rule")?;
    rules_changed(tx, project, Timestamp::now()).await?;
    Ok(())
}

pub(crate) async fn mute_rule(
    tx: &mut dyn Tx,
    project: ProjectId,
    id: i64,
    until: Option<Timestamp>,
) -> Result<Rule> {
    let rows = tx
        .query(
            &format!(
                "UPDATE alert_rules SET muted_until = $1 WHERE project_id = $2 AND id = $3 \
                 RETURNING {RULE_COLS}"
            ),
            &[until.into(), project.0.into(), id.into()],
        )
        .await?;
    let rule = rule_from(rows.first().ok_or(StoreError::NotFound("rule"))?)?;
    rules_changed(tx, project, Timestamp::now()).await?;
    Ok(rule)
}

/// Whether rule `rule` should send about `key` at `at` (see [`Firing`]). Decided and recorded
/// in one transaction, so two instances never both send.
/// Whether `rule` sends about `key` now, and if so how many times the thing happened again
/// while the rule held back since its last message (`Some(0)`: none): the cooldown and the
/// re-notify interval hold repeats back, and each one held back is counted, so the next
/// message — or the "resolved" one — can say "and 12 more times".
pub(crate) async fn fire(
    tx: &mut dyn Tx,
    rule: i64,
    key: &str,
    at: Timestamp,
    firing: Firing,
) -> Result<Option<i64>> {
    let rows = tx
        .query(
            &format!(
                "SELECT last_sent, open, repeats FROM alert_fired WHERE rule_id = $1 AND key = $2 {}",
                tx.lock_rows()
            ),
            &[rule.into(), key.into()],
        )
        .await?;
    let previous = rows
        .first()
        .map(|r| Ok::<_, StoreError>((r.req_int(0)?, r.req_int(1)? != 0, r.req_int(2)?)))
        .transpose()?;
    let since_last = |s: i64| previous.is_some_and(|(last, _, _)| at.millis() - last < s * 1000);
    let repeats = previous.map_or(0, |(_, _, n)| n);
    match firing {
        Firing::Resolved => {
            if !previous.is_some_and(|(_, open, _)| open) {
                return Ok(None);
            }
            tx.execute(
                "UPDATE alert_fired SET open = 0, repeats = 0 WHERE rule_id = $1 AND key = $2",
                &[rule.into(), key.into()],
            )
            .await?;
            return Ok(Some(repeats));
        }
        Firing::Reminder { renotify_s } => {
            if renotify_s <= 0
                || !previous.is_some_and(|(_, open, _)| open)
                || since_last(renotify_s)
            {
                return Ok(None);
            }
        }
        Firing::Opened { cooldown_s } => {
            if since_last(cooldown_s) {
                tx.execute(
                    "UPDATE alert_fired SET repeats = repeats + 1 WHERE rule_id = $1 AND key = $2",
                    &[rule.into(), key.into()],
                )
                .await?;
                return Ok(None);
            }
        }
    }
    tx.execute(
        "INSERT INTO alert_fired (rule_id, key, last_sent, open, repeats) VALUES ($1, $2, $3, 1, 0) \
         ON CONFLICT (rule_id, key) DO UPDATE SET last_sent = excluded.last_sent, open = 1, \
         repeats = 0",
        &[rule.into(), key.into(), at.millis().into()],
    )
    .await?;
    Ok(Some(repeats))
}

pub(crate) async fn enqueue(tx: &mut dyn Tx, deliveries: &[NewDelivery]) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let rows = tx
            .query(
                "INSERT INTO alert_deliveries (project_id, channel_id, rule, title, message, \
                 status, attempts, next_attempt, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) RETURNING id",
                &[
                    d.project.0.into(),
                    d.channel.into(),
                    d.rule.as_deref().into(),
                    d.message.title.as_str().into(),
                    serde_json::to_string(&d.message)
                        .expect("a message serializes")
                        .as_str()
                        .into(),
                    d.at.millis().into(),
                ],
            )
            .await?;
        ids.push(
            rows.first()
                .ok_or(StoreError::NotFound("delivery"))?
                .req_int(0)?,
        );
    }
    Ok(ids)
}

/// Fires each alerting and queues what sends (see [`Alerting`]); moves the feed reader in the
/// same transaction. Answers the deliveries queued.
pub(crate) async fn alert(
    tx: &mut dyn Tx,
    alerts: &[Alerting],
    feed_move: Option<&FeedMove>,
) -> Result<usize> {
    // First: the cursor row's lock makes a second engine reading the same entries wait, then
    // find the cursor moved and do nothing.
    if let Some(m) = feed_move {
        crate::feed::advance(tx, &m.reader, m.from, m.to).await?;
    }
    let mut queued = 0;
    for a in alerts {
        let Some(repeats) = fire(tx, a.rule.id, &a.key, a.at, a.firing).await? else {
            continue;
        };
        let message = a.message.with_repeats(repeats);
        let body = serde_json::to_string(&message).expect("a message serializes");
        for channel in &a.rule.channels {
            queued += tx
                .execute(
                    "INSERT INTO alert_deliveries (project_id, channel_id, rule, title, message, \
                     status, attempts, next_attempt, created_at, once_key) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $7) \
                     ON CONFLICT (channel_id, once_key) DO NOTHING",
                    &[
                        a.rule.project.0.into(),
                        (*channel).into(),
                        a.rule.name.as_str().into(),
                        message.title.as_str().into(),
                        body.as_str().into(),
                        a.at.millis().into(),
                        a.once.as_deref().into(),
                    ],
                )
                .await? as usize;
        }
    }
    Ok(queued)
}

/// Pending deliveries whose time has come, oldest first, claimed until `lease_until`: other
/// notifiers pass them over until then, and a notifier that dies mid-send leaves them to be
/// sent again after it. The send's outcome ([`delivered`]) replaces the claim.
pub(crate) async fn claim_deliveries(
    tx: &mut dyn Tx,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let sql = format!(
        "UPDATE alert_deliveries SET next_attempt = $1 WHERE id IN (SELECT id FROM \
         alert_deliveries WHERE status = 'pending' AND next_attempt <= $2 \
         ORDER BY next_attempt, id LIMIT {}{}) RETURNING {DELIVERY_COLS}",
        limit.clamp(1, 1000),
        tx.skip_locked()
    );
    let mut claimed = tx
        .all(
            &sql,
            &[lease_until.millis().into(), now.millis().into()],
            delivery_from,
        )
        .await?;
    claimed.sort_by_key(|d| d.id);
    Ok(claimed)
}

/// Records an attempt: sent; or failed with the error and the time of the next attempt
/// (`None`: given up).
pub(crate) async fn delivered(
    tx: &mut dyn Tx,
    id: i64,
    outcome: std::result::Result<(), String>,
    retry_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<()> {
    let (status, error) = match (&outcome, retry_at) {
        (Ok(()), _) => ("sent", None),
        (Err(e), Some(_)) => ("pending", Some(e.as_str())),
        (Err(e), None) => ("failed", Some(e.as_str())),
    };
    tx.execute(
        "UPDATE alert_deliveries SET status = $1, attempts = attempts + 1, last_error = $2, \
         next_attempt = COALESCE($3, next_attempt), sent_at = $4 WHERE id = $5",
        &[
            status.into(),
            error.into(),
            retry_at.into(),
            outcome.is_ok().then_some(now).into(),
            id.into(),
        ],
    )
    .await?;
    // The channel's health follows its last attempt.
    match outcome {
        Ok(()) => {
            tx.execute(
                "UPDATE alert_channels SET failing_since = NULL, last_error = NULL \
                 WHERE id = (SELECT channel_id FROM alert_deliveries WHERE id = $1)",
                &[id.into()],
            )
            .await?;
        }
        Err(e) => {
            tx.execute(
                "UPDATE alert_channels SET failing_since = COALESCE(failing_since, $1), \
                 last_error = $2 WHERE id = (SELECT channel_id FROM alert_deliveries WHERE id = $3)",
                &[now.millis().into(), e.as_str().into(), id.into()],
            )
            .await?;
        }
    }
    Ok(())
}

pub(crate) async fn list_deliveries(
    tx: &mut dyn Tx,
    project: ProjectId,
    limit: u32,
) -> Result<Vec<Delivery>> {
    tx.all(
        &format!(
            "SELECT {DELIVERY_COLS} FROM alert_deliveries WHERE project_id = $1 \
             ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ),
        &[project.0.into()],
        delivery_from,
    )
    .await
}

/// Alert channels, rules, firings and deliveries.
#[async_trait::async_trait]
pub trait AlertStore: Send + Sync {
    /// Saves a channel; its target is validated (`Invalid` says what is wrong). A channel
    /// `from_config` replaces the one of that name.
    async fn create_channel(
        &self,
        project: ProjectId,
        name: &str,
        target: &Target,
        from_config: bool,
        now: Timestamp,
    ) -> Result<Channel>;
    async fn list_channels(&self, project: ProjectId) -> Result<Vec<Channel>>;
    async fn channel(&self, id: i64) -> Result<Option<Channel>>;
    async fn delete_channel(&self, project: ProjectId, id: i64) -> Result<()>;
    async fn create_rule(&self, project: ProjectId, rule: &NewRule, now: Timestamp)
        -> Result<Rule>;
    async fn list_rules(&self, project: ProjectId) -> Result<Vec<Rule>>;
    async fn delete_rule(&self, project: ProjectId, id: i64) -> Result<()>;
    /// Changes a rule wholly; its mute and what it already sent stay.
    async fn update_rule(&self, project: ProjectId, id: i64, rule: &NewRule) -> Result<Rule>;
    async fn mute_rule(
        &self,
        project: ProjectId,
        id: i64,
        until: Option<Timestamp>,
    ) -> Result<Rule>;
    /// Whether a rule sends about `key` now (cooldown, reminder, resolution), recorded
    /// atomically.
    async fn fire(
        &self,
        rule: i64,
        key: &str,
        at: Timestamp,
        firing: Firing,
    ) -> Result<Option<i64>>;
    /// Queues deliveries; answers their ids.
    async fn enqueue(&self, deliveries: Vec<NewDelivery>) -> Result<Vec<i64>>;
    /// Fires each alerting and queues what sends, moving the feed reader with it, in one
    /// transaction; answers the deliveries queued. `Conflict` when the reader was moved by
    /// someone else meanwhile (nothing is done then).
    async fn alert(&self, alerts: Vec<Alerting>, feed_move: Option<FeedMove>) -> Result<usize>;
    /// Claims pending deliveries due at `now` until `lease_until`, oldest first.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Records a delivery attempt: sent, retried at `retry_at`, or given up.
    async fn delivered(
        &self,
        id: i64,
        outcome: std::result::Result<(), String>,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()>;
    async fn list_deliveries(&self, project: ProjectId, limit: u32) -> Result<Vec<Delivery>>;
}

#[async_trait::async_trait]
impl<E: crate::engine::Engine> AlertStore for crate::engine::Db<E> {
    async fn create_channel(
        &self,
        project: ProjectId,
        name: &str,
        target: &Target,
        from_config: bool,
        now: Timestamp,
    ) -> Result<Channel> {
        let name = name.to_string();
        let target = target.clone();
        self.write("create_channel", move |tx| {
            Box::pin(
                async move { create_channel(tx, project, &name, &target, from_config, now).await },
            )
        })
        .await
    }

    async fn list_channels(&self, project: ProjectId) -> Result<Vec<Channel>> {
        self.read("list_channels", move |tx| {
            Box::pin(list_channels(tx, project))
        })
        .await
    }

    async fn channel(&self, id: i64) -> Result<Option<Channel>> {
        self.read("channel", move |tx| Box::pin(channel(tx, id)))
            .await
    }

    async fn delete_channel(&self, project: ProjectId, id: i64) -> Result<()> {
        self.write("delete_channel", move |tx| {
            Box::pin(delete_channel(tx, project, id))
        })
        .await
    }

    async fn create_rule(
        &self,
        project: ProjectId,
        rule: &NewRule,
        now: Timestamp,
    ) -> Result<Rule> {
        let rule = rule.clone();
        self.write("create_rule", move |tx| {
            Box::pin(async move { create_rule(tx, project, &rule, now).await })
        })
        .await
    }

    async fn list_rules(&self, project: ProjectId) -> Result<Vec<Rule>> {
        self.read("list_rules", move |tx| Box::pin(list_rules(tx, project)))
            .await
    }

    async fn delete_rule(&self, project: ProjectId, id: i64) -> Result<()> {
        self.write("delete_rule", move |tx| {
            Box::pin(delete_rule(tx, project, id))
        })
        .await
    }

    async fn update_rule(&self, project: ProjectId, id: i64, rule: &NewRule) -> Result<Rule> {
        let rule = rule.clone();
        self.write("update_rule", move |tx| {
            Box::pin(async move { update_rule(tx, project, id, &rule).await })
        })
        .await
    }

    async fn mute_rule(
        &self,
        project: ProjectId,
        id: i64,
        until: Option<Timestamp>,
    ) -> Result<Rule> {
        self.write("mute_rule", move |tx| {
            Box::pin(mute_rule(tx, project, id, until))
        })
        .await
    }

    async fn fire(
        &self,
        rule: i64,
        key: &str,
        at: Timestamp,
        firing: Firing,
    ) -> Result<Option<i64>> {
        let key = key.to_string();
        self.write("fire", move |tx| {
            Box::pin(async move { fire(tx, rule, &key, at, firing).await })
        })
        .await
    }

    async fn enqueue(&self, deliveries: Vec<NewDelivery>) -> Result<Vec<i64>> {
        self.write("enqueue", move |tx| {
            Box::pin(async move { enqueue(tx, &deliveries).await })
        })
        .await
    }

    async fn alert(&self, alerts: Vec<Alerting>, feed_move: Option<FeedMove>) -> Result<usize> {
        self.write("alert", move |tx| {
            Box::pin(async move { alert(tx, &alerts, feed_move.as_ref()).await })
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        self.write("claim_deliveries", move |tx| {
            Box::pin(claim_deliveries(tx, now, lease_until, limit))
        })
        .await
    }

    async fn delivered(
        &self,
        id: i64,
        outcome: std::result::Result<(), String>,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        self.write("delivered", move |tx| {
            Box::pin(delivered(tx, id, outcome, retry_at, now))
        })
        .await
    }

    async fn list_deliveries(&self, project: ProjectId, limit: u32) -> Result<Vec<Delivery>> {
        self.read("list_deliveries", move |tx| {
            Box::pin(list_deliveries(tx, project, limit))
        })
        .await
    }
}
