//! `vigie project list|create`.

use super::{print_table, StorageArgs};
use clap::Subcommand;
use vigie_server::manage;

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

/// The DSN as the server would show it: from `public_url`, or the configured listen address.
fn dsn(config: &vigie_server::Config, project: &vigie_core::Project) -> String {
    let base = match config.listen_addr() {
        Ok(addr) => config.base_url(addr),
        Err(_) => config.public_url.clone(),
    };
    vigie_server::state::project_dsn(&base, project)
}

pub async fn run(cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::List { storage } => {
            let (config, store) = storage.open().await?;
            let projects = store.list_projects().await?;
            store.close().await;
            let rows: Vec<Vec<String>> = projects
                .iter()
                .map(|p| vec![p.id.to_string(), p.name.clone(), dsn(&config, p)])
                .collect();
            print_table(&["ID", "NAME", "DSN"], &rows);
        }
        ProjectCommand::Create { name, storage } => {
            let (config, store) = storage.open().await?;
            let project = manage::create_project(store.as_ref(), &name).await?;
            store.close().await;
            println!("created project {} \"{}\"", project.id, project.name);
            println!("DSN: {}", dsn(&config, &project));
        }
    }
    Ok(())
}
