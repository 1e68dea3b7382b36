//! Finding things again: `GET /api/items?q=` over titles, descriptions, uploaders, tags,
//! notes, URLs and subtitle cues (with the cue's time), the query language, filters and sorts,
//! the owner's own fields (`PATCH /api/items/{id}`), and hostile queries — the same answers on
//! both databases.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixture_server::Route;
use crate::helpers::{TestApp, on_both_backends, spawn_app};
use crate::people::{As, json_of, people};

/// A page whose schema.org VideoObject describes a talk.
fn talk_page(video_url: &str) -> String {
    let metadata = json!({
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": "A talk about caching",
        "description": "We bake a Crème Brûlée while discussing <b>eviction</b> policies and the weather in Reykjavík.",
        "uploadDate": "2024-03-05T10:00:00Z",
        "author": {"@type": "Person", "name": "Ada Lovelace"},
        "keywords": "Rust, Conference Talks",
        "contentUrl": video_url,
        "duration": "PT3S",
    });
    format!(
        "<html><head><title>x</title><script type=\"application/ld+json\">{}</script></head><body></body></html>",
        metadata.to_string().replace("</", "<\\/")
    )
}

const CUES: &str = "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello everyone\n\n\
00:00:01.500 --> 00:00:03.000\nthe word zanzibar is spoken here\n";

/// Three items: the talk (3 s, with metadata), a subtitled clip (3 s) and a long direct file
/// (20 s); returns their ids in that order.
async fn library(app: &TestApp) -> [String; 3] {
    let video = app.server.add(
        "/media/clip.mp4",
        Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"),
    );
    let talk = app
        .server
        .add("/watch/talk", Route::html(&talk_page(&video)));
    app.server.add(
        "/media/sub.mp4",
        Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4"),
    );
    app.server
        .add("/subs/en.vtt", Route::bytes(CUES, "text/vtt"));
    let subtitled = app.server.add("/watch/subtitled", Route::html(
        "<html><head><title>Harbour walk</title></head><body><video controls><source src=\"/media/sub.mp4\" type=\"video/mp4\">\
         <track kind=\"subtitles\" srclang=\"en\" src=\"/subs/en.vtt\"></video></body></html>",
    ));
    let long = app.server.add(
        "/files/Long%20Drive.mp4",
        Route::file(app.fixtures.path("long_720p.mp4"), "video/mp4"),
    );
    let mut ids = Vec::new();
    for url in [talk, subtitled, long] {
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed", "{item}");
        ids.push(item["id"].as_str().unwrap().to_string());
    }
    ids.try_into().unwrap()
}

async fn search(app: &TestApp, query: &str) -> (Vec<String>, Value) {
    let page = app.get_json(&format!("/api/items?{query}")).await;
    let ids = page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: {page}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    (ids, page)
}

fn q(text: &str) -> String {
    format!(
        "q={}",
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
    )
}

