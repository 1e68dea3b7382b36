//! What the database says is stored: bytes and counts by kind, the totals every report
//! shows.

use crate::db::{Db, DbError, on_pool, to_u64};
use crate::domain::ItemKind;

/// Files and bytes of one kind of stored media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

/// What the database says is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredUsage {
    pub videos: Tally,
    pub images: Tally,
    pub thumbnails: Tally,
    pub renditions: Tally,
    pub subtitles: Tally,
}

impl StoredUsage {
    /// Everything the vault keeps: videos, images, renditions, thumbnails and subtitles. The
    /// one total every report (the API's stats, the bot's /stats, metrics) shows as "stored".
    pub fn stored_bytes(&self) -> u64 {
        self.videos.bytes
            + self.images.bytes
            + self.renditions.bytes
            + self.thumbnails.bytes
            + self.subtitles.bytes
    }
}

/// Per kind of item: items, their bytes, thumbnail bytes, subtitle files and bytes.
type ByKind = (
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

pub async fn stored_usage(db: &Db) -> Result<StoredUsage, DbError> {
    // Items sharing one file (same content) count it once.
    let by_kind: Vec<ByKind> = on_pool!(db, pool => sqlx::query_as(
        "SELECT kind, COUNT(*), CAST(SUM(size_bytes) AS BIGINT), CAST(SUM(thumbnails_bytes) AS BIGINT), \
                CAST(SUM(subtitle_files) AS BIGINT), CAST(SUM(subtitles_bytes) AS BIGINT) \
         FROM (SELECT video_path, MAX(kind) AS kind, MAX(size_bytes) AS size_bytes, \
                      MAX(thumbnails_bytes) AS thumbnails_bytes, MAX(subtitle_files) AS subtitle_files, \
                      MAX(subtitles_bytes) AS subtitles_bytes \
               FROM items WHERE status = 'completed' GROUP BY video_path) AS stored \
         GROUP BY kind")
        .fetch_all(pool)
        .await)?;
    // Renditions several items share (a shared video's) count once too.
    let (renditions, rendition_bytes): (i64, Option<i64>) = on_pool!(db, pool => sqlx::query_as(
        "SELECT COUNT(*), CAST(SUM(size_bytes) AS BIGINT) \
         FROM (SELECT path, MAX(size_bytes) AS size_bytes FROM renditions GROUP BY path) AS made")
        .fetch_one(pool)
        .await)?;
    let n = |v: i64| to_u64(v, "count");
    let mut usage = StoredUsage {
        renditions: Tally {
            files: n(renditions)?,
            bytes: n(rendition_bytes.unwrap_or(0))?,
        },
        ..StoredUsage::default()
    };
    for (kind, files, bytes, thumb_bytes, subtitle_files, subtitle_bytes) in by_kind {
        let tally = Tally {
            files: n(files)?,
            bytes: n(bytes.unwrap_or(0))?,
        };
        match ItemKind::parse(&kind) {
            Some(ItemKind::Video) => usage.videos = tally,
            Some(ItemKind::Image) => usage.images = tally,
            // A kind from a newer version: its files are not ours to count.
            None => continue,
        }
        usage.thumbnails.files += 3 * tally.files;
        usage.thumbnails.bytes += n(thumb_bytes.unwrap_or(0))?;
        usage.subtitles.files += n(subtitle_files.unwrap_or(0))?;
        usage.subtitles.bytes += n(subtitle_bytes.unwrap_or(0))?;
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_total_counts_every_kind_the_vault_keeps() {
        let tally = |files, bytes| Tally { files, bytes };
        let usage = StoredUsage {
            videos: tally(2, 1000),
            images: tally(1, 300),
            thumbnails: tally(9, 60),
            renditions: tally(1, 400),
            subtitles: tally(2, 40),
        };
        assert_eq!(usage.stored_bytes(), 1800);
    }
}
