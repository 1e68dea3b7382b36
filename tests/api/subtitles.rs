//! Subtitles kept with a video: the author's tracks fetched by the real yt-dlp from a page that
//! offers them (WebVTT and SRT), a file's own text subtitle stream, each rewritten as clean
//! WebVTT, listed in the metadata, served with ranges and validators, counted, and removed with
//! the video. A track that fails or carries a hostile language code never fails the capture.

use std::process::Command;
use std::time::Duration;

use crate::fixture_server::Route;
use crate::helpers::{on_both_backends, spawn_app, wait_for};

const ENGLISH: &str = "WEBVTT\n\nNOTE made by hand\n\n00:00:00.000 --> 00:00:01.500 align:start\n\
Hello <b>world</b> &amp; <script>alert(1)</script>\u{202E}\n\n00:00:01.500 --> 00:00:03.000\n\
the word zanzibar is spoken here\n";
const GERMAN: &str = "\u{feff}1\r\n00:00:00,000 --> 00:00:02,000\r\nGuten <i>Tag</i>\r\n\r\n";

/// A page with an HTML5 video and four tracks: two good ones, one whose language code would
/// climb out of the work directory, one that answers 404.
fn page() -> &'static str {
    "<html><head><title>Subtitled talk</title></head><body><video controls>\
     <source src=\"/media/talk.mp4\" type=\"video/mp4\">\
     <track kind=\"subtitles\" srclang=\"en\" src=\"/subs/en.vtt\">\
     <track kind=\"captions\" srclang=\"de\" src=\"/subs/de.srt\">\
     <track kind=\"subtitles\" srclang=\"../../evil\" src=\"/subs/en.vtt\">\
     <track kind=\"subtitles\" srclang=\"fr\" src=\"/subs/missing.vtt\">\
     </video></body></html>"
}

