//! Keeping the full-text index in step with the items, inside the writer's own transaction:
//! a search never finds an item that is gone or misses one that was just changed.
//!
//! What is indexed is folded by `domain::search` first (see there why): per item its titles
//! (the person's and the source's), tags, uploader and the rest (description, note, URL) as
//! four weighted columns; per video file each subtitle cue on its own, so a hit can say when.

use super::super::items::{self, Item};
use super::super::{DbError, Tx, on_tx, to_i64};
use super::bulk;
use crate::domain::ItemId;
use crate::domain::search::index_text;
use crate::domain::subtitle_track::SubtitleLang;
use crate::domain::subtitles::Cue;

/// The four indexed texts of an item, folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub title: String,
    pub tags: String,
    pub uploader: String,
    pub body: String,
}

impl Document {
    pub(crate) fn of(item: &Item) -> Self {
        let meta = &item.source_meta;
        let opt = |s: &Option<String>| s.clone().unwrap_or_default();
        Self {
            title: index_text([opt(&item.user.title).as_str(), opt(&item.title).as_str()]),
            tags: index_text(item.user.tags.iter().chain(&meta.tags).map(String::as_str)),
            uploader: index_text([
                opt(&meta.uploader).as_str(),
                opt(&meta.uploader_id).as_str(),
            ]),
            body: index_text([
                opt(&meta.description).as_str(),
                opt(&item.user.note).as_str(),
                opt(&item.source_url).as_str(),
            ]),
        }
    }
}

/// The key a tag or an uploader is filtered by: its folded words.
pub fn key(text: &str) -> String {
    index_text([text])
}

