//! `prsnl user …`: people, on the database directly
//! (with or without a running server; a running server sees every change at its next
//! request, since it looks credentials up each time).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::clock;
use crate::db::people::{RemovalRefused, remove_user};
use crate::db::users::{NewUser, User};
use crate::db::{self, Db, DbError};
use crate::domain::people::{self as rules, Role, format_size};
use crate::settings::Settings;
use crate::storage::MediaRoot;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; asks for a password (or reads one line from stdin with --password-stdin).
    Add {
        name: String,
        /// An admin sees every item and manages users, tokens and storage.
        #[arg(long)]
        admin: bool,
        /// Storage quota: bytes, or a size like 20GiB or 500MB.
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "no_password")]
        password_stdin: bool,
        /// No password: the user signs in with tokens only (`prsnl token create`).
        #[arg(long)]
        no_password: bool,
    },
    /// Set a user's password (their open sessions end).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their role, quota and usage.
    List,
    /// Change a user's quota or role.
    Set {
        name: String,
        /// A size like 20GiB, or `none` for no quota.
        #[arg(long, value_name = "SIZE|none")]
        quota: Option<String>,
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
    },
    /// Remove a user; refused while they own items unless told what to do with them.
    Remove {
        name: String,
        /// Delete their items and files.
        #[arg(long, conflicts_with = "transfer_to")]
        delete_items: bool,
        /// Give their items to another user.
        #[arg(long, value_name = "OTHER")]
        transfer_to: Option<String>,
    },
    /// Link a Telegram account (numeric user id) to a user: what it sends to the bot is theirs.
    LinkTelegram {
        name: String,
        /// The Telegram user id; omit with --unlink.
        #[arg(required_unless_present = "unlink")]
        telegram_id: Option<i64>,
        #[arg(long)]
        unlink: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Member,
}

/// A failure of a verb: what to print, and the exit code.
pub(super) struct Failed(pub(super) String, pub(super) u8);

impl From<DbError> for Failed {
    fn from(e: DbError) -> Self {
        Failed(format!("database: {e}"), 1)
    }
}

pub(super) fn usage(message: impl Into<String>) -> Failed {
    Failed(message.into(), 2)
}

pub(super) async fn open(settings: &Settings) -> Result<Db, Failed> {
    let db = Db::connect(&settings.database).await?;
    db.migrate().await?;
    crate::people::upgrade(&db, &settings.security.api_tokens).await?;
    Ok(db)
}

pub(super) async fn named(db: &Db, name: &str) -> Result<User, Failed> {
    db::users::by_name(db, name)
        .await?
        .ok_or_else(|| Failed(format!("there is no user named {}", name.escape_debug()), 1))
}

pub(super) fn finish(verb: &str, result: Result<(), Failed>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed(message, code)) => {
            eprintln!("prsnl {verb}: {message}");
            ExitCode::from(code)
        }
    }
}

/// Reads a new password: one line of stdin, or asked twice on the terminal.
fn read_password(from_stdin: bool) -> Result<String, Failed> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failed(format!("cannot read the password: {e}"), 1))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        let first = rpassword::prompt_password("password: ")
            .map_err(|e| Failed(format!("cannot read the password: {e}"), 1))?;
        let again = rpassword::prompt_password("again: ")
            .map_err(|e| Failed(format!("cannot read the password: {e}"), 1))?;
        if first != again {
            return Err(Failed("the passwords differ".into(), 1));
        }
        first
    };
    rules::check_password(&password).map_err(|e| usage(e.to_string()))?;
    Ok(password)
}

fn quota_arg(text: &str) -> Result<Option<u64>, Failed> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    rules::parse_size(text).map(Some).map_err(usage)
}

pub async fn user(settings: &Settings, command: UserCommand) -> ExitCode {
    finish("user", run_user(settings, command).await)
}

