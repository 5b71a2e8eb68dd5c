//! `vigie token create|list|revoke`.

use super::{print_table, StorageArgs};
use clap::Subcommand;
use vigie_core::Scope;
use vigie_server::accounts::manage;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token and print it (only the token goes to stdout: `T=$(vigie token create …)`).
    Create {
        /// A name to recognise the token by, e.g. "ci"
        #[arg(long)]
        name: String,
        /// read (query only) or admin (full control)
        #[arg(long, default_value = "read")]
        scope: Scope,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List API tokens (never their secrets).
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke an API token by its id (see `vigie token list`).
    Revoke {
        id: i64,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            name,
            scope,
            storage,
        } => {
            let (_, store) = storage.open().await?;
            let (token, secret) = manage::create_token(store.as_ref(), &name, scope).await?;
            store.close().await;
            eprintln!(
                "created token {} \"{}\" with {} scope; it is shown only now:",
                token.id, token.name, token.scope
            );
            println!("{secret}");
        }
        TokenCommand::List { storage } => {
            let (_, store) = storage.open().await?;
            let tokens = store.list_api_tokens().await?;
            store.close().await;
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.scope.to_string(),
                        format!("{}…", t.prefix),
                        t.created_at.to_rfc3339(),
                        t.last_used_at
                            .map_or("never".to_string(), |t| t.to_rfc3339()),
                    ]
                })
                .collect();
            print_table(
                &["ID", "NAME", "SCOPE", "TOKEN", "CREATED", "LAST USED"],
                &rows,
            );
        }
        TokenCommand::Revoke { id, storage } => {
            let (_, store) = storage.open().await?;
            let result = manage::revoke_token(store.as_ref(), id).await;
            store.close().await;
            result.map_err(|_| {
                anyhow::anyhow!("no API token with id {id}; see `vigie token list`")
            })?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}
