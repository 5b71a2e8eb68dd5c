//! Envelope items other than events: release-health sessions, client reports, cron
//! check-ins and logs. Each reader takes the item's JSON payload and answers what Vigie
//! stores, or why the item is unusable.

use super::event::seconds;
use crate::logs::{record_from_object, value_text};
use serde_json::{Map, Value};
use vigie_core::json;
use vigie_core::monitor::MonitorConfig;
use vigie_core::schedule::{IntervalUnit, Schedule};
use vigie_core::LogRecord;

/// Release-health counts from one `session` or `sessions` item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub release: String,
    pub environment: String,
    /// When, in ns since the epoch.
    pub time: i64,
    pub started: i64,
    /// Ended normally but with handled errors.
    pub errored: i64,
    pub crashed: i64,
    pub abnormal: i64,
    /// Ended by an error nothing handled that did not crash the program (the browser SDK's
    /// status for an uncaught error since Sentry split it from `crashed`): not a crash.
    pub unhandled: i64,
    /// Who had the session (`did`: the user's id, e-mail or name, as the SDK sets it), for
    /// crash-free users; `None` for anonymous sessions, which count for sessions only.
    pub did: Option<String>,
}

fn attrs(payload: &Value) -> Option<(String, String)> {
    let attrs = payload.get("attrs")?;
    let release = attrs.get("release")?.as_str()?.trim();
    if release.is_empty() {
        return None;
    }
    let environment = attrs
        .get("environment")
        .and_then(Value::as_str)
        .unwrap_or("production");
    Some((release.to_string(), environment.to_string()))
}

fn ns(value: Option<&Value>, default: i64) -> i64 {
    value
        .and_then(seconds)
        .map(|s| (s * 1e9) as i64)
        .unwrap_or(default)
}

/// A `session` item: one session's update. A session counts as started on its first update
/// (`init`), and as errored, crashed or abnormal on its final one; updates in between count
/// nothing, so a session is never counted twice. `None` without a release (Sentry drops
/// those too: release health is per release).
pub fn session(payload: &Value, received: i64) -> Option<SessionCounts> {
    let (release, environment) = attrs(payload)?;
    let init = payload
        .get("init")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let status = payload
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("ok");
    let errors = payload.get("errors").and_then(Value::as_i64).unwrap_or(0);
    Some(SessionCounts {
        release,
        environment,
        time: ns(payload.get("timestamp"), received),
        started: i64::from(init),
        errored: i64::from(status == "exited" && errors > 0),
        crashed: i64::from(status == "crashed"),
        abnormal: i64::from(status == "abnormal"),
        unhandled: i64::from(status == "unhandled"),
        did: did(payload),
    })
}

fn did(payload: &Value) -> Option<String> {
    payload
        .get("did")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

/// A `sessions` item: pre-aggregated counts per minute (server-mode SDKs, one per request).
pub fn sessions(payload: &Value, received: i64) -> Vec<SessionCounts> {
    let Some((release, environment)) = attrs(payload) else {
        return Vec::new();
    };
    let count = |a: &Value, k: &str| a.get(k).and_then(Value::as_i64).unwrap_or(0).max(0);
    payload
        .get("aggregates")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|a| {
                    let (exited, errored) = (count(a, "exited"), count(a, "errored"));
                    let (crashed, abnormal) = (count(a, "crashed"), count(a, "abnormal"));
                    let unhandled = count(a, "unhandled");
                    SessionCounts {
                        release: release.clone(),
                        environment: environment.clone(),
                        time: ns(a.get("started"), received),
                        started: exited + errored + crashed + abnormal + unhandled,
                        errored,
                        crashed,
                        abnormal,
                        unhandled,
                        did: did(a),
                    }
                })
                .filter(|s| s.started > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// Events an SDK reports it dropped, by reason and category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discarded {
    pub reason: String,
    pub category: String,
    pub quantity: i64,
}

/// A `client_report` item: `discarded_events` (and the older per-cause lists).
pub fn client_report(payload: &Value) -> Vec<Discarded> {
    let mut out = Vec::new();
    for (list, default_reason) in [
        ("discarded_events", None),
        ("rate_limited_events", Some("ratelimit_backoff")),
        ("filtered_events", Some("event_processor")),
        ("filtered_sampling_events", Some("sample_rate")),
    ] {
        for entry in payload
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let reason = entry
                .get("reason")
                .and_then(Value::as_str)
                .or(default_reason)
                .unwrap_or("unknown");
            let quantity = entry.get("quantity").and_then(Value::as_i64).unwrap_or(0);
            if quantity > 0 {
                out.push(Discarded {
                    reason: reason.to_string(),
                    category: entry
                        .get("category")
                        .and_then(Value::as_str)
                        .unwrap_or("default")
                        .to_string(),
                    quantity,
                });
            }
        }
    }
    out
}

