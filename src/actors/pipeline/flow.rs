//! An attempt's way through the stages: claim → download → process → commit → outcome.
//!
//! Capture jobs take every stage; import jobs stage a local file instead of downloading (and
//! an image import is processed as an image); transcode jobs start at processing. Each message names the
//! attempt by its lease; a message for an attempt that is no longer running (it was failed,
//! cancelled or re-run) is dropped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ractor::ActorRef;

use super::in_flight::Running;
use super::{LostWork, PipelineChild, PipelineMsg, PipelineState};
use crate::actors::download_supervisor::DownloadSupMsg;
use crate::actors::downloader::DownloadTicket;
use crate::actors::processing_pool::PoolMsg;
use crate::actors::processing_worker::{ProcessTicket, Processed, Work};
use crate::actors::storage::{CommitFile, FileKind, StorageMsg};
use crate::clock;
use crate::context::ItemChange;
use crate::db::imports::ImportPayload;
use crate::db::items::{self, Completion};
use crate::db::jobs::{self, ClaimedJob, Effect, Lane, Lease};
use crate::db::renditions::{Rendition, TranscodePayload};
use crate::domain::breaker::Gate;
use crate::domain::job::{AfterFailure, after_failure};
use crate::domain::{
    CaptureUrl, ErrorCode, ItemKind, ItemStatus, JobError, JobKind, Platform, Progress, Stage,
};
use crate::media::ytdlp::Downloaded;
use crate::metrics::{Event, JobOutcome};

/// A source that sends much less than it announced is throttling us (or serving a fallback);
/// the item is kept, with a warning a person can act on.
fn throttle_warning(announced_height: Option<u32>, height: u32) -> Option<String> {
    let announced = announced_height?;
    (f64::from(height) < 0.6 * f64::from(announced)).then(|| {
        format!("the source announced {announced}p but sent {height}p; the download was probably throttled")
    })
}

/// The thumbnails of a processed item, to their places in the tree.
fn thumbnail_files(
    paths: &crate::domain::layout::MediaPaths,
    thumbnails: &[(crate::domain::ThumbSize, PathBuf)],
) -> Vec<CommitFile> {
    thumbnails
        .iter()
        .map(|(size, path)| CommitFile {
            source: path.clone(),
            relative: paths.thumbnail(*size).to_string(),
            kind: FileKind::Thumbnail,
        })
        .collect()
}

/// Progress is written to the database at most this often per job (events go out always).
const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_millis(500);

