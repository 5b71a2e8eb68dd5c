//! Vigie's configuration, layered: defaults <- `vigie.toml` <- `VIGIE_*` environment <- flags.
//!
//! The defaults are not written twice: they *are* the documented example file
//! (`default.toml`), which `vigie config default` prints. Layering happens on TOML values —
//! each layer is merged over the previous one, environment variables are found by walking the
//! default file's keys — and the result is deserialized once, with unknown keys refused, so a
//! typo in `vigie.toml` is an error rather than a silently ignored setting.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vigie_core::Secret;

/// The documented example configuration, also the source of every default.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The prefix of every environment variable Vigie reads.
const ENV_PREFIX: &str = "VIGIE_";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub data: PathBuf,
    pub database_url: Secret<String>,
    pub public_url: String,
    pub log: String,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub errors: ErrorsConfig,
    pub metrics: MetricsConfig,
    pub traces: TracesConfig,
    pub sourcemaps: SourcemapsConfig,
    pub smtp: SmtpConfig,
    pub reports: ReportsConfig,
    pub logs: LogsConfig,
    pub watchdog: WatchdogConfig,
    pub celery: CeleryConfig,
    #[serde(default)]
    pub alerts: AlertsConfig,
}

/// Celery brokers to read events from (see `[celery]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeleryConfig {
    pub brokers: String,
    pub project: String,
    pub retention: String,
    pub forget_workers_after: String,
    pub key_prefix: String,
    pub fanout_prefix: String,
    pub enable_events: bool,
    pub failures_as_issues: bool,
    pub flower_api_project: String,
    pub result_backend: String,
}

impl CeleryConfig {
    /// The brokers, each checked; empty when none is configured.
    pub fn brokers(&self) -> Result<Vec<crate::celery::Broker>, ConfigError> {
        let backend = match self.result_backend.trim() {
            "" => None,
            url => Some(
                crate::celery::redis::RedisUrl::parse(url).map_err(|reason| {
                    ConfigError::Invalid {
                        key: "celery.result_backend",
                        reason,
                    }
                })?,
            ),
        };
        self.brokers
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                let mut broker =
                    crate::celery::Broker::parse(u, &self.key_prefix, &self.fanout_prefix)
                        .map_err(|reason| ConfigError::Invalid {
                            key: "celery.brokers",
                            reason,
                        })?;
                if let (crate::celery::Broker::Redis(redis), Some(backend)) =
                    (&mut broker, &backend)
                {
                    // Pub/sub reaches Vigie only from the broker's own server.
                    if (&backend.host, backend.port) == (&redis.url.host, redis.url.port) {
                        redis.backend = backend.clone();
                    }
                }
                Ok(broker)
            })
            .collect()
    }

    /// How long tasks are kept after their last event; `None` when `celery.retention` is
    /// empty.
    pub fn retention(&self) -> Result<Option<Duration>, ConfigError> {
        retention("celery.retention", &self.retention)
    }

    /// How long an offline worker stays listed; `None` when empty.
    pub fn forget_workers_after(&self) -> Result<Option<Duration>, ConfigError> {
        retention("celery.forget_workers_after", &self.forget_workers_after)
    }
}

/// Vigie watching its own tasks (see `[watchdog]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchdogConfig {
    pub project: String,
}

/// Alert channels and rules kept in the configuration file (see `[[alerts.channels]]` in
/// default.toml); written into the database at start (`crate::alerts::config`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// One channel: its project (by name), its name, and the target's fields (`kind = "email"`,
/// `to = [...]`; `kind = "slack"`, `url = ...`; …).
#[derive(Clone, Debug, Deserialize)]
pub struct ChannelConfig {
    pub project: String,
    pub name: String,
    #[serde(flatten)]
    pub target: vigie_core::alert::Target,
}

/// One rule: its project and name, the kind's fields (`kind = "log_matches"`, `query`,
/// `above`, `window_s`, …), and the channels it sends to, by name.
#[derive(Clone, Debug, Deserialize)]
pub struct RuleConfig {
    pub project: String,
    pub name: String,
    #[serde(flatten)]
    pub when: vigie_core::alert::RuleKind,
    pub channels: Vec<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default = "default_cooldown_s")]
    pub cooldown_s: i64,
    #[serde(default)]
    pub renotify_s: i64,
}

