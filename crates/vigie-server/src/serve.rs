//! Running the server: open the store, bootstrap, bind, serve until told to stop, then drain.
//!
//! Shutdown order matters for "acknowledge only what is durable": stop accepting connections,
//! end live streams, let in-flight requests finish (their writes commit and are acknowledged),
//! stop the syslog listeners and store what they handed to the log sink, end the background
//! tasks (awaited, not just told), then close the store, which commits whatever the writer
//! still holds.

use crate::accounts::manage::{self, DEFAULT_PROJECT};
use crate::config::{Config, ConfigError};
use crate::hub::{Hub, JobNews};
use crate::state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_core::Timestamp;
use vigie_store::{Location, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("{0}")]
    Bootstrap(String),
    #[error("server failed: {0}")]
    Serve(String),
}

/// What a started server reports, for the banner the CLI prints.
pub struct Started {
    pub url: String,
    pub storage: String,
    /// The first-run setup address, while no user exists.
    pub setup_url: Option<String>,
    /// The default project's DSN (or the first project's), for `sentry_sdk.init`.
    pub dsn: Option<(String, String)>,
    pub ready_in: Duration,
}

/// Opens the store named by `config` (SQLite in the data directory unless a URL is given).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServeError> {
    let location = Location::resolve(config.database_url(), &config.data)?;
    Ok(vigie_store::open(&location).await?)
}

/// Runs Vigie until `shutdown` resolves. `on_ready` is called once the server accepts
/// connections.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&Started),
) -> Result<(), ServeError> {
    let begun = Instant::now();
    let addr = config.listen_addr()?;
    let session_lifetime = config.session_lifetime()?;
    let location = Location::resolve(config.database_url(), &config.data)?;
    let store = vigie_store::open(&location).await?;
    let boot = manage::bootstrap(store.as_ref())
        .await
        .map_err(|e| ServeError::Bootstrap(e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr,
            reason: e.to_string(),
        })?;
    let bound = listener.local_addr().map_err(|e| ServeError::Bind {
        addr,
        reason: e.to_string(),
    })?;
    let base_url = config.base_url(bound);
    // So `vigie project list --data …` prints the DSNs this server really answers on, whatever
    // port it was given on its command line.
    manage::remember_base_url(store.as_ref(), &base_url)
        .await
        .map_err(|e| ServeError::Bootstrap(e.to_string()))?;
    let (hub, stop_hub) = Hub::new();
    let mut state = AppState::new(
        store.clone(),
        config,
        hub,
        base_url.clone(),
        session_lifetime,
    )
    .map_err(ServeError::Bootstrap)?;
    state.started = begun;
    let syslog = start_syslog(&state).await?;
    crate::monitors::watchdog::prepare(&state)
        .await
        .map_err(|e| ServeError::Bootstrap(format!("Vigie's own project: {e}")))?;
    let configured = state.config.alerts.clone();
    crate::alerts::config::apply(&state, &configured)
        .await
        .map_err(|e| ServeError::Bootstrap(format!("alerts from the configuration file: {e}")))?;
    let maintenance = [
        crate::tasks::spawn("maintenance", maintain(state.clone())),
        crate::tasks::spawn("monitor check", check_monitors(state.clone())),
        crate::tasks::spawn("watchdog", crate::monitors::watchdog::run(state.clone())),
    ];
    let alerting = crate::alerts::start(&state);
    let celery = crate::celery::consumer::start(&state)
        .await
        .map_err(ServeError::Bootstrap)?;

    let dsn_project = boot
        .projects
        .iter()
        .find(|p| p.name == DEFAULT_PROJECT)
        .or(boot.projects.first());
    on_ready(&Started {
        url: base_url.clone(),
        storage: location.describe(),
        setup_url: boot
            .setup_token
            .map(|t| format!("{base_url}/setup?token={t}")),
        dsn: dsn_project.map(|p| (p.name.clone(), state.dsn(p))),
        ready_in: begun.elapsed(),
    });
    tracing::info!(%bound, storage = %location.describe(), "vigie is listening");

    let app = crate::app::router(state.clone());
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_hub.send(true);
    })
    .await;

    // Syslog first, so nothing more comes in; then what it handed over is stored; then the
    // Celery consumer stops reading and stores what it read; then the background tasks end
    // (each awaited, so none is still writing) and the store closes.
    for listener in &syslog {
        listener.abort();
    }
    for listener in syslog {
        let _ = listener.await;
    }
    state.logs.flush().await;
    // The Celery readers stop and the writer stores what they had read.
    celery.stop().await;
    let background: Vec<_> = maintenance.into_iter().chain(alerting).collect();
    for task in &background {
        task.abort();
    }
    for task in background {
        let _ = task.await;
    }
    store.close().await;
    tracing::info!("storage closed; goodbye");
    served.map_err(|e| ServeError::Serve(e.to_string()))
}

