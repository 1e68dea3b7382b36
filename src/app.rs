//! One running app: opens storage and the database, recovers, and starts the actor tree.
//! This is the composition root: the one place that builds the doors (`http`, `watch`, `bot`)
//! and hands them, with the actors' handles, to the RootSupervisor.
//!
//! `main` runs one; tests run many side by side in one process (each with its own database,
//! media root, port and metrics registry).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::actors::Handles;
use crate::actors::door::Door;
use crate::actors::root::{Doors, RootArgs, Tree};
use crate::bot::BotCore;
use crate::bot::door::BotDoor;
use crate::clock;
use crate::context::AppContext;
use crate::db::{self, Db};
use crate::domain::ssrf::EgressPolicy;
use crate::http::door::HttpDoor;
use crate::intake::Intake;
use crate::settings::{Settings, SettingsError};
use crate::storage::{self, MediaRoot};
use crate::watch::door::WatchDoor;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("media root {path}: {source}")]
    Storage {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] db::DbError),
    #[error(
        "refusing to serve the API on {0}: nobody has a password or a token yet, and only loopback addresses may be used without authentication (create one with `prsnl user add NAME` or `prsnl token create NAME`)"
    )]
    Unauthenticated(SocketAddr),
    #[error("the API listener: {0}")]
    Listener(std::io::Error),
    #[error("cannot listen for metrics on {0} (server.metrics_listen): {1}")]
    MetricsListener(SocketAddr, std::io::Error),
    #[error("the actor system failed to start: {0}")]
    Actors(String),
    #[error("the Telegram bot: {0}")]
    Telegram(String),
    #[error(
        "another prsnl process runs as instance '{0}' on the same database; give each process its own server.instance_id"
    )]
    InstanceInUse(String),
}

/// One running process per (instance name, database): two would each take the other's
/// running jobs for orphans. Held for the app's life, released when the process ends.
fn lock_instance(
    owner: &str,
    database_url: &str,
) -> Result<nix::fcntl::Flock<std::fs::File>, StartError> {
    use sha2::Digest;
    let key = hex::encode(&sha2::Sha256::digest(format!("{owner}\n{database_url}"))[..12]);
    let path = std::env::temp_dir().join(format!("prsnl-instance-{key}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::Storage {
            path: path.display().to_string(),
            source,
        })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| StartError::InstanceInUse(owner.to_string()))
}

/// The start-up sweeps ran before the metrics existed; their counts are recorded now.
fn record_startup_sweeps(ctx: &AppContext, work_dirs: usize, resumes: usize) {
    use crate::metrics::{CleanupOperation, CleanupStatus};
    for (operation, count) in [
        (CleanupOperation::Temp, work_dirs),
        (CleanupOperation::Resume, resumes),
    ] {
        ctx.metrics
            .families
            .cleanups
            .with_label_values(&[operation.as_str(), CleanupStatus::Removed.as_str()])
            .inc_by(count as u64);
    }
}

/// Builds the doors a serving app opens: the API (and metrics) server, the watch folder when
/// `watch.enabled`, the bot when `telegram.token` is set.
fn open_doors(
    ctx: &Arc<AppContext>,
    handles: &Handles,
    intake: &Intake,
    listener: std::net::TcpListener,
    metrics_listener: Option<std::net::TcpListener>,
) -> Result<Doors, StartError> {
    let settings = &ctx.settings;
    let bot = if settings.telegram.enabled() {
        let core = BotCore::new(Arc::clone(ctx), handles).map_err(StartError::Telegram)?;
        Some(Arc::new(BotDoor::new(core)))
    } else {
        None
    };
    let watch = settings
        .watch
        .enabled
        .then(|| Arc::new(WatchDoor::new(Arc::clone(ctx), intake.clone())) as Arc<dyn Door>);
    let http = HttpDoor {
        ctx: Arc::clone(ctx),
        reach: crate::http::Reach {
            handles: handles.clone(),
            intake: intake.clone(),
            bot: bot.clone(),
        },
        listener: Arc::new(listener),
        metrics_listener: metrics_listener.map(Arc::new),
    };
    Ok(Doors {
        watch,
        bot: bot.map(|bot| bot as Arc<dyn Door>),
        http: Some(Arc::new(http)),
    })
}

