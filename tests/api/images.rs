//! Image items: photos imported as files the service owns (what the Telegram bot does), stored
//! under images/, thumbnailed, served, swept and deleted.

use std::path::PathBuf;
use std::time::Duration;

use prsnl::db::imports::{ImportPayload, NewImport};
use prsnl::domain::{ItemKind, Source, ThumbSize};
use serde_json::Value;

use crate::fixtures::image_width;
use crate::helpers::{TestApp, on_both_backends, spawn_app, spawn_app_with, wait_for};

/// Puts `bytes` in temp/uploads as the bot would, and imports it as an image; returns the
/// item id and the upload's path.
async fn import_image(app: &TestApp, bytes: &[u8], name: &str) -> (String, PathBuf) {
    let upload = app.ctx().media.uploads_dir().join(name);
    std::fs::write(&upload, bytes).unwrap();
    let record = app
        .intake()
        .import_file(NewImport {
            key: format!("test:{name}"),
            kind: ItemKind::Image,
            source: Source::Telegram,
            owner: Some("chat-42".into()),
            title: name.into(),
            file: ImportPayload {
                file: upload.clone(),
                found_at: upload.clone(),
                owned: true,
            },
            max_attempts: 3,
        })
        .await
        .expect("the import is recorded");
    assert!(record.created);
    assert_eq!(record.item.kind, ItemKind::Image);
    (record.item.id.to_string(), upload)
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// `images/YYYY/MM/{id}.jpg` for an item created at RFC 3339 `created_at`.
fn expected_path(top: &str, created_at: &str, name: &str) -> String {
    format!("{top}/{}/{}/{name}", &created_at[..4], &created_at[5..7])
}

on_both_backends! {
    async fn a_photo_is_stored_thumbnailed_served_swept_and_deleted(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.storage.sweep_min_age_secs = 0).await;
        let photo = app.fixtures.bytes("photo.jpg");
        let (id, upload) = import_image(&app, &photo, "photo.jpg").await;

        let item = app.wait_terminal(&id).await;
        assert_eq!(item["status"], "completed", "{item}");
        assert_eq!(item["kind"], "image");
        let meta = &item["metadata"];
        assert_eq!(meta["kind"], "image");
        assert_eq!((meta["width"].as_u64(), meta["height"].as_u64()), (Some(1600), Some(900)));
        assert_eq!(meta["video_codec"], "mjpeg");
        assert!(meta["duration_seconds"].is_null() && meta["fps"].is_null(), "{meta}");
        assert_eq!(meta["image_url"], format!("/api/images/{id}"));
        assert!(meta.get("stream_url").is_none(), "{meta}");
        let created = item["created_at"].as_str().unwrap();
        let stored = expected_path("images", created, &format!("{id}.jpg"));
        assert_eq!(meta["storage_path"], stored);
        assert_eq!(std::fs::read(app.media_path(&stored)).unwrap(), photo, "stored byte for byte");
        assert_eq!(meta["size_bytes"].as_u64(), Some(photo.len() as u64));
        assert_eq!(meta["sha256"], crate::helpers::sha256_hex(&photo));

        for size in ThumbSize::ALL {
            let on_disk = expected_path("thumbnails", created, &format!("{id}_{}.jpg", size.as_str()));
            assert_eq!(image_width(&app.media_path(&on_disk)), u64::from(size.width()), "{on_disk}");
            let served = get(&app, &format!("/api/videos/{id}/thumbnail/{}", size.as_str())).await;
            assert_eq!(served.status(), 200);
            assert_eq!(served.headers()["content-type"], "image/jpeg");
            assert_eq!(served.bytes().await.unwrap(), std::fs::read(app.media_path(&on_disk)).unwrap());
        }

        // The picture itself, whole and in ranges, like a video's stream.
        let whole = get(&app, &format!("/api/images/{id}")).await;
        assert_eq!(whole.status(), 200);
        assert_eq!(whole.headers()["content-type"], "image/jpeg");
        assert_eq!(whole.headers()["x-content-type-options"], "nosniff");
        assert!(whole.headers().contains_key("etag"));
        assert_eq!(whole.bytes().await.unwrap(), photo);
        let part = app.client.get(app.url(&format!("/api/images/{id}")))
            .header("range", "bytes=100-199").send().await.unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.headers()["content-range"], format!("bytes 100-199/{}", photo.len()));
        assert_eq!(part.bytes().await.unwrap(), photo[100..200]);
        let head = app.client.head(app.url(&format!("/api/images/{id}"))).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"], photo.len().to_string().as_str());

        // What only a video has answers with its own code.
        assert_eq!(error_code(get(&app, &format!("/api/videos/{id}/stream")).await).await, (404, "not_a_video".to_string()));
        let transcode = app.client.post(app.url(&format!("/api/videos/{id}/transcode")))
            .json(&serde_json::json!({"quality": "360p"})).send().await.unwrap();
        assert_eq!(error_code(transcode).await, (404, "not_a_video".to_string()));
        let metadata: Value = get(&app, &format!("/api/videos/{id}/metadata")).await.json().await.unwrap();
        assert_eq!(metadata["kind"], "image");
        let listed: Value = get(&app, "/api/items").await.json().await.unwrap();
        assert_eq!(listed["items"][0]["kind"], "image", "{listed}");

        // The upload belonged to the service and is no longer needed.
        assert!(wait_for(Duration::from_secs(10), || async { !upload.exists() }).await, "the upload stays");

        let stats: Value = get(&app, "/api/storage/stats").await.json().await.unwrap();
        assert_eq!(stats["images"]["files"], 1, "{stats}");
        assert_eq!(stats["images"]["bytes"].as_u64(), Some(photo.len() as u64));
        assert_eq!((stats["videos"]["files"].as_u64(), stats["thumbnails"]["files"].as_u64()), (Some(0), Some(3)));
        // The stored total counts images (the bot's /stats shows the same total).
        let thumbs = stats["thumbnails"]["bytes"].as_u64().unwrap();
        assert_eq!(stats["stored_bytes"].as_u64(), Some(photo.len() as u64 + thumbs), "{stats}");

        // A sweep keeps the referenced image and quarantines an unknown one.
        let stray = expected_path("images", created, "stray.jpg");
        std::fs::write(app.media_path(&stray), &photo).unwrap();
        let swept: Value = app.client.post(app.url("/api/storage/cleanup")).send().await.unwrap().json().await.unwrap();
        assert_eq!(swept["orphans"]["done"], 1, "{swept}");
        assert!(app.media_path(&stored).exists());
        assert!(app.media_path(&format!("quarantine/{stray}")).exists());

        let deleted = app.client.delete(app.url(&format!("/api/videos/{id}"))).send().await.unwrap();
        assert_eq!(deleted.status(), 204);
        let gone = wait_for(Duration::from_secs(10), || async {
            app.files_under("images").is_empty() && app.files_under("thumbnails").is_empty()
        })
        .await;
        assert!(gone, "{:?} {:?}", app.files_under("images"), app.files_under("thumbnails"));
        assert_eq!(get(&app, &format!("/api/images/{id}")).await.status(), 404);
        let settled = wait_for(Duration::from_secs(10), || async {
            let stats: Value = get(&app, "/api/storage/stats").await.json().await.unwrap();
            stats["images"]["files"] == 0 && stats["thumbnails"]["files"] == 0
        })
        .await;
        assert!(settled, "the storage accounting still counts the deleted image");
    }
}

