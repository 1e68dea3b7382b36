//! The `prsnl` command line: `serve`, `capture`, `doctor`, `tools`, `migrate`, `user`,
//! `token`, `backup`, `restore`, `db`, `export`.

mod backup;
mod capture;
mod db_copy;
mod doctor;
mod export;
mod people;
mod serve;
mod tokens;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::settings::{LogFormat, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "prsnl",
    version,
    about = "PRSNL vault: capture videos and keep them playable forever"
)]
pub struct Cli {
    /// A TOML file whose keys override the defaults and PRSNL_* environment variables.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format (overrides log.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: API, queue, downloaders and processing.
    Serve,
    /// Capture one URL and follow it to the end, through a running server or on its own.
    Capture {
        url: String,
        /// Base URL of a running server (default: the configured listen address if a server
        /// answers there; otherwise the capture runs here, on the local database).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// Bearer token for a server (`prsnl token create NAME`).
        #[arg(long, env = "PRSNL_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Without a server: the user who owns the capture (default: the first admin).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// Check the tools, the database and the media root; non-zero exit on a failed check.
    Doctor,
    /// Manage the external tools.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users (on the database directly, with or without a running server).
    #[command(subcommand)]
    User(people::UserCommand),
    /// Manage API tokens (on the database directly).
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Snapshots of the database and the media: create, list, verify.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Put a snapshot back into an empty database and media root (either database kind).
    Restore {
        /// A snapshot's path, or its name in backup.directory.
        snapshot: String,
        /// Restore even though the target holds rows or media files: its rows are replaced.
        #[arg(long)]
        force: bool,
    },
    /// The database itself: copy it into another database (SQLite to PostgreSQL or back).
    #[command(subcommand)]
    Db(db_copy::DbCommand),
    /// Write (or bring up to date) a copy of the vault that needs no app to read: folders and
    /// names people understand, metadata beside each video.
    Export(export::ExportArgs),
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Upgrade yt-dlp with the pip of the Python that runs download.ytdlp_path; refuses an
    /// install pip does not manage or this user cannot write.
    Update,
}

/// Runs the parsed command line; the exit code tells the shell how it went.
pub fn run(cli: Cli) -> ExitCode {
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("prsnl: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(format) = cli.log_format {
        settings.log.format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    crate::telemetry::init(&settings.log);
    crate::net::install_tls_provider();
    // Four arenas per core, at least eight: half glibc's own limit, so private memory stops
    // growing with the blocking pool's thread count, yet enough that the runtime's workers
    // and blocking threads rarely wait on each other's arena. One per core was measured to
    // cost 64 KiB ranges a quarter more CPU each (bench/stream, 2 cores: 80-93 µs against
    // 61-65 µs per request) for no memory saved (RssAnon 6-7 MB either way).
    if !matches!(cli.command, Command::Serve) {
        crate::sys::die_quietly_on_closed_stdout();
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    crate::sys::cap_heap_arenas((4 * cores).max(8));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("prsnl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(settings).await,
            Command::Capture {
                url,
                server,
                token,
                user,
            } => capture::run(settings, &url, server, token, user).await,
            Command::User(command) => people::user(&settings, command).await,
            Command::Token(command) => tokens::token(&settings, command).await,
            Command::Backup(command) => backup::backup(&settings, command).await,
            Command::Db(command) => db_copy::db(&settings, command).await,
            Command::Export(args) => export::export(&settings, args).await,
            Command::Restore { snapshot, force } => {
                backup::restore(&settings, &snapshot, force).await
            }
            Command::Doctor => doctor::run(&settings).await,
            Command::Tools(ToolsCommand::Update) => tools::update(&settings).await,
            Command::Migrate => migrate(&settings).await,
        }
    })
}

async fn migrate(settings: &Settings) -> ExitCode {
    let result = async {
        let db = crate::db::Db::connect(&settings.database).await?;
        db.migrate().await?;
        db.close().await;
        Ok::<_, crate::db::DbError>(())
    }
    .await;
    match result {
        Ok(()) => {
            println!(
                "database {} is up to date",
                settings.database.redacted_url()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("prsnl migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