on_both_backends! {
    async fn words_phrases_prefixes_and_subtitles_find_their_items(backend: Backend) {
        let app = spawn_app(backend).await;
        let [talk, subtitled, long] = library(&app).await;

        // A word of the description, folded: no accents, any case.
        let (ids, page) = search(&app, &q("creme BRULEE")).await;
        assert_eq!(ids, [talk.as_str()], "{page}");
        let hit = &page["items"][0]["match"];
        assert_eq!(hit["field"], "description", "{hit}");
        let marked: Vec<&str> = hit["snippet"].as_array().unwrap().iter()
            .filter(|s| s["hit"] == true).map(|s| s["text"].as_str().unwrap()).collect();
        assert_eq!(marked, ["Crème", "Brûlée"], "{hit}");
        assert!(hit["snippet"].to_string().contains("<b>eviction</b>"), "the snippet is text, as stored: {hit}");

        // A subtitle word gives the cue and when it starts.
        let (ids, page) = search(&app, &q("zanzibar")).await;
        assert_eq!(ids, [subtitled.as_str()], "{page}");
        let hit = &page["items"][0]["match"];
        assert_eq!((hit["field"].as_str(), hit["lang"].as_str(), hit["start_seconds"].as_f64()), (Some("subtitles"), Some("en"), Some(1.5)), "{hit}");
        assert_eq!(search(&app, &q("zanz*")).await.0, [subtitled.as_str()]);
        assert_eq!(search(&app, &q("\"spoken here\"")).await.0, [subtitled.as_str()]);
        assert!(search(&app, &q("\"here spoken\"")).await.0.is_empty());

        // Uploader, tags, title, URL; all words must match; exclusions.
        assert_eq!(search(&app, &q("lovelace")).await.0, [talk.as_str()]);
        assert_eq!(search(&app, &q("conference")).await.0, [talk.as_str()]);
        assert_eq!(search(&app, &q("harbour walk")).await.0, [subtitled.as_str()]);
        assert_eq!(search(&app, &q("drive")).await.0, [long.as_str()], "a direct file by its name");
        assert!(search(&app, &q("caching zanzibar")).await.0.is_empty(), "every word must match one item");
        let (ids, _) = search(&app, &q("127.0.0.1 -talk")).await;
        assert!(ids.contains(&subtitled) && ids.contains(&long) && !ids.contains(&talk), "{ids:?}");

        // Filters and sorts combine with a search and without one.
        let (ids, _) = search(&app, "sort=duration&order=desc").await;
        assert_eq!(ids[0], long, "longest first");
        let (ids, _) = search(&app, "min_duration=10").await;
        assert_eq!(ids, [long.as_str()]);
        let (ids, _) = search(&app, &format!("{}&max_duration=5&sort=captured&order=asc", q("127.0.0.1"))).await;
        assert_eq!(ids, [talk.as_str(), subtitled.as_str()]);
        assert_eq!(search(&app, "uploader=ada%20LOVELACE").await.0, [talk.as_str()]);
        assert_eq!(search(&app, "tag=rust").await.0, [talk.as_str()]);
        assert_eq!(search(&app, "uploaded_from=2024-03-05&uploaded_to=2024-03-05").await.0, [talk.as_str()]);
        assert!(search(&app, "uploaded_from=2024-03-06").await.0.is_empty());
        assert_eq!(search(&app, "sort=uploaded").await.0[0], talk, "dated items before undated");
        assert_eq!(search(&app, "kind=image").await.0.len(), 0);
        assert_eq!(search(&app, "captured_from=2000-01-01&status=completed").await.0.len(), 3);

        // Paging through search results.
        let (first, page) = search(&app, &format!("{}&limit=2", q("127.0.0.1"))).await;
        let cursor = page["next_cursor"].as_str().expect("a second page");
        let (second, page) = search(&app, &format!("{}&limit=2&cursor={cursor}", q("127.0.0.1"))).await;
        assert_eq!(first.len() + second.len(), 3, "{page}");
        assert!(page["next_cursor"].is_null());
        // A position in one search's results means nothing in another's.
        let other = app.get_json(&format!("/api/items?{}&limit=2&cursor={cursor}", q("talk"))).await;
        assert_eq!(other["error"]["code"], "bad_request", "{other}");
        let sorted = app.get_json(&format!("/api/items?{}&sort=duration&cursor={cursor}", q("127.0.0.1"))).await;
        assert_eq!(sorted["error"]["code"], "bad_request", "{sorted}");

        // The index is derived: emptied (as a restore or a database copy leaves it), the
        // catch-up at start builds it again, subtitle cues included (read from the sidecars).
        let statements: &[&str] = match &app.ctx().db {
            prsnl::db::Db::Sqlite(..) => &[
                "INSERT INTO cue_search (cue_search) VALUES ('delete-all')",
                "DELETE FROM item_search", "DELETE FROM search_docs", "DELETE FROM subtitle_cues", "DELETE FROM item_tags",
            ],
            prsnl::db::Db::Postgres(_) => &["DELETE FROM item_search", "DELETE FROM subtitle_cues", "DELETE FROM item_tags"],
        };
        for sql in statements {
            match &app.ctx().db {
                prsnl::db::Db::Sqlite(pool, _) => drop(sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(pool).await.unwrap()),
                prsnl::db::Db::Postgres(pool) => drop(sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(pool).await.unwrap()),
            }
        }
        assert!(search(&app, &q("zanzibar")).await.0.is_empty());
        let rebuilt = prsnl::db::search::catch_up(&app.ctx().db, app.ctx().media.path()).await.unwrap();
        assert_eq!(rebuilt, (3, 1), "three items and one video's cues");
        assert_eq!(search(&app, &q("zanzibar")).await.0, [subtitled.as_str()]);
        assert_eq!(search(&app, "tag=rust").await.0, [talk.as_str()]);

        // A deleted item is found no more, by its words or its subtitles.
        let deleted = app.client.delete(app.url(&format!("/api/videos/{subtitled}"))).send().await.unwrap();
        assert!(deleted.status().is_success());
        assert!(search(&app, &q("zanzibar")).await.0.is_empty());
        assert!(search(&app, &q("harbour")).await.0.is_empty());
    }
}

on_both_backends! {
    async fn anything_typed_is_searched_literally_and_never_fails(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/files/Plain.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        app.capture_and_wait(&url).await;
        for hostile in [
            "' OR 1=1; --", "\"", "\"\"\"", "***", "*", "NEAR(a b)", "col:plain", "^plain", "{plain}",
            "plain AND", "OR", "a\u{0}b", "%", "_", "\\", "plain)", "((plain", "-", "--", "🎬",
            "x:*", "'", "&", "|", "!", "<->", "plain:*", "ÅÄÖ", "1e5", "日本語のタイトル",
        ] {
            let response = app.client.get(app.url(&format!("/api/items?{}", q(hostile)))).send().await.unwrap();
            let status = response.status().as_u16();
            assert!(status == 200 || status == 400, "{hostile:?}: {status}");
            if status == 400 {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "invalid_query", "{hostile:?}: {body}");
            }
        }
        let (ids, _) = search(&app, &q("plain)")).await;
        assert_eq!(ids.len(), 1, "punctuation is not syntax");
        let only_not = app.get_json(&format!("/api/items?{}", q("-plain"))).await;
        assert_eq!(only_not["error"]["code"], "invalid_query", "{only_not}");
        let long = app.get_json(&format!("/api/items?{}", q(&"word ".repeat(200)))).await;
        assert_eq!(long["error"]["code"], "invalid_query", "{long}");
        // A word longer than any indexed word is refused, not dropped (which would widen the search).
        let overlong = app.get_json(&format!("/api/items?{}", q(&format!("talk {}", "z".repeat(65))))).await;
        assert_eq!(overlong["error"]["code"], "invalid_query", "{overlong}");
        assert_eq!(app.get_json("/api/items?sort=relevance").await["error"]["code"], "bad_request");
        assert_eq!(app.get_json("/api/items?min_duration=soon").await["error"]["code"], "bad_request");
    }
}