impl PipelineState {
    /// Claims as many due jobs as the caps allow and starts them.
    pub(super) async fn claim(&mut self, myself: &ActorRef<PipelineMsg>) {
        if self.draining || self.stopping {
            return;
        }
        let downloads_up = self
            .children
            .get::<DownloadSupMsg>(PipelineChild::Downloads)
            .is_some();
        let processing_up = self
            .children
            .get::<PoolMsg>(PipelineChild::Processing)
            .is_some();
        let mut lanes: Vec<(Lane, usize)> = Vec::new();
        if downloads_up && processing_up {
            let now = clock::now_ms();
            for platform in Platform::ALL {
                let room = self.in_flight.room_for(platform, &self.capacity);
                // An open breaker lets nothing through; once its pause is over, one probe.
                let room = match self.breakers.get(&platform).map(|b| b.gate(now)) {
                    Some(Gate::Open { .. }) => 0,
                    Some(Gate::Probe) => {
                        room.min(usize::from(self.in_flight.downloads_of(platform) == 0))
                    }
                    _ => room,
                };
                lanes.push((Lane::Download(platform), room));
            }
        }
        if processing_up {
            lanes.push((
                Lane::Processing,
                self.in_flight.room_for_processing(&self.capacity),
            ));
        }
        let claimant = self.ctx.claimant();
        for (lane, room) in lanes {
            if room == 0 {
                continue;
            }
            match jobs::claim(&self.ctx.db, &claimant, lane, room as u32, clock::now_ms()).await {
                Ok(claimed) => {
                    for job in claimed {
                        self.start(myself, job).await;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim jobs");
                    return;
                }
            }
        }
    }

    async fn start(&mut self, myself: &ActorRef<PipelineMsg>, job: ClaimedJob) {
        let lease = job.lease.clone();
        let item = match items::get(&self.ctx.db, job.item_id).await {
            Ok(Some(item)) => item,
            Ok(None) => {
                tracing::error!(job = %lease.job, "claimed a job whose item is gone");
                return;
            }
            Err(e) => {
                // The lease expires and the job is recovered.
                tracing::error!(job = %lease.job, error = %e, "cannot load the item of a claimed job");
                return;
            }
        };
        let work_dir = self.ctx.media.work_dir(lease.job, lease.attempt);
        let kind = job.kind;
        tracing::info!(job = %lease.job, item = %item.id, kind = kind.as_str(), attempt = lease.attempt, "starting job");
        let replaced = self.in_flight.insert(Running {
            platform: item.platform,
            quality: TranscodePayload::quality_of(job.payload.as_deref()),
            item,
            stage: if kind.makes_item() {
                Stage::Download
            } else {
                Stage::Convert
            },
            work_dir,
            title: None,
            announced_height: None,
            shared: None,
            processed: None,
            last_progress_write: None,
            last_activity: Instant::now(),
            job,
        });
        if let Some(stale) = replaced {
            // Cannot happen while leases are fenced; if it does, one attempt must stop.
            tracing::error!(job = %lease.job, item = %lease.item, attempt = stale.job.lease.attempt, "an earlier attempt of a claimed job was still running; stopping it");
            self.cancel_work(&stale);
        }
        let started = match kind {
            JobKind::Capture => self.start_capture(&lease).await,
            JobKind::Import => self.start_import(myself, &lease).await,
            JobKind::Transcode => self.start_transcode(&lease),
        };
        if let Err(error) = started {
            self.fail_attempt(myself, &lease, error).await;
        }
    }

    async fn start_capture(&mut self, lease: &Lease) -> Result<(), JobError> {
        let running = self.in_flight.current(lease).expect("just inserted");
        let url = running
            .item
            .canonical_url
            .as_deref()
            .and_then(|u| CaptureUrl::parse(u).ok())
            .ok_or_else(|| JobError::new(ErrorCode::InvalidUrl, "the stored URL is not valid"))?;
        let ticket = DownloadTicket {
            lease: lease.clone(),
            platform: running.platform,
            url,
            work_dir: running.work_dir.clone(),
        };
        self.progress(lease, Progress::stage(Stage::Download)).await;
        self.children
            .get::<DownloadSupMsg>(PipelineChild::Downloads)
            .and_then(|downloads| {
                downloads
                    .send_message(DownloadSupMsg::Download(ticket))
                    .ok()
            })
            .ok_or_else(|| JobError::new(ErrorCode::Unavailable, "the downloaders are restarting"))
    }

    /// An import's "download" is a copy of the local file into the work directory, off the
    /// actor's thread; its result arrives like a download's.
    async fn start_import(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
    ) -> Result<(), JobError> {
        let running = self.in_flight.current(lease).expect("just inserted");
        let payload = ImportPayload::parse(running.job.payload.as_deref())
            .ok_or_else(|| JobError::new(ErrorCode::Internal, "the import job names no file"))?;
        let title = running.item.title.clone();
        let work_dir = running.work_dir.clone();
        let max_bytes = self.ctx.settings.max_video_bytes();
        self.progress(lease, Progress::stage(Stage::Download)).await;
        let (pipeline, lease) = (myself.clone(), lease.clone());
        tokio::task::spawn_blocking(move || {
            let result = crate::storage::import::stage(&payload, &work_dir, max_bytes).map(
                |(path, size_bytes)| Downloaded {
                    path,
                    size_bytes,
                    title,
                    announced_height: None,
                },
            );
            let _ = pipeline.send_message(PipelineMsg::Downloaded { lease, result });
        });
        Ok(())
    }

    fn start_transcode(&mut self, lease: &Lease) -> Result<(), JobError> {
        let running = self.in_flight.current(lease).expect("just inserted");
        let item = &running.item;
        if item.kind != ItemKind::Video {
            return Err(JobError::new(
                ErrorCode::NotAVideo,
                format!(
                    "item {} is an {}; only videos have renditions",
                    item.id, item.kind
                ),
            ));
        }
        let quality = running.quality.ok_or_else(|| {
            JobError::new(
                ErrorCode::BadRequest,
                "the transcode job names no valid quality",
            )
        })?;
        let media = item
            .media
            .as_ref()
            .filter(|_| item.status == ItemStatus::Completed)
            .ok_or_else(|| {
                JobError::new(
                    ErrorCode::NotReady,
                    format!("item {} is not completed", item.id),
                )
            })?;
        let frame = quality
            .frame_for(media.width, media.height)
            .map_err(|e| JobError::new(ErrorCode::BadRequest, e.to_string()))?;
        let source =
            self.ctx.media.resolve(&item.paths.file).ok_or_else(|| {
                JobError::new(ErrorCode::Internal, "the stored video path is unsafe")
            })?;
        let ticket = ProcessTicket {
            lease: lease.clone(),
            work_dir: running.work_dir.clone(),
            work: Work::Transcode { source, frame },
        };
        self.children
            .get::<PoolMsg>(PipelineChild::Processing)
            .and_then(|pool| pool.send_message(PoolMsg::Process(ticket)).ok())
            .ok_or_else(|| {
                JobError::new(ErrorCode::Unavailable, "the processing pool is restarting")
            })
    }

    pub(super) async fn progress(&mut self, lease: &Lease, progress: Progress) {
        let Some(running) = self.in_flight.current(lease) else {
            return;
        };
        let stage_changed = running.stage != progress.stage;
        running.stage = progress.stage;
        let due = stage_changed
            || running
                .last_progress_write
                .is_none_or(|t| t.elapsed() >= PROGRESS_WRITE_INTERVAL);
        let (item, owns_status) = (running.item.id, running.job.kind.makes_item());
        if due {
            running.last_progress_write = Some(Instant::now());
        }
        self.ctx.publish(item, ItemChange::Progress(progress));
        // Only a capture moves its item through downloading/processing; a rendition being
        // made does not make a completed video "processing".
        if due
            && owns_status
            && let Err(e) = items::set_progress(&self.ctx.db, item, &progress).await
        {
            tracing::warn!(%item, error = %e, "cannot record progress");
        }
    }

    pub(super) async fn downloaded(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
        download: crate::media::ytdlp::Downloaded,
    ) {
        let Some(running) = self.in_flight.current(lease) else {
            return;
        };
        running.title = download.title.clone();
        running.announced_height = download.announced_height;
        let work_dir = running.work_dir.clone();
        let input = download.path;
        let work = match running.item.kind {
            ItemKind::Video => Work::Capture { input },
            ItemKind::Image => Work::Image { input },
        };
        tracing::info!(job = %lease.job, item = %lease.item, bytes = download.size_bytes, "downloaded");
        self.progress(lease, Progress::stage(Stage::Probe)).await;
        let ticket = ProcessTicket {
            lease: lease.clone(),
            work_dir,
            work,
        };
        let sent = self
            .children
            .get::<PoolMsg>(PipelineChild::Processing)
            .is_some_and(|pool| pool.send_message(PoolMsg::Process(ticket)).is_ok());
        if !sent {
            let error = JobError::new(ErrorCode::Unavailable, "the processing pool is restarting");
            self.fail_attempt(myself, lease, error).await;
        }
    }

    pub(super) async fn processed(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
        processed: Processed,
    ) {
        // Content dedup: a video identical to a stored one shares its files.
        let processed = if let Processed::Capture(media) = &processed {
            let item = match self.in_flight.current(lease) {
                Some(running) => running.item.id,
                None => return,
            };
            let sha256 = media.sha256.clone();
            let in_flight = &self.in_flight;
            // An identical video being committed right now: wait for it, then share.
            let Some(processed) = self
                .content
                .claim_or_wait(&sha256, lease, processed, |job| in_flight.contains(job))
            else {
                tracing::debug!(job = %lease.job, %item, "identical to a video being stored; waiting for it");
                return;
            };
            let Processed::Capture(media) = &processed else {
                return;
            };
            match items::completed_with_content(&self.ctx.db, &media.sha256, item).await {
                Ok(Some(twin)) => {
                    tracing::info!(job = %lease.job, %item, twin = %twin.id, "identical to a stored video; sharing its files");
                    if let Some(running) = self.in_flight.current(lease) {
                        running.shared = Some(twin.paths);
                        running.processed = Some(processed);
                    }
                    return self.complete(myself, lease).await;
                }
                Ok(None) => {}
                // Not knowing only costs a second copy.
                Err(e) => {
                    tracing::warn!(job = %lease.job, item = %lease.item, error = %e, "cannot look for a stored twin")
                }
            }
            processed
        } else {
            processed
        };
        let Some(running) = self.in_flight.current(lease) else {
            return;
        };
        let paths = &running.item.paths;
        let files = match &processed {
            Processed::Capture(media) => {
                tracing::info!(job = %lease.job, item = %lease.item, plan = ?media.plan, compressed = media.compressed, "processed");
                let mut files = vec![CommitFile {
                    source: media.video.clone(),
                    relative: paths.file.clone(),
                    kind: FileKind::Video,
                }];
                files.extend(thumbnail_files(paths, &media.thumbnails));
                files
            }
            Processed::Image(image) => {
                tracing::info!(job = %lease.job, item = %lease.item, width = image.media.width, height = image.media.height, "processed an image");
                let mut files = vec![CommitFile {
                    source: image.image.clone(),
                    relative: paths.file.clone(),
                    kind: FileKind::Image,
                }];
                files.extend(thumbnail_files(paths, &image.thumbnails));
                files
            }
            Processed::Rendition(rendition) => {
                let Some(quality) = running.quality else {
                    return;
                };
                vec![CommitFile {
                    source: rendition.path.clone(),
                    relative: paths.rendition(quality),
                    kind: FileKind::Rendition,
                }]
            }
        };
        running.processed = Some(processed);
        self.progress(lease, Progress::stage(Stage::Finalize)).await;
        if self
            .storage
            .send(StorageMsg::Commit {
                lease: lease.clone(),
                files,
            })
            .is_err()
        {
            let error = JobError::new(ErrorCode::Unavailable, "storage is restarting");
            self.fail_attempt(myself, lease, error).await;
        }
    }

    pub(super) async fn complete(&mut self, myself: &ActorRef<PipelineMsg>, lease: &Lease) {
        let Some(running) = self.take_running(myself, lease) else {
            return;
        };
        let now = clock::now_ms();
        let item = running.item.id;
        let recorded = match (running.processed, running.quality) {
            (Some(Processed::Capture(media)), _) => {
                let warnings = throttle_warning(running.announced_height, media.media.height)
                    .into_iter()
                    .collect::<Vec<_>>();
                if !warnings.is_empty() {
                    self.ctx.observe(Event::DownloadThrottled {
                        platform: running.platform,
                    });
                }
                let completion = Completion {
                    title: running.title,
                    media: media.media,
                    size_bytes: media.size_bytes,
                    thumbnails_bytes: media.thumbnails_bytes,
                    sha256: media.sha256,
                    warnings,
                    shared_paths: running.shared,
                };
                jobs::complete(
                    &self.ctx.db,
                    lease,
                    Effect::Captured {
                        item,
                        completion: &completion,
                    },
                    now,
                )
                .await
            }
            (Some(Processed::Image(image)), _) => {
                let completion = Completion {
                    title: running.title,
                    media: image.media,
                    size_bytes: image.size_bytes,
                    thumbnails_bytes: image.thumbnails_bytes,
                    sha256: image.sha256,
                    warnings: Vec::new(),
                    shared_paths: None,
                };
                jobs::complete(
                    &self.ctx.db,
                    lease,
                    Effect::Captured {
                        item,
                        completion: &completion,
                    },
                    now,
                )
                .await
            }
            (Some(Processed::Rendition(made)), Some(quality)) => {
                let rendition = Rendition {
                    item_id: item,
                    quality,
                    path: running.item.paths.rendition(quality),
                    width: made.width,
                    height: made.height,
                    size_bytes: made.size_bytes,
                    sha256: made.sha256,
                    created_at: now,
                };
                jobs::complete(&self.ctx.db, lease, Effect::Rendered(&rendition), now).await
            }
            _ => {
                tracing::error!(job = %lease.job, item = %lease.item, "commit confirmed for a job that was never processed");
                return;
            }
        };
        if recorded.is_ok()
            && let Some(platform) = running.job.platform
        {
            self.platform_answered(platform).await;
        }
        match recorded {
            Ok(true) => {
                tracing::info!(job = %lease.job, %item, kind = running.job.kind.as_str(), "job completed");
                self.discard_owned_upload(&running.job);
                if running.job.kind.makes_item() {
                    self.ctx.publish(
                        item,
                        ItemChange::Status {
                            status: ItemStatus::Completed,
                            error: None,
                        },
                    );
                }
                self.ctx.observe(Event::JobFinished {
                    kind: running.job.kind,
                    quality: running.quality,
                    outcome: JobOutcome::Completed,
                    code: None,
                });
            }
            Ok(false) => {
                tracing::warn!(job = %lease.job, item = %lease.item, "lost the lease before completing; another attempt owns the job")
            }
            Err(e) => {
                tracing::error!(job = %lease.job, item = %lease.item, error = %e, "cannot record completion; the lease will expire and the job re-run")
            }
        }
        self.finished(myself, running.work_dir);
    }

    /// An attempt failed: retry with backoff when the error is transient and attempts remain,
    /// otherwise fail the job for good (kept, with its reason).
    pub(super) async fn fail_attempt(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
        error: JobError,
    ) {
        let Some(running) = self.take_running(myself, lease) else {
            return;
        };
        let subject = running.subject();
        let now = clock::now_ms();
        if error.code == ErrorCode::RateLimited
            && let Some(platform) = running.job.platform
        {
            self.postpone_for_breaker(platform, lease, subject, &error, now)
                .await;
            return self.finished(myself, running.work_dir);
        }
        // One of our own actors was restarting: not the job's fault, so it waits, uncharged,
        // for the supervisor to bring it back, rather than spending an attempt on the restart.
        if error.code == ErrorCode::Unavailable {
            let wait = Duration::from_secs(1);
            self.postpone(lease, subject, &error, now + wait.as_millis() as i64, now)
                .await;
            if !self.draining {
                myself.send_after(wait, || PipelineMsg::Wake);
            }
            return self.finished(myself, running.work_dir);
        }
        let decision = after_failure(
            lease.attempt,
            running.job.max_attempts,
            &error,
            &self.ctx.settings.retry_policy(running.job.platform),
            rand::random(),
        );
        let (outcome, recorded) = match decision {
            AfterFailure::Retry { after } => {
                tracing::warn!(job = %lease.job, item = %subject.item, attempt = lease.attempt, code = %error.code, message = %error.message, retry_in = ?after, "attempt failed; retrying");
                let run_after = now + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 4);
                if !self.draining {
                    myself.send_after(after, || PipelineMsg::Wake);
                }
                (
                    JobOutcome::Retried,
                    jobs::retry(&self.ctx.db, lease, subject, &error, run_after, now).await,
                )
            }
            AfterFailure::Fail => {
                tracing::warn!(job = %lease.job, item = %subject.item, attempt = lease.attempt, code = %error.code, message = %error.message, "job failed");
                (
                    JobOutcome::Failed,
                    jobs::fail(&self.ctx.db, lease, subject, &error, now).await,
                )
            }
        };
        match recorded {
            Ok(true) => {
                if outcome == JobOutcome::Failed {
                    self.discard_owned_upload(&running.job);
                }
                if subject.kind.makes_item() {
                    let status = if outcome == JobOutcome::Failed {
                        ItemStatus::Failed
                    } else {
                        ItemStatus::Queued
                    };
                    self.ctx.publish(
                        subject.item,
                        ItemChange::Status {
                            status,
                            error: Some(error.clone()),
                        },
                    );
                }
                self.ctx.observe(Event::JobFinished {
                    kind: subject.kind,
                    quality: running.quality,
                    outcome,
                    code: Some(error.code),
                });
            }
            Ok(false) => {
                tracing::warn!(job = %lease.job, item = %lease.item, "lost the lease before recording a failure")
            }
            Err(e) => {
                tracing::error!(job = %lease.job, item = %lease.item, error = %e, "cannot record a failed attempt; the lease will expire")
            }
        }
        self.finished(myself, running.work_dir);
    }

