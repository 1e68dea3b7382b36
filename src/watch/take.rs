//! Taking one settled file from the inbox: a link file's links are submitted like API
//! captures; anything else that ffprobe reads as a video is recorded as an import and moved
//! to `processed/`. Record first, move second.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::folder::WatchFolder;
use super::inbox;
use super::links;
use super::names::LinkFileKind;
use crate::clock;
use crate::db::imports::{ImportPayload, NewImport};
use crate::domain::text::clean;
use crate::domain::{ErrorCode, ItemKind, JobError, Source};
use crate::media::ffprobe;
use crate::metrics::WatchOutcome;

/// How long a probe of a dropped file may take (it reads headers only).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// What to do with a file after trying to take it.
pub(super) enum Taken {
    Done(WatchOutcome),
    /// A passing problem (database, shutdown): leave the file for the next rescan.
    Later(String),
}

impl WatchFolder {
    /// Submits each link of a link file. `Err` is the reason to refuse the whole file.
    pub(super) async fn take_links(
        &mut self,
        path: &Path,
        kind: LinkFileKind,
    ) -> Result<Taken, String> {
        let (mut file, _) = inbox::open_regular(path).map_err(|r| r.to_string())?;
        let limit_kb = self.ctx.settings.watch.max_link_file_kb.get();
        let bytes = inbox::read_bounded(&mut file, limit_kb * 1024)
            .map_err(|e| format!("cannot read the file: {e}"))?
            .ok_or_else(|| {
                format!("the link file is larger than watch.max_link_file_kb ({limit_kb} KiB)")
            })?;
        let list = links::parse(kind, &bytes).map_err(|e| e.to_string())?;
        let mut problems: Vec<String> = list
            .rejected
            .iter()
            .map(|r| format!("line {}: no link found in \"{}\"", r.line, r.text))
            .collect();
        let mut accepted = 0;
        for link in &list.links {
            match self.intake.submit_url(link, Source::Watch, None).await {
                Ok(record) => {
                    accepted += 1;
                    tracing::info!(item = %record.item.id, url = %clean(link, 200), "captured a link from the inbox");
                }
                Err(e) if e.is_transient() => return Ok(Taken::Later(e.message)),
                Err(e) => {
                    problems.push(format!("{}: {} ({})", clean(link, 200), e.message, e.code))
                }
            }
        }
        if accepted == 0 {
            return Err(if problems.is_empty() {
                "the file holds no links".to_string()
            } else {
                format!("no link could be captured:\n{}", problems.join("\n"))
            });
        }
        let destination = self.processed_destination(path);
        if !problems.is_empty() {
            let note = format!(
                "{accepted} link(s) captured; these were not:\n{}",
                problems.join("\n")
            );
            inbox::write_note(&destination, &note)
                .map_err(|e| format!("cannot write the note about refused lines: {e}"))?;
        }
        self.inbox
            .move_to(path, &destination)
            .map_err(|e| format!("cannot move the file to processed/: {e}"))?;
        Ok(Taken::Done(WatchOutcome::Links))
    }

    /// Records a video for import, then moves it to `processed/`. `Err` is the reason to
    /// refuse it.
    pub(super) async fn take_media(&mut self, path: &Path) -> Result<Taken, String> {
        let (file, identity) = inbox::open_regular(path).map_err(|r| r.to_string())?;
        drop(file);
        let max_bytes = self.ctx.settings.max_video_bytes();
        if identity.size > max_bytes {
            let refusal = JobError::too_large(identity.size, max_bytes);
            return Err(format!("{} (storage.max_video_size_mb)", refusal.message));
        }
        if identity.size == 0 {
            return Err("the file is empty".to_string());
        }
        let processing = self.ctx.processing_config();
        match ffprobe::probe(&processing.ffprobe, path, &processing.limits, PROBE_TIMEOUT).await {
            Ok(_) => {}
            // A probe that timed out or failed to run says nothing about the file.
            Err(e) if matches!(e.code, ErrorCode::Timeout | ErrorCode::ProcessingFailed) => {
                return Ok(Taken::Later(format!("cannot probe it now: {}", e.message)));
            }
            Err(e) => return Err(format!("not a video that can be stored: {}", e.message)),
        }
        let title = path
            .file_stem()
            .map(|stem| clean(&stem.to_string_lossy(), 200))
            .unwrap_or_default();
        let request = NewImport {
            key: format!("watch:{}", identity.key()),
            kind: ItemKind::Video,
            source: Source::Watch,
            owner: None,
            title,
            file: ImportPayload {
                file: self.processed_destination(path),
                found_at: path.to_path_buf(),
                // The user's file: copied, never deleted by the pipeline.
                owned: false,
            },
            max_attempts: self.ctx.settings.queue.max_attempts.get(),
        };
        let record = match self.intake.import_file(request).await {
            Ok(record) => record,
            Err(e) if e.is_transient() => return Ok(Taken::Later(e.message)),
            Err(e) => return Err(format!("{} ({})", e.message, e.code)),
        };
        tracing::info!(item = %record.item.id, created = record.created, "recorded a video from the inbox for import");
        self.ctx
            .faults
            .crash_if_armed(crate::faults::FaultPoint::WatchAfterRecord);
        // The job finds the file where it was found until it is moved, so a failed move loses
        // nothing; it is retried with the file's next rescan (and recognised by its key).
        if let Err(e) = self.inbox.move_to(path, &record.file.file) {
            tracing::error!(item = %record.item.id, error = %e, "cannot move an imported file to processed/; it stays in the inbox");
        }
        Ok(Taken::Done(if record.created {
            WatchOutcome::Imported
        } else {
            WatchOutcome::Duplicate
        }))
    }

    fn processed_destination(&self, path: &Path) -> PathBuf {
        // `Date` displays as YYYY-MM-DD.
        let day = clock::datetime(clock::now()).date().to_string();
        self.inbox
            .processed_destination(path.file_name().unwrap_or_default(), &day)
    }
}
