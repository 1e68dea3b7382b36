//! What the source says about a video beyond its title — uploader, upload date, description,
//! tags, chapters — kept from yt-dlp's info JSON (a page with real schema.org metadata,
//! through the real yt-dlp) and from a direct file's own container tags.

use std::process::Command;

use serde_json::Value;

use crate::fixture_server::Route;
use crate::helpers::{on_both_backends, spawn_app};

/// A page whose schema.org VideoObject names the video; its description is hostile.
fn page(video_url: &str) -> String {
    let long = "padding ".repeat(5_000);
    let metadata = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": "A talk about caching",
        "description": format!("First line <script>alert(1)</script>\nSecond\u{7} line\u{202E}\n\n\n\n{long}"),
        "uploadDate": "2024-03-05T10:00:00Z",
        "author": {"@type": "Person", "name": "Ada\u{1b}[31m Lovelace"},
        "keywords": "rust, talks, Rust",
        "contentUrl": video_url,
        "duration": "PT3S",
        "thumbnailUrl": "javascript:alert(1)",
        "hasPart": [
            {"@type": "Clip", "name": "Intro", "startOffset": 0, "endOffset": 1},
            {"@type": "Clip", "name": "Main part", "startOffset": 1, "endOffset": 3}
        ]
    });
    // `</` inside a script element would end it: the JSON escapes its slashes there.
    let json = metadata.to_string().replace("</", "<\\/");
    format!(
        "<html><head><title>Fallback</title><script type=\"application/ld+json\">{json}</script></head><body>hi</body></html>"
    )
}

on_both_backends! {
    async fn what_the_source_says_is_kept_checked_and_shown(backend: Backend) {
        let app = spawn_app(backend).await;
        let video = app.server.add("/media/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let page_url = app.server.add("/watch/talk", Route::html(&page(&video)));
        let item = app.capture_and_wait(&page_url).await;
        assert_eq!(item["status"], "completed", "{item}");
        assert_eq!(item["title"], "A talk about caching");
        let meta = &item["metadata"];
        assert_eq!(meta["uploader"], "Ada[31m Lovelace", "control characters are dropped: {meta}");
        assert_eq!(meta["upload_date"], "2024-03-05");
        let description = meta["description"].as_str().expect("a description");
        assert!(description.starts_with("First line <script>alert(1)</script>\nSecond line\n\n"), "{description:.200}");
        assert!(description.chars().count() == 20_000 && description.ends_with('…'), "capped: {} chars", description.chars().count());
        assert_eq!(meta["tags"], serde_json::json!(["rust", "talks"]), "trimmed, without a second spelling");
        assert_eq!(meta["chapters"][1], serde_json::json!({"start_seconds": 1.0, "end_seconds": 3.0, "title": "Main part"}));
        assert_eq!(meta["source_thumbnail_url"], Value::Null, "only http(s) URLs are kept");
        // The listing shows who and when, but leaves long descriptions out.
        let listed = app.get_json("/api/items").await;
        let first = &listed["items"][0]["metadata"];
        assert_eq!(first["uploader"], "Ada[31m Lovelace");
        assert!(first.get("description").is_none(), "{first}");
    }
}

on_both_backends! {
    async fn a_direct_files_own_tags_are_kept(backend: Backend) {
        let app = spawn_app(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let tagged = dir.path().join("tagged.mp4");
        let status = Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-i"])
            .arg(app.fixtures.path("h264_aac_faststart.mp4"))
            .args(["-c", "copy", "-metadata", "artist=Grace Hopper", "-metadata", "date=2023-07-01"])
            .args(["-metadata", "comment=Recorded at home", "-metadata", "genre=family; holiday"])
            .arg(&tagged)
            .status()
            .unwrap();
        assert!(status.success());
        let url = app.server.add("/files/tagged.mp4", Route::file(&tagged, "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed", "{item}");
        let meta = &item["metadata"];
        assert_eq!(meta["uploader"], "Grace Hopper", "{meta}");
        assert_eq!(meta["upload_date"], "2023-07-01");
        assert_eq!(meta["description"], "Recorded at home");
        assert_eq!(meta["tags"], serde_json::json!(["family", "holiday"]));
        assert_eq!(item["title"], "tagged", "a direct link is named by its file");
    }
}