/// How to start an app beyond its settings.
#[derive(Default)]
pub struct StartOptions {
    /// The bound API socket; without one the app runs with no API (standalone CLI capture).
    pub listener: Option<std::net::TcpListener>,
    /// This process's name in job leases; defaults to `server.instance_id` (or the host name).
    pub lease_owner: Option<String>,
}

/// How the actor tree ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// A requested shutdown.
    Clean,
    /// The root supervisor gave up (a child kept failing past its restart budget).
    Failed,
}

pub struct App {
    _instance_lock: nix::fcntl::Flock<std::fs::File>,
    ctx: Arc<AppContext>,
    handles: Handles,
    intake: Intake,
    tree: Tree,
    addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
}

impl App {
    pub async fn start(mut settings: Settings, options: StartOptions) -> Result<App, StartError> {
        settings.validate()?;
        crate::net::install_tls_provider();
        tracing::info!(
            database = %settings.database.redacted_url(),
            media_root = %settings.storage.media_root.display(),
            api_tokens = settings.security.api_tokens.len(),
            ssrf_allow = settings.security.ssrf_allow.len(),
            "starting PRSNL vault {}",
            env!("CARGO_PKG_VERSION")
        );
        let storage_error = |source| StartError::Storage {
            path: settings.storage.media_root.display().to_string(),
            source,
        };
        let media = MediaRoot::open(&settings.storage.media_root).map_err(storage_error)?;
        let database = Db::connect(&settings.database).await?;
        database.migrate().await?;
        crate::people::upgrade(&database, &settings.security.api_tokens).await?;
        link_telegram_accounts(&database, &settings.telegram.links).await?;
        let lease_owner = options
            .lease_owner
            .unwrap_or_else(|| settings.server.instance_id.clone());
        let instance_lock = lock_instance(&lease_owner, settings.database.url.expose())?;
        // Work dirs of an earlier boot are garbage, except those of jobs another live
        // instance is running (instances sharing a PostgreSQL queue may share media_root).
        let keep: HashSet<String> =
            db::jobs::running_elsewhere(&database, &lease_owner, clock::now())
                .await?
                .into_iter()
                .collect();
        let swept = storage::sweep_processing(&media, &keep).map_err(storage_error)?;
        if swept > 0 {
            tracing::info!(swept, "removed leftover work directories of an earlier run");
        }
        let unfinished: HashSet<String> =
            db::jobs::unfinished(&database).await?.into_iter().collect();
        let resumes_dropped = storage::sweep_resume(&media, &unfinished).map_err(storage_error)?;

        let mut policy = EgressPolicy::new(settings.security.ssrf_allow.clone());
        for rule in policy.allow_rules() {
            tracing::warn!(%rule, "security.ssrf_allow: captures may reach this non-public address");
        }
        let addr = match &options.listener {
            Some(listener) => Some(listener.local_addr().map_err(StartError::Listener)?),
            None => None,
        };
        if let Some(addr) = addr {
            let (credentials, _) = db::users::open_state(&database).await?;
            if !addr.ip().is_loopback() && !credentials {
                return Err(StartError::Unauthenticated(addr));
            }
            policy.deny_own_port(addr.port());
            // Authentication is off (nobody has credentials) only on a loopback listener:
            // the one actually bound decides.
            settings.server.listen = addr;
        }
        // The metrics listener goes with the API: a standalone CLI capture serves neither.
        let metrics_listener = match settings.server.metrics_listen {
            Some(wanted) if options.listener.is_some() => Some(
                std::net::TcpListener::bind(wanted)
                    .map_err(|e| StartError::MetricsListener(wanted, e))?,
            ),
            _ => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(listener) => {
                let bound = listener.local_addr().map_err(StartError::Listener)?;
                policy.deny_own_port(bound.port());
                Some(bound)
            }
            None => None,
        };

        let ctx = Arc::new(AppContext::new(
            settings,
            database,
            media,
            policy,
            lease_owner,
        ));
        record_startup_sweeps(&ctx, swept, resumes_dropped);
        catch_up_search_index(&ctx);
        let handles = Handles::new(&ctx);
        let intake = Intake::new(Arc::clone(&ctx), handles.pipeline.clone());
        let doors = match options.listener {
            Some(listener) => open_doors(&ctx, &handles, &intake, listener, metrics_listener)?,
            // The doors are the service's; a one-off CLI capture opens none.
            None => Doors::default(),
        };
        let args = RootArgs {
            ctx: Arc::clone(&ctx),
            handles: handles.clone(),
            doors,
        };
        let tree = Tree::start(args).await.map_err(StartError::Actors)?;
        Ok(App {
            _instance_lock: instance_lock,
            ctx,
            handles,
            intake,
            tree,
            addr,
            metrics_addr,
        })
    }

