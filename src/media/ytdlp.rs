//! yt-dlp: the downloader for everything that is not a plain file on a plain server.
//!
//! yt-dlp runs with a fixed argument list (THREATS SUB-01/02): no user-controlled option
//! exists, config files and plugins are ignored, the URL comes after `--`, and the output name
//! is fixed inside the job's own directory. One process does everything: it prints the info
//! JSON before downloading (so playlists, live streams and oversize items are refused and the
//! process killed without paying yt-dlp's start-up twice), then progress lines, then the final
//! path. Its own `--max-filesize` is not trusted (THREATS fact 2): we watch the bytes on disk
//! and kill the process group past the budget.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LinesCodec};

use super::process::{STDERR_TAIL, Tool, read_tail};
use crate::domain::text;
use crate::domain::{CaptureUrl, ErrorCode, JobError, Progress, Stage};

const INFO_PREFIX: &str = "PRSNL-INFO ";
const PROGRESS_PREFIX: &str = "PRSNL-PROGRESS ";
const FILE_PREFIX: &str = "PRSNL-FILE ";

/// Longest stdout line read; the info JSON of a YouTube video with all its formats is a few
/// hundred KiB.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// How often the job directory is measured against the byte budget.
const BUDGET_POLL: Duration = Duration::from_millis(100);

/// Extensions a download may have. Everything else is refused before ffprobe sees it.
pub const ALLOWED_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "3gp", "3g2", "webm", "mkv", "avi", "flv", "ts",
];

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
}

/// A finished download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub title: Option<String>,
    /// The picture height the source announced for what it sent (throttle detection).
    pub announced_height: Option<u32>,
}

/// The argument list: fixed options, then `--`, then the URL. Nothing else, ever.
pub fn argv(req: &DownloadRequest) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--ignore-config",
        "--no-plugin-dirs",
        "--no-playlist",
        "--no-simulate",
        "--no-cache-dir",
        "--no-mtime",
        "--no-write-info-json",
        "--no-write-thumbnail",
        "--color",
        "no_color",
        "--newline",
        "--progress",
        "--progress-template",
        "download:PRSNL-PROGRESS %(progress.downloaded_bytes)s %(progress.total_bytes)s %(progress.total_bytes_estimate)s",
        "--print",
        "video:PRSNL-INFO %()j",
        "--print",
        "after_move:PRSNL-FILE %(filepath)s",
        // Prefer what browsers play without re-encoding, up to 1080p.
        "--format-sort",
        "res:1080,vcodec:h264,acodec:aac",
        "--merge-output-format",
        "mp4/mkv",
        "--hls-prefer-native",
        "--retries",
        "3",
        "--fragment-retries",
        "3",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push("--socket-timeout".into());
    args.push(req.socket_timeout_secs.to_string().into());
    args.push("--ffmpeg-location".into());
    args.push(req.ffmpeg.clone().into_os_string());
    args.push("--paths".into());
    let mut home = OsString::from("home:");
    home.push(&req.work_dir);
    args.push(home);
    args.push("--paths".into());
    let mut temp = OsString::from("temp:");
    temp.push(&req.work_dir);
    args.push(temp);
    args.push("--output".into());
    args.push(format!("{}.%(ext)s", req.file_stem).into());
    if let Some(proxy) = &req.proxy {
        args.push("--proxy".into());
        args.push(proxy.into());
    }
    if let Some(cookies) = &req.cookies {
        args.push("--cookies".into());
        args.push(cookies.clone().into_os_string());
    }
    args.push("--".into());
    args.push(req.url.as_str().into());
    args
}

/// One line of yt-dlp's stdout.
#[derive(Debug)]
pub enum Line {
    Info(Box<VideoInfo>),
    Progress { downloaded: u64, total: Option<u64> },
    File(PathBuf),
    Other,
}

/// The parts of yt-dlp's info JSON we act on.
#[derive(Debug, Default, Deserialize)]
pub struct VideoInfo {
    pub title: Option<String>,
    #[serde(rename = "_type")]
    pub kind: Option<String>,
    pub duration: Option<f64>,
    pub filesize: Option<f64>,
    pub filesize_approx: Option<f64>,
    pub is_live: Option<bool>,
    pub live_status: Option<String>,
    pub playlist_index: Option<u64>,
    pub n_entries: Option<u64>,
    /// Height of the format(s) yt-dlp chose.
    #[serde(default, deserialize_with = "lenient_height")]
    pub height: Option<u32>,
}