on_both_backends! {
    async fn a_pages_subtitles_are_kept_served_counted_and_removed(backend: Backend) {
        let app = spawn_app(backend).await;
        app.server.add("/media/talk.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        app.server.add("/subs/en.vtt", Route::bytes(ENGLISH, "text/vtt"));
        app.server.add("/subs/de.srt", Route::bytes(GERMAN, "application/x-subrip"));
        app.server.add("/subs/missing.vtt", Route::status(404));
        let page_url = app.server.add("/watch/subtitled", Route::html(page()));
        let item = app.capture_and_wait(&page_url).await;
        assert_eq!(item["status"], "completed", "a failing track never fails the capture: {item}");
        let id = item["id"].as_str().unwrap();
        let tracks = item["metadata"]["subtitles"].as_array().expect("subtitles listed").clone();
        let langs: Vec<&str> = tracks.iter().map(|t| t["lang"].as_str().unwrap()).collect();
        assert_eq!(langs, ["de", "en"], "the hostile code and the missing track are left out: {tracks:?}");
        assert_eq!(tracks[1]["url"], format!("/api/videos/{id}/subtitles/en"));
        assert_eq!((tracks[1]["cues"].as_u64(), tracks[1]["auto"].as_bool()), (Some(2), Some(false)));

        let en = app.client.get(app.url(&format!("/api/videos/{id}/subtitles/en"))).send().await.unwrap();
        assert_eq!(en.status(), 200);
        assert_eq!(en.headers()["content-type"], "text/vtt; charset=utf-8");
        let etag = en.headers()["etag"].clone();
        let body = en.text().await.unwrap();
        assert_eq!(
            body,
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello world &amp; alert(1)\n\n\
             00:00:01.500 --> 00:00:03.000\nthe word zanzibar is spoken here\n\n",
            "markup, settings, notes and bidi controls are gone; the text is escaped"
        );
        assert_eq!(tracks[1]["size_bytes"].as_u64(), Some(body.len() as u64));
        let de = app.client.get(app.url(&format!("/api/videos/{id}/subtitles/de"))).send().await.unwrap();
        assert_eq!(de.text().await.unwrap(), "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nGuten Tag\n\n", "SRT becomes WebVTT");

        let part = app.client.get(app.url(&format!("/api/videos/{id}/subtitles/en")))
            .header("range", "bytes=0-5").send().await.unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.text().await.unwrap(), "WEBVTT");
        let again = app.client.get(app.url(&format!("/api/videos/{id}/subtitles/en")))
            .header("if-none-match", etag).send().await.unwrap();
        assert_eq!(again.status(), 304);
        for missing in ["fr", "evil", "..%2F..%2Fevil", "EN"] {
            let answer = app.client.get(app.url(&format!("/api/videos/{id}/subtitles/{missing}"))).send().await.unwrap();
            assert_eq!(answer.status(), 404, "{missing}");
        }

        let stored = app.files_under("subtitles");
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(stored.iter().all(|p| p.starts_with("subtitles/") && p.contains(id) && p.ends_with(".vtt")), "{stored:?}");
        assert!(app.files_under("").iter().all(|p| !p.contains("evil")));
        let stats = app.get_json("/api/storage/stats").await;
        assert_eq!(stats["subtitles"]["files"], 2, "{stats}");

        // An export puts each track beside the video, named as media servers look for them.
        let outside = tempfile::tempdir().unwrap();
        let dir = outside.path().join("export");
        let run = crate::export::export(&app.settings, &[dir.to_str().unwrap()], &[]).await;
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let video = crate::export::tree(&dir).into_keys().find(|p| p.ends_with(".mp4")).expect("the video exported");
        let stem = video.trim_end_matches(".mp4");
        for lang in ["de", "en"] {
            let exported = std::fs::read(dir.join(format!("{stem}.{lang}.vtt"))).expect("a subtitle beside the video");
            let served = app.client.get(app.url(&format!("/api/videos/{id}/subtitles/{lang}"))).send().await.unwrap();
            assert_eq!(exported, served.bytes().await.unwrap(), "{lang}");
        }
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{stem}.info.json"))).unwrap()).unwrap();
        assert_eq!(info["files"]["subtitles"]["en"], format!("{}.en.vtt", stem.rsplit('/').next().unwrap()), "{info}");
        let deleted = app.client.delete(app.url(&format!("/api/videos/{id}"))).send().await.unwrap();
        assert!(deleted.status().is_success());
        let gone = wait_for(Duration::from_secs(10), || async { app.files_under("subtitles").is_empty() }).await;
        assert!(gone, "the sidecars go with the video: {:?}", app.files_under("subtitles"));
    }
}

