//! MetricsActor: turns events from the other actors into Prometheus metrics, and refreshes
//! the gauges that describe state (queue depth, jobs in flight, breakers, storage) on a timer.
//!
//! The families live in `crate::metrics`, in the app's own registry. Events are
//! fire-and-forget: metrics never hold up real work, and a restart of this actor loses no
//! count (the counters belong to the registry, not to the actor).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::task::AbortOnDropHandle;

pub use crate::metrics::{
    CaptureOutcome, CleanupOperation, CleanupStatus, JobOutcome, ProcessingStage, RescanReason,
    WatchOutcome,
};

use crate::actors::storage::StorageMsg;
use crate::context::AppContext;
use crate::domain::breaker::Gate;
use crate::domain::{ErrorCode, JobKind, Platform, Quality, Source};
use crate::metrics::{BREAKER_STATES, Families, NO_PLATFORM, queue_series};

#[derive(Debug)]
pub enum MetricsMsg {
    /// A submission reached a door (API, Telegram, watch folder).
    CaptureRequested {
        source: Source,
        outcome: CaptureOutcome,
    },
    /// An attempt of a job ended.
    JobFinished {
        kind: JobKind,
        /// The rendition's quality, for transcode jobs.
        quality: Option<Quality>,
        outcome: JobOutcome,
        code: Option<ErrorCode>,
    },
    ActorRestarted {
        actor: &'static str,
    },
    /// A download came in far below the resolution its source announced.
    DownloadThrottled {
        platform: Platform,
    },
    /// A download ended: how long it took (rate-limit waits excluded), and how.
    DownloadFinished {
        platform: Platform,
        seconds: f64,
        code: Option<ErrorCode>,
    },
    /// A processing step ended.
    StageFinished {
        stage: ProcessingStage,
        seconds: f64,
        ok: bool,
    },
    /// Clean-up operations the StorageActor carried out.
    Cleanup {
        operation: CleanupOperation,
        status: CleanupStatus,
        count: u64,
    },
    /// The watch folder was scanned in full.
    WatchRescan(RescanReason),
    /// A file was taken from the watch folder.
    WatchFile(WatchOutcome),
    /// Time to re-read the state gauges.
    Refresh,
}

pub struct MetricsState {
    ctx: Arc<AppContext>,
    _ticker: Option<AbortOnDropHandle<()>>,
}

pub struct MetricsActor;

