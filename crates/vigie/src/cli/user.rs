//! `vigie user add|passwd|list`.

use super::{print_table, StorageArgs};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal};
use vigie_core::Role;
use vigie_server::accounts::manage;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is asked for, or read from standard input with --password-stdin.
    Add {
        /// Username (letters, digits, '.', '_', '-', '@')
        username: String,
        /// admin (can change settings) or viewer (can look)
        #[arg(long, default_value = "viewer")]
        role: Role,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Set a user's password (their sessions end).
    Passwd {
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Args, Debug)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input (for scripts)
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArgs {
    fn read(&self) -> anyhow::Result<String> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            return Ok(line.trim_end_matches(['\r', '\n']).to_string());
        }
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for a password: pipe it in with --password-stdin");
        }
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat it: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        Ok(first)
    }
}

pub async fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            username,
            role,
            password,
            storage,
        } => {
            let password = password.read()?;
            let (_, store) = storage.open().await?;
            let user = manage::create_user(store.as_ref(), &username, &password, role).await?;
            store.close().await;
            println!("added user {} ({})", user.username, user.role);
        }
        UserCommand::Passwd {
            username,
            password,
            storage,
        } => {
            let (_, store) = storage.open().await?;
            let user = manage::user_by_name(store.as_ref(), &username).await?;
            let password = password.read()?;
            manage::set_password(store.as_ref(), user.id, &password).await?;
            store.close().await;
            println!(
                "password of {} changed; their sessions have ended",
                user.username
            );
        }
        UserCommand::List { storage } => {
            let (_, store) = storage.open().await?;
            let users = store.list_users().await?;
            store.close().await;
            if users.is_empty() {
                println!("no users yet: run `vigie serve` and open its setup address, or `vigie user add NAME --role admin`");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.id.to_string(),
                        u.username.clone(),
                        u.role.to_string(),
                        u.created_at.to_rfc3339(),
                    ]
                })
                .collect();
            print_table(&["ID", "USERNAME", "ROLE", "CREATED"], &rows);
        }
    }
    Ok(())
}
