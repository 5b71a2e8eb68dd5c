//! Running the server: open the store, bind, bootstrap, start the background services (the
//! schedule, `crate::schedule`; the alert engine; the Celery consumer; syslog), serve until
//! told to stop, then drain. This module only wires; what each service does lives in its
//! feature.
//!
//! A start waits for as few commits as it can, each a durable fsync:
//!
//! ```text
//!   data lock ─ store opened (a fresh directory: the copied database, its migrations noted: 1)
//!   ─ listener bound (so the base URL is known)
//!   ─ bootstrap, one transaction (a fresh directory: default project, Vigie's own project,
//!     setup token, base URL: 1; a directory already set up on the same address: 0)
//!   ─ sinks, tasks, the lead ─ router built ─ banner
//! ```
//!
//! This instance's heartbeat is the cluster task's first beat, written beside the banner.
//!
//! Shutdown order matters for "acknowledge only what is durable": stop accepting connections,
//! end live streams, let in-flight requests finish (their writes commit and are acknowledged),
//! stop the syslog listeners and store what they handed to the log sink, stop the Celery
//! readers and store what they read, end the background tasks (awaited, not just told), then
//! close the store, which commits whatever the writer still holds.

use crate::accounts::manage::{self, DEFAULT_PROJECT};
use crate::config::{Config, ConfigError};
use crate::hub::Hub;
use crate::logs::LogSink;
use crate::state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// On a shared database (PostgreSQL): this instance's name and whether it leads.
    pub instance: Option<String>,
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
    // One server per data directory: a second one (or a restore) is refused while this runs.
    let _data_lock = match &location {
        Location::Sqlite(db) => Some(vigie_store::backup::DataLock::take(db)?),
        Location::Postgres(_) => None,
    };
    let store = vigie_store::open(&location).await?;

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
    // The base URL is remembered so `vigie project list --data …` prints the DSNs this server
    // really answers on, whatever port it was given on its command line.
    let start = manage::Start {
        base_url: Some(&base_url),
        own_project: crate::monitors::watchdog::own_project_name(&config),
    };
    let boot = manage::bootstrap(store.as_ref(), start)
        .await
        .map_err(|e| ServeError::Bootstrap(e.to_string()))?;
    let (hub, stop_hub) = Hub::new();
    let state = AppState::new(
        store.clone(),
        config,
        hub,
        base_url.clone(),
        session_lifetime,
        begun,
    );
    let server = crate::app::Server::start(state.clone()).map_err(ServeError::Bootstrap)?;
    // The routes take 1.5–3 ms of CPU to build (a few hundred): built on a thread of their own
    // while the rest starts (writes that wait on the disk), and awaited before the banner, so
    // "ready in" counts them and a request that comes after the banner finds the server routed.
    let routed = tokio::task::spawn_blocking({
        let server = server.clone();
        move || crate::app::router(server)
    });
    let syslog = start_syslog(&state, &server.logs).await?;
    let followers = start_followers(&state, &server.logs).await?;
    let configured = state.config.alerts.clone();
    crate::alerts::config::apply(&state, &configured)
        .await
        .map_err(|e| ServeError::Bootstrap(format!("alerts from the configuration file: {e}")))?;
    let memory = crate::schedule::start_everywhere(&state);
    let membership = crate::cluster::Membership::join(&state, &server.errors)
        .await
        .map_err(ServeError::Bootstrap)?;
    let leads = membership.lead.is_some();
    let cluster = crate::cluster::run(state.clone(), server.errors.clone(), membership);
    let relay = crate::cluster::relay::start(&state).await;
    // Quotas count what every instance accepted; only PostgreSQL has other instances.
    let quota_sharing = (store.backend() == vigie_store::Backend::Postgres).then(|| {
        crate::tasks::spawn(
            "quota sharing",
            crate::sentry::quota::share(state.clone(), server.errors.quotas.clone()),
        )
    });

    let app = routed
        .await
        .map_err(|e| ServeError::Bootstrap(format!("building the routes failed: {e}")))?;
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
        instance: (store.backend() == vigie_store::Backend::Postgres).then(|| {
            let role = if leads {
                "leads: runs the schedule, alerts and Celery consumers"
            } else {
                "follows: serves HTTP and ingest; takes the lead if the leader stops"
            };
            format!("{} ({role})", state.instance.id)
        }),
    });
    tracing::info!(%bound, storage = %location.describe(), leads, "vigie is listening");

    let logs = server.logs.clone();
    crate::http::connections::serve(listener, app, state.metrics.clone(), async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_hub.send(true);
    })
    .await;

    // Syslog first, so nothing more comes in; then what it handed over is stored; then this
    // instance's part ends: if it leads, the Celery consumer stops reading and stores what it
    // read and the background tasks end (each awaited, so none is still writing), and the
    // lead is given up; then the store closes.
    // Followers may stop anywhere: a file's position is stored with its records, so what was
    // not stored is read again at the next start.
    for listener in syslog.iter().chain(&followers) {
        listener.abort();
    }
    for listener in syslog.into_iter().chain(followers) {
        let _ = listener.await;
    }
    logs.flush().await;
    let _ = cluster.await;
    let _ = memory.await;
    for task in relay.into_iter().chain(quota_sharing) {
        let _ = task.await;
    }
    store.close().await;
    tracing::info!("storage closed; goodbye");
    Ok(())
}

/// Starts following the log files `[[logs.follow]]` names, each from where this host's last
/// run stored it was.
async fn start_followers(
    state: &AppState,
    sink: &LogSink,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ServeError> {
    let configured = &state.config.logs.follow;
    if configured.is_empty() {
        return Ok(Vec::new());
    }
    let host = crate::state::host_name();
    let projects = state
        .store
        .list_projects()
        .await
        .map_err(ServeError::Store)?;
    let known = state
        .store
        .followed_files(&host)
        .await
        .map_err(ServeError::Store)?;
    let mut tasks = Vec::new();
    for follow in configured {
        let project = projects
            .iter()
            .find(|p| p.name == follow.project)
            .ok_or_else(|| {
                ServeError::Bootstrap(format!(
                    "logs.follow: no project named {:?} (for {})",
                    follow.project, follow.path
                ))
            })?;
        let spec = crate::logs::follow::FollowSpec {
            pattern: follow.path.clone(),
            format: follow.format().map_err(ServeError::Config)?,
            source: Some(follow.source.clone()).filter(|s| !s.is_empty()),
            project: project.id,
            zone: follow.zone().map_err(ServeError::Config)?,
            from_end: follow.start == "end",
        };
        let follower = crate::logs::follow::Follower::new(spec, &host, known.clone())
            .skipping(&state.config.data.join("files"));
        let (sink, metrics) = (sink.clone(), state.metrics.clone());
        tracing::info!(path = %follow.path, project = %follow.project, "following log files");
        tasks.push(crate::tasks::spawn(
            "follow log files",
            crate::logs::follow::run(follower, move |project, records, positions| {
                let (sink, metrics) = (sink.clone(), metrics.clone());
                async move {
                    let count = records.len() as u64;
                    sink.append_followed(project, records, positions)
                        .await
                        .map_err(|e| e.to_string())?;
                    metrics.ingested("file", "log", count);
                    Ok(())
                }
            }),
        ));
    }
    Ok(tasks)
}

/// Starts the syslog listeners the configuration asks for.
async fn start_syslog(
    state: &AppState,
    sink: &LogSink,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ServeError> {
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
            crate::logs::syslog::serve_udp(socket, sink.clone(), project.id),
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
            crate::logs::syslog::serve_tcp(listener, sink.clone(), project.id),
        ));
    }
    Ok(tasks)
}
