//! What the Pipeline sets up when it (re)starts: its breakers, read from the database, and
//! its children (the DownloadSupervisor and the ProcessingPool).

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{PipelineChild, PipelineMsg, PipelineState};
use crate::actors::Env;
use crate::actors::download_supervisor::DownloadSupervisor;
use crate::actors::processing_pool::ProcessingPool;
use crate::context::AppContext;
use crate::domain::Platform;
use crate::domain::breaker::Breaker;

/// The persisted breakers, closed for platforms without a row.
pub(super) async fn load_breakers(
    ctx: &AppContext,
) -> Result<HashMap<Platform, Breaker>, crate::db::DbError> {
    let stored = crate::db::breakers::load_all(&ctx.db).await?;
    Ok(Platform::ALL
        .into_iter()
        .map(|p| {
            (
                p,
                stored
                    .iter()
                    .find(|s| s.platform == p)
                    .map(|s| s.breaker)
                    .unwrap_or_default(),
            )
        })
        .collect())
}

pub(super) async fn spawn_child(
    myself: &ActorRef<PipelineMsg>,
    state: &mut PipelineState,
    child: PipelineChild,
) -> Result<(), ActorProcessingErr> {
    let env = Env {
        ctx: Arc::clone(&state.ctx),
        handles: state.handles.clone(),
    };
    let cell = match child {
        PipelineChild::Downloads => {
            Actor::spawn_linked(None, DownloadSupervisor, env, myself.get_cell())
                .await?
                .0
                .get_cell()
        }
        PipelineChild::Processing => {
            Actor::spawn_linked(None, ProcessingPool, env, myself.get_cell())
                .await?
                .0
                .get_cell()
        }
    };
    state.children.started(child, cell);
    Ok(())
}