fn default_cooldown_s() -> i64 {
    1800
}

impl AlertsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for channel in &self.channels {
            channel
                .target
                .validate()
                .map_err(|e| ConfigError::Invalid {
                    key: "alerts.channels",
                    reason: format!("channel \"{}\": {e}", channel.name),
                })?;
        }
        for rule in &self.rules {
            let known = |name: &String| {
                self.channels
                    .iter()
                    .any(|c| &c.name == name && c.project == rule.project)
            };
            let problem = rule.when.validate().err().or_else(|| {
                rule.channels.iter().find(|c| !known(c)).map(|c| {
                    format!(
                        "no channel \"{c}\" of project \"{}\" in [[alerts.channels]]",
                        rule.project
                    )
                })
            });
            if let Some(reason) = problem {
                return Err(ConfigError::Invalid {
                    key: "alerts.rules",
                    reason: format!("rule \"{}\": {reason}", rule.name),
                });
            }
        }
        Ok(())
    }
}

/// Scheduled reports (see `[reports]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    pub daily: String,
    pub daily_timezone: String,
    pub daily_channel: String,
}

impl ReportsConfig {
    /// The daily report's schedule; `None` when off.
    pub fn daily_schedule(&self) -> Result<Option<vigie_core::schedule::Schedule>, ConfigError> {
        if self.daily.trim().is_empty() {
            return Ok(None);
        }
        let schedule = vigie_core::schedule::Schedule::crontab(&self.daily, &self.daily_timezone)
            .map_err(|e| ConfigError::Invalid {
            key: "reports.daily",
            reason: e.to_string(),
        })?;
        if self.daily_channel.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "reports.daily_channel",
                reason: "name the alert channel the daily report goes to".into(),
            });
        }
        Ok(Some(schedule))
    }
}

/// The mail server of alert e-mails (see `[smtp]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: String,
    pub username: String,
    pub password: Secret<String>,
    pub from: String,
}

impl SmtpConfig {
    pub fn configured(&self) -> bool {
        !self.host.trim().is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.configured() {
            return Ok(());
        }
        if !matches!(self.security.as_str(), "starttls" | "tls" | "none") {
            return Err(ConfigError::Invalid {
                key: "smtp.security",
                reason: format!("{:?} is not starttls, tls or none", self.security),
            });
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid {
                key: "smtp.from",
                reason: format!(
                    "{:?} is not a sender address (e.g. \"Vigie <vigie@example.com>\")",
                    self.from
                ),
            });
        }
        Ok(())
    }
}

/// Error ingest limits (see `[errors]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsConfig {
    pub events_per_minute: u64,
    pub transactions_per_minute: u64,
    pub spike_protection: bool,
    pub spike_floor_per_minute: u64,
    pub max_attachment_mib: u64,
    pub retention: String,
}

/// OpenTelemetry metrics (see `[metrics]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub max_series: usize,
    pub retention: String,
}

/// Source maps uploaded by `sentry-cli` and the bundler plugins (see `[sourcemaps]` in
/// default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcemapsConfig {
    pub retention: String,
    pub max_project_mib: u64,
}

/// The tail-based keep rules of traces (see `[traces]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    pub keep_rate: f64,
    pub settle_after: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    pub retention: String,
    pub max_size_mib: u64,
    pub syslog_udp: String,
    pub syslog_tcp: String,
    pub syslog_project: String,
    #[serde(default)]
    pub source_max_mib: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub files: Vec<FileRouteConfig>,
    #[serde(default)]
    pub follow: Vec<FollowConfig>,
}

/// Log files Vigie follows itself (see `[[logs.follow]]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowConfig {
    /// A file, or a glob like `/srv/app/logs/*.log`.
    pub path: String,
    #[serde(default = "default_auto")]
    pub format: String,
    /// Empty: each file's name.
    #[serde(default)]
    pub source: String,
    #[serde(default = "default_project")]
    pub project: String,
    #[serde(default = "default_utc")]
    pub tz: String,
    /// `beginning`, or `end`: files met at the first start skip what they already hold.
    #[serde(default = "default_start")]
    pub start: String,
}