/// A cron monitor's check-in.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckIn {
    pub check_in_id: String,
    pub monitor_slug: String,
    /// `in_progress`, `ok` or `error`.
    pub status: String,
    pub duration_ms: Option<f64>,
    pub environment: Option<String>,
    /// The monitor's configuration when the SDK sent one (it creates or updates the monitor).
    pub monitor_config: Option<MonitorConfig>,
}

/// A check-in's `monitor_config`: `schedule` (`{"type": "crontab", "value": "0 3 * * *"}` or
/// `{"type": "interval", "value": 10, "unit": "minute"}`), `checkin_margin` and
/// `max_runtime` in minutes, `timezone`. `Err` names the mistake.
pub fn monitor_config(config: &Value) -> Result<MonitorConfig, String> {
    let schedule = config
        .get("schedule")
        .ok_or("monitor_config needs a schedule")?;
    let kind = schedule.get("type").and_then(Value::as_str).unwrap_or("");
    let timezone = config
        .get("timezone")
        .and_then(Value::as_str)
        .unwrap_or("UTC");
    let schedule = match kind {
        "crontab" => {
            let value = schedule
                .get("value")
                .and_then(Value::as_str)
                .ok_or("a crontab schedule needs a value such as \"0 3 * * *\"")?;
            Schedule::crontab(value, timezone)
        }
        "interval" => {
            let every = schedule
                .get("value")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("an interval schedule needs a whole value")?;
            let unit = schedule
                .get("unit")
                .and_then(Value::as_str)
                .ok_or("an interval schedule needs a unit")?;
            IntervalUnit::parse(unit).and_then(|unit| Schedule::interval(every, unit))
        }
        other => {
            return Err(format!(
                "schedule type {other:?} is not crontab or interval"
            ))
        }
    }
    .map_err(|e| e.to_string())?;
    let minutes = |key: &str, default: u32| {
        config
            .get(key)
            .and_then(Value::as_u64)
            .map_or(default, |n| n.clamp(1, 7 * 24 * 60) as u32)
    };
    Ok(MonitorConfig {
        schedule,
        checkin_margin_min: minutes("checkin_margin", MonitorConfig::DEFAULT_MARGIN_MIN),
        max_runtime_min: minutes("max_runtime", MonitorConfig::DEFAULT_MAX_RUNTIME_MIN),
    })
}

/// A `check_in` item; `Err` says what is missing.
pub fn check_in(payload: &Value) -> Result<CheckIn, String> {
    let field = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let monitor_slug = field("monitor_slug").ok_or("a check-in needs a monitor_slug")?;
    let status = field("status").ok_or("a check-in needs a status")?;
    if !matches!(status.as_str(), "in_progress" | "ok" | "error") {
        return Err(format!(
            "check-in status {status:?} is not in_progress, ok or error"
        ));
    }
    Ok(CheckIn {
        check_in_id: field("check_in_id").unwrap_or_default(),
        monitor_slug,
        status,
        duration_ms: payload
            .get("duration")
            .and_then(Value::as_f64)
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(|d| d * 1000.0),
        environment: field("environment"),
        monitor_config: payload
            .get("monitor_config")
            .filter(|c| !c.is_null())
            .map(monitor_config)
            .transpose()?,
    })
}

