//! The edge of the ranking window (`db::search::find`): the newest matches of each index are
//! ranked and come first, the rest follow newest first. Walked here with a window of three
//! over a vault written straight into the database and indexed by the catch-up: every page
//! size and filter gives each match exactly once, the same items as the full ranking, in the
//! promised order.

use std::collections::HashSet;

use prsnl::db::Db;
use prsnl::db::search::{Find, Sort, catch_up, find, find_with_window};
use prsnl::domain::Platform;
use prsnl::domain::search::Query;

use crate::helpers::{TestApp, on_both_backends, spawn_app};

const WINDOW: i64 = 3;

/// What a completed item has beside its words (the same for all here).
const COMPLETED_COLUMNS: &str = "canonical_url, width, height, video_codec, container, size_bytes, sha256, \
    thumbnails_bytes, thumb_small_path, thumb_medium_path, thumb_large_path";
const COMPLETED_VALUES: &str = "'https://videos.example/', 1280, 720, 'h264', 'mp4', 1000, \
    '0000000000000000000000000000000000000000000000000000000000000000', 30, 's.jpg', 'm.jpg', 'l.jpg'";

/// Ids that sort in the order they are numbered (a fixed time part), so "newest" is the
/// highest number.
fn id(n: usize) -> String {
    format!("01900000-0000-7000-8000-{n:012x}")
}

async fn execute(db: &Db, sql: &str, values: &[Option<String>]) {
    match db {
        Db::Sqlite(pool, _) => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
            for v in values {
                query = query.bind(v.clone());
            }
            query.execute(pool).await.unwrap();
        }
        Db::Postgres(pool) => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
            for v in values {
                query = query.bind(v.clone());
            }
            query.execute(pool).await.unwrap();
        }
    }
}