    /// The platform refused a download: open (or keep open) its breaker, and let the job wait
    /// for it without being charged an attempt.
    async fn postpone_for_breaker(
        &mut self,
        platform: Platform,
        lease: &Lease,
        subject: jobs::Subject,
        error: &JobError,
        now: i64,
    ) {
        let policy = self.ctx.settings.platforms.get(platform);
        let breaker = self.breakers.entry(platform).or_default();
        let was_closed = breaker.is_closed();
        let until = breaker.trip(
            now,
            Duration::from_secs(policy.breaker_base_secs.get()),
            Duration::from_secs(policy.breaker_max_secs),
            rand::random(),
        );
        let breaker = *breaker;
        if let Err(e) =
            crate::db::breakers::save(&self.ctx.db, platform, &breaker, Some(&error.message)).await
        {
            tracing::error!(%platform, error = %e, "cannot persist the circuit breaker");
        }
        let pause = Duration::from_millis(u64::try_from(until - now).unwrap_or(0));
        if was_closed {
            tracing::warn!(%platform, pause = ?pause, reason = %error.message, "circuit breaker opened: the platform is refusing downloads");
        }
        self.postpone(lease, subject, error, until, now).await;
    }

    /// Puts the attempt back in the queue until `until`, uncharged, telling followers why.
    async fn postpone(
        &self,
        lease: &Lease,
        subject: jobs::Subject,
        error: &JobError,
        until: i64,
        now: i64,
    ) {
        match jobs::postpone(&self.ctx.db, lease, subject, error, until, now).await {
            Ok(true) => {
                self.ctx.publish(
                    subject.item,
                    ItemChange::Status {
                        status: ItemStatus::Queued,
                        error: Some(error.clone()),
                    },
                );
                self.ctx.observe(Event::JobFinished {
                    kind: subject.kind,
                    quality: None,
                    outcome: JobOutcome::Postponed,
                    code: Some(error.code),
                });
            }
            Ok(false) => {
                tracing::warn!(job = %lease.job, item = %lease.item, "lost the lease before postponing the job")
            }
            Err(e) => {
                tracing::error!(job = %lease.job, item = %lease.item, error = %e, "cannot postpone a job; its lease will expire")
            }
        }
    }

