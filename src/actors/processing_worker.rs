//! ProcessingWorker: runs one processing job at a time (ffprobe/ffmpeg) in a task it owns.
//!
//! Its result goes straight to the Pipeline; the pool only hears that the worker is free.
//! Cancelling drops the task, which kills ffmpeg's process group; if the worker dies, the
//! same happens with its state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::attempt::AttemptTask;
use super::pipeline::{PipelineHandle, PipelineMsg};
use super::processing_pool::PoolMsg;
use super::storage::StorageHandle;
use crate::context::AppContext;
use crate::db::jobs::Lease;
use crate::domain::{ErrorCode, JobError, JobId, Progress, Stage};
use crate::faults::FaultPoint;
use crate::media::processing::{self, ProcessedImage, ProcessedMedia, Transcoded};
use crate::metrics::{Event, ProcessingStage};

/// One piece of processing work.
#[derive(Debug, Clone)]
pub struct ProcessTicket {
    pub lease: Lease,
    pub work_dir: PathBuf,
    pub work: Work,
}

#[derive(Debug, Clone)]
pub enum Work {
    /// Turn a download into the item's video and thumbnails.
    Capture { input: PathBuf },
    /// Check an imported photo and make its thumbnails.
    Image { input: PathBuf },
    /// Make a rendition of a stored video at this frame size.
    Transcode { source: PathBuf, frame: (u32, u32) },
}

/// What processing produced.
#[derive(Debug)]
pub enum Processed {
    Capture(Box<ProcessedMedia>),
    Image(Box<ProcessedImage>),
    Rendition(Transcoded),
}

#[derive(Debug)]
pub enum WorkerMsg {
    Process(ProcessTicket),
    /// Stop the job if this worker runs it.
    Cancel(JobId),
    /// The worker's own task finished the attempt (its result went to the Pipeline).
    Done(Lease),
}

pub struct WorkerArgs {
    pub ctx: Arc<AppContext>,
    pub pipeline: PipelineHandle,
    pub storage: StorageHandle,
    pub index: usize,
    pub pool: ActorRef<PoolMsg>,
}

pub struct WorkerState {
    args: WorkerArgs,
    current: Option<AttemptTask>,
}

impl WorkerState {
    fn idle(&self, lease: Lease) {
        let _ = self
            .args
            .pool
            .send_message(PoolMsg::WorkerIdle(self.args.index, lease));
    }
}

pub struct ProcessingWorker;

impl Actor for ProcessingWorker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(WorkerState {
            args,
            current: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            WorkerMsg::Process(ticket) => {
                state
                    .args
                    .ctx
                    .faults
                    .crash_if_armed(FaultPoint::ProcessingWorkerHandle);
                let (lease, work_dir) = (ticket.lease.clone(), ticket.work_dir.clone());
                let ctx = Arc::clone(&state.args.ctx);
                let pipeline = state.args.pipeline.clone();
                let work = async move {
                    let lease = ticket.lease.clone();
                    let result = std::panic::AssertUnwindSafe(run(&ticket, &ctx, &pipeline))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            Err(JobError::new(
                                ErrorCode::WorkerCrashed,
                                "the processing task crashed",
                            ))
                        });
                    let _ = pipeline.send(PipelineMsg::Processed {
                        lease: lease.clone(),
                        result,
                    });
                    let _ = myself.send_message(WorkerMsg::Done(lease));
                };
                // The pool only sends work to idle workers, so there is no current task.
                state.current = Some(AttemptTask::spawn(lease, work_dir, work));
            }
            WorkerMsg::Done(lease) => {
                if state.current.as_ref().is_some_and(|c| *c.lease() == lease) {
                    state.current = None;
                    state.idle(lease);
                }
            }
            WorkerMsg::Cancel(job) => {
                if state.current.as_ref().is_some_and(|c| c.lease().job == job) {
                    let current = state.current.take().expect("checked");
                    let lease = current.cancel(&state.args.storage);
                    state.idle(lease);
                }
            }
        }
        Ok(())
    }
}

async fn run(
    ticket: &ProcessTicket,
    ctx: &AppContext,
    pipeline: &PipelineHandle,
) -> Result<Processed, JobError> {
    let config = ctx.processing_config();
    let lease = ticket.lease.clone();
    let clock = StageClock::new(ctx, matches!(ticket.work, Work::Transcode { .. }));
    let report = |stage| {
        clock.enter(stage);
        let _ = pipeline.send(PipelineMsg::Progress {
            lease: lease.clone(),
            progress: Progress::stage(stage),
        });
    };
    let result = match &ticket.work {
        Work::Capture { input } => processing::process(&config, input, &ticket.work_dir, &report)
            .await
            .map(|media| Processed::Capture(Box::new(media))),
        Work::Image { input } => {
            processing::process_image(&config, input, &ticket.work_dir, &report)
                .await
                .map(|image| Processed::Image(Box::new(image)))
        }
        Work::Transcode { source, frame } => {
            crate::storage::fresh_work_dir(&ticket.work_dir).await?;
            processing::transcode(&config, source, &ticket.work_dir, *frame, &report)
                .await
                .map(Processed::Rendition)
        }
    };
    clock.finish(result.is_ok());
    result
}

/// Times the steps of one run for `prsnl_processing_duration_seconds`: a step ends when the
/// next one begins (a success) or with the run (its outcome). A cancelled run reports nothing.
struct StageClock<'a> {
    ctx: &'a AppContext,
    transcode: bool,
    current: std::sync::Mutex<Option<(ProcessingStage, Instant)>>,
}

impl<'a> StageClock<'a> {
    fn new(ctx: &'a AppContext, transcode: bool) -> Self {
        Self {
            ctx,
            transcode,
            current: std::sync::Mutex::new(None),
        }
    }

    fn enter(&self, stage: Stage) {
        let stage = match stage {
            _ if self.transcode => ProcessingStage::Transcode,
            Stage::Probe => ProcessingStage::Probe,
            Stage::Convert => ProcessingStage::Convert,
            Stage::Compress => ProcessingStage::Compress,
            Stage::Thumbnails => ProcessingStage::Thumbnails,
            Stage::Download | Stage::Finalize => return,
        };
        let mut current = self.current.lock().expect("stage clock lock");
        if current.is_some_and(|(running, _)| running == stage) {
            return;
        }
        if let Some((done, since)) = current.replace((stage, Instant::now())) {
            self.report(done, since, true);
        }
    }

    fn finish(&self, ok: bool) {
        if let Some((stage, since)) = self.current.lock().expect("stage clock lock").take() {
            self.report(stage, since, ok);
        }
    }

    fn report(&self, stage: ProcessingStage, since: Instant, ok: bool) {
        self.ctx.observe(Event::StageFinished {
            stage,
            seconds: since.elapsed().as_secs_f64(),
            ok,
        });
    }
}
