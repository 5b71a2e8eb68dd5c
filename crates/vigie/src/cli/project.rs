//! `vigie project list|create`.

use super::{print_table, StorageArgs};
use clap::Subcommand;
use vigie_server::accounts::manage;

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// List projects with their DSNs.
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Create a project and print its DSN.
    Create {
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// Where the server answers: the address it announced when it last started on this data
/// (whatever `--listen` it was given), else what the configuration says.
async fn base_url(config: &vigie_server::Config, store: &dyn vigie_store::Store) -> String {
    if let Ok(Some(url)) = manage::remembered_base_url(store).await {
        return url;
    }
    match config.listen_addr() {
        Ok(addr) => config.base_url(addr),
        Err(_) => config.public_url.clone(),
    }
}

pub async fn run(cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::List { storage } => {
            let (config, store) = storage.open().await?;
            let projects = store.list_projects().await?;
            let base = base_url(&config, store.as_ref()).await;
            store.close().await;
            let rows: Vec<Vec<String>> = projects
                .iter()
                .map(|p| {
                    let dsn = vigie_server::state::project_dsn(&base, p);
                    vec![p.id.to_string(), p.name.clone(), dsn]
                })
                .collect();
            print_table(&["ID", "NAME", "DSN"], &rows);
        }
        ProjectCommand::Create { name, storage } => {
            let (config, store) = storage.open().await?;
            let project = manage::create_project(store.as_ref(), &name).await?;
            let base = base_url(&config, store.as_ref()).await;
            store.close().await;
            println!("created project {} \"{}\"", project.id, project.name);
            println!("DSN: {}", vigie_server::state::project_dsn(&base, &project));
        }
    }
    Ok(())
}
