//! An attempt's way between its workers: progress reports, a finished download handed to the
//! processing pool, a processed result checked for a stored twin and handed to Storage. Each
//! message names the attempt by its lease; one for an attempt that is no longer running (it
//! was failed, cancelled or re-run) is dropped.

use std::time::{Duration, Instant};

use ractor::ActorRef;

use super::in_flight::Holder;
use super::output::Output;
use super::{PipelineChild, PipelineMsg, PipelineState};
use crate::actors::processing_pool::PoolMsg;
use crate::actors::processing_worker::{ProcessTicket, Processed, Work};
use crate::actors::storage::StorageMsg;
use crate::clock;
use crate::context::ItemChange;
use crate::db::items;
use crate::db::jobs::Lease;
use crate::domain::subtitle_track::{SubtitleLang, SubtitleTrack};
use crate::domain::{ErrorCode, ItemKind, JobError, Progress, Stage};
use crate::media::ytdlp::Downloaded;

/// Progress is written to the database at most this often per job (events go out always).
const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_millis(500);

impl PipelineState {
    /// Records who holds the attempt's work now.
    pub(super) fn hand_to(&mut self, lease: &Lease, holder: Holder) {
        if let Some(running) = self.in_flight.current(lease) {
            running.holder = holder;
        }
    }

    /// Hands processing work to the pool; the attempt is then the pool's.
    pub(super) fn send_to_pool(
        &mut self,
        lease: &Lease,
        ticket: ProcessTicket,
    ) -> Result<(), JobError> {
        let sent = self
            .children
            .get::<PoolMsg>(PipelineChild::Processing)
            .is_some_and(|pool| pool.send_message(PoolMsg::Process(ticket)).is_ok());
        if !sent {
            return Err(JobError::new(
                ErrorCode::Unavailable,
                "the processing pool is restarting",
            ));
        }
        self.hand_to(lease, Holder::Processing);
        Ok(())
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
            && let Err(e) = items::set_progress(&self.ctx.db, item, &progress, clock::now()).await
        {
            tracing::warn!(%item, error = %e, "cannot record progress");
        }
    }

    pub(super) async fn downloaded(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
        download: Downloaded,
    ) {
        let Some(running) = self.in_flight.current(lease) else {
            return;
        };
        running.holder = Holder::Pipeline;
        running.title = download.title;
        running.source_meta = *download.source_meta;
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
        if let Err(error) = self.send_to_pool(lease, ticket) {
            self.fail_attempt(myself, lease, error).await;
        }
    }

    pub(super) async fn processed(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
        processed: Processed,
    ) {
        self.hand_to(lease, Holder::Pipeline);
        match &processed {
            Processed::Capture(video) => {
                tracing::info!(job = %lease.job, item = %lease.item, plan = ?video.plan, reencoded = video.encoding.reencoded(), "processed")
            }
            Processed::Image(image) => {
                tracing::info!(job = %lease.job, item = %lease.item, width = image.media.width, height = image.media.height, "processed an image")
            }
            Processed::Rendition(_) => {}
        }
        // Content dedup: a video identical to a stored one shares its files.
        let processed = if matches!(processed, Processed::Capture(_)) {
            match self.share_with_twin(myself, lease, processed).await {
                Some(processed) => processed,
                None => return,
            }
        } else {
            processed
        };
        let output = Output::from(processed);
        let Some(running) = self.in_flight.current(lease) else {
            return;
        };
        let Some(files) = output.commit_files(&running.item.paths, running.quality) else {
            let error = JobError::new(ErrorCode::Internal, "a rendition without a quality");
            return self.fail_attempt(myself, lease, error).await;
        };
        running.output = Some(output);
        self.progress(lease, Progress::stage(Stage::Finalize)).await;
        let commit = StorageMsg::Commit {
            lease: lease.clone(),
            files,
        };
        if self.handles.storage.send(commit).is_err() {
            let error = JobError::new(ErrorCode::Unavailable, "storage is restarting");
            return self.fail_attempt(myself, lease, error).await;
        }
        self.hand_to(lease, Holder::Storage);
    }

    /// A processed video identical to one being committed waits for it (`None`); identical
    /// to a stored one, it shares its files and completes at once (`None`); otherwise it goes
    /// on to be stored (`Some`).
    async fn share_with_twin(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
        processed: Processed,
    ) -> Option<Processed> {
        let item = self.in_flight.current(lease)?.item.id;
        let Processed::Capture(video) = &processed else {
            return Some(processed);
        };
        let sha256 = video.sha256.clone();
        let langs: Vec<_> = video
            .subtitles
            .iter()
            .map(|s| s.track.lang.clone())
            .collect();
        let in_flight = &self.in_flight;
        let Some(processed) = self
            .content
            .claim_or_wait(&sha256, lease, processed, |job| in_flight.contains(job))
        else {
            tracing::debug!(job = %lease.job, %item, "identical to a video being stored; waiting for it");
            return None;
        };
        match items::completed_with_content(&self.ctx.db, &sha256, item).await {
            // Sharing takes the twin's subtitles: only a capture with the same languages
            // shares; any other keeps its own copy rather than lose its tracks or take (or
            // hand over) another owner's.
            Ok(Some(twin)) if !same_languages(&langs, &twin.subtitles) => {
                tracing::info!(job = %lease.job, %item, twin = %twin.id, "identical to a stored video but with other subtitles; storing its own copy");
                Some(processed)
            }
            Ok(Some(twin)) => {
                tracing::info!(job = %lease.job, %item, twin = %twin.id, "identical to a stored video; sharing its files");
                if let Some(running) = self.in_flight.current(lease) {
                    running.shared = Some(twin.paths);
                    running.output = Some(Output::from(processed));
                }
                self.complete(myself, lease).await;
                None
            }
            Ok(None) => Some(processed),
            // Not knowing only costs a second copy.
            Err(e) => {
                tracing::warn!(job = %lease.job, %item, error = %e, "cannot look for a stored twin");
                Some(processed)
            }
        }
    }
}

/// Whether a capture's subtitle languages are exactly a stored twin's.
fn same_languages(langs: &[SubtitleLang], twin: &[SubtitleTrack]) -> bool {
    langs.len() == twin.len() && langs.iter().all(|l| twin.iter().any(|t| &t.lang == l))
}