    /// A download of `platform` went through: its breaker (if open) closes.
    async fn platform_answered(&mut self, platform: Platform) {
        let Some(breaker) = self.breakers.get_mut(&platform).filter(|b| !b.is_closed()) else {
            return;
        };
        breaker.reset();
        let breaker = *breaker;
        tracing::info!(%platform, "circuit breaker closed: the platform answers again");
        if let Err(e) = crate::db::breakers::save(&self.ctx.db, platform, &breaker, None).await {
            tracing::error!(%platform, error = %e, "cannot persist the circuit breaker");
        }
    }

    /// An import job is finished for good: the file it imported, if the service owns it (an
    /// upload), is no longer needed by anyone. Removed off the actor's thread.
    pub(super) fn discard_owned_upload(&self, job: &ClaimedJob) {
        if job.kind != JobKind::Import {
            return;
        }
        let Some(payload) = ImportPayload::parse(job.payload.as_deref()).filter(|p| p.owned) else {
            return;
        };
        let media = self.ctx.media.clone();
        tokio::task::spawn_blocking(move || {
            crate::storage::import::discard_owned(&media, &payload)
        });
    }

    /// Takes an attempt out of the table. Identical videos that waited for its commit go
    /// back through `processed`: they now find its stored files, or one of them commits.
    pub(super) fn take_running(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
    ) -> Option<Running> {
        let running = self.in_flight.remove(lease)?;
        for (waiter, processed) in self.content.release(lease.job) {
            let _ = myself.send_message(PipelineMsg::Processed {
                lease: waiter,
                result: Ok(processed),
            });
        }
        Some(running)
    }