impl FollowConfig {
    /// The format named, `None` for `auto`.
    pub fn format(&self) -> Result<Option<vigie_protocol::logs::files::Format>, ConfigError> {
        use vigie_protocol::logs::files::Format;
        if self.format == "auto" {
            return Ok(None);
        }
        Format::from_name(&self.format)
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid {
                key: "logs.follow.format",
                reason: format!(
                    "{:?}: use auto or one of {}",
                    self.format,
                    Format::ALL.map(|f| f.name()).join(", ")
                ),
            })
    }

    pub fn zone(&self) -> Result<vigie_protocol::logs::files::Zone, ConfigError> {
        vigie_protocol::logs::files::Zone::named(&self.tz).map_err(|reason| ConfigError::Invalid {
            key: "logs.follow.tz",
            reason,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.format()?;
        self.zone()?;
        if self.path.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "logs.follow.path",
                reason: "a file or a glob like /srv/app/logs/*.log is needed".into(),
            });
        }
        if let Err(e) = glob::Pattern::new(&self.path) {
            return Err(ConfigError::Invalid {
                key: "logs.follow.path",
                reason: format!("{:?} is not a glob: {e}", self.path),
            });
        }
        if !matches!(self.start.as_str(), "beginning" | "end") {
            return Err(ConfigError::Invalid {
                key: "logs.follow.start",
                reason: format!("{:?} must be \"beginning\" or \"end\"", self.start),
            });
        }
        Ok(())
    }
}

fn default_auto() -> String {
    "auto".into()
}
fn default_project() -> String {
    "default".into()
}
fn default_utc() -> String {
    "UTC".into()
}
fn default_start() -> String {
    "beginning".into()
}

/// One rotating file written from the logs (see `[[logs.files]]` in default.toml).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRouteConfig {
    pub name: String,
    #[serde(default)]
    pub query: String,
    #[serde(default = "default_file_mib")]
    pub max_size_mib: u64,
    #[serde(default = "default_backups")]
    pub backups: u32,
    #[serde(default = "default_true")]
    pub compress: bool,
    #[serde(default)]
    pub daily: bool,
    #[serde(default = "default_format")]
    pub format: String,
}

fn default_file_mib() -> u64 {
    10
}
fn default_backups() -> u32 {
    5
}
fn default_true() -> bool {
    true
}
fn default_format() -> String {
    "text".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub session_lifetime: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_mib: u64,
    pub max_decompressed_mib: u64,
    pub max_records_per_request: u64,
    pub ingest_budget_mib: u64,
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    /// `--celery-broker`, added to `celery.brokers`.
    pub celery_brokers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path} is not valid: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("environment variable {name} is not valid: {reason}")]
    Env { name: String, reason: String },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Default for Config {
    fn default() -> Self {
        // The embedded file is checked by a unit test; failing here would be a build defect.
        toml::from_str(DEFAULT_TOML).expect("the embedded default.toml is valid")
    }
}