/// yt-dlp writes heights as integers, but extractors may hand over floats or strings.
fn lenient_height<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value
        .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|h| *h > 0.0)
        .map(|h| h as u32))
}

pub fn parse_line(line: &str) -> Line {
    if let Some(json) = line.strip_prefix(INFO_PREFIX) {
        return match serde_json::from_str(json) {
            Ok(info) => Line::Info(Box::new(info)),
            Err(_) => Line::Other,
        };
    }
    if let Some(rest) = line.strip_prefix(PROGRESS_PREFIX) {
        let mut fields = rest.split_whitespace().map(|f| f.parse::<f64>().ok());
        let downloaded = fields.next().flatten();
        let total = fields.next().flatten();
        let estimate = fields.next().flatten();
        if let Some(downloaded) = downloaded {
            return Line::Progress {
                downloaded: downloaded as u64,
                total: total.or(estimate).map(|t| t as u64),
            };
        }
        return Line::Other;
    }
    if let Some(path) = line.strip_prefix(FILE_PREFIX) {
        return Line::File(PathBuf::from(path));
    }
    Line::Other
}

/// Refuses targets before their bytes are fetched: playlists, live streams, too long, too big.
pub fn check_info(
    info: &VideoInfo,
    max_bytes: u64,
    max_duration_secs: u64,
) -> Result<(), JobError> {
    if info.kind.as_deref() == Some("playlist")
        || info.playlist_index.is_some()
        || info.n_entries.is_some_and(|n| n > 1)
    {
        return Err(JobError::new(
            ErrorCode::PlaylistNotSupported,
            "the URL is a playlist or a page with several videos; submit the link of one video",
        ));
    }
    if info.is_live == Some(true)
        || matches!(info.live_status.as_deref(), Some("is_live" | "is_upcoming"))
    {
        return Err(JobError::new(
            ErrorCode::LiveNotSupported,
            "the URL is a live stream, which has no end to capture",
        ));
    }
    if let Some(duration) = info.duration.filter(|d| *d > max_duration_secs as f64) {
        return Err(JobError::new(
            ErrorCode::TooLong,
            format!("the video lasts {duration:.0} s, longer than the {max_duration_secs} s limit"),
        ));
    }
    if let Some(size) = info
        .filesize
        .or(info.filesize_approx)
        .filter(|s| *s > max_bytes as f64)
    {
        return Err(JobError::too_large(size as u64, max_bytes));
    }
    Ok(())
}

/// What yt-dlp's messages mean, in order of precedence: the first row with a signal in the
/// message wins. Signals are matched case-insensitively. Rate limiting comes first because
/// Instagram words its refusals as "rate-limit reached or login required".
const TAXONOMY: &[(ErrorCode, &str, &[&str])] = &[
    (
        ErrorCode::RateLimited,
        "the platform is limiting or blocking our requests for now",
        &[
            "http error 429",
            "too many requests",
            "rate-limit reached",
            "rate limit",
            "confirm you’re not a bot",
            "confirm you're not a bot",
            "confirm that you're not a bot",
            "unusual traffic",
            "temporarily blocked",
        ],
    ),
    (
        ErrorCode::GeoBlocked,
        "the video is not available in this server's country",
        &[
            "not available in your country",
            "geo restriction",
            "geo-restricted",
            "not made this video available in your country",
            "blocked it in your country",
        ],
    ),
    (
        ErrorCode::LoginRequired,
        "the video can only be watched when signed in; a cookies file for this platform may help",
        &[
            "sign in to confirm your age",
            "login required",
            "requires authentication",
            "only available for registered users",
            "only available to members",
            "members-only",
            "locked behind the login page",
            "you need to log in",
            "age-restricted",
            "inappropriate for some users",
        ],
    ),
    (
        ErrorCode::SourceUnavailable,
        "the video is private, was removed, or is otherwise unavailable",
        &[
            "private video",
            "is private",
            "video unavailable",
            "has been removed",
            "no longer available",
            "account has been terminated",
            "account associated with this video has been terminated",
            "this video does not exist",
            "video not available",
            "no status found with that id",
            "this post is unavailable",
            "content is not available",
            "has been deleted",
            "copyright claim",
        ],
    ),
    (
        ErrorCode::LiveNotSupported,
        "the URL is a live stream or a premiere that has not started",
        &[
            "live event will begin",
            "is live",
            "premieres in",
            "this live stream",
            "is_live",
        ],
    ),
    (
        ErrorCode::UnsupportedUrl,
        "no video could be found at this URL",
        &[
            "unsupported url",
            "no video formats found",
            "no video could be found",
        ],
    ),
    (
        ErrorCode::SourceNotFound,
        "the source answered: not found",
        &["http error 404", "http error 410"],
    ),
    (
        ErrorCode::UpstreamError,
        "the source had a server error or refused a part of the video; this is usually temporary",
        &[
            "http error 500",
            "http error 502",
            "http error 503",
            "http error 504",
            "http error 5",
            "fragment",
            "http error 403",
        ],
    ),
    (
        ErrorCode::Timeout,
        "the source stopped answering",
        &["timed out", "timeout"],
    ),
    (
        ErrorCode::NetworkError,
        "the source could not be reached",
        &[
            "connection refused",
            "connection reset",
            "name or service not known",
            "temporary failure in name resolution",
            "no route to host",
            "network is unreachable",
            "failed to establish",
            "remote end closed",
            "incompleteread",
            "connection aborted",
        ],
    ),
    (
        ErrorCode::DiskFull,
        "media_root is full",
        &["no space left on device"],
    ),
];

