//! DownloadSupervisor: one Downloader per platform, restarted one-for-one.
//!
//! It routes each download to its platform's actor, owns the egress guard all downloads go
//! through, and knows which attempts each downloader holds: when one dies, exactly those are
//! reported lost (and charged an attempt); work routed to its replacement is not.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::Env;
use super::downloader::{DownloadTicket, Downloader, DownloaderArgs, DownloaderMsg};
use super::pipeline::{LostWork, PipelineHandle, PipelineMsg};
use super::storage::StorageHandle;
use super::supervision::{Children, RestartPolicy, follow};
use crate::context::AppContext;
use crate::db::jobs::Lease;
use crate::domain::{ErrorCode, JobError, JobId, Platform};
use crate::faults::FaultPoint;
use crate::net::egress::EgressGuard;

#[derive(Debug)]
pub enum DownloadSupMsg {
    Download(DownloadTicket),
    Cancel(Platform, JobId),
    /// A downloader is done with an attempt (finished or cancelled).
    Released(Platform, Lease),
    Restart(Platform),
}

pub struct DownloadSupState {
    ctx: Arc<AppContext>,
    pipeline: PipelineHandle,
    storage: StorageHandle,
    guard: Arc<EgressGuard>,
    children: Children<Platform>,
    /// The attempts each platform's current downloader holds.
    held: HashMap<Platform, HashSet<Lease>>,
    stopping: bool,
}

pub struct DownloadSupervisor;

impl DownloadSupervisor {
    async fn spawn_child(
        myself: &ActorRef<DownloadSupMsg>,
        state: &mut DownloadSupState,
        platform: Platform,
    ) -> Result<(), ActorProcessingErr> {
        let args = DownloaderArgs {
            ctx: Arc::clone(&state.ctx),
            pipeline: state.pipeline.clone(),
            storage: state.storage.clone(),
            platform,
            guard: Arc::clone(&state.guard),
            supervisor: myself.clone(),
        };
        let (child, _) = Actor::spawn_linked(None, Downloader, args, myself.get_cell()).await?;
        state.children.started(platform, child.get_cell());
        Ok(())
    }
}

impl Actor for DownloadSupervisor {
    type Msg = DownloadSupMsg;
    type State = DownloadSupState;
    type Arguments = Env;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        Env { ctx, handles }: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let guard = Arc::new(EgressGuard::start(&ctx.policy).await?);
        let mut state = DownloadSupState {
            ctx,
            pipeline: handles.pipeline,
            storage: handles.storage,
            guard,
            children: Children::new(RestartPolicy::DEFAULT),
            held: HashMap::new(),
            stopping: false,
        };
        for platform in Platform::ALL {
            Self::spawn_child(&myself, &mut state, platform).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DownloadSupMsg::Download(ticket) => {
                state
                    .ctx
                    .faults
                    .crash_if_armed(FaultPoint::DownloadSupervisorHandle);
                let (platform, lease) = (ticket.platform, ticket.lease.clone());
                let sent =
                    state
                        .children
                        .get::<DownloaderMsg>(platform)
                        .is_some_and(|downloader| {
                            downloader
                                .send_message(DownloaderMsg::Download(ticket))
                                .is_ok()
                        });
                if sent {
                    state.held.entry(platform).or_default().insert(lease);
                } else {
                    let error = JobError::new(
                        ErrorCode::Unavailable,
                        format!("the {platform} downloader is restarting"),
                    );
                    let _ = state.pipeline.send(PipelineMsg::Downloaded {
                        lease,
                        result: Err(error),
                    });
                }
            }
            DownloadSupMsg::Cancel(platform, job) => {
                if let Some(downloader) = state.children.get::<DownloaderMsg>(platform) {
                    let _ = downloader.send_message(DownloaderMsg::Cancel(job));
                }
            }
            DownloadSupMsg::Released(platform, lease) => {
                if let Some(held) = state.held.get_mut(&platform) {
                    held.remove(&lease);
                }
            }
            DownloadSupMsg::Restart(platform) => {
                if !state.stopping
                    && let Err(e) = Self::spawn_child(&myself, state, platform).await
                {
                    tracing::error!(%platform, error = %e, "downloader failed to restart");
                    let decision = state.children.failed_to_start(platform);
                    follow(
                        decision,
                        &myself,
                        platform,
                        DownloadSupMsg::Restart,
                        &state.ctx,
                        "downloader",
                        &e.to_string(),
                    )?;
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(exit) = state.children.exit_of(&event, state.stopping) else {
            return Ok(());
        };
        let lost: Vec<Lease> = state
            .held
            .remove(&exit.key)
            .unwrap_or_default()
            .into_iter()
            .collect();
        tracing::error!(platform = %exit.key, reason = %exit.reason, lost = lost.len(), "downloader exited; its running downloads are lost");
        if !lost.is_empty() {
            let what = format!("the {} downloader crashed", exit.key);
            state
                .pipeline
                .work_lost(LostWork::Jobs { leases: lost, what });
        }
        exit.follow(&myself, DownloadSupMsg::Restart, &state.ctx, "downloader")
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stopping = true;
        state.children.stop_all(Duration::from_secs(5)).await;
        Ok(())
    }
}