on_both_backends! {
    async fn small_photos_are_not_upscaled_and_non_jpegs_fail_as_invalid_media(backend: Backend) {
        let app = spawn_app(backend).await;
        let (small, _) = import_image(&app, &app.fixtures.bytes("small.jpg"), "small.jpg").await;
        let (png, png_upload) = import_image(&app, &app.fixtures.bytes("small.png"), "small.png").await;
        let (text, _) = import_image(&app, b"not a photo at all\n", "note.jpg").await;

        let item = app.wait_terminal(&small).await;
        assert_eq!(item["status"], "completed", "{item}");
        let created = item["created_at"].as_str().unwrap();
        for size in ThumbSize::ALL {
            let thumb = expected_path("thumbnails", created, &format!("{small}_{}.jpg", size.as_str()));
            assert_eq!(image_width(&app.media_path(&thumb)), 100, "{thumb} is never upscaled");
        }

        for id in [&png, &text] {
            let item = app.wait_terminal(id).await;
            assert_eq!(item["status"], "failed", "{item}");
            assert_eq!(item["error"]["code"], "invalid_media", "{item}");
            assert_eq!(get(&app, &format!("/api/images/{id}")).await.status(), 409);
        }
        // A refused upload is finished for good too: nothing keeps it.
        assert!(wait_for(Duration::from_secs(10), || async { !png_upload.exists() }).await);
        assert_eq!(app.files_under("images").len(), 1);
        assert!(app.files_under("temp/uploads").is_empty(), "{:?}", app.files_under("temp/uploads"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_folder_still_imports_videos_as_videos() {
    // The watch folder passes kind Video and a file it does not own: the user's file stays.
    let app = spawn_app(crate::helpers::Backend::Sqlite).await;
    let video = app.fixtures.path("h264_aac_faststart.mp4");
    let mine = app.ctx().media.path().join("../mine.mp4");
    std::fs::copy(&video, &mine).unwrap();
    let record = app
        .intake()
        .import_file(NewImport {
            key: "test:mine".into(),
            kind: ItemKind::Video,
            source: Source::Watch,
            owner: None,
            title: "mine".into(),
            file: ImportPayload {
                file: mine.clone(),
                found_at: mine.clone(),
                owned: false,
            },
            max_attempts: 3,
        })
        .await
        .unwrap();
    let item = app.wait_terminal(&record.item.id.to_string()).await;
    assert_eq!(
        (item["status"].as_str(), item["kind"].as_str()),
        (Some("completed"), Some("video")),
        "{item}"
    );
    assert!(
        item["metadata"]["storage_path"]
            .as_str()
            .unwrap()
            .starts_with("videos/")
    );
    assert!(item["metadata"]["duration_seconds"].as_f64().unwrap() > 0.0);
    assert!(
        mine.exists(),
        "a file the service does not own is never deleted"
    );
}
