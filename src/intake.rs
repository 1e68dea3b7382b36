//! Intake: how a submitted URL becomes a recorded capture, the same for every door (API, CLI,
//! watch folder, bot). Validation and the SSRF check happen here, before any row is written
//! or any connection made to the target. Local files (the watch folder's videos, the bot's
//! uploads) come in through `import_file`.

use std::sync::Arc;

use crate::actors::PipelineHandle;
use crate::context::AppContext;
use crate::db::imports::NewImport;
use crate::db::record::ImportRecord;
use crate::db::record::{CaptureOutcome, CaptureRecord, NewCapture};
use crate::domain::platform;
use crate::domain::{CaptureUrl, ErrorCode, JobError, Source};
use crate::metrics::{self, Event};
use crate::net::resolve::{ResolveError, resolve_checked};

/// The intake of one app: what every door submits through.
#[derive(Clone)]
pub struct Intake {
    ctx: Arc<AppContext>,
    pipeline: PipelineHandle,
}

impl Intake {
    pub fn new(ctx: Arc<AppContext>, pipeline: PipelineHandle) -> Self {
        Self { ctx, pipeline }
    }

    /// Validates `raw`, checks where it points, and asks the Pipeline to record it. Every
    /// submission is counted, by door and outcome.
    pub async fn submit_url(
        &self,
        raw: &str,
        source: Source,
        owner: Option<String>,
    ) -> Result<CaptureRecord, JobError> {
        let result = self.record_url(raw, source, owner).await;
        self.count_submission(
            source,
            result.as_ref().map(|r| r.outcome).map_err(|e| e.code),
        );
        result
    }

    /// Asks the Pipeline to record the import of a local file (or find its earlier record).
    /// Counted like a capture, by door and outcome.
    pub async fn import_file(&self, mut request: NewImport) -> Result<ImportRecord, JobError> {
        let source = request.source;
        let result = match self.owner_or_default(request.owner.take(), source).await {
            Ok(owner) => {
                request.owner = Some(owner);
                self.pipeline.import(request).await
            }
            Err(e) => Err(e),
        };
        self.count_submission(
            source,
            result
                .as_ref()
                .map(|r| {
                    if r.created {
                        CaptureOutcome::Created
                    } else {
                        CaptureOutcome::Existing
                    }
                })
                .map_err(|e| e.code),
        );
        result
    }

    /// Counts a submission at `source` that ended as `outcome` (or was refused with a code).
    pub fn count_submission(&self, source: Source, outcome: Result<CaptureOutcome, ErrorCode>) {
        let outcome = match outcome {
            Ok(CaptureOutcome::Created | CaptureOutcome::Requeued) => {
                metrics::CaptureOutcome::Accepted
            }
            Ok(CaptureOutcome::Existing) => metrics::CaptureOutcome::Duplicate,
            Err(code) => metrics::CaptureOutcome::of_error(code),
        };
        self.ctx
            .observe(Event::CaptureRequested { source, outcome });
    }

    /// Every item has an owner: the one the door names, else the door's own (the watch
    /// folder's `watch.owner`), else the first admin.
    async fn owner_or_default(
        &self,
        owner: Option<String>,
        source: Source,
    ) -> Result<String, JobError> {
        if let Some(owner) = owner {
            return Ok(owner);
        }
        let db = &self.ctx.db;
        let unavailable = |e: crate::db::DbError| {
            JobError::new(
                ErrorCode::Unavailable,
                format!("cannot find the owner: {e}"),
            )
        };
        if source == Source::Watch
            && let Some(name) = &self.ctx.settings.watch.owner
        {
            match crate::db::users::by_name(db, name)
                .await
                .map_err(unavailable)?
            {
                Some(user) => return Ok(user.id.to_string()),
                None => {
                    tracing::warn!(owner = %name, "watch.owner names no user; the first admin owns the file")
                }
            }
        }
        crate::db::users::first_admin(db)
            .await
            .map_err(unavailable)?
            .map(|admin| admin.id.to_string())
            .ok_or_else(|| JobError::new(ErrorCode::Unavailable, "the vault has no admin"))
    }

    async fn record_url(
        &self,
        raw: &str,
        source: Source,
        owner: Option<String>,
    ) -> Result<CaptureRecord, JobError> {
        let ctx = &*self.ctx;
        let owner = Some(self.owner_or_default(owner, source).await?);
        let url = CaptureUrl::parse(raw)
            .map_err(|e| JobError::new(ErrorCode::InvalidUrl, e.to_string()))?;
        let host = url.host().to_string();
        match resolve_checked(&ctx.policy, &host, url.port()).await {
            Ok(_) => {}
            Err(ResolveError::Denied(denied)) => {
                tracing::warn!(url = %crate::domain::text::clean(url.as_str(), 200), reason = denied.reason, "capture refused by the SSRF policy");
                return Err(JobError::new(
                    ErrorCode::SsrfBlocked,
                    format!("captures may not reach this address: {}", denied.reason),
                ));
            }
            // A name that does not resolve now may resolve later; the egress guard checks every
            // connection of the download anyway, so a lookup failure does not lose the submission.
            Err(e @ ResolveError::Lookup { .. }) => {
                tracing::info!(error = %e, "accepting a capture whose host does not resolve yet")
            }
        }
        let detected = platform::detect(&url, &ctx.host_map);
        let request = NewCapture {
            platform: detected.platform,
            platform_media_id: detected.media_id,
            source_url: raw.trim().to_string(),
            url: detected.canonical,
            source,
            owner,
            max_attempts: ctx
                .settings
                .platforms
                .get(detected.platform)
                .max_attempts
                .get(),
        };
        self.pipeline.capture(request).await
    }
}
