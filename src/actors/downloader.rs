//! Downloader(platform): runs one platform's downloads like a careful user of that platform.
//!
//! At most `max_concurrent` at once; each start waits for a jittered pause after the previous
//! one and for the platform's rate limiter (governor), so requests neither burst nor tick like
//! a machine. Each download runs in a task the actor owns: when the actor dies its state
//! drops, which aborts the tasks, which kills the yt-dlp process groups. The supervisor is
//! told which attempts this actor holds, so a crash fails exactly those.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

use super::attempt::AttemptTask;
use super::download_supervisor::DownloadSupMsg;
use super::pipeline::{PipelineHandle, PipelineMsg};
use super::storage::StorageHandle;
use crate::context::AppContext;
use crate::db::jobs::Lease;
use crate::domain::quota::Standing;
use crate::domain::{CaptureUrl, ErrorCode, JobError, JobId, Platform};
use crate::faults::FaultPoint;
use crate::media::direct::{self, DirectOutcome, DirectRequest};
use crate::media::ytdlp::{self, DownloadRequest, Downloaded};
use crate::metrics::Event;
use crate::net::egress::EgressGuard;
use crate::settings::PlatformSettings;

/// One download to run.
#[derive(Debug, Clone)]
pub struct DownloadTicket {
    pub lease: Lease,
    pub platform: Platform,
    pub url: CaptureUrl,
    pub work_dir: PathBuf,
    /// The most bytes the download may take: `storage.max_video_size_mb`, or what is left
    /// of the owner's quota when that is less.
    pub max_bytes: u64,
    /// Set when the quota is what limits `max_bytes`: running past it is `quota_exceeded`.
    pub quota: Option<Standing>,
}

#[derive(Debug)]
pub enum DownloaderMsg {
    Download(DownloadTicket),
    /// Drop the job's download, waiting or running (its process group is killed).
    Cancel(JobId),
    /// A download task ended (its result already went to the Pipeline).
    Finished(Lease),
}

pub struct DownloaderArgs {
    pub ctx: Arc<AppContext>,
    pub pipeline: PipelineHandle,
    pub storage: StorageHandle,
    pub platform: Platform,
    pub guard: Arc<EgressGuard>,
    pub supervisor: ActorRef<DownloadSupMsg>,
}

pub struct DownloaderState {
    args: DownloaderArgs,
    policy: PlatformSettings,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The earliest start of the next download (the jittered pause after the last one).
    next_start: Instant,
    running: HashMap<JobId, AttemptTask>,
    waiting: VecDeque<DownloadTicket>,
}

impl DownloaderState {
    fn release(&self, lease: Lease) {
        let _ = self
            .args
            .supervisor
            .send_message(DownloadSupMsg::Released(self.args.platform, lease));
    }
}

/// The platform's rate: `requests_per_minute`, of which `burst` may come back to back.
pub fn rate_limiter(policy: &PlatformSettings) -> DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_minute(policy.requests_per_minute).allow_burst(policy.burst))
}

pub struct Downloader;

