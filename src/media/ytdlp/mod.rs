//! yt-dlp: the downloader for everything that is not a plain file on a plain server.
//!
//! yt-dlp runs with a fixed argument list (THREATS SUB-01/02): no user-controlled option
//! exists, config files and plugins are ignored, the URL comes after `--`, and the output name
//! is fixed inside the job's own directory. One process does everything: it prints the info
//! JSON before downloading (so playlists, live streams and oversize items are refused and the
//! process killed without paying yt-dlp's start-up twice), then progress lines, then the final
//! path. Its own `--max-filesize` is not trusted (THREATS fact 2): we watch the bytes on disk
//! and kill the process group past the budget.
//!
//! This file owns the request and result types and the module's public face; each step lives
//! in its own file: `argv` (the fixed argument list), `lines` (what yt-dlp prints on stdout),
//! `refusals` (targets refused from their info JSON), `output` (the one finished file and its
//! safety rules), `stderr` (why a run failed, as an error code) and `run` (one download under
//! the byte budget and the deadline). Nothing outside this folder reaches past these
//! re-exports.

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::source_meta::SourceMeta;
use crate::domain::subtitle_track::AutoLang;

use crate::domain::CaptureUrl;

mod argv;
pub mod install;
mod launcher;
mod lines;
mod output;
mod refusals;
pub mod release;
mod run;
mod stderr;
pub mod subtitle_run;

pub use argv::argv;
pub use lines::{Line, VideoInfo, parse_line};
pub use output::{ALLOWED_EXTENSIONS, find_output};
pub use refusals::check_info;
pub use run::{Outcome, download};
pub use stderr::{classify_failure, cookie_problem};
pub use subtitle_run::{AUTO_DIR, SUBTITLE_DIR};

/// Everything one download needs.
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub ytdlp: PathBuf,
    pub ffmpeg: PathBuf,
    pub url: CaptureUrl,
    /// The attempt's own directory; created by the caller, empty.
    pub work_dir: PathBuf,
    /// Name of the output file without extension (the job id).
    pub file_stem: String,
    pub max_bytes: u64,
    pub max_duration_secs: u64,
    pub socket_timeout_secs: u64,
    pub timeout: Duration,
    /// Egress guard every connection goes through (`http://user:pass@127.0.0.1:port`).
    pub proxy: Option<String>,
    /// A copy of the platform's cookies file, in the work directory.
    pub cookies: Option<PathBuf>,
    /// The tallest picture to prefer (`download.max_height`); `None`: the tallest there is.
    pub max_height: Option<u32>,
    /// Also fetch the author's subtitles, into `subs/` of the work directory (by a second,
    /// short run: `subtitle_run`).
    pub subtitles: bool,
    /// Automatic captions wanted (fetched by the same second run, into `subs/auto/`).
    pub auto_captions: Vec<AutoLang>,
}

/// A finished download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub title: Option<String>,
    /// What the source said beyond the title (empty for a direct file); boxed, as most
    /// messages carrying a download never look at it.
    pub source_meta: Box<SourceMeta>,
    /// The picture height the source announced for what it sent (throttle detection).
    pub announced_height: Option<u32>,
}
