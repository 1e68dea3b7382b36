//! `prsnl token …`: API tokens, on the database directly (a running server sees a
//! revocation at its next request).

use std::process::ExitCode;

use clap::Subcommand;

use super::people::{Failed, finish, named, open, usage};
use crate::settings::Settings;
use crate::{clock, db};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; it is printed once and stored only as a hash.
    Create {
        name: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List tokens (of one user, or everyone's); never the tokens themselves.
    List { name: Option<String> },
    /// Revoke a token by its id (from `token list`); it stops working at once.
    Revoke { id: String },
}

pub async fn token(settings: &Settings, command: TokenCommand) -> ExitCode {
    finish("token", run_token(settings, command).await)
}

async fn run_token(settings: &Settings, command: TokenCommand) -> Result<(), Failed> {
    let db = open(settings).await?;
    match command {
        TokenCommand::Create { name, label } => {
            if label.chars().count() > 100 || label.chars().any(char::is_control) {
                return Err(usage(
                    "a label has at most 100 characters and no control characters",
                ));
            }
            let user = named(&db, &name).await?;
            let issued = crate::people::issue_token(&db, user.id, &label).await?;
            eprintln!(
                "token {} for {} (shown once; only its hash is stored):",
                issued.id, user.name
            );
            println!("{}", issued.token);
        }
        TokenCommand::List { name } => {
            let user = match name {
                Some(name) => Some(named(&db, &name).await?.id),
                None => None,
            };
            println!(
                "{:<20} {:<24} {:<20} {:<20} {:<20} LABEL",
                "ID", "USER", "CREATED", "LAST USED", "REVOKED"
            );
            let when = |t: Option<crate::domain::Timestamp>| t.map_or("-".into(), clock::rfc3339);
            for token in db::tokens::list(&db, user).await? {
                println!(
                    "{:<20} {:<24} {:<20} {:<20} {:<20} {}",
                    token.id,
                    token.user_name,
                    clock::rfc3339(token.created_at),
                    when(token.last_used_at),
                    when(token.revoked_at),
                    token.label.escape_debug()
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !db::tokens::revoke(&db, &id, clock::now()).await? {
                return Err(Failed(format!("no live token {}", id.escape_debug()), 1));
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}
