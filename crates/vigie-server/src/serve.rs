//! Running the server: open the store, bootstrap, bind, serve until told to stop, then drain.
//!
//! Shutdown order matters for "acknowledge only what is durable": stop accepting connections,
//! end live streams, let in-flight requests finish (their writes commit and are acknowledged),
//! then close the store, which commits whatever the writer still holds.

use crate::auth::limiter::LoginLimiter;
use crate::config::{Config, ConfigError};
use crate::hub::{Hub, JobNews};
use crate::manage::{self, DEFAULT_PROJECT};
use crate::metrics::Metrics;
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
    let (hub, stop_hub) = Hub::new();
    let state = AppState {
        store: store.clone(),
        config: Arc::new(config),
        metrics: Arc::new(Metrics::default()),
        hub,
        limiter: Arc::new(LoginLimiter::default()),
        started: begun,
        base_url: base_url.clone().into(),
        session_lifetime,
    };
    let maintenance = tokio::spawn(maintain(state.clone()));

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

    maintenance.abort();
    store.close().await;
    tracing::info!("storage closed; goodbye");
    served.map_err(|e| ServeError::Serve(e.to_string()))
}

/// How often the stall sweep runs: a job turns stalled at most this long after its deadline
/// (the promise is `stall_after` + 15 s).
const STALL_SWEEP: Duration = Duration::from_secs(5);

/// Vigie's own scheduled tasks: the stall sweep every few seconds, forgetting expired sessions
/// every hour.
async fn maintain(state: AppState) {
    let mut sweep = tokio::time::interval(STALL_SWEEP);
    let mut sessions = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = sweep.tick() => sweep_stalled(&state).await,
            _ = sessions.tick() => forget_sessions(&state).await,
        }
    }
}

/// Turns silent running jobs to stalled and tells the live pages.
pub async fn sweep_stalled(state: &AppState) {
    match state.store.mark_stalled_jobs(Timestamp::now()).await {
        Ok(changed) => {
            for change in changed {
                tracing::warn!(job = %change.job.id, name = %change.job.name, "job stalled");
                state
                    .hub
                    .publish_job(JobNews::new(change.job, vec![], change.messages));
            }
        }
        Err(err) => tracing::warn!(%err, "stall sweep failed"),
    }
}

async fn forget_sessions(state: &AppState) {
    match state.store.delete_expired_sessions(Timestamp::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(sessions = n, "expired sessions removed"),
        Err(err) => tracing::warn!(%err, "could not remove expired sessions"),
    }
}