/// Twelve items whose own text says `common` (some also `skipme`, some on YouTube), and two
/// whose only `common` is in a subtitle cue. Returns (own-text ids, subtitle-only ids).
async fn vault(app: &TestApp) -> (Vec<String>, Vec<String>) {
    let db = &app.ctx().db;
    let media = app.ctx().media.path().to_path_buf();
    let mut own = Vec::new();
    let mut subtitled = Vec::new();
    for n in 1..=14 {
        let item = id(n);
        let cue_only = n == 4 || n == 11;
        let description = if cue_only {
            "nothing to see".to_string()
        } else {
            // Different counts of the word, so the ranking is not the id order.
            let mut words = vec!["common"; n % 4 + 1];
            if n % 5 == 0 {
                words.push("skipme");
            }
            words.push("filler text");
            words.join(" ")
        };
        let video = format!("videos/2024/01/{item}.mp4");
        let subtitles = cue_only.then(|| {
            let vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nsomething common said\n\n";
            let path = media.join(format!("subtitles/2024/01/{item}.en.vtt"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vtt).unwrap();
            format!(
                r#"[{{"lang":"en","bytes":{},"cues":1,"auto":false}}]"#,
                vtt.len()
            )
        });
        let platform = if n % 3 == 0 { "youtube" } else { "generic" };
        let meta =
            serde_json::json!({"description": description, "tags": [], "chapters": []}).to_string();
        let ms = (1_700_000_000_000_i64 + n as i64 * 1000).to_string();
        let sql = match db {
            Db::Sqlite(..) => format!(
                "INSERT INTO items (id, kind, source, source_url, platform, status, title, duration_seconds, \
                video_path, created_at, updated_at, completed_at, source_meta, subtitles, {COMPLETED_COLUMNS}) \
                VALUES ($1, 'video', 'api', $2, $3, 'completed', $4, 10.0, $5, $6, $6, $6, $7, $8, {COMPLETED_VALUES})"
            ),
            Db::Postgres(_) => format!(
                "INSERT INTO items (id, kind, source, source_url, platform, status, title, duration_seconds, \
                video_path, created_at, updated_at, completed_at, source_meta, subtitles, {COMPLETED_COLUMNS}) \
                VALUES ($1, 'video', 'api', $2, $3, 'completed', $4, 10.0, $5, CAST($6 AS BIGINT), CAST($6 AS BIGINT), \
                CAST($6 AS BIGINT), $7, $8, {COMPLETED_VALUES})"
            ),
        };
        execute(
            db,
            &sql,
            &[
                Some(item.clone()),
                Some(format!("https://videos.example/{n}")),
                Some(platform.to_string()),
                Some(format!("clip {n}")),
                Some(video),
                Some(ms),
                Some(meta),
                subtitles,
            ],
        )
        .await;
        if cue_only {
            subtitled.push(item)
        } else {
            own.push(item)
        }
    }
    let indexed = catch_up(db, &media).await.unwrap();
    assert_eq!(indexed, (14, 2), "every item and both videos' cues indexed");
    (own, subtitled)
}

async fn walk(db: &Db, base: &Find, page: u32, window: i64) -> Vec<String> {
    let mut all = Vec::new();
    loop {
        let f = Find {
            offset: all.len() as u64,
            limit: page,
            ..base.clone()
        };
        let found = find_with_window(db, &f, window).await.unwrap();
        let last = found.len() < page as usize;
        all.extend(found.into_iter().map(|found| found.item.id.to_string()));
        if last {
            return all;
        }
        assert!(all.len() < 100, "paging never ends: {all:?}");
    }
}

on_both_backends! {
    async fn past_the_ranking_window_every_match_follows_once_newest_first(backend: Backend) {
        let app = spawn_app(backend).await;
        let (own, subtitled) = vault(&app).await;
        let db = &app.ctx().db;
        let search = |q: &str| Find { query: Some(Query::parse(q).unwrap()), sort: Sort::Relevance, ..Find::default() };

        // The full ranking: own text first, then the subtitle-only items with their cue.
        let exact = find(db, &Find { limit: 100, ..search("common") }).await.unwrap();
        let exact_ids: Vec<String> = exact.iter().map(|f| f.item.id.to_string()).collect();
        assert_eq!(exact.len(), 14);
        assert_eq!(exact_ids[12..].iter().collect::<HashSet<_>>(), subtitled.iter().collect::<HashSet<_>>());
        assert!(exact[12..].iter().all(|f| f.cue.is_some()) && exact[..12].iter().all(|f| f.cue.is_none()));

        // Windowed: the three newest own-text matches ranked as in the full ranking, then
        // the cue window's items, then the older matches newest first.
        let windowed = walk(db, &Find { limit: 100, ..search("common") }, 100, WINDOW).await;
        let newest: HashSet<&String> = own.iter().rev().take(3).collect();
        assert_eq!(windowed[..3].iter().collect::<HashSet<_>>(), newest, "{windowed:?}");
        let ranked_newest: Vec<&String> = exact_ids.iter().filter(|id| newest.contains(id)).collect();
        assert_eq!(windowed[..3].iter().collect::<Vec<_>>(), ranked_newest);
        assert_eq!(windowed[3..5].iter().collect::<HashSet<_>>(), subtitled.iter().collect::<HashSet<_>>());
        let mut rest: Vec<&String> = own.iter().rev().skip(3).collect();
        rest.sort_by(|a, b| b.cmp(a));
        assert_eq!(windowed[5..].iter().collect::<Vec<_>>(), rest);

        // Whatever the page size, filter or exclusion: each match once, the same items as
        // the full ranking.
        let youtube = Find { platform: Some(Platform::Youtube), ..search("common") };
        for base in [search("common"), search("common -skipme"), youtube, search("common -nothing")] {
            let full = walk(db, &base, 100, 1000).await;
            for page in [1, 2, 3, 4, 7] {
                let paged = walk(db, &base, page, WINDOW).await;
                let unique: HashSet<&String> = paged.iter().collect();
                assert_eq!(unique.len(), paged.len(), "no item twice (page {page}): {paged:?}");
                assert_eq!(unique, full.iter().collect::<HashSet<_>>(), "page {page}, {:?}", base.query);
            }
        }
        let kept = walk(db, &search("common -skipme"), 100, WINDOW).await;
        assert_eq!(kept.len(), 14 - 2, "items 5 and 10 say skipme: {kept:?}");
        assert!(walk(db, &search("common -nothing"), 100, WINDOW).await.iter().all(|id| !subtitled.contains(id)),
            "an excluded word of the description excludes an item found by its subtitles");
    }
}