impl Config {
    /// Builds the configuration from every layer. `env` is the process environment (a parameter
    /// so tests need not touch the real one).
    pub fn load(
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let defaults: toml::Table = toml::from_str(DEFAULT_TOML).expect("valid default.toml");
        let mut merged = defaults.clone();

        let file = overrides
            .config_file
            .clone()
            .or_else(|| env.get("VIGIE_CONFIG").map(PathBuf::from));
        let file = match file {
            Some(path) => Some(path),
            None => Some(PathBuf::from("vigie.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = &file {
            merge(&mut merged, read_file(path)?);
        }

        merge(&mut merged, env_layer(&defaults, &[], &env)?);

        let mut config: Config =
            toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: file.clone().unwrap_or_else(|| "(environment)".into()),
                    reason: e.message().to_string(),
                })?;

        if let Some(v) = &overrides.listen {
            config.listen = v.clone();
        }
        if let Some(v) = &overrides.data {
            config.data = v.clone();
        }
        if let Some(v) = &overrides.database_url {
            config.database_url = Secret::new(v.clone());
        }
        if let Some(v) = &overrides.public_url {
            config.public_url = v.clone();
        }
        for broker in &overrides.celery_brokers {
            config.celery.brokers = format!("{} {broker}", config.celery.brokers);
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.session_lifetime()?;
        let url = &self.public_url;
        let acceptable =
            url.is_empty() || url.starts_with("http://") || url.starts_with("https://");
        if !acceptable {
            return Err(ConfigError::Invalid {
                key: "public_url",
                reason: format!("{:?} must start with http:// or https://", self.public_url),
            });
        }
        self.log_retention()?;
        self.error_retention()?;
        self.metric_retention()?;
        self.sourcemap_retention()?;
        self.settle_after()?;
        if self.sourcemaps.max_project_mib == 0 {
            return Err(ConfigError::Invalid {
                key: "sourcemaps.max_project_mib",
                reason: "must be at least 1 (MiB a project's source maps may take)".into(),
            });
        }
        if !(0.0..=1.0).contains(&self.traces.keep_rate) {
            return Err(ConfigError::Invalid {
                key: "traces.keep_rate",
                reason: format!(
                    "{} must be between 0 (keep only failed and slow traces) and 1 (keep all)",
                    self.traces.keep_rate
                ),
            });
        }
        self.smtp.validate()?;
        self.reports.daily_schedule()?;
        self.alerts.validate()?;
        self.celery.brokers()?;
        self.celery.retention()?;
        self.celery.forget_workers_after()?;
        for follow in &self.logs.follow {
            follow.validate()?;
        }
        for route in &self.logs.files {
            let plain = !route.name.is_empty()
                && route
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                && !route.name.starts_with('.');
            if !plain {
                return Err(ConfigError::Invalid {
                    key: "logs.files.name",
                    reason: format!(
                        "{:?} must be a plain file name (letters, digits, . - _)",
                        route.name
                    ),
                });
            }
            if !matches!(route.format.as_str(), "text" | "json") {
                return Err(ConfigError::Invalid {
                    key: "logs.files.format",
                    reason: format!("{:?} must be \"text\" or \"json\"", route.format),
                });
            }
        }
        if self.limits.max_body_mib == 0
            || self.limits.max_decompressed_mib == 0
            || self.limits.ingest_budget_mib == 0
        {
            return Err(ConfigError::Invalid {
                key: "limits",
                reason: "size limits must be at least 1 MiB".into(),
            });
        }
        if self.limits.max_records_per_request == 0 {
            return Err(ConfigError::Invalid {
                key: "limits.max_records_per_request",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// How long log records are kept; `None` when `logs.retention` is empty.
    pub fn log_retention(&self) -> Result<Option<Duration>, ConfigError> {
        retention("logs.retention", &self.logs.retention)
    }

    /// How long uploaded source maps are kept; `None` when `sourcemaps.retention` is empty.
    pub fn sourcemap_retention(&self) -> Result<Option<Duration>, ConfigError> {
        retention("sourcemaps.retention", &self.sourcemaps.retention)
    }

    /// How long metric minutes are kept; `None` when `metrics.retention` is empty.
    pub fn metric_retention(&self) -> Result<Option<Duration>, ConfigError> {
        retention("metrics.retention", &self.metrics.retention)
    }

    /// How long after its spans ended a trace is judged by the keep rules.
    pub fn settle_after(&self) -> Result<Duration, ConfigError> {
        humantime::parse_duration(self.traces.settle_after.trim()).map_err(|e| {
            ConfigError::Invalid {
                key: "traces.settle_after",
                reason: format!("{:?}: {e}", self.traces.settle_after),
            }
        })
    }

    /// How long events and performance data are kept; `None` when `errors.retention` is empty.
    pub fn error_retention(&self) -> Result<Option<Duration>, ConfigError> {
        retention("errors.retention", &self.errors.retention)
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            reason: format!(
                "{:?} is not an address with a port, like 127.0.0.1:8610",
                self.listen
            ),
        })
    }

    pub fn session_lifetime(&self) -> Result<Duration, ConfigError> {
        humantime::parse_duration(&self.auth.session_lifetime).map_err(|e| ConfigError::Invalid {
            key: "auth.session_lifetime",
            reason: format!("{:?}: {e}", self.auth.session_lifetime),
        })
    }

    /// The database URL, `None` for the embedded SQLite database.
    pub fn database_url(&self) -> Option<&str> {
        Some(self.database_url.expose().as_str()).filter(|u| !u.trim().is_empty())
    }

    pub fn max_body_bytes(&self) -> usize {
        (self.limits.max_body_mib as usize) << 20
    }

    pub fn max_decompressed_bytes(&self) -> usize {
        (self.limits.max_decompressed_mib as usize) << 20
    }

    pub fn ingest_budget_bytes(&self) -> usize {
        (self.limits.ingest_budget_mib as usize) << 20
    }

    /// The base URL links and DSNs use: `public_url`, or `http://` + the bound address.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.trim_end_matches('/').to_string();
        }
        let host = if bound.ip().is_unspecified() {
            // Bound to every interface: name the loopback address, which works from this host.
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
        } else {
            bound
        };
        format!("http://{host}")
    }
}

fn retention(key: &'static str, text: &str) -> Result<Option<Duration>, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    humantime::parse_duration(text)
        .map(Some)
        .map_err(|e| ConfigError::Invalid {
            key,
            reason: format!("{text:?}: {e}"),
        })
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        reason: e.message().to_string(),
    })
}

