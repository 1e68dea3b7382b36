//! `WatchDoor`: the watch folder as the supervision tree runs it. Each start opens (or
//! re-creates) the inbox, starts the watcher, and runs `WatchFolder::run` until stopped.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::folder::WatchFolder;
use super::inbox::Inbox;
use super::watcher;
use crate::actors::door::{Door, DoorTask};
use crate::context::AppContext;
use crate::intake::Intake;

pub struct WatchDoor {
    ctx: Arc<AppContext>,
    intake: Intake,
}

impl WatchDoor {
    pub fn new(ctx: Arc<AppContext>, intake: Intake) -> Self {
        Self { ctx, intake }
    }
}

impl Door for WatchDoor {
    fn start(&self, stop: CancellationToken) -> BoxFuture<'_, Result<Vec<DoorTask>, String>> {
        async move {
            let settings = &self.ctx.settings.watch;
            let inbox = Inbox::open(&settings.dir).map_err(|e| {
                format!(
                    "cannot create the watch folder {}: {e}",
                    settings.dir.display()
                )
            })?;
            let (events, received) = tokio::sync::mpsc::unbounded_channel();
            let watcher =
                watcher::start(&events, &inbox, settings.poll, settings.poll_interval_ms.get())?;
            tracing::info!(dir = %inbox.root().display(), poll = settings.poll, "watching the inbox");
            let folder = WatchFolder::new(
                Arc::clone(&self.ctx),
                self.intake.clone(),
                inbox,
                watcher,
            );
            let run = folder.run(received, stop.clone());
            Ok(vec![DoorTask::until_stopped("watcher", &stop, run)])
        }
        .boxed()
    }
}