on_both_backends! {
    async fn owners_title_tags_and_note_are_kept_beside_the_sources_and_found(backend: Backend) {
        let app = spawn_app(backend).await;
        let p = people(&app).await;
        let url = app.server.add("/files/Holiday.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = crate::people::capture_done(&app, &p.a, &url).await;
        let id = item["id"].as_str().unwrap().to_string();
        let path = format!("/api/items/{id}");

        let (code, edited) = json_of(&app, &p.a, Method::PATCH, &path, Some(json!({
            "title": "Grandma's 90th <script>alert(1)</script>\u{202e}",
            "tags": ["Family", "family", "Birthdays"],
            "note": "Filmed in the garden\nbefore the storm",
        }))).await;
        assert_eq!(code, 200, "{edited}");
        assert_eq!(edited["title"], "Grandma's 90th <script>alert(1)</script>");
        assert_eq!(edited["source_title"], "Holiday", "the source's title stays beside");
        assert_eq!(edited["user"]["tags"], json!(["Family", "Birthdays"]));
        assert_eq!(edited["user"]["note"], "Filmed in the garden\nbefore the storm");

        let find = |query: String| {
            let app = &app;
            let who = p.a.clone();
            async move {
                let (code, page) = json_of(app, &who, Method::GET, &format!("/api/items?{query}"), None).await;
                assert_eq!(code, 200, "{page}");
                page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
            }
        };
        assert_eq!(find(q("storm")).await, [id.as_str()], "the note is searched");
        assert_eq!(find(q("grandma")).await, [id.as_str()], "the person's title is searched");
        assert_eq!(find(q("holiday")).await, [id.as_str()], "and the source's still");
        assert_eq!(find("tag=birthdays".into()).await, [id.as_str()]);

        // Someone else's item does not exist for B, to read, edit or find.
        let (code, _) = json_of(&app, &p.b, Method::PATCH, &path, Some(json!({"title": "mine"}))).await;
        assert_eq!(code, 404);
        let (_, page) = json_of(&app, &p.b, Method::GET, &format!("/api/items?{}", q("storm")), None).await;
        assert_eq!(page["items"], json!([]), "{page}");

        // Clearing, and bad changes with clear errors that change nothing.
        for (body, code) in [
            (json!({"owner": "x"}), "bad_request"),
            (json!({"tags": "a,b"}), "bad_request"),
            (json!({}), "bad_request"),
        ] {
            let (status, error) = json_of(&app, &p.a, Method::PATCH, &path, Some(body)).await;
            assert_eq!((status, error["error"]["code"].as_str()), (400, Some(code)), "{error}");
        }
        let As::Token(token) = &p.a else { unreachable!() };
        // A client of their own: the server closes a connection whose body it refused unread.
        let client = reqwest::Client::new();
        let raw = |content_type: &str, body: String| {
            client.patch(app.url(&path)).bearer_auth(token).header("content-type", content_type.to_string()).body(body)
        };
        // A body declared as something else is not read as JSON; one over the limit is too large.
        let form = raw("text/plain", json!({"title": "by a form"}).to_string()).send().await.unwrap();
        assert_eq!(form.status().as_u16(), 415);
        assert_eq!(form.json::<Value>().await.unwrap()["error"]["code"], "unsupported_media_type");
        let huge = raw("application/json", json!({"note": "n".repeat(100_000)}).to_string()).send().await.unwrap();
        assert_eq!(huge.status().as_u16(), 413, "not 405 from the GET route on the same path");
        assert_eq!(huge.json::<Value>().await.unwrap()["error"]["code"], "payload_too_large");
        let (_, item_now) = json_of(&app, &p.a, Method::GET, &path, None).await;
        assert_eq!(item_now["title"], "Grandma's 90th <script>alert(1)</script>", "nothing changed: {item_now}");
        let (code, cleared) = json_of(&app, &p.a, Method::PATCH, &path, Some(json!({"title": null, "tags": []}))).await;
        assert_eq!(code, 200);
        assert_eq!(cleared["title"], "Holiday");
        assert_eq!(cleared["user"]["note"], "Filmed in the garden\nbefore the storm", "a field not named is left alone");
        assert!(find("tag=birthdays".into()).await.is_empty());
        assert!(find(q("grandma")).await.is_empty());
    }
}
