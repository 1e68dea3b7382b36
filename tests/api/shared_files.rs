//! One video captured by two people: two items, one download, one stored file (and one of each
//! rendition), removed only when the last item that names it goes.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixture_server::Route;
use crate::helpers::{TestApp, on_both_backends, spawn_app, wait_for};
use crate::people::{As, capture_done, json_of, listed, people, send, status};

async fn streamed(app: &TestApp, who: &As, path: &str) -> Vec<u8> {
    let response = send(app, who, Method::GET, path, None).await;
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.unwrap().to_vec()
}

/// Asks for a rendition and waits until the item lists it.
async fn rendition_made(app: &TestApp, who: &As, id: &str, quality: &str) {
    let transcode = format!("/api/videos/{id}/transcode");
    let (code, body) = json_of(
        app,
        who,
        Method::POST,
        &transcode,
        Some(json!({"quality": quality})),
    )
    .await;
    assert!(code == 202 || code == 200, "{code} {body}");
    let made = wait_for(Duration::from_secs(60), || async {
        let (_, meta) = json_of(
            app,
            who,
            Method::GET,
            &format!("/api/videos/{id}/metadata"),
            None,
        )
        .await;
        meta["renditions"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["quality"] == quality))
    })
    .await;
    assert!(made, "the {quality} rendition of {id} was never made");
}

fn id_of(item: &Value) -> String {
    item["id"].as_str().unwrap().to_string()
}

on_both_backends! {
    async fn one_video_captured_by_two_people_is_fetched_and_stored_once(backend: Backend) {
        let app = spawn_app(backend).await;
        let p = people(&app).await;
        let url = app.server.add("/shared.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));

        let a = capture_done(&app, &p.a, &url).await;
        let fetches = app.server.hits("/shared.mp4");
        let b = capture_done(&app, &p.b, &url).await;
        let (a_id, b_id) = (id_of(&a), id_of(&b));
        assert_ne!(a_id, b_id, "dedup is per owner: B gets an item of their own");
        assert_eq!(app.server.hits("/shared.mp4"), fetches, "B's capture fetched the video again");
        assert_eq!(app.files_under("videos").len(), 1, "{:?}", app.files_under("videos"));
        assert_eq!(app.files_under("thumbnails").len(), 3, "{:?}", app.files_under("thumbnails"));
        assert_eq!(a["metadata"]["sha256"], b["metadata"]["sha256"]);
        // B is not shown A's file path: it names A's item.
        assert!(a["metadata"]["storage_path"].is_string(), "{a}");
        assert!(b["metadata"].get("storage_path").is_none(), "{b}");
        // Stored once, but it counts against each owner's quota.
        let a_usage = json_of(&app, &p.a, Method::GET, "/api/me", None).await.1["usage_bytes"].as_u64().unwrap();
        let b_usage = json_of(&app, &p.b, Method::GET, "/api/me", None).await.1["usage_bytes"].as_u64().unwrap();
        assert!(a_usage > 0);
        assert_eq!(b_usage, a_usage);
        let a_stream = format!("/api/videos/{a_id}/stream");
        let b_stream = format!("/api/videos/{b_id}/stream");
        let original = streamed(&app, &p.a, &a_stream).await;
        assert_eq!(streamed(&app, &p.b, &b_stream).await, original);
        // Sharing a file shares nothing else: each library stays private.
        assert_eq!(status(&app, &p.b, Method::GET, &format!("/api/items/{a_id}"), None).await, 404);
        assert_eq!(status(&app, &p.a, Method::GET, &b_stream, None).await, 404);

        // A rendition one of them had made is the other's at once, not made again.
        rendition_made(&app, &p.a, &a_id, "360p").await;
        let (code, shared) = json_of(&app, &p.b, Method::POST, &format!("/api/videos/{b_id}/transcode"), Some(json!({"quality": "360p"}))).await;
        assert_eq!(code, 200, "B's request was not answered from A's rendition: {shared}");
        assert_eq!(shared["rendition"]["quality"], "360p", "{shared}");
        assert_eq!(app.files_under("videos").len(), 2, "{:?}", app.files_under("videos"));
        let rendition = streamed(&app, &p.a, &format!("{a_stream}?quality=360p")).await;
        assert_eq!(streamed(&app, &p.b, &format!("{b_stream}?quality=360p")).await, rendition);

        // A deletes: B keeps streaming the same bytes.
        assert_eq!(status(&app, &p.a, Method::DELETE, &format!("/api/videos/{a_id}"), None).await, 204);
        assert_eq!(streamed(&app, &p.b, &b_stream).await, original);
        assert_eq!(streamed(&app, &p.b, &format!("{b_stream}?quality=360p")).await, rendition);

        // Submitted at the same moment: the later capture waits for the earlier one's
        // download instead of running its own. (Storage handles A's removal before this
        // capture's commit, so from here on that removal has run.)
        let slow = app.server.add("/together.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4").drip(8 * 1024, Duration::from_millis(20)));
        let (first, second) = tokio::join!(capture_done(&app, &p.a, &slow), capture_done(&app, &p.b, &slow));
        assert_ne!(id_of(&first), id_of(&second));
        assert_eq!(app.server.hits("/together.mp4"), fetches, "both captures fetched the video");
        let (first_stream, second_stream) = (format!("/api/videos/{}/stream", id_of(&first)), format!("/api/videos/{}/stream", id_of(&second)));
        assert_eq!(streamed(&app, &p.a, &first_stream).await, streamed(&app, &p.b, &second_stream).await);
        let (_, mine) = json_of(&app, &p.b, Method::GET, "/api/items", None).await;
        let mut expected = vec![b_id.clone(), id_of(&second)];
        let mut mine = listed(&mine);
        expected.sort();
        mine.sort();
        assert_eq!(mine, expected);
        // The shared video, its rendition, and the new video.
        assert_eq!(app.files_under("videos").len(), 3, "{:?}", app.files_under("videos"));
        assert_eq!(streamed(&app, &p.b, &b_stream).await, original);
        assert_eq!(streamed(&app, &p.b, &format!("{b_stream}?quality=360p")).await, rendition);

        // B deletes: the last item naming the files is gone, and so are they.
        assert_eq!(status(&app, &p.b, Method::DELETE, &format!("/api/videos/{b_id}"), None).await, 204);
        let gone = wait_for(Duration::from_secs(10), || async {
            app.files_under("videos").len() == 1 && app.files_under("thumbnails").len() == 3
        })
        .await;
        assert!(gone, "{:?} {:?}", app.files_under("videos"), app.files_under("thumbnails"));
        // The other pair still shares its one file; both deleted at the same moment, it goes.
        assert_eq!(streamed(&app, &p.a, &first_stream).await, streamed(&app, &p.b, &second_stream).await);
        let (first_path, second_path) = (format!("/api/videos/{}", id_of(&first)), format!("/api/videos/{}", id_of(&second)));
        let (first_delete, second_delete) = tokio::join!(
            status(&app, &p.a, Method::DELETE, &first_path, None),
            status(&app, &p.b, Method::DELETE, &second_path, None),
        );
        assert_eq!((first_delete, second_delete), (204, 204));
        let gone = wait_for(Duration::from_secs(10), || async {
            app.files_under("videos").is_empty() && app.files_under("thumbnails").is_empty()
        })
        .await;
        assert!(gone, "{:?} {:?}", app.files_under("videos"), app.files_under("thumbnails"));
    }
}