/// The layer made of `VIGIE_*` variables, one per key of the default file, each parsed as the
/// type its default has.
fn env_layer(
    defaults: &toml::Table,
    section: &[&str],
    env: &std::collections::HashMap<String, String>,
) -> Result<toml::Table, ConfigError> {
    let mut layer = toml::Table::new();
    for (key, default) in defaults {
        let mut path = section.to_vec();
        path.push(key);
        if let toml::Value::Table(inner) = default {
            let sub = env_layer(inner, &path, env)?;
            if !sub.is_empty() {
                layer.insert(key.clone(), toml::Value::Table(sub));
            }
            continue;
        }
        let name = format!("{ENV_PREFIX}{}", path.join("_").to_uppercase());
        let Some(raw) = env.get(&name) else { continue };
        let invalid = |reason: String| ConfigError::Env {
            name: name.clone(),
            reason,
        };
        let value = match default {
            toml::Value::Integer(_) => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .map_err(|_| invalid(format!("{raw:?} is not a whole number")))?,
            ),
            toml::Value::Boolean(_) => toml::Value::Boolean(
                raw.trim()
                    .parse()
                    .map_err(|_| invalid(format!("{raw:?} is not true or false")))?,
            ),
            toml::Value::Float(_) => toml::Value::Float(
                raw.trim()
                    .parse()
                    .map_err(|_| invalid(format!("{raw:?} is not a number")))?,
            ),
            _ => toml::Value::String(raw.clone()),
        };
        layer.insert(key.clone(), value);
    }
    Ok(layer)
}