impl Actor for MetricsActor {
    type Msg = MetricsMsg;
    type State = MetricsState;
    type Arguments = Arc<AppContext>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        ctx.metrics_actor.set(myself.clone());
        let ticker = ctx.metrics.enabled().then(|| {
            let every = Duration::from_secs(ctx.settings.metrics.refresh_secs.max(1));
            // The first refresh runs at once: a scrape right after start sees real gauges.
            let _ = myself.send_message(MetricsMsg::Refresh);
            AbortOnDropHandle::new(myself.send_interval(every, || MetricsMsg::Refresh))
        });
        Ok(MetricsState {
            ctx,
            _ticker: ticker,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let families = &state.ctx.metrics.families;
        match message {
            MetricsMsg::Refresh => refresh(&state.ctx).await,
            event => apply(families, &event),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.ctx.metrics_actor.clear();
        Ok(())
    }
}

fn apply(f: &Families, event: &MetricsMsg) {
    use crate::metrics::label_code as code;
    match *event {
        MetricsMsg::CaptureRequested { source, outcome } => f
            .captures
            .with_label_values(&[source.as_str(), outcome.as_str()])
            .inc(),
        MetricsMsg::JobFinished {
            kind,
            quality,
            outcome,
            code: error,
        } => {
            f.jobs
                .with_label_values(&[kind.as_str(), outcome.as_str(), code(error)])
                .inc();
            if let Some(quality) = quality.filter(|_| kind == JobKind::Transcode) {
                f.transcodes
                    .with_label_values(&[quality.as_str(), outcome.as_str()])
                    .inc();
            }
        }
        MetricsMsg::ActorRestarted { actor } => f.restarts.with_label_values(&[actor]).inc(),
        MetricsMsg::DownloadThrottled { platform } => {
            f.throttled.with_label_values(&[platform.as_str()]).inc()
        }
        MetricsMsg::DownloadFinished {
            platform,
            seconds,
            code: error,
        } => {
            let outcome = if error.is_none() {
                "success"
            } else {
                "failure"
            };
            f.downloads
                .with_label_values(&[platform.as_str(), outcome, code(error)])
                .inc();
            f.download_seconds
                .with_label_values(&[platform.as_str()])
                .observe(seconds);
        }
        MetricsMsg::StageFinished { stage, seconds, ok } => f
            .processing_seconds
            .with_label_values(&[stage.as_str(), if ok { "success" } else { "failure" }])
            .observe(seconds),
        MetricsMsg::Cleanup {
            operation,
            status,
            count,
        } => f
            .cleanups
            .with_label_values(&[operation.as_str(), status.as_str()])
            .inc_by(count),
        MetricsMsg::WatchRescan(reason) => {
            f.watch_rescans.with_label_values(&[reason.as_str()]).inc()
        }
        MetricsMsg::WatchFile(outcome) => {
            f.watch_files.with_label_values(&[outcome.as_str()]).inc()
        }
        MetricsMsg::Refresh => {}
    }
}

/// How long one source of gauges may take before this refresh goes on without it.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Re-reads queue depth, jobs in flight and breakers from the database, and storage from the
/// StorageActor. A source that fails keeps its last values (and the refresh timestamp tells).
async fn refresh(ctx: &AppContext) {
    let f = &ctx.metrics.families;
    let now = crate::clock::now_ms();
    let mut complete = true;
    match tokio::time::timeout(
        SOURCE_TIMEOUT,
        crate::db::housekeeping::queue_depth(&ctx.db, &ctx.lease_owner, now),
    )
    .await
    {
        Ok(Ok(depth)) => {
            // Every series is set (to zero when its state emptied), never reset: a scrape in
            // the middle of a refresh must not see a queue that is momentarily empty.
            let mut queue: HashMap<(&str, &str, &str), i64> =
                queue_series().map(|key| (key, 0)).collect();
            let mut in_flight: HashMap<&str, i64> =
                JobKind::ALL.map(|kind| (kind.as_str(), 0)).into();
            for row in &depth.rows {
                let platform = row.platform.map_or(NO_PLATFORM, Platform::as_str);
                *queue
                    .entry((row.kind.as_str(), row.state, platform))
                    .or_default() += row.count;
                if row.mine {
                    *in_flight.entry(row.kind.as_str()).or_default() += row.count;
                }
            }
            for ((kind, state, platform), count) in queue {
                f.queue_jobs
                    .with_label_values(&[kind, state, platform])
                    .set(count);
            }
            for (kind, count) in in_flight {
                f.in_flight.with_label_values(&[kind]).set(count);
            }
            f.queue_oldest_due.set(
                depth
                    .oldest_due_ms
                    .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0),
            );
        }
        Ok(Err(e)) => {
            complete = false;
            tracing::warn!(error = %e, "cannot read the queue depth for metrics");
        }
        Err(_) => complete = false,
    }
    match tokio::time::timeout(SOURCE_TIMEOUT, crate::db::breakers::load_all(&ctx.db)).await {
        Ok(Ok(stored)) => {
            for platform in Platform::ALL {
                let breaker = stored
                    .iter()
                    .find(|s| s.platform == platform)
                    .map(|s| s.breaker)
                    .unwrap_or_default();
                let current = match breaker.gate(now) {
                    Gate::Closed => "closed",
                    Gate::Open { .. } => "open",
                    Gate::Probe => "probing",
                };
                for state in BREAKER_STATES {
                    f.breakers
                        .with_label_values(&[platform.as_str(), state])
                        .set(i64::from(state == current));
                }
            }
        }
        _ => complete = false,
    }
    match ctx.storage.call(StorageMsg::Stats, SOURCE_TIMEOUT).await {
        Ok(stats) => {
            let s = stats.stored;
            for (kind, tally) in [
                ("videos", s.videos),
                ("images", s.images),
                ("renditions", s.renditions),
                ("thumbnails", s.thumbnails),
                ("temp", stats.temp),
            ] {
                f.storage_bytes
                    .with_label_values(&[kind])
                    .set(saturating_i64(tally.bytes));
                f.storage_files
                    .with_label_values(&[kind])
                    .set(saturating_i64(tally.files));
            }
            f.disk_total.set(saturating_i64(stats.disk_total_bytes));
            f.disk_free.set(saturating_i64(stats.disk_free_bytes));
        }
        Err(_) => complete = false,
    }
    if complete {
        f.gauges_refreshed.set(now as f64 / 1000.0);
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