    /// The separate metrics address (`server.metrics_listen`), when one is configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The API address, when the app serves one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    pub fn context(&self) -> &Arc<AppContext> {
        &self.ctx
    }

    /// The handles of the app's actors (what the doors call).
    pub fn handles(&self) -> &Handles {
        &self.handles
    }

    /// Where this app's submissions go in (the CLI's standalone capture, tests).
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// Waits until the actor tree ends by itself (a failure past every restart budget).
    pub async fn wait(&mut self) -> Exit {
        self.tree.ended().await;
        if self.ctx.is_shutting_down() {
            Exit::Clean
        } else {
            Exit::Failed
        }
    }

    /// Graceful shutdown: stop accepting, let running jobs finish within the grace period,
    /// re-queue the rest without charging them an attempt, stop every actor.
    pub async fn shutdown(mut self) -> Exit {
        let grace = Duration::from_secs(self.ctx.settings.server.shutdown_grace_secs);
        self.tree
            .shutdown(grace * 2 + Duration::from_secs(30))
            .await;
        let exit = self.wait().await;
        self.ctx.db.close().await;
        exit
    }
}

/// Applies `telegram.links` (user name → Telegram account). A link to a missing user, or to an
/// account another user holds, is logged and skipped: the bot then treats that account as
/// unlinked.
async fn link_telegram_accounts(
    database: &Db,
    links: &std::collections::BTreeMap<String, u64>,
) -> Result<(), db::DbError> {
    for (name, account) in links {
        let Ok(account) = i64::try_from(*account) else {
            tracing::warn!(user = %name, "telegram.links: the account id is out of range");
            continue;
        };
        match db::users::by_name(database, name).await? {
            Some(user) if user.telegram_id == Some(account) => {}
            Some(user) => {
                if !db::users::set_telegram(database, user.id, Some(account)).await? {
                    tracing::warn!(user = %name, account, "telegram.links: that account is linked to another user");
                }
            }
            None => tracing::warn!(user = %name, "telegram.links: no such user"),
        }
    }
    Ok(())
}

/// The search index is derived: an upgrade, a restore or a database copy leaves it to be built
/// again. That runs beside the service (a large vault takes minutes, and nothing waits for it);
/// until it ends, searches miss what it has not reached.
fn catch_up_search_index(ctx: &Arc<AppContext>) {
    let ctx = Arc::clone(ctx);
    tokio::spawn(async move {
        match db::search::catch_up(&ctx.db, ctx.media.path()).await {
            Ok((0, 0)) => {}
            Ok((items, videos)) => {
                tracing::info!(items, videos, "brought the search index up to date")
            }
            // Stopping closes the database under it; the next start goes on from there.
            Err(_) if ctx.is_shutting_down() => {}
            Err(e) => tracing::error!(error = %e, "cannot bring the search index up to date"),
        }
    });
}