/// Merges `over` into `base`, key by key, descending into tables.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_come_from_the_documented_file() {
        let c = Config::load(&Overrides::default(), env(&[])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8610");
        assert_eq!(c.data, PathBuf::from("./vigie-data"));
        assert_eq!(c.database_url(), None);
        assert_eq!(
            c.session_lifetime().unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(c.max_body_bytes(), 20 << 20);
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vigie.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n[auth]\nsession_lifetime = \"1h\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            config_file: Some(file),
            listen: Some("127.0.0.1:9999".into()),
            ..Overrides::default()
        };
        let c = Config::load(
            &overrides,
            env(&[
                ("VIGIE_LOG", "warn"),
                ("VIGIE_LISTEN", "127.0.0.1:9001"),
                ("VIGIE_LIMITS_MAX_BODY_MIB", "5"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999", "flag beats env beats file");
        assert_eq!(c.log, "warn", "env beats file");
        assert_eq!(c.auth.session_lifetime, "1h", "file beats default");
        assert_eq!(c.limits.max_body_mib, 5);
        assert_eq!(c.limits.max_decompressed_mib, 100, "untouched default");
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vigie.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let overrides = Overrides {
            config_file: Some(file.clone()),
            ..Overrides::default()
        };
        let err = Config::load(&overrides, env(&[])).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");

        let err = Config::load(
            &Overrides::default(),
            env(&[("VIGIE_LIMITS_MAX_BODY_MIB", "lots")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "environment variable VIGIE_LIMITS_MAX_BODY_MIB is not valid: \"lots\" is not a whole number"
        );

        // A share reads as a number; one out of range is named with what it means.
        let config = Config::load(
            &Overrides::default(),
            env(&[("VIGIE_TRACES_KEEP_RATE", "0.25")]),
        )
        .unwrap();
        assert_eq!(config.traces.keep_rate, 0.25);
        let err = Config::load(
            &Overrides::default(),
            env(&[("VIGIE_TRACES_KEEP_RATE", "2")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("traces.keep_rate") && err.contains("between 0"),
            "{err}"
        );
        let err = Config::load(
            &Overrides::default(),
            env(&[("VIGIE_TRACES_KEEP_RATE", "half")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is not a number"), "{err}");

        let bad_listen = Overrides {
            listen: Some("localhost".into()),
            ..Overrides::default()
        };
        let err = Config::load(&bad_listen, env(&[])).unwrap_err().to_string();
        assert!(err.starts_with("invalid setting listen"), "{err}");

        let missing = Overrides {
            config_file: Some(dir.path().join("absent.toml")),
            ..Overrides::default()
        };
        let err = Config::load(&missing, env(&[])).unwrap_err().to_string();
        assert!(err.starts_with("cannot read config file"), "{err}");

        // Alert e-mail and scheduled reports are checked at start, with the reason.
        let load = |vars: &[(&str, &str)]| {
            Config::load(&Overrides::default(), env(vars))
                .unwrap_err()
                .to_string()
        };
        let err = load(&[
            ("VIGIE_REPORTS_DAILY", "0 25 * * *"),
            ("VIGIE_REPORTS_DAILY_CHANNEL", "ops"),
        ]);
        assert!(
            err.contains("reports.daily") && err.contains("25 is outside 0–23"),
            "{err}"
        );
        let err = load(&[("VIGIE_REPORTS_DAILY", "0 8 * * *")]);
        assert!(err.contains("reports.daily_channel"), "{err}");
        let err = load(&[
            ("VIGIE_SMTP_HOST", "mail"),
            ("VIGIE_SMTP_SECURITY", "ssl"),
            ("VIGIE_SMTP_FROM", "a@b.c"),
        ]);
        assert!(err.contains("smtp.security"), "{err}");
        let err = load(&[("VIGIE_SMTP_HOST", "mail"), ("VIGIE_SMTP_FROM", "nobody")]);
        assert!(err.contains("smtp.from"), "{err}");
        let err = load(&[(
            "VIGIE_CELERY_BROKERS",
            "redis://127.0.0.1/0 amqps://guest@rabbit//",
        )]);
        assert!(
            err.contains("celery.brokers") && err.contains("TLS"),
            "{err}"
        );
        let err = load(&[("VIGIE_CELERY_RETENTION", "a month")]);
        assert!(err.contains("celery.retention"), "{err}");

        // Alert rules in the file: the channel they name must be there, the rule must make sense.
        let rules = |text: &str| {
            std::fs::write(&file, text).unwrap();
            let overrides = Overrides {
                config_file: Some(file.clone()),
                ..Overrides::default()
            };
            Config::load(&overrides, env(&[])).map(|c| c.alerts.rules.len())
        };
        let channel = "[[alerts.channels]]\nproject = \"default\"\nname = \"ops\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/X\"\n";
        let rule = |body: &str| {
            format!("{channel}[[alerts.rules]]\nproject = \"default\"\nname = \"r\"\n{body}\n")
        };
        assert_eq!(
            rules(&rule(
                "kind = \"error_events\"\nper_minute = 100\nchannels = [\"ops\"]"
            ))
            .unwrap(),
            1
        );
        let err = rules(&rule(
            "kind = \"error_events\"\nper_minute = 100\nchannels = [\"pager\"]",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("alerts.rules") && err.contains("no channel \"pager\""),
            "{err}"
        );
        let err = rules(&rule(
            "kind = \"log_matches\"\nquery = \"x\"\nabove = 1\nwindow_s = 5\nchannels = [\"ops\"]",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("a window is 10 s to 1 day"), "{err}");
        let err = rules("[[alerts.channels]]\nproject = \"default\"\nname = \"ops\"\nkind = \"slack\"\nurl = \"https://example.com/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a Slack incoming webhook"), "{err}");
    }

    #[test]
    fn database_url_never_shows_in_debug() {
        let c = Config::load(
            &Overrides::default(),
            env(&[("VIGIE_DATABASE_URL", "postgres://u:hunter2@db/vigie")]),
        )
        .unwrap();
        assert_eq!(c.database_url(), Some("postgres://u:hunter2@db/vigie"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn base_url_prefers_public_url() {
        let mut c = Config::default();
        let bound: SocketAddr = "0.0.0.0:8610".parse().unwrap();
        assert_eq!(c.base_url(bound), "http://127.0.0.1:8610");
        c.public_url = "https://vigie.example.org/".into();
        assert_eq!(c.base_url(bound), "https://vigie.example.org");
    }
}