    pub(super) fn finished(&mut self, myself: &ActorRef<PipelineMsg>, work_dir: PathBuf) {
        if self
            .storage
            .send(StorageMsg::DiscardWorkDir(work_dir.clone()))
            .is_err()
        {
            std::thread::spawn(move || crate::storage::remove_work_dir(&work_dir));
        }
        self.slot_freed(myself);
    }

    /// An attempt left the table: finish a drain, or use the freed slot.
    pub(super) fn slot_freed(&mut self, myself: &ActorRef<PipelineMsg>) {
        if self.draining {
            if self.in_flight.is_empty()
                && let Some(reply) = self.drain_reply.take()
            {
                let _ = reply.send(());
            }
        } else {
            let _ = myself.send_message(PipelineMsg::Wake);
        }
    }

    pub(super) async fn lose(&mut self, myself: &ActorRef<PipelineMsg>, lost: LostWork) {
        let (leases, what) = match lost {
            LostWork::Jobs { leases, what } => (leases, what),
            LostWork::Commits => (
                self.in_flight.leases_where(|r| r.stage == Stage::Finalize),
                "the storage actor crashed".to_string(),
            ),
        };
        for lease in leases {
            self.fail_attempt(
                myself,
                &lease,
                JobError::new(ErrorCode::WorkerCrashed, what.clone()),
            )
            .await;
        }
    }