/// Starts the syslog listeners the configuration asks for.
async fn start_syslog(state: &AppState) -> Result<Vec<tokio::task::JoinHandle<()>>, ServeError> {
    let logs = &state.config.logs;
    if logs.syslog_udp.is_empty() && logs.syslog_tcp.is_empty() {
        return Ok(Vec::new());
    }
    let project = state
        .store
        .list_projects()
        .await?
        .into_iter()
        .find(|p| p.name == logs.syslog_project)
        .ok_or_else(|| {
            ServeError::Bootstrap(format!(
                "logs.syslog_project: no project named {:?}",
                logs.syslog_project
            ))
        })?;
    let parse = |text: &str| -> Result<SocketAddr, ServeError> {
        text.parse()
            .map_err(|_| ServeError::Bootstrap(format!("syslog address {text:?} is not host:port")))
    };
    let bind_error = |addr: SocketAddr| {
        move |e: std::io::Error| ServeError::Bind {
            addr,
            reason: e.to_string(),
        }
    };
    let mut tasks = Vec::new();
    if !logs.syslog_udp.is_empty() {
        let addr = parse(&logs.syslog_udp)?;
        let socket = crate::logs::syslog::bind_udp(addr).map_err(bind_error(addr))?;
        tracing::info!(%addr, "syslog listening (udp)");
        tasks.push(crate::tasks::spawn(
            "syslog udp",
            crate::logs::syslog::serve_udp(socket, state.logs.clone(), project.id),
        ));
    }
    if !logs.syslog_tcp.is_empty() {
        let addr = parse(&logs.syslog_tcp)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_error(addr))?;
        tracing::info!(%addr, "syslog listening (tcp)");
        tasks.push(crate::tasks::spawn(
            "syslog tcp",
            crate::logs::syslog::serve_tcp(listener, state.logs.clone(), project.id),
        ));
    }
    Ok(tasks)
}

/// How often small log blocks are merged and retention runs.
const LOG_UPKEEP: Duration = Duration::from_secs(60);

/// How often the stall sweep runs: a job turns stalled at most this long after its deadline
/// (the promise is `stall_after` + 15 s).
const STALL_SWEEP: Duration = Duration::from_secs(5);

/// The monitor check, on its own task: when a maintenance task hangs, the monitors (among
/// them Vigie's own, see `monitors::watchdog`) are still checked and the hang is noticed.
async fn check_monitors(state: AppState) {
    let every = crate::monitors::CHECK_EVERY;
    state.tasks.declare("monitor check", every);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = tick.tick() => state.tasks.run("monitor check", crate::monitors::check(&state)).await,
        }
    }
}

/// Vigie's own scheduled tasks: the stall sweep every few seconds, memory return every 10 s,
/// log upkeep and the daily report's clock every minute, forgetting expired sessions, event and
/// Celery retention every hour.
/// Each run is recorded on the task board the System page shows.
async fn maintain(state: AppState) {
    const HOURLY: Duration = Duration::from_secs(3600);
    let schedule = [
        ("stall sweep", STALL_SWEEP),
        ("log upkeep", LOG_UPKEEP),
        ("event retention", HOURLY),
        ("celery retention", HOURLY),
        ("expired sessions", HOURLY),
        ("daily report", LOG_UPKEEP),
        ("memory return", crate::memory::GIVE_BACK_EVERY),
    ];
    for (name, every) in schedule {
        state.tasks.declare(name, every);
    }
    let mut sweep = tokio::time::interval(STALL_SWEEP);
    let mut upkeep = tokio::time::interval(LOG_UPKEEP);
    let mut errors = tokio::time::interval(HOURLY);
    let mut celery = tokio::time::interval(HOURLY);
    let mut sessions = tokio::time::interval(HOURLY);
    let mut daily = tokio::time::interval(LOG_UPKEEP);
    let mut memory = tokio::time::interval(crate::memory::GIVE_BACK_EVERY);
    let tasks = &state.tasks;
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = sweep.tick() => tasks.run("stall sweep", sweep_stalled(&state)).await,
            _ = upkeep.tick() => tasks.run("log upkeep", log_upkeep(&state)).await,
            _ = errors.tick() => tasks.run("event retention", error_retention(&state)).await,
            _ = celery.tick() => tasks.run("celery retention", celery_retention(&state)).await,
            _ = sessions.tick() => tasks.run("expired sessions", forget_sessions(&state)).await,
            _ = daily.tick() => tasks.run("daily report", crate::reports::send_daily_if_due(&state)).await,
            _ = memory.tick() => tasks.run("memory return", async { crate::memory::give_back() }).await,
        }
    }
}

