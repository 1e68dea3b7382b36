//! PRSNL vault: a self-hosted service that captures videos from social platforms and keeps
//! them playable forever. See ARCHITECTURE.md for the map of this crate.

pub mod actors;
pub mod app;
pub mod bot;
pub mod cli;
pub mod clock;
pub mod context;
pub mod db;
pub mod domain;
pub mod faults;
pub mod http;
pub mod intake;
pub mod keeping;
pub mod media;
pub mod metrics;
pub mod net;
pub mod people;
pub mod settings;
pub mod storage;
pub mod sys;
pub mod telemetry;
pub mod watch;

pub use app::{App, Exit, StartOptions};
pub use settings::Settings;