    /// Keeps leases alive and recovers jobs whose owner vanished, every third of a lease.
    pub(super) async fn maintain(&mut self, myself: &ActorRef<PipelineMsg>) {
        let lease = Duration::from_secs(self.ctx.settings.queue.lease_secs.get());
        if self.last_maintenance.elapsed() < lease / 3 {
            return;
        }
        self.last_maintenance = Instant::now();
        let now = clock::now_ms();
        let claimant = self.ctx.claimant();
        match jobs::renew_leases(&self.ctx.db, &claimant, &self.in_flight.leases(), now).await {
            Ok(lost) => {
                for lease in lost {
                    // Another process took the job over (we could not renew in time): our
                    // attempt must stop without touching the job, which is no longer ours.
                    if let Some(running) = self.take_running(myself, &lease) {
                        tracing::warn!(job = %lease.job, item = %lease.item, "lost the lease of a running job; stopping this attempt");
                        self.cancel_work(&running);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot renew job leases"),
        }
        self.fail_silent_attempts(myself).await;
        // Another instance sharing the database may have opened or closed a breaker.
        match super::load_breakers(&self.ctx).await {
            Ok(breakers) => self.breakers = breakers,
            Err(e) => tracing::warn!(error = %e, "cannot re-read the circuit breakers"),
        }
        match jobs::recover_expired(&self.ctx.db, &self.ctx.lease_owner, now).await {
            Ok(recovered) if !recovered.requeued.is_empty() || !recovered.failed.is_empty() => {
                tracing::warn!(
                    requeued = recovered.requeued.len(),
                    failed = recovered.failed.len(),
                    "recovered jobs with expired leases"
                );
                let _ = myself.send_message(PipelineMsg::Wake);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot recover expired jobs"),
        }
    }

    /// Fails attempts whose worker has said nothing for longer than its stage can take: every
    /// tool runs under a timeout and reports when it ends, so silence past it means a message
    /// was lost. Without this, such a job would keep its renewed lease for ever.
    async fn fail_silent_attempts(&mut self, myself: &ActorRef<PipelineMsg>) {
        let settings = &self.ctx.settings;
        let margin = Duration::from_secs(120);
        let limit = |stage: Stage| match stage {
            Stage::Download => Duration::from_secs(settings.download.timeout_secs.get()) + margin,
            Stage::Finalize => Duration::from_secs(600),
            _ => Duration::from_secs(settings.processing.timeout_secs.get()) + margin,
        };
        let silent = self
            .in_flight
            .leases_where(|r| r.last_activity.elapsed() > limit(r.stage));
        for lease in silent {
            let target = self
                .in_flight
                .current(&lease)
                .map(|r| (r.stage, r.platform));
            if let Some((stage, platform)) = target {
                tracing::error!(job = %lease.job, item = %lease.item, stage = stage.as_str(), "no word from the worker of a running job; failing the attempt");
                self.cancel_stage(stage, platform, lease.job);
            }
            let error = JobError::new(
                ErrorCode::WorkerLost,
                "the worker stopped reporting before the job finished",
            );
            self.fail_attempt(myself, &lease, error).await;
        }
    }

    /// Stops the tool process of an attempt, wherever it runs (its actor removes the work
    /// directory once the process is gone).
    pub(super) fn cancel_work(&self, running: &Running) {
        self.cancel_stage(running.stage, running.platform, running.job.lease.job);
    }

    fn cancel_stage(&self, stage: Stage, platform: Platform, job: crate::domain::JobId) {
        match stage {
            Stage::Download => {
                if let Some(downloads) = self
                    .children
                    .get::<DownloadSupMsg>(PipelineChild::Downloads)
                {
                    let _ = downloads.send_message(DownloadSupMsg::Cancel(platform, job));
                }
            }
            // A commit is a quick rename, guarded by the lease; it cannot be stopped half-way.
            Stage::Finalize => {}
            _ => {
                if let Some(pool) = self.children.get::<PoolMsg>(PipelineChild::Processing) {
                    let _ = pool.send_message(PoolMsg::Cancel(job));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::throttle_warning;

    #[test]
    fn only_far_lower_resolutions_are_throttling() {
        assert!(throttle_warning(Some(1080), 240).unwrap().contains("1080p"));
        assert!(throttle_warning(Some(1080), 720).is_none());
        assert!(throttle_warning(Some(720), 720).is_none());
        assert!(throttle_warning(None, 240).is_none());
    }
}
