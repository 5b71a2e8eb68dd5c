//! `vigie serve`: run the server until Ctrl-C or SIGTERM.

use super::StorageArgs;
use clap::Args;
use tracing_subscriber::EnvFilter;

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address to listen on [default: 127.0.0.1:8610]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Address people and SDKs use to reach this server, for DSNs and links
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// A Celery broker to read task and worker events from, e.g. redis://127.0.0.1:6379/0 or
    /// amqp://guest:guest@127.0.0.1:5672// (repeatable; adds to `celery.brokers`)
    #[arg(long = "celery-broker", value_name = "URL")]
    celery_brokers: Vec<String>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.storage.load(|o| {
        o.listen = args.listen.clone();
        o.public_url = args.public_url.clone();
        o.celery_brokers = args.celery_brokers.clone();
    })?;
    let filter = EnvFilter::try_new(&config.log)
        .map_err(|e| anyhow::anyhow!("invalid setting log {:?}: {e}", config.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(super::colour_on(std::io::IsTerminal::is_terminal(
            &std::io::stderr(),
        )))
        .with_writer(std::io::stderr)
        .init();

    vigie_server::run(config, shutdown_signal(), |started| {
        println!(
            "Vigie {} is ready in {} ms",
            env!("CARGO_PKG_VERSION"),
            started.ready_in.as_millis()
        );
        println!("  UI:          {}", started.url);
        println!("  Storage:     {}", started.storage);
        if let Some(instance) = &started.instance {
            println!("  Instance:    {instance}");
        }
        if let Some(url) = &started.setup_url {
            println!("  First run:   open {url}");
            println!("               to create the admin account (this link works once)");
        }
        if let Some((project, dsn)) = &started.dsn {
            println!("  Sentry DSN:  {dsn}  (project \"{project}\")");
        }
        println!("Press Ctrl-C to stop.");
    })
    .await?;
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, the two ways a person or a service manager stops us.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