async fn run_user(settings: &Settings, command: UserCommand) -> Result<(), Failed> {
    match command {
        UserCommand::Add {
            name,
            admin,
            quota,
            password_stdin,
            no_password,
        } => {
            rules::check_name(&name).map_err(|e| usage(e.to_string()))?;
            let quota = quota.as_deref().map(quota_arg).transpose()?.flatten();
            let password = (!no_password)
                .then(|| read_password(password_stdin))
                .transpose()?;
            let db = open(settings).await?;
            let new = NewUser {
                name: &name,
                role: if admin { Role::Admin } else { Role::Member },
                password_hash: None,
                quota_bytes: quota,
            };
            let user = db::users::insert(&db, &new, clock::now())
                .await?
                .ok_or_else(|| Failed(format!("a user named {name} exists already"), 1))?;
            if let Some(password) = password {
                crate::people::set_password(&db, user.id, &password).await?;
            }
            println!(
                "added {} ({}, id {})",
                user.name,
                user.role.as_str(),
                user.id
            );
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let db = open(settings).await?;
            let user = named(&db, &name).await?;
            let password = read_password(password_stdin)?;
            crate::people::set_password(&db, user.id, &password).await?;
            println!("password of {} changed; their sessions ended", user.name);
        }
        UserCommand::List => {
            let db = open(settings).await?;
            println!(
                "{:<24} {:<7} {:>10} {:>12} {:>7}  {:<8} ID",
                "NAME", "ROLE", "QUOTA", "USAGE", "ITEMS", "PASSWORD"
            );
            for user in db::users::list(&db).await? {
                let usage = db::quota::usage_of(&db, user.id).await?;
                let items = db::people::items_of(&db, user.id).await?;
                println!(
                    "{:<24} {:<7} {:>10} {:>12} {:>7}  {:<8} {}",
                    user.name,
                    user.role.as_str(),
                    user.quota_bytes.map_or("none".into(), format_size),
                    format_size(usage),
                    items,
                    if user.has_password { "yes" } else { "no" },
                    user.id
                );
            }
        }
        UserCommand::Set { name, quota, role } => {
            if quota.is_none() && role.is_none() {
                return Err(usage("nothing to set: give --quota or --role"));
            }
            let quota = quota.as_deref().map(quota_arg).transpose()?;
            let db = open(settings).await?;
            let user = named(&db, &name).await?;
            if let Some(quota) = quota {
                db::users::set_quota(&db, user.id, quota).await?;
                println!(
                    "quota of {}: {}",
                    user.name,
                    quota.map_or("none".into(), format_size)
                );
            }
            if let Some(role) = role {
                let role = match role {
                    RoleArg::Admin => Role::Admin,
                    RoleArg::Member => Role::Member,
                };
                db::people::set_role(&db, &user, role)
                    .await
                    .map_err(refused)?;
                println!("{} is now {}", user.name, role.as_str());
            }
        }
        UserCommand::Remove {
            name,
            delete_items,
            transfer_to,
        } => {
            let db = open(settings).await?;
            let user = named(&db, &name).await?;
            if let Some(other) = transfer_to {
                let to = named(&db, &other).await?;
                if to.id == user.id {
                    return Err(usage("cannot transfer a user's items to themselves"));
                }
                let (moved, left) = db::people::transfer_items(&db, user.id, to.id).await?;
                println!("moved {moved} items of {} to {}", user.name, to.name);
                if left > 0 {
                    println!(
                        "{left} items stayed: {} has the same videos already",
                        to.name
                    );
                }
            }
            if delete_items {
                let media = MediaRoot::open(&settings.storage.media_root)
                    .map_err(|e| Failed(format!("media root: {e}"), 1))?;
                let deleted = delete_all_items(&db, &media, &user).await?;
                println!("deleted {deleted} items of {}", user.name);
            }
            remove_user(&db, &user).await.map_err(refused)?;
            println!("removed {}", user.name);
        }
        UserCommand::LinkTelegram {
            name,
            telegram_id,
            unlink,
        } => {
            let db = open(settings).await?;
            let user = named(&db, &name).await?;
            let account = if unlink { None } else { telegram_id };
            if !db::users::set_telegram(&db, user.id, account).await? {
                return Err(Failed(
                    "that Telegram account is linked to another user".into(),
                    1,
                ));
            }
            match account {
                Some(account) => {
                    println!("Telegram account {account} now speaks for {}", user.name)
                }
                None => println!("{} has no Telegram account any more", user.name),
            }
        }
    }
    Ok(())
}

fn refused(e: RemovalRefused) -> Failed {
    match e {
        RemovalRefused::Db(e) => e.into(),
        other => Failed(other.to_string(), 1),
    }
}

/// Deletes every item of `user`: rows first (one transaction each), then the files no other
/// item shares. A server running at the same time sees the rows gone (its attempts lose
/// their lease); anything left behind is an orphan for its sweep.
async fn delete_all_items(db: &Db, media: &MediaRoot, user: &User) -> Result<u64, Failed> {
    let faults = crate::faults::Faults::default();
    let mut deleted = 0;
    for id in db::items::ids_of_owner(db, &user.id.to_string()).await? {
        let Some(gone) =
            db::removal::delete_item(db, id, Vec::new(), &faults, crate::clock::now()).await?
        else {
            continue;
        };
        for (file, _) in gone.files() {
            if let Some(path) = media.resolve(&file)
                && let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                eprintln!("cannot remove {}: {e}", path.display());
            }
        }
        deleted += 1;
    }
    Ok(deleted)
}
