//! The rest of the video API: renditions, delete, storage stats, progress events, listing.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::fixture_server::Route;
use crate::fixtures::{ffprobe, stream};
use crate::helpers::{no_process_mentions, on_both_backends, spawn_app, wait_for};

async fn post_json(app: &crate::helpers::TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn stats(app: &crate::helpers::TestApp) -> Value {
    app.client
        .get(app.url("/api/storage/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

on_both_backends! {
    async fn renditions_are_made_on_request_never_upscaled_and_served(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        let id = item["id"].as_str().unwrap().to_string();
        let transcode = format!("/api/videos/{id}/transcode");

        let (status, body) = post_json(&app, &transcode, serde_json::json!({"quality": "720p"})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("would_upscale")), "{body}");
        let (status, body) = post_json(&app, &transcode, serde_json::json!({"quality": "8k"})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");
        let missing = app.client.get(app.url(&format!("/api/videos/{id}/stream?quality=360p"))).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.json::<Value>().await.unwrap()["error"]["code"], "rendition_not_found");

        let (status, first) = post_json(&app, &transcode, serde_json::json!({"quality": "360p"})).await;
        assert_eq!(status, 202, "{first}");
        let (status, again) = post_json(&app, &transcode, serde_json::json!({"quality": "360p"})).await;
        // Either still queued (the same job) or already made (the existing rendition).
        match status {
            202 => assert_eq!(again["job_id"], first["job_id"]),
            200 => assert_eq!(again["rendition"]["quality"], "360p"),
            other => panic!("unexpected {other}: {again}"),
        }

        let made = wait_for(Duration::from_secs(60), || async {
            let meta: Value = app.client.get(app.url(&format!("/api/videos/{id}/metadata"))).send().await.unwrap().json().await.unwrap();
            meta["renditions"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
        assert!(made, "the rendition was never made");
        let meta: Value = app.client.get(app.url(&format!("/api/videos/{id}/metadata"))).send().await.unwrap().json().await.unwrap();
        let rendition = &meta["renditions"][0];
        assert_eq!(rendition["quality"], "360p");
        assert_eq!((rendition["width"].as_u64(), rendition["height"].as_u64()), (Some(640), Some(360)));
        let served = app.client.get(app.url(rendition["url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(served.status(), 200);
        let served = served.bytes().await.unwrap();
        assert_eq!(served.len() as u64, rendition["size_bytes"].as_u64().unwrap());
        let file = app.media_path(&format!("{}_360p.mp4", item["metadata"]["storage_path"].as_str().unwrap().trim_end_matches(".mp4")));
        assert_eq!(std::fs::read(&file).unwrap(), served.as_ref());
        let probe = ffprobe(&file);
        assert_eq!(stream(&probe, "video").unwrap()["height"], 360);
        assert_eq!(stream(&probe, "video").unwrap()["codec_name"], "h264");
        // The item itself stayed completed throughout, and asking again returns the rendition.
        assert_eq!(app.item(&id).await["status"], "completed");
        let (status, existing) = post_json(&app, &transcode, serde_json::json!({"quality": "360p"})).await;
        assert_eq!((status, existing["status"].as_str()), (200, Some("completed")));
    }
}

on_both_backends! {
    async fn delete_removes_every_file_and_cancels_a_running_transcode(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/long.mp4", Route::file(app.fixtures.path("long_720p.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed");
        let id = item["id"].as_str().unwrap().to_string();
        assert_eq!(stats(&app).await["videos"]["files"], 1);

        let (status, job) = post_json(&app, &format!("/api/videos/{id}/transcode"), serde_json::json!({"quality": "480p"})).await;
        assert_eq!(status, 202);
        let job_id = job["job_id"].as_str().unwrap().to_string();
        // Wait until ffmpeg is transcoding: its arguments name the job's work directory.
        let running = wait_for(Duration::from_secs(30), || async { !no_process_mentions(&job_id) }).await;
        assert!(running, "the transcode never started");

        let deleted = app.client.delete(app.url(&format!("/api/videos/{id}"))).send().await.unwrap();
        assert_eq!(deleted.status(), 204);
        assert!(wait_for(Duration::from_secs(10), || async { no_process_mentions(&job_id) }).await, "ffmpeg survived the delete");
        assert!(wait_for(Duration::from_secs(10), || async { app.files_under("temp").is_empty() }).await, "{:?}", app.files_under("temp"));
        // The files follow the rows a moment later.
        let gone = wait_for(Duration::from_secs(10), || async { app.files_under("videos").is_empty() && app.files_under("thumbnails").is_empty() }).await;
        assert!(gone, "{:?} {:?}", app.files_under("videos"), app.files_under("thumbnails"));

        let again = app.client.delete(app.url(&format!("/api/videos/{id}"))).send().await.unwrap();
        assert_eq!(again.status(), 404);
        assert_eq!(app.client.get(app.url(&format!("/api/items/{id}"))).send().await.unwrap().status(), 404);
        assert_eq!(app.client.get(app.url(&format!("/api/videos/{id}/stream"))).send().await.unwrap().status(), 404);
        let settled = wait_for(Duration::from_secs(10), || async { stats(&app).await["videos"]["files"] == 0 }).await;
        assert!(settled);
        let after = stats(&app).await;
        for kind in ["videos", "thumbnails", "renditions"] {
            assert_eq!(after[kind]["files"], 0, "{kind}: {after}");
            assert_eq!(after[kind]["bytes"], 0, "{kind}: {after}");
        }
    }
}

on_both_backends! {
    async fn storage_stats_follow_what_is_stored(backend: Backend) {
        let app = spawn_app(backend).await;
        let empty = stats(&app).await;
        assert_eq!(empty["videos"]["files"], 0);
        assert!(empty["disk"]["total_bytes"].as_u64().unwrap() > 0);
        assert!(empty["disk"]["free_bytes"].as_u64().unwrap() <= empty["disk"]["total_bytes"].as_u64().unwrap());
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        let video_bytes = item["metadata"]["size_bytes"].as_u64().unwrap();
        let thumb_bytes: u64 = app.files_under("thumbnails").iter().map(|f| std::fs::metadata(app.media_path(f)).unwrap().len()).sum();
        let now = stats(&app).await;
        assert_eq!((now["videos"]["files"].as_u64(), now["videos"]["bytes"].as_u64()), (Some(1), Some(video_bytes)), "{now}");
        assert_eq!((now["thumbnails"]["files"].as_u64(), now["thumbnails"]["bytes"].as_u64()), (Some(3), Some(thumb_bytes)), "{now}");
        assert_eq!(now["renditions"]["files"], 0);
        assert_eq!(now["stored_bytes"].as_u64(), Some(video_bytes + thumb_bytes), "{now}");
        assert_eq!(now["total_bytes"].as_u64().unwrap(), video_bytes + thumb_bytes + now["temp"]["bytes"].as_u64().unwrap());
    }
}

/// Reads a Server-Sent Events stream to its end: (event, data) pairs.
async fn read_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut event, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !event.is_empty() {
                events.push((event, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
    events
}

on_both_backends! {
    async fn progress_events_follow_a_capture_to_its_end(backend: Backend) {
        let app = spawn_app(backend).await;
        // Slow enough that several progress events are seen.
        let url = app.server.add("/slow.mp4", Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4").drip(32 * 1024, Duration::from_millis(100)));
        let item = app.capture(&url).await;
        let id = item["id"].as_str().unwrap().to_string();
        let response = app.client.get(app.url(&format!("/api/items/{id}/events"))).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = tokio::time::timeout(Duration::from_secs(60), read_events(response)).await.expect("the event stream ended");
        let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(names.first(), Some(&"status"), "{names:?}");
        assert_eq!(names.last(), Some(&"done"), "{names:?}");
        let (_, last) = events.last().unwrap();
        assert_eq!(last["status"], "completed");
        assert_eq!(last["id"], id);
        let downloads: Vec<&Value> = events.iter().filter(|(e, d)| e == "progress" && d["stage"] == "download").map(|(_, d)| d).collect();
        assert!(downloads.len() >= 2, "{events:?}");
        assert!(downloads.windows(2).all(|w| w[0]["downloaded_bytes"].as_u64() <= w[1]["downloaded_bytes"].as_u64()));
        let stages: Vec<&str> = events.iter().filter(|(e, _)| e == "progress").filter_map(|(_, d)| d["stage"].as_str()).collect();
        for stage in ["download", "probe", "finalize"] {
            assert!(stages.contains(&stage), "{stage} missing from {stages:?}");
        }

        // A client that arrives after the end gets the final state at once.
        let late = app.client.get(app.url(&format!("/api/items/{id}/events"))).send().await.unwrap();
        let late = tokio::time::timeout(Duration::from_secs(5), read_events(late)).await.expect("a late stream must end at once");
        assert_eq!(late.len(), 1);
        assert_eq!((late[0].0.as_str(), late[0].1["status"].as_str()), ("done", Some("completed")));
        let unknown = app.client.get(app.url(&format!("/api/items/{}/events", uuid::Uuid::now_v7()))).send().await.unwrap();
        assert_eq!(unknown.status(), 404);
    }
}

on_both_backends! {
    async fn listing_pages_stay_stable_while_items_arrive(backend: Backend) {
        let app = spawn_app(backend).await;
        let mut before = Vec::new();
        for i in 0..12 {
            before.push(app.seed_completed_video(format!("video {i}").as_bytes()).await.to_string());
        }
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut page_number = 0;
        loop {
            // New items land between every page.
            app.seed_completed_video(format!("newcomer {page_number}").as_bytes()).await;
            page_number += 1;
            let mut url = app.url("/api/items?limit=5");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = app.client.get(url).send().await.unwrap().json().await.unwrap();
            seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        let unique: std::collections::HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "an item was repeated across pages");
        for id in &before {
            assert!(unique.contains(id), "item {id} was skipped");
        }
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "newest first");
    }
}