impl Actor for Downloader {
    type Msg = DownloaderMsg;
    type State = DownloaderState;
    type Arguments = DownloaderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let policy = args.ctx.settings.platforms.get(args.platform).clone();
        Ok(DownloaderState {
            limiter: Arc::new(rate_limiter(&policy)),
            policy,
            args,
            next_start: Instant::now(),
            running: HashMap::new(),
            waiting: VecDeque::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DownloaderMsg::Download(ticket) => {
                state
                    .args
                    .ctx
                    .faults
                    .crash_if_armed(FaultPoint::DownloaderHandle);
                state.waiting.push_back(ticket);
            }
            DownloaderMsg::Cancel(job) => {
                if let Some(position) = state.waiting.iter().position(|t| t.lease.job == job) {
                    let ticket = state.waiting.remove(position).expect("found");
                    state.release(ticket.lease);
                }
                if let Some(cancelled) = state.running.remove(&job) {
                    let lease = cancelled.cancel(&state.args.storage);
                    state.release(lease);
                }
            }
            DownloaderMsg::Finished(lease) => {
                // Only the attempt that ended: a late message must not touch a newer attempt.
                if state
                    .running
                    .get(&lease.job)
                    .is_some_and(|r| *r.lease() == lease)
                {
                    state.running.remove(&lease.job);
                    state.release(lease);
                }
            }
        }
        while state.running.len() < state.policy.max_concurrent.get() {
            let Some(ticket) = state.waiting.pop_front() else {
                break;
            };
            let start_at = state.next_start.max(Instant::now());
            let pause = pause_between(state.policy.pause_min_ms, state.policy.pause_max_ms);
            state.next_start = start_at + pause;
            let (lease, work_dir) = (ticket.lease.clone(), ticket.work_dir.clone());
            let work = run_download(
                ticket,
                start_at,
                Arc::clone(&state.limiter),
                Arc::clone(&state.args.ctx),
                state.args.pipeline.clone(),
                Arc::clone(&state.args.guard),
                myself.clone(),
            );
            state
                .running
                .insert(lease.job, AttemptTask::spawn(lease, work_dir, work));
        }
        Ok(())
    }
}

fn pause_between(min_ms: u64, max_ms: u64) -> Duration {
    let spread = max_ms.saturating_sub(min_ms);
    Duration::from_millis(
        min_ms
            + if spread == 0 {
                0
            } else {
                rand::random::<u64>() % (spread + 1)
            },
    )
}

async fn run_download(
    ticket: DownloadTicket,
    start_at: Instant,
    limiter: Arc<DefaultDirectRateLimiter>,
    ctx: Arc<AppContext>,
    pipeline: PipelineHandle,
    guard: Arc<EgressGuard>,
    downloader: ActorRef<DownloaderMsg>,
) {
    let lease = ticket.lease.clone();
    let outcome = std::panic::AssertUnwindSafe(async {
        tokio::time::sleep_until(start_at).await;
        limiter.until_ready().await;
        let started = std::time::Instant::now();
        let result = download(&ticket, &ctx, &pipeline, &guard).await;
        ctx.observe(Event::DownloadFinished {
            platform: ticket.platform,
            seconds: started.elapsed().as_secs_f64(),
            code: result.as_ref().err().map(|e| e.code),
        });
        result
    })
    .catch_unwind()
    .await
    .unwrap_or_else(|_| {
        Err(JobError::new(
            ErrorCode::WorkerCrashed,
            "the download task crashed",
        ))
    });
    let _ = pipeline.send(PipelineMsg::Downloaded {
        lease: lease.clone(),
        result: outcome,
    });
    let _ = downloader.send_message(DownloaderMsg::Finished(lease));
}

async fn download(
    ticket: &DownloadTicket,
    ctx: &AppContext,
    pipeline: &PipelineHandle,
    guard: &EgressGuard,
) -> Result<Downloaded, JobError> {
    crate::storage::fresh_work_dir(&ticket.work_dir).await?;
    // Per attempt, so a refusal the guard records for one attempt is never blamed on the next.
    let proxy_user = format!("{}.{}", ticket.lease.job, ticket.lease.attempt);
    let result = match native_download(ticket, ctx, pipeline, guard, &proxy_user).await {
        Ok(DirectOutcome::Downloaded(downloaded)) => Ok(downloaded),
        Ok(DirectOutcome::NotMedia) => {
            ytdlp_download(ticket, ctx, pipeline, guard, &proxy_user).await
        }
        Err(error) => Err(error),
    };
    // A refused hop (a redirect to an internal address, say) surfaces as a 403 from the guard,
    // which knows the real reason.
    match (result, guard.take_denial(&proxy_user)) {
        (Err(_), Some(denied)) => Err(JobError::new(
            ErrorCode::SsrfBlocked,
            format!("the download tried to reach a forbidden address: {denied}"),
        )),
        // Past a budget the quota set: the quota is what refuses it.
        (Err(e), None) if e.code == ErrorCode::TooLarge && ticket.quota.is_some() => {
            Err(ticket.quota.map(|q| q.download_refusal()).unwrap_or(e))
        }
        (result, _) => result,
    }
}