/// (Re)writes the item's index rows from what is stored now (in `tx`).
pub(crate) async fn index_item(tx: &mut Tx, id: ItemId) -> Result<(), DbError> {
    let Some(item) = items::get_in(tx, id).await? else {
        return remove_item(tx, id).await;
    };
    let item_id = id.to_string();
    match tx {
        Tx::Sqlite(conn, _) => {
            let doc = Document::of(&item);
            sqlx::query(
                "INSERT INTO search_docs (item_id) VALUES ($1) ON CONFLICT (item_id) DO NOTHING",
            )
            .bind(&item_id)
            .execute(&mut **conn)
            .await?;
            let row: i64 = sqlx::query_scalar("SELECT doc FROM search_docs WHERE item_id = $1")
                .bind(&item_id)
                .fetch_one(&mut **conn)
                .await?;
            sqlx::query("DELETE FROM item_search WHERE rowid = $1")
                .bind(row)
                .execute(&mut **conn)
                .await?;
            sqlx::query("INSERT INTO item_search (rowid, title, tags, uploader, body) VALUES ($1, $2, $3, $4, $5)")
                .bind(row)
                .bind(&doc.title)
                .bind(&doc.tags)
                .bind(&doc.uploader)
                .bind(&doc.body)
                .execute(&mut **conn)
                .await?;
        }
        // The same writer as the catch-up's batches: one place knows PostgreSQL's rows.
        Tx::Postgres(conn) => return bulk::write_items(conn, std::slice::from_ref(&item)).await,
    }
    // SQLite only from here: PostgreSQL's writer did all of this.
    on_tx!(tx, conn => sqlx::query("DELETE FROM item_tags WHERE item_id = $1")
        .bind(&item_id)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    for tag in tag_keys(&item) {
        on_tx!(tx, conn => sqlx::query("INSERT INTO item_tags (item_id, tag) VALUES ($1, $2)")
            .bind(&item_id)
            .bind(&tag)
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    on_tx!(tx, conn => sqlx::query("UPDATE items SET uploader_key = $2 WHERE id = $1")
        .bind(&item_id)
        .bind(uploader_key(&item))
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// The keys `?tag=` finds the item by: the person's and the source's tags, folded, once each.
pub(crate) fn tag_keys(item: &Item) -> Vec<String> {
    let mut tags: Vec<String> = item
        .user
        .tags
        .iter()
        .chain(&item.source_meta.tags)
        .map(|t| key(t))
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The key `?uploader=` finds the item by.
pub(crate) fn uploader_key(item: &Item) -> Option<String> {
    item.source_meta
        .uploader
        .as_deref()
        .map(key)
        .filter(|k| !k.is_empty())
}

/// Takes the item out of the index (its cues stay with its video file: see `remove_cues`).
pub(crate) async fn remove_item(tx: &mut Tx, id: ItemId) -> Result<(), DbError> {
    let item_id = id.to_string();
    match tx {
        Tx::Sqlite(conn, _) => {
            sqlx::query("DELETE FROM item_search WHERE rowid = (SELECT doc FROM search_docs WHERE item_id = $1)")
                .bind(&item_id)
                .execute(&mut **conn)
                .await?;
            sqlx::query("DELETE FROM search_docs WHERE item_id = $1")
                .bind(&item_id)
                .execute(&mut **conn)
                .await?;
        }
        Tx::Postgres(conn) => {
            sqlx::query("DELETE FROM item_search WHERE item_id = $1")
                .bind(&item_id)
                .execute(&mut **conn)
                .await?;
        }
    }
    on_tx!(tx, conn => sqlx::query("DELETE FROM item_tags WHERE item_id = $1")
        .bind(&item_id)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Cues inserted per statement (six values each, well under SQLite's variable limit).
const CUES_PER_INSERT: usize = 200;

/// Replaces the cues of the video file at `video_path` with `tracks`' cues.
///
/// All of a video's cues are written here, in one transaction of the one writer, so on SQLite
/// their ids are one unbroken range (each new id is the highest plus one): `find` relies on
/// it to ask the cue index about one video by a range of ids.
pub(crate) async fn index_cues(
    tx: &mut Tx,
    video_path: &str,
    tracks: &[(SubtitleLang, Vec<Cue>)],
) -> Result<(), DbError> {
    remove_cues(tx, video_path).await?;
    let rows: Vec<(&SubtitleLang, &Cue, String)> = tracks
        .iter()
        .flat_map(|(lang, cues)| {
            cues.iter()
                .map(move |cue| (lang, cue, index_text([cue.text.as_str()])))
        })
        .filter(|(_, _, words)| !words.is_empty())
        .collect();
    for chunk in rows.chunks(CUES_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let params: Vec<String> = (1..=6).map(|k| format!("${}", i * 6 + k)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO subtitle_cues (video_path, lang, start_ms, end_ms, text, words) VALUES {}",
            values.join(", ")
        );
        on_tx!(tx, conn => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (lang, cue, words) in chunk {
                query = query
                    .bind(video_path)
                    .bind(lang.as_str())
                    .bind(to_i64(cue.start_ms))
                    .bind(to_i64(cue.end_ms))
                    .bind(&cue.text)
                    .bind(words);
            }
            query.execute(conn).await.map(|done| done.rows_affected())
        })?;
    }
    if let Tx::Sqlite(conn, _) = tx {
        sqlx::query("INSERT INTO cue_search (rowid, words) SELECT id, words FROM subtitle_cues WHERE video_path = $1")
            .bind(video_path)
            .execute(&mut **conn)
            .await?;
    }
    Ok(())
}

/// Removes the cues of the video file at `video_path` (when the file itself goes).
pub(crate) async fn remove_cues(tx: &mut Tx, video_path: &str) -> Result<(), DbError> {
    if let Tx::Sqlite(conn, _) = tx {
        // An external-content index forgets a row only when told its old words.
        sqlx::query(
            "INSERT INTO cue_search (cue_search, rowid, words) \
             SELECT 'delete', id, words FROM subtitle_cues WHERE video_path = $1",
        )
        .bind(video_path)
        .execute(&mut **conn)
        .await?;
    }
    on_tx!(tx, conn => sqlx::query("DELETE FROM subtitle_cues WHERE video_path = $1")
        .bind(video_path)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}
