//! `prsnl db copy --from URL --to URL [--force]`: the database into another database of
//! either kind (see `keeping::copy_database`); the media root is not touched.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::backup::failed;
use super::people::{Failed, finish};
use crate::db::{Backend, Db};
use crate::keeping;
use crate::settings::{DatabaseSettings, Secret, Settings};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every row into another database (SQLite or PostgreSQL), for a move between them.
    /// Stop the service first: what it writes after the copy began is not copied.
    Copy {
        /// The database to read: sqlite://PATH or postgres://… (default: database.url).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The database to write; it is created and migrated, and must hold no rows.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Replace the rows the target holds.
        #[arg(long)]
        force: bool,
    },
}

pub async fn db(settings: &Settings, command: DbCommand) -> ExitCode {
    let DbCommand::Copy { from, to, force } = command;
    finish("db copy", copy(settings, from, to, force).await)
}

async fn copy(
    settings: &Settings,
    from: Option<String>,
    to: String,
    force: bool,
) -> Result<(), Failed> {
    let source = match from {
        Some(url) => database(settings, url)?,
        None => settings.database.clone(),
    };
    let target = database(settings, to)?;
    if same_database(&source, &target) {
        return Err(Failed("--from and --to name the same database".into(), 2));
    }
    if let Some(file) = sqlite_file(source.url.expose())
        && !file.is_file()
    {
        return Err(Failed(
            format!("there is no SQLite database at {}", file.display()),
            1,
        ));
    }
    let from = Db::connect(&source).await?;
    let to = Db::connect(&target).await?;
    let report = keeping::copy_database(&from, &to, force, &std::env::temp_dir())
        .await
        .map_err(failed)?;
    from.close().await;
    to.close().await;
    let kind = |b: Backend| match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let summary: Vec<String> = report
        .rows
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(table, n)| format!("{n} {table}"))
        .collect();
    println!(
        "copied {} ({}) into {} ({}): {} in {:.1} s",
        source.redacted_url(),
        kind(report.from),
        target.redacted_url(),
        kind(report.to),
        if summary.is_empty() {
            "no rows".to_string()
        } else {
            summary.join(", ")
        },
        report.seconds
    );
    println!(
        "point database.url at the new database (for example PRSNL_DATABASE__URL) before the \
         service starts again; sign-in sessions were not copied"
    );
    Ok(())
}

fn database(settings: &Settings, url: String) -> Result<DatabaseSettings, Failed> {
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err(Failed(
            "a database URL is sqlite://PATH or postgres://USER[:PASS]@HOST[:PORT]/DB".into(),
            2,
        ));
    }
    Ok(DatabaseSettings {
        url: Secret::new(url),
        ..settings.database.clone()
    })
}

/// The file of a `sqlite:` URL.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
}

fn same_database(a: &DatabaseSettings, b: &DatabaseSettings) -> bool {
    match (sqlite_file(a.url.expose()), sqlite_file(b.url.expose())) {
        (Some(x), Some(y)) => {
            x == y || matches!((x.canonicalize(), y.canonicalize()), (Ok(x), Ok(y)) if x == y)
        }
        (None, None) => a.url.expose() == b.url.expose(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://./data/prsnl.db?mode=rwc"),
            Some(PathBuf::from("./data/prsnl.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:/var/x.db"),
            Some(PathBuf::from("/var/x.db"))
        );
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }
}