fn progress_reporter<'a>(
    pipeline: &'a PipelineHandle,
    lease: &Lease,
) -> impl Fn(crate::domain::Progress) + Send + Sync + 'a {
    let lease = lease.clone();
    move |progress| {
        let _ = pipeline.send(PipelineMsg::Progress {
            lease: lease.clone(),
            progress,
        });
    }
}

/// Direct media links of the generic platform are fetched natively; anything else (a page,
/// an unrecognised answer, another platform) is for yt-dlp.
async fn native_download(
    ticket: &DownloadTicket,
    ctx: &AppContext,
    pipeline: &PipelineHandle,
    guard: &EgressGuard,
    proxy_user: &str,
) -> Result<DirectOutcome, JobError> {
    let settings = &ctx.settings;
    if ticket.platform != Platform::Generic || !settings.download.native_direct {
        return Ok(DirectOutcome::NotMedia);
    }
    let request = DirectRequest {
        url: ticket.url.clone(),
        work_dir: ticket.work_dir.clone(),
        file_stem: ticket.lease.job.to_string(),
        max_bytes: ticket.max_bytes,
        timeout: Duration::from_secs(settings.download.timeout_secs.get()),
        socket_timeout: Duration::from_secs(settings.download.socket_timeout_secs.get()),
        proxy: guard.proxy_url(proxy_user),
        resume_slot: ctx.media.resume_slot(ticket.lease.job),
    };
    direct::download(&request, &progress_reporter(pipeline, &ticket.lease)).await
}

async fn ytdlp_download(
    ticket: &DownloadTicket,
    ctx: &AppContext,
    pipeline: &PipelineHandle,
    guard: &EgressGuard,
    proxy_user: &str,
) -> Result<Downloaded, JobError> {
    let settings = &ctx.settings;
    let policy = settings.platforms.get(ticket.platform);
    // yt-dlp rewrites its cookie jar when it exits; it gets a copy, never the operator's file.
    let cookies = if policy.cookies_file.as_os_str().is_empty() {
        None
    } else {
        let copy = ticket.work_dir.join("cookies.txt");
        tokio::fs::copy(&policy.cookies_file, &copy)
            .await
            .map_err(|e| {
                JobError::new(
                    ErrorCode::LoginRequired,
                    format!("the {} cookies file cannot be read: {e}", ticket.platform),
                )
            })?;
        Some(copy)
    };
    let request = DownloadRequest {
        ytdlp: settings.download.ytdlp_path.clone(),
        ffmpeg: settings.processing.ffmpeg_path.clone(),
        url: ticket.url.clone(),
        work_dir: ticket.work_dir.clone(),
        file_stem: ticket.lease.job.to_string(),
        max_bytes: ticket.max_bytes,
        max_duration_secs: settings.download.max_duration_secs,
        socket_timeout_secs: settings.download.socket_timeout_secs.get(),
        timeout: Duration::from_secs(settings.download.timeout_secs.get()),
        proxy: Some(guard.proxy_url(proxy_user)),
        cookies,
        max_height: settings.download.max_height.map(|h| h.get()),
        subtitles: settings.subtitles.enabled,
        auto_captions: if settings.subtitles.enabled {
            settings.subtitles.auto_langs.clone()
        } else {
            Vec::new()
        },
    };
    let outcome = ytdlp::download(&request, &progress_reporter(pipeline, &ticket.lease)).await;
    if request.cookies.is_some() {
        ctx.platform_health
            .record_cookies(ticket.platform, outcome.cookie_problem.clone());
    }
    outcome.result
}