fn classify_text(text: &str) -> Option<(ErrorCode, &'static str)> {
    let lower = text.to_lowercase();
    TAXONOMY
        .iter()
        .find(|(_, _, signals)| signals.iter().any(|s| lower.contains(s)))
        .map(|(code, summary, _)| (*code, *summary))
}

/// Classifies a failed run: by the last `ERROR:` line yt-dlp printed, or, when that says
/// nothing known, by any earlier line (a 429 is often reported as a warning first).
pub fn classify_failure(stderr: &str) -> JobError {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("ERROR:"))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("yt-dlp failed without a message");
    let detail = text::clean(line.trim_start_matches("ERROR:").trim(), 400);
    let (code, summary) = classify_text(line)
        .or_else(|| classify_text(stderr))
        .unwrap_or((ErrorCode::DownloadFailed, "the download failed"));
    JobError::new(code, format!("{summary} ({detail})"))
}

/// A complaint of yt-dlp about the cookies file, if it printed one.
pub fn cookie_problem(stderr: &str) -> Option<String> {
    const SIGNALS: [&str; 5] = [
        "cookies are no longer valid",
        "failed to load cookies",
        "netscape format cookies file",
        "could not find cookie",
        "cookies file",
    ];
    stderr
        .lines()
        .find(|line| {
            let lower = line.to_lowercase();
            SIGNALS.iter().any(|s| lower.contains(s))
                && (lower.starts_with("warning") || lower.starts_with("error"))
        })
        .map(|line| text::clean(line, 300))
}

