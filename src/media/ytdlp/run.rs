//! One yt-dlp run from spawn to its checked output: follows stdout (refusing from the info
//! JSON, reporting progress), enforces the byte budget on the bytes on disk and the deadline,
//! and classifies the end.
//!
//! yt-dlp's own `--max-filesize` is never relied on (THREATS fact 2): past the budget or the
//! deadline the process group is terminated here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LinesCodec};

use super::argv::argv;
use super::lines::{Line, info_json, parse_line};
use super::output::find_output;
use super::refusals::check_info;
use super::stderr::{classify_failure, cookie_problem};
use super::subtitle_run::{self, SubtitlePlan};
use super::{DownloadRequest, Downloaded};
use crate::domain::source_meta::SourceMeta;
use crate::domain::text;
use crate::domain::{ErrorCode, JobError, Progress, Stage};
use crate::media::process::{STDERR_TAIL, Tool, read_tail};

/// Longest stdout line read; the info JSON of a YouTube video with all its formats is a few
/// hundred KiB.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// How often the job directory is measured against the byte budget.
const BUDGET_POLL: Duration = Duration::from_millis(100);

/// Bytes under `dir` (one level of subdirectories deep, which is all yt-dlp creates).
pub(super) async fn dir_bytes(dir: &Path) -> u64 {
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
    source_meta: SourceMeta,
    reported: Option<PathBuf>,
    announced_height: Option<u32>,
    /// The subtitles worth a second run.
    subtitles: Option<SubtitlePlan>,
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
    let mut ended = ended;
    let subtitles = ended.as_mut().ok().and_then(|end| end.subtitles.take());
    let result = ended.and_then(|end| collect_output(req, end, &stderr));
    if let (Ok(_), Some(plan)) = (&result, subtitles) {
        subtitle_run::fetch(req, &plan).await;
    }
    Outcome {
        cookie_problem: cookie_problem(&stderr),
        result,
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
    let mut subtitles = None;
    let mut source_meta = SourceMeta::default();
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
                        source_meta = info.source_meta();
                        subtitles = info_json(&line)
                            .filter(|_| req.subtitles)
                            .and_then(|json| subtitle_run::plan(json, &req.auto_captions));
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
        source_meta,
        reported,
        announced_height,
        subtitles,
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
        source_meta: Box::new(end.source_meta),
        announced_height: end.announced_height,
    })
}
