//! The integration tests: one binary, real tools, real databases.
//!
//! `helpers::spawn_app()` starts a complete app on a fresh database with its own media root and
//! fixture server. Scenarios written with `on_both_backends!` run on SQLite and, when
//! `PRSNL_TEST_POSTGRES_URL` is set, on PostgreSQL.

mod exposition;
mod fixture_server;
mod fixtures;
mod helpers;
mod prometheus_tools;

mod actor_crashes;
mod architecture;
mod backups;
mod backups_across;
mod backups_scheduled;
mod capture;
mod cli;
mod crash_loop;
mod disk_space;
mod export;
mod http_api;
mod images;
mod intake_races;
mod large_files;
mod observability;
mod people;
mod people_doors;
mod platforms;
mod queue;
mod quotas;
mod search;
mod search_window;
mod shared_files;
mod source_metadata;
mod ssrf;
mod streaming;
mod subtitles;
mod supervision;
mod telegram;
mod telegram_fake;
mod tool_freshness;
mod video_api;
mod watch_folder;
mod webhooks;