/// Finds the one finished output file of a run, refusing anything a hostile source or
/// template could have produced (THREATS SUB-02): it must be a regular file named
/// `{stem}.{ext}` directly inside `dir`, with an allowed extension.
pub fn find_output(dir: &Path, stem: &str, reported: Option<&Path>) -> Result<PathBuf, JobError> {
    let no_output = |msg: String| JobError::new(ErrorCode::NoOutput, msg);
    let entries = std::fs::read_dir(dir)
        .map_err(|e| no_output(format!("cannot read the work directory: {e}")))?;
    let prefix = format!("{stem}.");
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let unfinished = [".part", ".ytdl", ".temp", ".frag"]
            .iter()
            .any(|s| name.contains(s));
        if name.starts_with(&prefix) && !unfinished {
            found.push(entry.path());
        }
    }
    let path = match found.len() {
        0 => return Err(no_output("yt-dlp finished without producing a file".into())),
        1 => found.remove(0),
        n => {
            return Err(no_output(format!(
                "yt-dlp produced {n} files instead of one"
            )));
        }
    };
    if let Some(reported) = reported
        && reported != path
    {
        return Err(no_output(format!(
            "yt-dlp reported {} but wrote {}",
            reported.display(),
            path.display()
        )));
    }
    let meta = std::fs::symlink_metadata(&path).map_err(|e| no_output(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(JobError::new(
            ErrorCode::InvalidMedia,
            "the download is not a regular file",
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ALLOWED_EXTENSIONS.contains(&ext.as_str()) {
        return Err(JobError::new(
            ErrorCode::InvalidMedia,
            format!(
                "the download is not a video file (type '{}')",
                text::clean(&ext, 20)
            ),
        ));
    }
    Ok(path)
}

/// Bytes under `dir` (one level of subdirectories deep, which is all yt-dlp creates).
async fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![(dir.to_path_buf(), 0u8)];
    while let Some((current, depth)) = stack.pop() {
        let Ok(mut entries) = tokio::fs::read_dir(&current).await else {
            continue;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if meta.is_dir() && depth < 2 {
                stack.push((entry.path(), depth + 1));
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// Runs one download to its end, reporting progress through `on_progress`.
/// How a run ended: the download or why not, and what yt-dlp said about the cookies.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Downloaded, JobError>,
    pub cookie_problem: Option<String>,
}

/// What the stdout of a run told us before it exited.
struct RunEnd {
    status: std::process::ExitStatus,
    title: Option<String>,
    reported: Option<PathBuf>,
    announced_height: Option<u32>,
}

/// Runs one download to its end, reporting progress through `on_progress`.
pub async fn download(
    req: &DownloadRequest,
    on_progress: &(dyn Fn(Progress) + Send + Sync),
) -> Outcome {
    let tool = Tool::new(&req.ytdlp, req.timeout)
        .args(argv(req))
        .in_dir(&req.work_dir);
    let mut running = match tool.spawn() {
        Ok(running) => running,
        Err(e) => {
            return Outcome {
                result: Err(JobError::new(ErrorCode::DownloadFailed, e.to_string())),
                cookie_problem: None,
            };
        }
    };
    let stderr = running.stderr.take().expect("piped");
    let stderr_task = tokio::spawn(read_tail(stderr, STDERR_TAIL));
    let ended = follow_run(req, &mut running, on_progress).await;
    if ended.is_err() {
        running.terminate().await;
    }
    // The pipe closes when the process is gone, so this never waits for long.
    let stderr = stderr_task
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Outcome {
        cookie_problem: cookie_problem(&stderr),
        result: ended.and_then(|end| collect_output(req, end, &stderr)),
    }
}

/// Reads the run's output until it exits, enforcing the byte budget and the deadline.
async fn follow_run(
    req: &DownloadRequest,
    running: &mut crate::media::process::Running,
    on_progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<RunEnd, JobError> {
    let stdout = running.stdout.take().expect("piped");
    let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE));
    let deadline = Instant::now() + req.timeout;
    let mut budget_tick = tokio::time::interval(BUDGET_POLL);
    let (mut title, mut reported, mut announced_height) = (None, None, None);
    loop {
        tokio::select! {
            line = lines.next() => match line {
                None => break,
                Some(Err(_)) => continue, // an over-long or non-UTF-8 line is not ours
                Some(Ok(line)) => match parse_line(&line) {
                    Line::Info(info) => {
                        check_info(&info, req.max_bytes, req.max_duration_secs)?;
                        title = info.title.as_deref().map(|t| text::clean(t, 300)).filter(|t| !t.is_empty());
                        announced_height = info.height;
                    }
                    Line::Progress { downloaded, total } => {
                        // A server announcing more than the budget is refused before its bytes
                        // arrive; one sending more than it announced is stopped as they do.
                        let claimed = total.unwrap_or(0).max(downloaded);
                        if claimed > req.max_bytes {
                            return Err(JobError::too_large(claimed, req.max_bytes));
                        }
                        on_progress(Progress::bytes(Stage::Download, downloaded, total));
                    }
                    Line::File(path) => reported = Some(path),
                    Line::Other => {}
                },
            },
            _ = budget_tick.tick() => {
                let used = dir_bytes(&req.work_dir).await;
                if used > req.max_bytes {
                    return Err(JobError::too_large(used, req.max_bytes));
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(JobError::new(ErrorCode::Timeout, format!("the download ran longer than {} s", req.timeout.as_secs())));
            }
        }
    }
    let status = match tokio::time::timeout_at(deadline, running.child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(JobError::new(ErrorCode::DownloadFailed, e.to_string())),
        Err(_) => {
            return Err(JobError::new(
                ErrorCode::Timeout,
                "yt-dlp did not exit after closing its output",
            ));
        }
    };
    Ok(RunEnd {
        status,
        title,
        reported,
        announced_height,
    })
}

/// After a run: its failure classified, or its one output file checked.
fn collect_output(
    req: &DownloadRequest,
    end: RunEnd,
    stderr: &str,
) -> Result<Downloaded, JobError> {
    if !end.status.success() {
        return Err(classify_failure(stderr));
    }
    let path = find_output(&req.work_dir, &req.file_stem, end.reported.as_deref())?;
    let size_bytes = std::fs::metadata(&path)
        .map_err(|e| JobError::new(ErrorCode::NoOutput, e.to_string()))?
        .len();
    if size_bytes > req.max_bytes {
        return Err(JobError::too_large(size_bytes, req.max_bytes));
    }
    Ok(Downloaded {
        path,
        size_bytes,
        title: end.title,
        announced_height: end.announced_height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> DownloadRequest {
        DownloadRequest {
            ytdlp: "yt-dlp".into(),
            ffmpeg: "/usr/bin/ffmpeg".into(),
            url: CaptureUrl::parse("https://example.com/v.mp4").unwrap(),
            work_dir: "/media/temp/processing/j1-1".into(),
            file_stem: "j1".into(),
            max_bytes: 1 << 20,
            max_duration_secs: 600,
            socket_timeout_secs: 30,
            timeout: Duration::from_secs(60),
            proxy: Some("http://u:p@127.0.0.1:9999".into()),
            cookies: Some("/media/temp/processing/j1-1/cookies.txt".into()),
        }
    }

    #[test]
    fn argv_is_the_fixed_list_then_the_url_after_a_double_dash() {
        let args: Vec<String> = argv(&request())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let n = args.len();
        assert_eq!(args[n - 2..], ["--", "https://example.com/v.mp4"]);
        for required in ["--ignore-config", "--no-plugin-dirs", "--no-playlist"] {
            assert!(args.contains(&required.to_string()), "{required}");
        }
        for forbidden in [
            "--exec",
            "--netrc-cmd",
            "--external-downloader",
            "--downloader",
            "--cookies-from-browser",
        ] {
            assert!(
                !args.iter().any(|a| a.starts_with(forbidden)),
                "{forbidden}"
            );
        }
        let out = args.iter().position(|a| a == "--output").unwrap();
        assert_eq!(args[out + 1], "j1.%(ext)s");
        assert!(
            args.windows(2)
                .any(|w| w == ["--paths", "home:/media/temp/processing/j1-1"])
        );
        assert!(
            args.windows(2)
                .any(|w| w == ["--proxy", "http://u:p@127.0.0.1:9999"])
        );
        // Only one element is not a literal of ours: the URL, placed after `--`.
        assert_eq!(args.iter().filter(|a| a.contains("example.com")).count(), 1);
    }

    #[test]
    fn parses_the_three_kinds_of_lines() {
        match parse_line(r#"PRSNL-INFO {"title": "Cat", "duration": 12.5, "_type": "video"}"#) {
            Line::Info(info) => {
                assert_eq!(info.title.as_deref(), Some("Cat"));
                assert_eq!(info.duration, Some(12.5));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_line("PRSNL-PROGRESS 1024 4096 NA"),
            Line::Progress {
                downloaded: 1024,
                total: Some(4096)
            }
        ));
        assert!(matches!(
            parse_line("PRSNL-PROGRESS 1024 NA 9000.5"),
            Line::Progress {
                downloaded: 1024,
                total: Some(9000)
            }
        ));
        assert!(matches!(parse_line("PRSNL-PROGRESS NA NA NA"), Line::Other));
        assert!(
            matches!(parse_line("PRSNL-FILE /w/j1.mp4"), Line::File(p) if p == Path::new("/w/j1.mp4"))
        );
        assert!(matches!(
            parse_line("[generic] Extracting URL"),
            Line::Other
        ));
        assert!(matches!(parse_line("PRSNL-INFO {broken"), Line::Other));
    }

    #[test]
    fn refuses_playlists_live_streams_and_oversize_targets() {
        let ok = VideoInfo {
            duration: Some(30.0),
            ..Default::default()
        };
        assert!(check_info(&ok, 1000, 600).is_ok());
        let cases = [
            (
                VideoInfo {
                    playlist_index: Some(1),
                    n_entries: Some(2),
                    ..Default::default()
                },
                ErrorCode::PlaylistNotSupported,
            ),
            (
                VideoInfo {
                    kind: Some("playlist".into()),
                    ..Default::default()
                },
                ErrorCode::PlaylistNotSupported,
            ),
            (
                VideoInfo {
                    is_live: Some(true),
                    ..Default::default()
                },
                ErrorCode::LiveNotSupported,
            ),
            (
                VideoInfo {
                    live_status: Some("is_upcoming".into()),
                    ..Default::default()
                },
                ErrorCode::LiveNotSupported,
            ),
            (
                VideoInfo {
                    duration: Some(601.0),
                    ..Default::default()
                },
                ErrorCode::TooLong,
            ),
            (
                VideoInfo {
                    filesize: Some(1001.0),
                    ..Default::default()
                },
                ErrorCode::TooLarge,
            ),
            (
                VideoInfo {
                    filesize_approx: Some(5000.0),
                    ..Default::default()
                },
                ErrorCode::TooLarge,
            ),
        ];
        for (info, code) in cases {
            assert_eq!(
                check_info(&info, 1000, 600).unwrap_err().code,
                code,
                "{info:?}"
            );
        }
    }

    /// Error lines as yt-dlp prints them (recorded from real runs and from yt-dlp's own
    /// extractors), each with the code it must map to.
    const RECORDED: &[(&str, ErrorCode)] = &[
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass cookies.",
            ErrorCode::RateLimited,
        ),
        (
            "ERROR: [Instagram] C0dE_x-12: Requested content is not available, rate-limit reached or login required. Use --cookies, --cookies-from-browser, --username and --password, --netrc-cmd, or --netrc (instagram) to provide account credentials",
            ErrorCode::RateLimited,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 429: Too Many Requests (caused by <HTTPError 429: Too Many Requests>)",
            ErrorCode::RateLimited,
        ),
        (
            "ERROR: [TikTok] 7234567890123456789: Your IP address is temporarily blocked",
            ErrorCode::RateLimited,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: The uploader has not made this video available in your country. This video is available in United States.",
            ErrorCode::GeoBlocked,
        ),
        (
            "ERROR: [twitter] 1790000000000000001: This content is geo-restricted",
            ErrorCode::GeoBlocked,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm your age. This video may be inappropriate for some users. Use --cookies-from-browser or --cookies for the authentication.",
            ErrorCode::LoginRequired,
        ),
        (
            "ERROR: [twitter] 1790000000000000001: NSFW tweet requires authentication. Use --cookies, --cookies-from-browser, --username and --password, --netrc-cmd, or --netrc (twitter) to provide account credentials",
            ErrorCode::LoginRequired,
        ),
        (
            "ERROR: [Instagram] C0dE_x-12: Main webpage is locked behind the login page. Unable to extract information",
            ErrorCode::LoginRequired,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Join this channel to get access to members-only content like this video, and other exclusive perks.",
            ErrorCode::LoginRequired,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video is no longer available because the YouTube account associated with this video has been terminated.",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [twitter] 1790000000000000001: Error(s) while querying API: No status found with that ID.",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [TikTok] 7234567890123456789: Video not available, status code 10204",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: This live event will begin in 3 hours.",
            ErrorCode::LiveNotSupported,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Premieres in 2 days",
            ErrorCode::LiveNotSupported,
        ),
        (
            "ERROR: Unsupported URL: https://example.com/",
            ErrorCode::UnsupportedUrl,
        ),
        (
            "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404: Not Found>)",
            ErrorCode::SourceNotFound,
        ),
        (
            "ERROR: [generic] missing: Unable to download webpage: HTTP Error 410: Gone",
            ErrorCode::SourceNotFound,
        ),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 500: Internal Server Error",
            ErrorCode::UpstreamError,
        ),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 503: Service Unavailable",
            ErrorCode::UpstreamError,
        ),
        (
            "ERROR: unable to download video data: HTTP Error 403: Forbidden",
            ErrorCode::UpstreamError,
        ),
        (
            "ERROR: fragment 3 not found, unable to continue",
            ErrorCode::UpstreamError,
        ),
        (
            "ERROR: unable to download video data: The read operation timed out",
            ErrorCode::Timeout,
        ),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTPConnection(host='127.0.0.1', port=1): Failed to establish a new connection: [Errno 111] Connection refused",
            ErrorCode::NetworkError,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: <urlopen error [Errno -3] Temporary failure in name resolution>",
            ErrorCode::NetworkError,
        ),
        (
            "ERROR: [download] Unable to write data: [Errno 28] No space left on device",
            ErrorCode::DiskFull,
        ),
        (
            "ERROR: something nobody has seen before",
            ErrorCode::DownloadFailed,
        ),
        ("", ErrorCode::DownloadFailed),
    ];

    #[test]
    fn classifies_recorded_stderr() {
        for (stderr, code) in RECORDED {
            let err = classify_failure(&format!("WARNING: noise\n{stderr}\n"));
            assert_eq!(err.code, *code, "{stderr}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn a_rate_limit_warned_earlier_counts_even_if_the_last_error_is_vague() {
        let stderr = "WARNING: [youtube] HTTP Error 429: Too Many Requests\nERROR: [youtube] abc: Unable to extract something\n";
        assert_eq!(classify_failure(stderr).code, ErrorCode::RateLimited);
    }

    #[test]
    fn terminal_and_transient_codes_are_told_apart() {
        for code in [
            ErrorCode::LoginRequired,
            ErrorCode::GeoBlocked,
            ErrorCode::SourceUnavailable,
            ErrorCode::UnsupportedUrl,
            ErrorCode::LiveNotSupported,
        ] {
            assert!(!code.is_transient(), "{code}");
        }
        for code in [
            ErrorCode::RateLimited,
            ErrorCode::UpstreamError,
            ErrorCode::Timeout,
            ErrorCode::NetworkError,
        ] {
            assert!(code.is_transient(), "{code}");
        }
    }

    #[test]
    fn cookie_complaints_are_found() {
        let stderr = "WARNING: [youtube] The provided YouTube account cookies are no longer valid. They have likely been rotated in the browser as a security measure.\nERROR: boom";
        assert!(cookie_problem(stderr).unwrap().contains("no longer valid"));
        assert!(
            cookie_problem(
                "ERROR: '/x/cookies.txt' does not look like a Netscape format cookies file"
            )
            .is_some()
        );
        assert_eq!(cookie_problem("ERROR: HTTP Error 404"), None);
    }

    #[test]
    fn output_must_be_one_regular_video_file_in_the_job_dir() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(
            find_output(d, "j1", None).unwrap_err().code,
            ErrorCode::NoOutput
        );
        std::fs::write(d.join("j1.mp4.part"), b"x").unwrap();
        assert_eq!(
            find_output(d, "j1", None).unwrap_err().code,
            ErrorCode::NoOutput
        );
        std::fs::write(d.join("j1.mp4"), b"x").unwrap();
        assert_eq!(find_output(d, "j1", None).unwrap(), d.join("j1.mp4"));
        assert_eq!(
            find_output(d, "j1", Some(&d.join("j1.mkv")))
                .unwrap_err()
                .code,
            ErrorCode::NoOutput
        );
        std::fs::write(d.join("j1.webm"), b"x").unwrap();
        assert_eq!(
            find_output(d, "j1", None).unwrap_err().code,
            ErrorCode::NoOutput
        );

        let other = tempfile::tempdir().unwrap();
        for (name, code) in [
            ("j1.desktop", ErrorCode::InvalidMedia),
            ("j1.sh", ErrorCode::InvalidMedia),
            ("j1.unknown_video", ErrorCode::InvalidMedia),
        ] {
            let path = other.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            assert_eq!(
                find_output(other.path(), "j1", None).unwrap_err().code,
                code,
                "{name}"
            );
            std::fs::remove_file(path).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", other.path().join("j1.mp4")).unwrap();
        assert_eq!(
            find_output(other.path(), "j1", None).unwrap_err().code,
            ErrorCode::InvalidMedia
        );
    }
}
