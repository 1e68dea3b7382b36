//! MetricsActor: refreshes the gauges that describe state (queue depth, jobs in flight,
//! breakers, storage) on a timer; that is all that must be periodic.
//!
//! It also asks the external tools for their versions (`prsnl_tool_info`), a minute after start
//! and then as the tool probe's cache expires: a yt-dlp start costs half a second of CPU, which
//! short-lived processes (a test, a crash loop) should not pay. A readiness probe publishes
//! them sooner.
//!
//! Counters and histograms are not its business: every event is recorded straight on the
//! app's registry (`Metrics::record`), so a restart of this actor cannot lose one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::task::AbortOnDropHandle;

use super::Env;
use super::storage::StorageHandle;
use crate::context::AppContext;
use crate::domain::breaker::Gate;
use crate::domain::{JobKind, Platform};
use crate::faults::FaultPoint;
use crate::metrics::{BREAKER_STATES, NO_PLATFORM, UserFigures, queue_series};

/// The actor's only message: its own timer.
#[derive(Debug)]
pub enum MetricsMsg {
    /// Time to re-read the state gauges.
    Refresh,
}

pub struct MetricsState {
    ctx: Arc<AppContext>,
    storage: StorageHandle,
    started: std::time::Instant,
    _ticker: Option<AbortOnDropHandle<()>>,
}

/// How long after start the tools are first probed for the metrics.
const TOOLS_AFTER: Duration = Duration::from_secs(60);
/// How long the tools may take to say their versions.
const TOOLS_TIMEOUT: Duration = Duration::from_secs(30);

pub struct MetricsActor;

impl Actor for MetricsActor {
    type Msg = MetricsMsg;
    type State = MetricsState;
    type Arguments = Env;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        Env { ctx, handles }: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ticker = ctx.metrics.enabled().then(|| {
            let every = Duration::from_secs(ctx.settings.metrics.refresh_secs.get());
            // The first refresh runs at once: a scrape right after start sees real gauges.
            let _ = myself.send_message(MetricsMsg::Refresh);
            AbortOnDropHandle::new(myself.send_interval(every, || MetricsMsg::Refresh))
        });
        Ok(MetricsState {
            ctx,
            storage: handles.storage,
            started: std::time::Instant::now(),
            _ticker: ticker,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let MetricsMsg::Refresh = message;
        state.ctx.faults.crash_if_armed(FaultPoint::MetricsRefresh);
        refresh(&state.ctx, &state.storage).await;
        if state.started.elapsed() >= TOOLS_AFTER {
            let ctx = &state.ctx;
            let probe = ctx.tools.current(&ctx.settings, &ctx.metrics.families);
            let _ = tokio::time::timeout(TOOLS_TIMEOUT, probe).await;
        }
        Ok(())
    }
}

/// How long one source of gauges may take before this refresh goes on without it.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Re-reads queue depth, jobs in flight and breakers from the database, and storage from the
/// StorageActor. A source that fails keeps its last values (and the refresh timestamp tells).
async fn refresh(ctx: &AppContext, storage: &StorageHandle) {
    let f = &ctx.metrics.families;
    let at = crate::clock::now();
    let now = at.as_millis();
    let mut complete = true;
    match tokio::time::timeout(
        SOURCE_TIMEOUT,
        crate::db::housekeeping::queue_depth(&ctx.db, &ctx.lease_owner, at),
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
    match tokio::time::timeout(SOURCE_TIMEOUT, storage.stats()).await {
        Ok(Ok(stats)) => {
            let s = stats.stored;
            for (kind, tally) in [
                ("videos", s.videos),
                ("images", s.images),
                ("renditions", s.renditions),
                ("thumbnails", s.thumbnails),
                ("subtitles", s.subtitles),
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
        _ => complete = false,
    }
    match tokio::time::timeout(SOURCE_TIMEOUT, crate::db::storage_report::by_user(&ctx.db)).await {
        Ok(Ok(users)) => f.users.set(
            users
                .into_iter()
                .map(|u| UserFigures {
                    id: u.user.id.to_string(),
                    usage_bytes: u.usage_bytes,
                    quota_bytes: u.user.quota_bytes,
                })
                .collect(),
        ),
        _ => complete = false,
    }
    f.backup_interval.set(
        ctx.settings
            .backup
            .interval
            .map_or(0.0, |interval| interval.as_secs_f64()),
    );
    match tokio::time::timeout(
        SOURCE_TIMEOUT,
        crate::db::backup_runs::last_success(&ctx.db),
    )
    .await
    {
        Ok(Ok((last, first))) => {
            let seconds = |ms: i64| ms as f64 / 1000.0;
            match last {
                Some(run) => {
                    f.backup_last_success
                        .set(run.finished_at.map_or(0.0, seconds));
                    f.backup_duration.set(run.seconds.unwrap_or(0.0));
                    f.backup_bytes
                        .with_label_values(&["new"])
                        .set(run.bytes_new.unwrap_or(0));
                    f.backup_bytes
                        .with_label_values(&["linked"])
                        .set(run.bytes_linked.unwrap_or(0));
                }
                // Backups have been expected since the first run was recorded.
                None => f.backup_last_success.set(first.map_or(0.0, seconds)),
            }
        }
        _ => complete = false,
    }
    if complete {
        f.gauges_refreshed.set(now as f64 / 1000.0);
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
