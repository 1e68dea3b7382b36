//! `prsnl serve`: run until SIGINT/SIGTERM, then shut down gracefully.

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use crate::app::{App, Exit, StartOptions};
use crate::settings::Settings;

pub async fn run(settings: Settings) -> ExitCode {
    // Handlers first: a SIGTERM during start-up must mean "stop cleanly", not an abrupt exit.
    let (Ok(mut sigterm), Ok(mut sigint)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("prsnl: cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    let addr = settings.server.listen;
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("prsnl: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = StartOptions {
        listener: Some(listener),
        lease_owner: None,
    };
    let mut app = match App::start(settings, options).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("prsnl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _heap_upkeep = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(heap_upkeep()));
    let bound = app.local_addr().expect("started with a listener");
    match app.metrics_addr() {
        Some(metrics) => {
            tracing::info!(%bound, %metrics, "PRSNL vault is listening (metrics on their own listener)")
        }
        None => tracing::info!(%bound, "PRSNL vault is listening"),
    }
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM received"),
        _ = sigint.recv() => tracing::info!("SIGINT received"),
        exit = app.wait() => {
            tracing::error!(?exit, "the actor system stopped on its own");
            return ExitCode::FAILURE;
        }
    }
    match app.shutdown().await {
        Exit::Clean => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Exit::Failed => ExitCode::FAILURE,
    }
}

/// How often free heap pages are handed back to the kernel.
const HEAP_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Keeps a long-running process's private memory at what it uses: a process-wide concern (the
/// allocator is per process), so it lives here and not in an app, of which tests run many.
async fn heap_upkeep() {
    let mut every = tokio::time::interval(HEAP_UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let started = std::time::Instant::now();
        let released = crate::sys::release_free_heap();
        tracing::debug!(released, took = ?started.elapsed(), "returned free heap pages");
    }
}