on_both_backends! {
    async fn a_files_own_text_subtitles_are_extracted(backend: Backend) {
        let app = spawn_app(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let srt = dir.path().join("fr.srt");
        std::fs::write(&srt, "1\n00:00:00,500 --> 00:00:02,000\nBonjour <i>tout le monde</i>\n\n").unwrap();
        let with_subs = dir.path().join("with_subs.mkv");
        let status = Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-i"])
            .arg(app.fixtures.path("h264_aac_faststart.mp4"))
            .arg("-i").arg(&srt)
            .args(["-map", "0", "-map", "1", "-c", "copy", "-c:s", "srt", "-metadata:s:s:0", "language=fra"])
            .arg(&with_subs)
            .status()
            .unwrap();
        assert!(status.success());
        let url = app.server.add("/files/with_subs.mkv", Route::file(&with_subs, "video/x-matroska"));
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed", "{item}");
        let id = item["id"].as_str().unwrap();
        assert_eq!(item["metadata"]["subtitles"][0]["lang"], "fra", "{item}");
        let vtt = app.client.get(app.url(&format!("/api/videos/{id}/subtitles/fra"))).send().await.unwrap();
        // Times are on the file's own timeline, which the muxer above started a few
        // milliseconds late (the MP4's audio priming), as the stored MP4's is.
        let vtt = vtt.text().await.unwrap();
        let lines: Vec<&str> = vtt.lines().collect();
        assert_eq!((lines[0], lines[3], lines.len()), ("WEBVTT", "Bonjour tout le monde", 5), "{vtt}");
        assert!(lines[2].starts_with("00:00:00.5") && lines[2].contains(" --> 00:00:02.0"), "{vtt}");
        // The stored MP4 carries only the picture and the sound: a browser plays it as it is.
        let stream = app.media_path(&format!("videos/{}", item["metadata"]["storage_path"].as_str().unwrap().trim_start_matches("videos/")));
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0"])
            .arg(&stream)
            .output()
            .unwrap();
        let kinds = String::from_utf8_lossy(&probe.stdout).to_string();
        assert!(!kinds.contains("subtitle"), "{kinds}");
    }
}

/// Subtitles come from a second yt-dlp run that reads back the download's own info JSON, cut
/// down to safe tracks. No extractor offers automatic captions from a loopback page, so the
/// test takes the info JSON the real yt-dlp prints for one and adds what a platform would list:
/// captions in many languages, and tracks that must never be fetched.
#[tokio::test]
async fn automatic_captions_are_fetched_only_in_the_wanted_languages() {
    use prsnl::domain::subtitle_track::AutoLang;
    use prsnl::media::ytdlp::{DownloadRequest, subtitle_run};

    let server = crate::fixture_server::FixtureServer::start().await;
    let fixtures = crate::fixtures::fixtures();
    server.add(
        "/media/talk.mp4",
        Route::file(fixtures.path("h264_aac_faststart.mp4"), "video/mp4"),
    );
    server.add("/auto/en.vtt", Route::bytes(ENGLISH, "text/vtt"));
    server.add("/auto/de.srt", Route::bytes(GERMAN, "application/x-subrip"));
    let page_url = server.add("/watch/plain", Route::html(
        "<html><head><title>Plain</title></head><body><video src=\"/media/talk.mp4\"></video></body></html>",
    ));
    // Asynchronously: the fixture server answers on this test's own runtime.
    let printed = tokio::process::Command::new("yt-dlp")
        .args([
            "--ignore-config",
            "--no-plugin-dirs",
            "--no-cache-dir",
            "--skip-download",
            "--print",
            "video:%()j",
            "--",
        ])
        .arg(&page_url)
        .output()
        .await
        .unwrap();
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let mut info: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    let offered =
        |path: &str, ext: &str| serde_json::json!([{"ext": ext, "url": server.url(path)}]);
    info["automatic_captions"] = serde_json::json!({
        "en": offered("/auto/en.vtt", "vtt"),
        "de-orig": offered("/auto/de.srt", "srt"),
        "fr": offered("/auto/fr.vtt", "vtt"),
    });
    // An author's track in a language code that would climb out of the folder, and one in a
    // format yt-dlp would hand to another program (past the proxy): neither is fetched.
    info["subtitles"] = serde_json::json!({
        "../../escape": offered("/auto/escape.vtt", "vtt"),
        "es": [{"ext": "vtt", "url": server.url("/auto/es.vtt").replace("http://", "rtmp://")}],
    });

    let work = tempfile::tempdir().unwrap();
    let wanted = vec![
        AutoLang::parse("en").unwrap(),
        AutoLang::parse("*-orig").unwrap(),
    ];
    let request = DownloadRequest {
        ytdlp: "yt-dlp".into(),
        ffmpeg: "ffmpeg".into(),
        url: prsnl::domain::CaptureUrl::parse(&page_url).unwrap(),
        work_dir: work.path().to_path_buf(),
        file_stem: "j1".into(),
        max_bytes: 1 << 30,
        max_duration_secs: 600,
        socket_timeout_secs: 10,
        timeout: Duration::from_secs(60),
        proxy: None,
        cookies: None,
        max_height: None,
        subtitles: true,
        auto_captions: wanted.clone(),
    };
    let plan = subtitle_run::plan(&info.to_string(), &wanted).expect("captions to fetch");
    subtitle_run::fetch(&request, &plan).await;
    assert_eq!(
        server.hits("/auto/fr.vtt"),
        0,
        "a language nobody asked for is never fetched"
    );
    assert_eq!(server.hits("/auto/escape.vtt"), 0);
    let listed = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(work.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listed("subs/auto"), ["j1.de-orig.srt", "j1.en.vtt"]);
    assert_eq!(listed("subs"), ["auto"], "nothing else was written");
    assert!(
        !work.path().join("subtitles.info.json").exists(),
        "the info JSON is removed"
    );
}
