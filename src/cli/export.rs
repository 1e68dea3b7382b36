//! `prsnl export [DIR] [--copy] [--user NAME]`: the vault as folders and names people
//! understand, brought up to date on every run (see `keeping::export`).

use std::path::PathBuf;
use std::process::ExitCode;

use super::backup::{failed, open_media, open_vault};
use super::people::{Failed, finish, usage};
use crate::keeping::{self, ExportOptions};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Where to write (default: export.directory).
    pub directory: Option<PathBuf>,
    /// Independent copies instead of read-only hard links (for tools that edit files in place;
    /// costs the space of every file).
    #[arg(long)]
    pub copy: bool,
    /// Only this user's items.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Export into a directory that holds another selection (all items, or another user's):
    /// the files of items outside this one are removed from it.
    #[arg(long)]
    pub force: bool,
}

pub async fn export(settings: &Settings, args: ExportArgs) -> ExitCode {
    finish("export", run(settings, args).await)
}

async fn run(settings: &Settings, args: ExportArgs) -> Result<(), Failed> {
    let db = open_vault(settings).await?;
    let owner = match &args.user {
        // An unknown name is a usage error, not a failed export.
        Some(name) => match crate::db::users::by_name(&db, name).await? {
            Some(user) => Some(user.id.to_string()),
            None => {
                return Err(usage(format!(
                    "there is no user named {}",
                    name.escape_debug()
                )));
            }
        },
        None => None,
    };
    let media = open_media(settings)?;
    let directory = args.directory.unwrap_or(settings.export.directory.clone());
    let options = ExportOptions {
        pattern: settings.export.pattern.clone(),
        copy: args.copy,
        owner,
        force: args.force,
        keep_out: vec![(
            "backup.directory".to_string(),
            settings.backup.directory.clone(),
        )],
    };
    let report = keeping::export(&db, &media, &directory, &options)
        .await
        .map_err(failed)?;
    db.close().await;
    for path in &report.missing {
        eprintln!("warning: {path}: the vault has no such file; not exported");
    }
    for path in &report.edited {
        eprintln!("kept as it is: {path}: changed since the export wrote it, so it is yours now");
    }
    for conflict in &report.conflicts {
        eprintln!("left alone: {conflict}");
    }
    for failure in &report.failed {
        eprintln!("failed: {failure}");
    }
    println!(
        "exported {} items to {}: {} linked, {} copied, {} written, {} unchanged, {} removed",
        report.items,
        report.directory.display(),
        report.linked,
        report.copied,
        report.written,
        report.unchanged,
        report.removed
    );
    match (report.failed.len(), report.conflicts.len()) {
        (0, 0) => Ok(()),
        (0, conflicts) => Err(Failed(
            format!("{conflicts} files were left alone (see above); the rest is up to date"),
            1,
        )),
        (failed, _) => Err(Failed(
            format!("{failed} files could not be written (see above)"),
            1,
        )),
    }
}
