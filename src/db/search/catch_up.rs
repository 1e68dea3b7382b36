//! Indexing what is not indexed yet: every item after an upgrade to the version that brought
//! search, after a restore or a database copy (the index is derived, so backups leave it
//! out), and the subtitle cues of stored sidecars. Run when the service starts; a vault that
//! is fully indexed costs two queries.

use std::path::Path;

use super::super::items;
use super::super::{Db, DbError, Tx, on_pool, on_tx};
use super::bulk;
use super::index::{index_cues, index_item};
use crate::domain::ItemId;
use crate::domain::layout::{is_safe_relative_path, subtitle_path};
use crate::domain::subtitle_track::{SubtitleLang, SubtitleTrack};
use crate::domain::subtitles::{self, Cue, SubtitleFormat};

/// Items indexed per transaction: short write transactions, so captures go on meanwhile.
const BATCH: usize = 500;

/// Videos whose sidecars are read and indexed per transaction.
const VIDEO_BATCH: usize = 50;

/// After indexing this many items or videos at once, SQLite's index is merged into one
/// segment: a search reads each word's list from every segment, and a bulk catch-up leaves
/// dozens (merging 100,000 items took about a second and halved the time of common-word
/// searches).
const MERGE_AFTER: u64 = 1_000;

/// Indexes unindexed items and the cues of sidecars under `media_root`; returns how many
/// items and video files it indexed.
pub async fn catch_up(db: &Db, media_root: &Path) -> Result<(u64, u64), DbError> {
    let missing: Vec<String> = on_pool!(db, pool => sqlx::query_scalar(match db {
        // Oldest first: SQLite numbers index rows in the order they are written, and a
        // search's ranking window (`find`) takes the highest numbers as the newest.
        // `NOT EXISTS`, never `NOT IN (SELECT …)`: PostgreSQL runs the latter row by row
        // against the whole list once it outgrows `work_mem` (minutes at 100,000 items).
        Db::Sqlite(..) => "SELECT id FROM items WHERE NOT EXISTS \
            (SELECT 1 FROM search_docs d WHERE d.item_id = items.id) ORDER BY id",
        Db::Postgres(_) => "SELECT id FROM items WHERE NOT EXISTS \
            (SELECT 1 FROM item_search s WHERE s.item_id = items.id) ORDER BY id",
    })
    .fetch_all(pool)
    .await)?;
    let mut indexed = 0;
    for batch in missing.chunks(BATCH) {
        let mut tx = db.begin_write().await?;
        if let Tx::Postgres(conn) = &mut tx {
            indexed += bulk::index_items(conn, batch).await?;
            tx.commit().await?;
            continue;
        }
        for id in batch {
            // One row that cannot be read stays unindexed (and said); the rest go on.
            let Ok(item) = ItemId::parse(id) else {
                tracing::warn!(id = %id, "an item id that is not one; left out of the index");
                continue;
            };
            match index_item(&mut tx, item).await {
                Ok(()) => indexed += 1,
                Err(e @ DbError::Corrupt(_)) => {
                    tracing::warn!(%item, error = %e, "an item that cannot be read; left out of the index")
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
    }
    forget_orphans(db).await?;

    let without_cues: Vec<(String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT video_path, MAX(subtitles) FROM items WHERE status = 'completed' \
         AND subtitles IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM subtitle_cues c WHERE c.video_path = items.video_path) \
         GROUP BY video_path")
        .fetch_all(pool)
        .await)?;
    let mut videos = 0;
    for batch in without_cues.chunks(VIDEO_BATCH) {
        let root = media_root.to_path_buf();
        let batch = batch.to_vec();
        let read = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .filter_map(|(video, tracks)| {
                    let tracks = serde_json::from_str::<Vec<SubtitleTrack>>(&tracks).ok()?;
                    let cues = read_sidecars(&root, &video, &tracks);
                    (!cues.is_empty()).then_some((video, cues))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut tx = db.begin_write().await?;
        for (video, cues) in read {
            // Still stored (a delete may have come in between)?
            if items::completed_names(&mut tx, &video).await? {
                index_cues(&mut tx, &video, &cues).await?;
                videos += 1;
            }
        }
        tx.commit().await?;
    }
    if indexed + videos >= MERGE_AFTER {
        merge_segments(db).await?;
    }
    Ok((indexed, videos))
}

/// Merges each SQLite full-text index into one segment (PostgreSQL's GIN needs no such step).
async fn merge_segments(db: &Db) -> Result<(), DbError> {
    if let Db::Sqlite(..) = db {
        let mut tx = db.begin_write().await?;
        for sql in [
            "INSERT INTO item_search (item_search) VALUES ('optimize')",
            "INSERT INTO cue_search (cue_search) VALUES ('optimize')",
        ] {
            on_tx!(&mut tx, conn => sqlx::query(sql)
                .execute(conn)
                .await
                .map(|done| done.rows_affected()))?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Index rows whose item is gone (a delete that raced an indexing on another instance).
async fn forget_orphans(db: &Db) -> Result<(), DbError> {
    let statements: &[&str] = match db {
        Db::Sqlite(..) => &[
            "DELETE FROM item_search WHERE rowid IN \
             (SELECT doc FROM search_docs d WHERE NOT EXISTS (SELECT 1 FROM items WHERE items.id = d.item_id))",
            "DELETE FROM search_docs WHERE NOT EXISTS (SELECT 1 FROM items WHERE items.id = search_docs.item_id)",
            "DELETE FROM item_tags WHERE NOT EXISTS (SELECT 1 FROM items WHERE items.id = item_tags.item_id)",
        ],
        Db::Postgres(_) => &[
            "DELETE FROM item_search WHERE NOT EXISTS (SELECT 1 FROM items WHERE items.id = item_search.item_id)",
            "DELETE FROM item_tags WHERE NOT EXISTS (SELECT 1 FROM items WHERE items.id = item_tags.item_id)",
        ],
    };
    let mut tx = db.begin_write().await?;
    for sql in statements {
        on_tx!(&mut tx, conn => sqlx::query(*sql)
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    tx.commit().await
}

/// The cues of a video's stored sidecars; a sidecar that cannot be read is left out.
fn read_sidecars(
    root: &Path,
    video: &str,
    tracks: &[SubtitleTrack],
) -> Vec<(SubtitleLang, Vec<Cue>)> {
    tracks
        .iter()
        .filter_map(|track| {
            let relative = subtitle_path(video, track.lang.as_str());
            if !is_safe_relative_path(&relative) {
                return None;
            }
            let bytes = std::fs::read(root.join(&relative)).ok()?;
            let cues = subtitles::parse(&bytes, SubtitleFormat::Vtt).ok()?.cues;
            Some((track.lang.clone(), cues))
        })
        .collect()
}