/// Merges small log blocks and drops what retention no longer keeps.
pub async fn log_upkeep(state: &AppState) -> Result<String, String> {
    let store = state.store.as_ref();
    let now = Timestamp::now().millis();
    let mut merged = 0;
    let mut failed = None;
    if let Ok(projects) = store.list_projects().await {
        for project in projects {
            match vigie_store::logs::compact(store, project.id, now, 30_000).await {
                Ok(0) => {}
                Ok(n) => {
                    merged += n;
                    tracing::debug!(blocks = n, project = %project.name, "log blocks merged");
                }
                Err(err) => {
                    tracing::warn!(%err, "log compaction failed");
                    failed = Some(format!("log compaction failed: {err}"));
                }
            }
        }
    }
    let logs = &state.config.logs;
    let policy = vigie_store::logs::Retention {
        max_age_ns: state
            .config
            .log_retention()
            .ok()
            .flatten()
            .map(|d| d.as_nanos().min(i64::MAX as u128) as i64),
        max_bytes: (logs.max_size_mib > 0).then_some(logs.max_size_mib << 20),
        per_source_bytes: logs
            .source_max_mib
            .iter()
            .map(|(name, mib)| (name.clone(), mib << 20))
            .collect(),
    };
    let dropped =
        match vigie_store::logs::retain(store, &policy, now.saturating_mul(1_000_000)).await {
            Ok((0, _)) => 0,
            Ok((blocks, bytes)) => {
                tracing::info!(blocks, bytes, "old logs dropped by retention");
                blocks
            }
            Err(err) => {
                tracing::warn!(%err, "log retention failed");
                return Err(format!("log retention failed: {err}"));
            }
        };
    match failed {
        Some(why) => Err(why),
        None => Ok(format!("blocks merged: {merged}, dropped: {dropped}")),
    }
}

/// Drops events, performance data and monitor runs older than `errors.retention`.
pub async fn error_retention(state: &AppState) -> Result<String, String> {
    let Ok(Some(keep)) = state.config.error_retention() else {
        return Ok("kept forever (errors.retention = 0)".into());
    };
    let before =
        Timestamp(Timestamp::now().millis() - keep.as_millis().min(i64::MAX as u128) as i64);
    match state.store.prune_errors(before).await {
        Ok(rows) => {
            if rows > 0 {
                tracing::info!(rows, "old events dropped by retention");
            }
            Ok(format!("rows dropped: {rows}"))
        }
        Err(err) => {
            tracing::warn!(%err, "event retention failed");
            Err(err.to_string())
        }
    }
}

/// Drops Celery tasks older than `celery.retention` (with their events and Jobs) and
/// forgets workers silent for `celery.forget_workers_after`.
pub async fn celery_retention(state: &AppState) -> Result<String, String> {
    let config = &state.config.celery;
    let now = Timestamp::now().millis();
    let cut = |keep: Option<Duration>| {
        keep.map(|d| Timestamp(now - d.as_millis().min(i64::MAX as u128) as i64))
    };
    let tasks_before = cut(config.retention().map_err(|e| e.to_string())?);
    let workers_before = cut(config.forget_workers_after().map_err(|e| e.to_string())?);
    if tasks_before.is_none() && workers_before.is_none() {
        return Ok("kept forever (celery.retention and forget_workers_after empty)".into());
    }
    let mut dropped = 0;
    loop {
        match state.store.prune_celery(tasks_before, workers_before).await {
            Ok(0) => break,
            Ok(rows) => dropped += rows,
            Err(err) => {
                tracing::warn!(%err, "celery retention failed");
                return Err(err.to_string());
            }
        }
    }
    if dropped > 0 {
        tracing::info!(
            rows = dropped,
            "old celery tasks and workers dropped by retention"
        );
    }
    Ok(format!("rows dropped: {dropped}"))
}

/// Turns silent running jobs to stalled and tells the live pages.
pub async fn sweep_stalled(state: &AppState) -> Result<String, String> {
    match state.store.mark_stalled_jobs(Timestamp::now()).await {
        Ok(changed) => {
            let n = changed.len();
            for change in changed {
                tracing::warn!(job = %change.job.id, name = %change.job.name, "job stalled");
                state
                    .hub
                    .publish_job(JobNews::new(change.job, vec![], change.messages));
            }
            Ok(format!("jobs stalled: {n}"))
        }
        Err(err) => {
            tracing::warn!(%err, "stall sweep failed");
            Err(err.to_string())
        }
    }
}

async fn forget_sessions(state: &AppState) -> Result<String, String> {
    match state.store.delete_expired_sessions(Timestamp::now()).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(sessions = n, "expired sessions removed");
            }
            Ok(format!("sessions removed: {n}"))
        }
        Err(err) => {
            tracing::warn!(%err, "could not remove expired sessions");
            Err(err.to_string())
        }
    }
}
