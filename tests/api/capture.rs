//! The capture path end to end: real yt-dlp downloading from the fixture server, real ffmpeg
//! processing, files in the date tree, rows in the database.

use std::num::NonZero;
use std::time::Duration;

use serde_json::Value;

use crate::fixture_server::Route;
use crate::fixtures::{ffprobe, image_width, stream};
use prsnl::domain::encoding::CompressPolicy;

use crate::helpers::{Backend, on_both_backends, sha256_hex, spawn_app, spawn_app_with};

fn assert_completed(item: &Value) {
    assert_eq!(item["status"], "completed", "{item:#}");
}

fn assert_failed_with(item: &Value, code: &str) {
    assert_eq!(item["status"], "failed", "{item:#}");
    assert_eq!(item["error"]["code"], code, "{item:#}");
}

/// The stored file's own ffprobe view matches what the API reports.
fn assert_metadata_matches_file(meta: &Value, file: &std::path::Path) {
    let probe = ffprobe(file);
    let video = stream(&probe, "video").expect("a video stream");
    assert_eq!(meta["width"], video["width"]);
    assert_eq!(meta["height"], video["height"]);
    assert_eq!(meta["video_codec"], video["codec_name"]);
    assert_eq!(
        meta["audio_codec"],
        stream(&probe, "audio").map_or(Value::Null, |a| a["codec_name"].clone())
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (meta["duration_seconds"].as_f64().unwrap() - duration).abs() < 0.01,
        "{meta} vs {duration}"
    );
    let bitrate: u64 = probe["format"]["bit_rate"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(meta["bitrate_bps"].as_u64(), Some(bitrate));
    let (num, den) = video["avg_frame_rate"]
        .as_str()
        .unwrap()
        .split_once('/')
        .unwrap();
    let fps = num.parse::<f64>().unwrap() / den.parse::<f64>().unwrap();
    assert!((meta["fps"].as_f64().unwrap() - fps).abs() < 0.01);
    assert_eq!(meta["container"], "mp4");
    assert_eq!(
        meta["size_bytes"].as_u64(),
        Some(std::fs::metadata(file).unwrap().len())
    );
}

on_both_backends! {
    async fn direct_h264_mp4_link_completes_with_thumbnails_metadata_and_hash(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_completed(&item);
        let id = item["id"].as_str().unwrap();
        let meta = &item["metadata"];

        // The video sits in the date tree under its own id.
        let month = time::OffsetDateTime::now_utc();
        let expected = format!("videos/{:04}/{:02}/{id}.mp4", month.year(), u8::from(month.month()));
        assert_eq!(meta["storage_path"], expected);
        let stored = app.media_path(&expected);
        assert_metadata_matches_file(meta, &stored);
        assert_eq!(meta["width"], 640);
        assert_eq!(meta["audio_codec"], "aac");

        // Already browser-playable with its index in front: stored byte for byte.
        let original = app.fixtures.bytes("h264_aac_faststart.mp4");
        let bytes = std::fs::read(&stored).unwrap();
        assert_eq!(bytes, original);
        assert_eq!(meta["sha256"], sha256_hex(&bytes));

        // Three thumbnails, never wider than the 640 px source.
        for (size, width) in [("small", 160), ("medium", 480), ("large", 640)] {
            let thumb = app.media_path(&format!("thumbnails/{:04}/{:02}/{id}_{size}.jpg", month.year(), u8::from(month.month())));
            assert_eq!(image_width(&thumb), width, "{size}");
            let served = app.client.get(app.url(meta["thumbnails"][size].as_str().unwrap())).send().await.unwrap();
            assert_eq!(served.status(), 200);
            assert_eq!(served.headers()["content-type"], "image/jpeg");
            assert_eq!(served.bytes().await.unwrap().as_ref(), std::fs::read(&thumb).unwrap().as_slice());
        }

        // The stream serves exactly the stored bytes.
        let streamed = app.client.get(app.url(meta["stream_url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(streamed.status(), 200);
        assert_eq!(streamed.headers()["content-type"], "video/mp4");
        assert_eq!(streamed.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // The metadata route says the same as the item.
        let metadata: Value = app.client.get(app.url(&format!("/api/videos/{id}/metadata"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(&metadata, meta);
        // Nothing is left in the work area.
        assert!(app.files_under("temp").is_empty(), "{:?}", app.files_under("temp"));
    }
}

on_both_backends! {
    async fn an_mp4_with_its_index_at_the_end_is_remuxed_for_streaming(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/late-moov.mp4", Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_completed(&item);
        let stored = app.media_path(item["metadata"]["storage_path"].as_str().unwrap());
        assert_metadata_matches_file(&item["metadata"], &stored);
        assert_eq!(prsnl::media::mp4::is_faststart(&stored).unwrap(), Some(true));
    }
}

on_both_backends! {
    async fn webm_mkv_and_avi_sources_are_stored_as_h264_aac_mp4(backend: Backend) {
        let app = spawn_app(backend).await;
        for (name, mime) in [("vp9_opus.webm", "video/webm"), ("hevc_aac.mkv", "video/x-matroska"), ("mpeg4_pcm.avi", "video/x-msvideo")] {
            let url = app.server.add(&format!("/{name}"), Route::file(app.fixtures.path(name), mime));
            let item = app.capture_and_wait(&url).await;
            assert_completed(&item);
            let meta = &item["metadata"];
            assert_eq!(meta["video_codec"], "h264", "{name}");
            assert_eq!(meta["audio_codec"], "aac", "{name}");
            let stored = app.media_path(meta["storage_path"].as_str().unwrap());
            assert_metadata_matches_file(meta, &stored);
            let probe = ffprobe(&stored);
            assert!(probe["format"]["format_name"].as_str().unwrap().contains("mp4"), "{name}");
            // Browsers cannot play the source's codecs: re-encoded, and the item says so.
            assert_eq!(meta["encoding"]["conversion"], "transcoded", "{name}: {meta}");
            assert_eq!(meta["encoding"]["reencoded"], true, "{name}: {meta}");
            assert_eq!(meta["encoding"]["source"]["size_bytes"].as_u64(), Some(std::fs::metadata(app.fixtures.path(name)).unwrap().len()), "{name}");
        }
    }
}

/// Complete files as ffmpeg writes them in the containers sources arrive in, captured at the
/// same time: every one is kept, whatever its container's frame count says (an AVI's index
/// promises one frame more than it holds). The truncated fixtures stay refused (below).
#[tokio::test]
async fn a_corpus_of_complete_files_in_several_containers_is_kept() {
    let app = spawn_app(Backend::Sqlite).await;
    let corpus = [
        ("corpus_mpeg4_mp3.avi", "video/x-msvideo"),
        ("corpus_flv1_mp3.flv", "video/x-flv"),
        ("corpus_h264_aac.ts", "video/mp2t"),
        ("corpus_h264_aac.mov", "video/quicktime"),
        ("corpus_h263_aac.3gp", "video/3gpp"),
        ("corpus_vp8_vorbis.webm", "video/webm"),
        ("corpus_mpeg4_mp3.mkv", "video/x-matroska"),
    ];
    let mut submitted = Vec::new();
    for (name, mime) in corpus {
        let url = app.server.add(
            &format!("/{name}"),
            Route::file(app.fixtures.path(name), mime),
        );
        submitted.push((
            name,
            app.capture(&url).await["id"].as_str().unwrap().to_string(),
        ));
    }
    for (name, id) in submitted {
        let item = app.wait_terminal(&id).await;
        assert_eq!(item["status"], "completed", "{name}: {item:#}");
        let meta = &item["metadata"];
        assert!(
            (meta["duration_seconds"].as_f64().unwrap() - 6.0).abs() < 0.2,
            "{name}: {meta}"
        );
        let stored = app.media_path(meta["storage_path"].as_str().unwrap());
        assert!(
            ffprobe(&stored)["format"]["format_name"]
                .as_str()
                .unwrap()
                .contains("mp4"),
            "{name}"
        );
    }
}

on_both_backends! {
    async fn a_video_without_audio_completes(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/silent.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_completed(&item);
        assert_eq!(item["metadata"]["audio_codec"], Value::Null);
        assert_eq!(item["metadata"]["width"], 320);
    }
}

on_both_backends! {
    async fn a_page_with_a_video_tag_is_captured_through_the_generic_extractor(backend: Backend) {
        let app = spawn_app(backend).await;
        app.server.add("/media/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let page = app.server.add(
            "/watch/my-clip",
            Route::html("<html><head><title>My holiday clip</title></head><body><video src=\"/media/clip.mp4\" controls></video></body></html>"),
        );
        let item = app.capture_and_wait(&page).await;
        assert_completed(&item);
        assert!(item["title"].as_str().unwrap().contains("My holiday clip"), "{item}");
        assert!(app.server.hits("/media/clip.mp4") >= 1);
    }
}

/// Captures the fixture `name` with `compress_above_mb = 1` and the given policy; returns the
/// completed item, the stored file and the fixture's bytes.
async fn capture_large(
    backend: Backend,
    name: &str,
    policy: CompressPolicy,
) -> (crate::helpers::TestApp, Value, std::path::PathBuf, Vec<u8>) {
    let app = spawn_app_with(backend, |s| {
        s.storage.compress_above_mb = NonZero::new(1).unwrap();
        s.processing.compress = policy;
    })
    .await;
    let original = app.fixtures.bytes(name);
    assert!(
        original.len() > 2 * 1024 * 1024,
        "{name} must be well above 1 MiB"
    );
    let url = app.server.add(
        &format!("/{name}"),
        Route::file(app.fixtures.path(name), "video/mp4"),
    );
    let item = app.capture_and_wait(&url).await;
    assert_completed(&item);
    let stored = app.media_path(item["metadata"]["storage_path"].as_str().unwrap());
    assert_metadata_matches_file(&item["metadata"], &stored);
    let encoding = &item["metadata"]["encoding"];
    assert_eq!(
        encoding["source"]["size_bytes"].as_u64(),
        Some(original.len() as u64),
        "{encoding:#}"
    );
    assert_eq!(encoding["source"]["video_codec"], "h264", "{encoding:#}");
    assert_eq!(encoding["source"]["audio_codec"], "aac", "{encoding:#}");
    assert!(
        encoding["source"]["bitrate_bps"].as_u64().unwrap() > 0,
        "{encoding:#}"
    );
    assert_eq!(encoding["conversion"], "kept", "{encoding:#}");
    (app, item, stored, original)
}

on_both_backends! {
    /// The default keeps quality: a re-encode of grainy video that would visibly lose detail
    /// is measured, recorded and dropped; the stored file is the source's own bytes.
    async fn the_keeper_keeps_the_original_when_compression_would_show(backend: Backend) {
        let (_app, item, stored, original) = capture_large(backend, "big_noisy.mp4", CompressPolicy::Keeper).await;
        let encoding = &item["metadata"]["encoding"];
        let compression = &encoding["compression"];
        assert_eq!(compression["policy"], "keeper", "{encoding:#}");
        assert_eq!(compression["kept"], false, "{encoding:#}");
        let ssim = compression["ssim"].as_f64().expect("the SSIM was measured");
        assert!(ssim < 0.98, "{encoding:#}");
        assert!(compression["output_bytes"].as_u64().unwrap() < original.len() as u64 * 7 / 10, "the saving alone would have passed: {encoding:#}");
        assert_eq!(encoding["reencoded"], false, "{encoding:#}");
        assert_eq!(item["metadata"]["sha256"].as_str().unwrap(), sha256_hex(&original));
        assert_eq!(std::fs::metadata(&stored).unwrap().len(), original.len() as u64);
    }
}

on_both_backends! {
    /// …and keeps a re-encode that saves much at no visible cost.
    async fn the_keeper_keeps_a_compression_that_loses_nothing_visible(backend: Backend) {
        let (_app, item, stored, original) = capture_large(backend, "smooth_720p.mp4", CompressPolicy::Keeper).await;
        let encoding = &item["metadata"]["encoding"];
        let compression = &encoding["compression"];
        assert_eq!(compression["kept"], true, "{encoding:#}");
        assert!(compression["ssim"].as_f64().unwrap() >= 0.98, "{encoding:#}");
        assert_eq!(encoding["reencoded"], true, "{encoding:#}");
        let size = std::fs::metadata(&stored).unwrap().len();
        assert!(size * 10 < original.len() as u64 * 7, "stored {size} of {}", original.len());
        assert_eq!(compression["output_bytes"].as_u64(), Some(size), "{encoding:#}");
        assert_eq!(item["metadata"]["size_bytes"].as_u64(), Some(size));
    }
}

/// `aggressive` is the old behaviour: any smaller re-encode replaces the file, unmeasured.
/// `off` never re-encodes to save space.
#[tokio::test]
async fn aggressive_keeps_any_smaller_encode_and_off_none() {
    let (_app, item, stored, original) =
        capture_large(Backend::Sqlite, "big_noisy.mp4", CompressPolicy::Aggressive).await;
    let encoding = &item["metadata"]["encoding"];
    assert_eq!(encoding["compression"]["kept"], true, "{encoding:#}");
    assert!(encoding["compression"]["ssim"].is_null(), "{encoding:#}");
    assert_eq!(encoding["reencoded"], true, "{encoding:#}");
    assert!(std::fs::metadata(&stored).unwrap().len() < original.len() as u64);

    let (_app, item, stored, original) =
        capture_large(Backend::Sqlite, "smooth_720p.mp4", CompressPolicy::Off).await;
    let encoding = &item["metadata"]["encoding"];
    assert!(encoding["compression"].is_null(), "{encoding:#}");
    assert_eq!(encoding["reencoded"], false, "{encoding:#}");
    assert_eq!(
        std::fs::metadata(&stored).unwrap().len(),
        original.len() as u64
    );
}

on_both_backends! {
    async fn a_file_above_the_size_limit_fails_too_large_and_leaves_nothing(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.storage.max_video_size_mb = NonZero::new(1).unwrap()).await;
        let big = app.fixtures.path("big_noisy.mp4");
        // With Content-Length (refused on the announced size) and chunked (stopped mid-way).
        let announced = app.server.add("/announced.mp4", Route::file(&big, "video/mp4"));
        let chunked = app.server.add("/chunked.mp4", Route::file(&big, "video/mp4").chunked());
        for url in [announced, chunked] {
            let item = app.capture_and_wait(&url).await;
            assert_failed_with(&item, "too_large");
        }
        assert!(app.files_under("videos").is_empty());
        assert!(app.files_under("thumbnails").is_empty());
        assert!(crate::helpers::wait_for(Duration::from_secs(5), || async { app.files_under("temp").is_empty() }).await, "{:?}", app.files_under("temp"));
    }
}

on_both_backends! {
    async fn text_and_truncated_files_fail_invalid_media(backend: Backend) {
        let app = spawn_app(backend).await;
        let text = app.server.add("/not-a-video.mp4", Route::bytes(b"hello, I am only text\n".repeat(100), "video/mp4"));
        let truncated = app.server.add("/truncated.mp4", Route::file(app.fixtures.path("truncated.mp4"), "video/mp4"));
        for url in [text, truncated] {
            let item = app.capture_and_wait(&url).await;
            assert_failed_with(&item, "invalid_media");
        }
        assert!(app.files_under("videos").is_empty());
    }
}

on_both_backends! {
    async fn a_missing_source_fails_after_one_attempt(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.url("/gone.mp4");
        let item = app.capture_and_wait(&url).await;
        assert_failed_with(&item, "source_not_found");
        let jobs = prsnl::db::jobs::for_item(&app.ctx().db, prsnl::domain::ItemId::parse(item["id"].as_str().unwrap()).unwrap()).await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].attempt, 1, "a 404 is permanent: no retry");
        assert_eq!(jobs[0].state, prsnl::domain::JobState::Failed);
    }
}

on_both_backends! {
    async fn a_source_that_fails_once_completes_on_the_second_attempt(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/flaky.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4").failing_first(1));
        let item = app.capture_and_wait(&url).await;
        assert_completed(&item);
        let jobs = prsnl::db::jobs::for_item(&app.ctx().db, prsnl::domain::ItemId::parse(item["id"].as_str().unwrap()).unwrap()).await.unwrap();
        assert_eq!(jobs[0].attempt, 2);
        assert_eq!(jobs[0].last_error.as_ref().map(|e| e.code), Some(prsnl::domain::ErrorCode::UpstreamError));
    }
}

on_both_backends! {
    async fn twelve_captures_submitted_at_once_all_complete(backend: Backend) {
        let app = spawn_app(backend).await;
        let urls: Vec<String> = (0..12)
            .map(|i| app.server.add(&format!("/batch/{i}.mp4"), Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4")))
            .collect();
        let submitted = futures_util::future::join_all(urls.iter().map(|u| app.capture(u))).await;
        let ids: std::collections::HashSet<String> = submitted.iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 12);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        for item in app.wait_all_terminal(&ids).await {
            assert_completed(&item);
        }
        // The twelve are one and the same video, so they share one stored file.
        assert_eq!(app.files_under("videos").len(), 1);
    }
}

/// Twelve downloads really run at the same moment (slow sources, the generic platform's cap
/// raised; the global default allows twelve), and all complete.
#[tokio::test]
async fn twelve_downloads_run_at_the_same_moment_and_all_complete() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.platforms.generic.max_concurrent = NonZero::new(12).unwrap();
        s.platforms.generic.burst = NonZero::new(12).unwrap();
    })
    .await;
    assert!(
        app.settings.download.max_concurrent.get() >= 12,
        "the default allows twelve downloads at once"
    );
    let mut ids = Vec::new();
    for i in 0..12 {
        // Distinct bytes per source (no shared content), each taking seconds to arrive.
        let mut body = std::fs::read(app.fixtures.path("h264_silent.mp4")).unwrap();
        body.extend(format!("padding {i}").bytes());
        let route = Route::bytes(body, "video/mp4").drip(8 * 1024, Duration::from_millis(100));
        let url = app.server.add(&format!("/twelve/{i}.mp4"), route);
        ids.push(app.capture(&url).await["id"].as_str().unwrap().to_string());
    }
    let together = crate::helpers::wait_for(Duration::from_secs(30), || async {
        app.count_with_status("downloading").await == 12
    })
    .await;
    assert!(
        together,
        "twelve downloads were never seen running together"
    );
    for id in &ids {
        assert_completed(&app.wait_terminal(id).await);
    }
}

on_both_backends! {
    async fn the_same_url_twice_returns_the_existing_item(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/once.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let first = app.post_capture(&url).await;
        assert_eq!(first.status(), 202);
        let first: Value = first.json().await.unwrap();
        assert_eq!(first["status"], "queued");
        assert_eq!(first["platform"], "generic");
        let again = app.post_capture(&url).await;
        assert_eq!(again.status(), 200);
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["id"], first["id"]);
        // Ten identical submissions at once still make one item.
        let other = app.server.add("/race.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let results = futures_util::future::join_all((0..10).map(|_| app.capture(&other))).await;
        let ids: std::collections::HashSet<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 1);
        assert_eq!(app.item_count().await, 2);
    }
}