/// User feedback: what a person wrote about a page or an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Feedback {
    /// The feedback's own id, when the SDK gave one.
    pub event_id: Option<String>,
    /// When, in ns since the epoch, when the SDK said.
    pub time: Option<i64>,
    pub message: String,
    pub name: Option<String>,
    pub contact_email: Option<String>,
    pub url: Option<String>,
    pub associated_event_id: Option<String>,
}

/// Longest feedback message kept, in characters (Sentry's widget allows 4,096).
const FEEDBACK_MAX: usize = 8192;

/// A `feedback` item (an event whose `contexts.feedback` holds the message, from
/// `captureFeedback` or the browser widget) or an older `user_report` (`comments` about the
/// event named by `event_id`). `Err` when there is no message.
pub fn feedback(payload: &Value, kind: &str) -> Result<Feedback, String> {
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s.char_indices().nth(FEEDBACK_MAX) {
                Some((cut, _)) => s[..cut].to_string(),
                None => s.to_string(),
            })
    };
    let feedback = if kind == "user_report" {
        Feedback {
            event_id: None,
            time: None,
            message: text(payload.get("comments")).ok_or("a user_report needs comments")?,
            name: text(payload.get("name")),
            contact_email: text(payload.get("email")),
            url: None,
            associated_event_id: text(payload.get("event_id")),
        }
    } else {
        let context = json::at(payload, &["contexts", "feedback"])
            .ok_or("a feedback item needs contexts.feedback")?;
        Feedback {
            event_id: text(payload.get("event_id")),
            time: payload
                .get("timestamp")
                .and_then(seconds)
                .map(|s| (s * 1e9) as i64),
            message: text(context.get("message")).ok_or("a feedback item needs a message")?,
            name: text(context.get("name")),
            contact_email: text(context.get("contact_email")),
            url: text(context.get("url")),
            associated_event_id: text(context.get("associated_event_id")),
        }
    };
    Ok(feedback)
}

