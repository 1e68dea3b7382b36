//! Claiming due work and starting each attempt where its kind begins: a capture at its
//! platform's downloader, an import at the stager (a copy of the local file, off the actor's
//! thread), a transcode at the processing pool.

use std::time::Instant;

use ractor::ActorRef;

use super::in_flight::{Holder, Running};
use super::{PipelineChild, PipelineMsg, PipelineState};
use crate::actors::download_supervisor::DownloadSupMsg;
use crate::actors::downloader::DownloadTicket;
use crate::actors::processing_pool::PoolMsg;
use crate::actors::processing_worker::{ProcessTicket, Work};
use crate::clock;
use crate::db::imports::ImportPayload;
use crate::db::jobs::{self, ClaimedJob, Lane, Lease};
use crate::db::renditions::TranscodePayload;
use crate::db::{items, quota};
use crate::domain::breaker::Gate;
use crate::domain::quota::Standing;
use crate::domain::{
    CaptureUrl, ErrorCode, ItemKind, ItemStatus, JobError, JobKind, Platform, Progress, Stage,
};
use crate::media::ytdlp::Downloaded;

impl PipelineState {
    /// Whether media_root is below its free-space floor: queued work then stays queued
    /// (running attempts go on), and claiming resumes by itself at the first claim after
    /// space is freed. The change either way is logged once.
    fn waits_for_space(&mut self) -> bool {
        let short = self
            .ctx
            .space
            .is_below(self.ctx.media.path())
            .unwrap_or(false);
        if short != self.short_of_space {
            if short {
                tracing::warn!(
                    min_free_mb = self.ctx.settings.storage.min_free_mb,
                    "media_root is below storage.min_free_mb: queued work waits until space is freed"
                );
            } else {
                tracing::info!("media_root has space again: claiming queued work");
            }
            self.short_of_space = short;
        }
        short
    }

    /// Whether media_root is below its floor even counting the attempt's own work files as
    /// free (they are removed once it ends): someone else's bytes filled the disk.
    pub(super) fn short_of_space_without(&self, running: &Running) -> bool {
        let own = crate::storage::space::tree_bytes(&running.work_dir);
        self.ctx
            .space
            .below_without(self.ctx.media.path(), own)
            .unwrap_or(false)
    }

    /// Claims as many due jobs as the caps allow and starts them.
    pub(super) async fn claim(&mut self, myself: &ActorRef<PipelineMsg>) {
        if self.draining || self.stopping || self.waits_for_space() {
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
            let now = clock::now().as_millis();
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
            match jobs::claim(&self.ctx.db, &claimant, lane, room as u32, clock::now()).await {
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
            holder: Holder::Pipeline,
            work_dir,
            title: None,
            source_meta: Default::default(),
            announced_height: None,
            shared: None,
            output: None,
            last_progress_write: None,
            last_activity: Instant::now(),
            job,
        });
        if let Some(stale) = replaced {
            // Cannot happen while leases are fenced; if it does, one attempt must stop.
            tracing::error!(job = %lease.job, item = %lease.item, attempt = stale.job.lease.attempt, "an earlier attempt of a claimed job was still running; stopping it");
            self.cancel_work(&stale);
        }
        if self.settled_by_twin(myself, &lease).await {
            return;
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
        let owner = running.item.owner.clone();
        let (max_bytes, quota) = self.download_budget(owner.as_deref()).await?;
        let running = self.in_flight.current(lease).expect("just inserted");
        let ticket = DownloadTicket {
            lease: lease.clone(),
            platform: running.platform,
            url,
            work_dir: running.work_dir.clone(),
            max_bytes,
            quota,
        };
        let platform = running.platform;
        self.progress(lease, Progress::stage(Stage::Download)).await;
        self.children
            .get::<DownloadSupMsg>(PipelineChild::Downloads)
            .and_then(|downloads| {
                downloads
                    .send_message(DownloadSupMsg::Download(ticket))
                    .ok()
            })
            .ok_or_else(|| {
                JobError::new(ErrorCode::Unavailable, "the downloaders are restarting")
            })?;
        self.hand_to(lease, Holder::Downloader(platform));
        Ok(())
    }

    /// The most a download for `item` may take: the size limit, or what is left of its
    /// owner's quota when that is less (the quota is then returned too). A full quota refuses
    /// the attempt before any byte is fetched.
    async fn download_budget(
        &self,
        owner: Option<&str>,
    ) -> Result<(u64, Option<Standing>), JobError> {
        let limit = self.ctx.settings.max_video_bytes();
        let Some(owner) = owner else {
            return Ok((limit, None));
        };
        let standing = match quota::limited(&self.ctx.db, owner).await {
            Ok(standing) => standing,
            Err(e) => {
                return Err(JobError::new(
                    ErrorCode::Unavailable,
                    format!("cannot read the owner's quota: {e}"),
                ));
            }
        };
        if let Some(standing) = standing.filter(Standing::is_full) {
            return Err(standing.refusal());
        }
        let (max_bytes, by_quota) = Standing::budget(standing.as_ref(), limit);
        Ok((max_bytes, standing.filter(|_| by_quota)))
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
        let owner = running.item.owner.clone();
        let (max_bytes, quota) = self.download_budget(owner.as_deref()).await?;
        self.progress(lease, Progress::stage(Stage::Download)).await;
        self.hand_to(lease, Holder::Stager);
        let (pipeline, lease) = (myself.clone(), lease.clone());
        tokio::task::spawn_blocking(move || {
            let result = crate::storage::import::stage(&payload, &work_dir, max_bytes)
                .map(|(path, size_bytes)| Downloaded {
                    path,
                    size_bytes,
                    title,
                    // An imported file's own tags are read when it is probed.
                    source_meta: Default::default(),
                    announced_height: None,
                })
                .map_err(|e| match quota {
                    Some(standing) if e.code == ErrorCode::TooLarge => standing.download_refusal(),
                    _ => e,
                });
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
        self.send_to_pool(lease, ticket)
    }
}