/// A `log` item (`{"items": [...]}`, sentry-python's `enable_logs`): each entry becomes a
/// log record of source `sentry`. Attributes (`{"value": …, "type": …}`) become fields;
/// `logger.name` names the logger.
pub fn logs(payload: &Value, received: i64) -> Vec<LogRecord> {
    let Some(items) = payload.get("items").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|item| {
            let mut map = Map::new();
            if let Some(Value::Object(attributes)) = item.get("attributes") {
                for (key, attr) in attributes {
                    let value = attr.get("value").unwrap_or(attr);
                    let key = if key == "logger.name" { "logger" } else { key };
                    map.insert(key.to_string(), Value::String(value_text(value)));
                }
            }
            for key in ["body", "level", "trace_id", "span_id"] {
                if let Some(v) = item.get(key) {
                    let key = if key == "body" { "message" } else { key };
                    map.insert(key.to_string(), v.clone());
                }
            }
            let time = ns(item.get("timestamp"), received);
            let mut record = record_from_object(map, "sentry", received);
            record.time = time;
            record
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vigie_core::Level;

    #[test]
    fn feedback_and_user_reports() {
        let widget = json!({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "timestamp": 1800000000.5,
            "contexts": {"feedback": {"message": "  Checkout does nothing ", "name": "Grace",
                "contact_email": "grace@example.com", "url": "https://shop.test/checkout",
                "associated_event_id": "0a2b3c4d5e6f40718293a4b5c6d7e8f9", "source": "widget"}}});
        let f = feedback(&widget, "feedback").unwrap();
        assert_eq!(f.message, "Checkout does nothing");
        assert_eq!(f.time, Some(1_800_000_000_500_000_000));
        assert_eq!(f.contact_email.as_deref(), Some("grace@example.com"));
        assert_eq!(
            f.associated_event_id.as_deref(),
            Some("0a2b3c4d5e6f40718293a4b5c6d7e8f9")
        );
        let report = json!({"event_id": "0a2b3c4d5e6f40718293a4b5c6d7e8f9", "name": "Ada",
                            "email": "ada@example.com", "comments": "It broke"});
        let r = feedback(&report, "user_report").unwrap();
        assert_eq!((r.message.as_str(), r.event_id), ("It broke", None));
        assert_eq!(
            r.associated_event_id.as_deref(),
            Some("0a2b3c4d5e6f40718293a4b5c6d7e8f9")
        );
        assert!(feedback(
            &json!({"contexts": {"feedback": {"message": " "}}}),
            "feedback"
        )
        .is_err());
        assert!(feedback(&json!({}), "feedback").is_err());
        let long = json!({"contexts": {"feedback": {"message": "é".repeat(FEEDBACK_MAX + 10)}}});
        assert_eq!(
            feedback(&long, "feedback").unwrap().message.chars().count(),
            FEEDBACK_MAX
        );
    }

    #[test]
    fn a_session_counts_once_from_start_to_end() {
        let attrs = json!({"release": "shop@1.4", "environment": "staging"});
        let start = json!({"sid": "a", "init": true, "status": "ok", "attrs": attrs});
        let middle = json!({"sid": "a", "status": "ok", "errors": 1, "attrs": attrs});
        let end = json!({"sid": "a", "status": "exited", "errors": 1, "attrs": attrs});
        let crash = json!({"sid": "b", "init": true, "status": "crashed", "attrs": attrs});
        let uncaught = json!({"sid": "c", "status": "unhandled", "errors": 1, "attrs": attrs});
        let counts: Vec<SessionCounts> = [start, middle, end, crash, uncaught]
            .iter()
            .map(|p| session(p, 7).unwrap())
            .collect();
        let sum = |f: fn(&SessionCounts) -> i64| counts.iter().map(f).sum::<i64>();
        assert_eq!(sum(|c| c.started), 2);
        assert_eq!(sum(|c| c.errored), 1);
        assert_eq!(sum(|c| c.crashed), 1);
        assert_eq!(
            sum(|c| c.unhandled),
            1,
            "an uncaught browser error is not a crash"
        );
        assert_eq!(counts[0].environment, "staging");
        assert_eq!(counts[0].did, None);
        assert!(session(&json!({"init": true, "attrs": {}}), 7).is_none());
        let user = json!({"sid": "c", "did": " ada@example.com ", "attrs": attrs});
        assert_eq!(
            session(&user, 7).unwrap().did.as_deref(),
            Some("ada@example.com")
        );
        let blank = json!({"sid": "d", "did": "  ", "attrs": attrs});
        assert_eq!(session(&blank, 7).unwrap().did, None);
    }

    #[test]
    fn aggregated_sessions() {
        let payload = json!({
            "attrs": {"release": "shop@1.4"},
            "aggregates": [
                {"started": "2026-11-21T10:00:00Z", "exited": 40, "errored": 2},
                {"started": "2026-11-21T10:01:00Z", "crashed": 1, "unhandled": 2},
                {"started": "2026-11-21T10:02:00Z"}
            ]
        });
        let list = sessions(&payload, 0);
        assert_eq!(list.len(), 2);
        assert_eq!(
            (
                list[0].started,
                list[0].errored,
                list[0].environment.as_str()
            ),
            (42, 2, "production")
        );
        assert_eq!(
            (list[1].started, list[1].crashed, list[1].unhandled),
            (3, 1, 2)
        );
        assert_eq!(list[0].time, 1_795_255_200_000_000_000);
    }

    #[test]
    fn client_reports_in_both_formats() {
        let report = json!({
            "discarded_events": [
                {"reason": "queue_overflow", "category": "error", "quantity": 3},
                {"reason": "sample_rate", "category": "transaction", "quantity": 0}
            ],
            "rate_limited_events": [{"category": "transaction", "quantity": 5}]
        });
        assert_eq!(
            client_report(&report),
            vec![
                Discarded {
                    reason: "queue_overflow".into(),
                    category: "error".into(),
                    quantity: 3
                },
                Discarded {
                    reason: "ratelimit_backoff".into(),
                    category: "transaction".into(),
                    quantity: 5
                },
            ]
        );
    }

    #[test]
    fn monitor_configs_from_the_sdk() {
        let c = check_in(&json!({
            "check_in_id": "a", "monitor_slug": "nightly", "status": "in_progress",
            "monitor_config": {"schedule": {"type": "crontab", "value": "0 3 * * *"},
                               "checkin_margin": 5, "max_runtime": 90, "timezone": "Europe/Paris"}
        }))
        .unwrap();
        let config = c.monitor_config.unwrap();
        assert_eq!(config.schedule.describe(), "0 3 * * * (Europe/Paris)");
        assert_eq!((config.checkin_margin_min, config.max_runtime_min), (5, 90));
        let beat = monitor_config(
            &json!({"schedule": {"type": "interval", "value": 10, "unit": "minute"}}),
        )
        .unwrap();
        assert_eq!(beat.schedule.describe(), "every 10 minutes");
        assert_eq!(beat.checkin_margin_min, MonitorConfig::DEFAULT_MARGIN_MIN);
        for (bad, reason) in [
            (json!({}), "needs a schedule"),
            (
                json!({"schedule": {"type": "crontab", "value": "0 3 * *"}}),
                "has 4 fields",
            ),
            (
                json!({"schedule": {"type": "crontab", "value": "0 3 * * *"}, "timezone": "Nowhere"}),
                "unknown time zone",
            ),
            (
                json!({"schedule": {"type": "interval", "value": 2, "unit": "fortnight"}}),
                "unknown interval unit",
            ),
            (
                json!({"schedule": {"type": "solar"}}),
                "not crontab or interval",
            ),
        ] {
            let error = monitor_config(&bad).unwrap_err();
            assert!(error.contains(reason), "{error}");
        }
        let refused = check_in(
            &json!({"monitor_slug": "x", "status": "ok", "monitor_config": {"schedule": {"type": "solar"}}}),
        );
        assert!(refused.is_err(), "a bad config refuses the check-in");
    }

    #[test]
    fn check_ins_need_a_slug_and_a_known_status() {
        let ok = check_in(&json!({"check_in_id": "abc", "monitor_slug": "nightly", "status": "ok", "duration": 1.5})).unwrap();
        assert_eq!(ok.duration_ms, Some(1500.0));
        assert!(check_in(&json!({"status": "ok"}))
            .unwrap_err()
            .contains("monitor_slug"));
        assert!(check_in(&json!({"monitor_slug": "x", "status": "done"}))
            .unwrap_err()
            .contains("done"));
    }

    #[test]
    fn sentry_logs_become_records() {
        let payload = json!({"items": [{
            "timestamp": 1_800_000_000.5,
            "trace_id": "0123456789abcdef0123456789abcdef",
            "level": "warn",
            "body": "quota at 90%",
            "attributes": {
                "logger.name": {"value": "shop.mail", "type": "string"},
                "recipients": {"value": 500, "type": "integer"}
            }
        }, "not an object"]});
        let records = logs(&payload, 1);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(
            (r.message.as_str(), r.logger.as_str(), r.source.as_str()),
            ("quota at 90%", "shop.mail", "sentry")
        );
        assert_eq!(r.level, Level::Warning);
        assert_eq!(r.time, 1_800_000_000_500_000_000);
        assert_eq!(r.trace_id, "0123456789abcdef0123456789abcdef");
        assert_eq!(r.field("recipients"), Some("500"));
    }
}
