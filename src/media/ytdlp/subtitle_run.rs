//! Subtitles: a second, short yt-dlp run that reads back the info JSON the download printed
//! (`--load-info-json`: no page is fetched again) and writes only subtitles, into `subs/`.
//!
//! Why a run of its own: yt-dlp downloads a subtitle with whatever its URL's scheme calls for
//! (`rtmp://` by rtmpdump, `rtsp://` by mpv, which connect directly, past the egress proxy),
//! and it picks the author's subtitles and automatic captions from one pool of languages, so
//! "every subtitle the author wrote" would also mean every machine translation a platform
//! offers (YouTube lists a hundred, and they draw its rate limits). Here the info JSON is cut
//! down first: only the author's tracks and the wanted automatic captions, each in a
//! well-formed language and only over http(s) in WebVTT or SRT. Best effort: whatever
//! happens here is logged and never fails the capture.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::DownloadRequest;
use crate::domain::subtitle_track::{AutoLang, MAX_TRACKS, SubtitleLang};
use crate::domain::subtitles::MAX_BYTES;
use crate::media::process::Tool;

/// Where subtitles land inside the work directory: a folder of their own, so the video stays
/// the one `{stem}.*` file of the directory (`output.rs`).
pub const SUBTITLE_DIR: &str = "subs";

/// Where automatic captions are moved after the run, inside [`SUBTITLE_DIR`].
pub const AUTO_DIR: &str = "auto";

/// Most automatic caption tracks fetched for one video.
const MAX_CAPTIONS: usize = 4;

/// Longest the run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the subtitle folder is measured against its budget.
const BUDGET_POLL: Duration = Duration::from_millis(100);

/// What the run fetches: the info JSON to read back, with only the chosen tracks in it.
#[derive(Debug, Clone)]
pub struct SubtitlePlan {
    info: String,
    /// The automatic captions among them.
    auto: BTreeSet<SubtitleLang>,
}

/// The tracks of `info_json` worth fetching: the author's (at most [`MAX_TRACKS`]) and the
/// automatic captions in a `wanted` language the author did not cover; `None` when there are
/// none (or the JSON is not an object).
pub fn plan(info_json: &str, wanted: &[AutoLang]) -> Option<SubtitlePlan> {
    let Ok(Value::Object(mut info)) = serde_json::from_str::<Value>(info_json) else {
        return None;
    };
    let mut authored = safe_tracks(info.get("subtitles"));
    authored.truncate(MAX_TRACKS);
    let offered = safe_tracks(info.get("automatic_captions"));
    let mut auto: Vec<(SubtitleLang, Value)> = Vec::new();
    for want in wanted {
        for (lang, formats) in &offered {
            let base = lang.as_str().strip_suffix("-orig").unwrap_or(lang.as_str());
            let covered = authored.iter().any(|(a, _)| {
                a.as_str().eq_ignore_ascii_case(lang.as_str())
                    || a.as_str().eq_ignore_ascii_case(base)
            });
            if want.matches(lang.as_str()) && !covered && !auto.iter().any(|(l, _)| l == lang) {
                auto.push((lang.clone(), formats.clone()));
            }
        }
    }
    auto.truncate(MAX_CAPTIONS);
    if authored.is_empty() && auto.is_empty() {
        return None;
    }
    let as_map = |tracks: &[(SubtitleLang, Value)]| -> Map<String, Value> {
        tracks
            .iter()
            .map(|(lang, formats)| (lang.to_string(), formats.clone()))
            .collect()
    };
    info.insert("subtitles".into(), Value::Object(as_map(&authored)));
    info.insert("automatic_captions".into(), Value::Object(as_map(&auto)));
    info.remove("requested_subtitles");
    // Read back as a video, never as a link to extract again.
    info.insert("_type".into(), Value::String("video".into()));
    Some(SubtitlePlan {
        info: Value::Object(info).to_string(),
        auto: auto.into_iter().map(|(lang, _)| lang).collect(),
    })
}

/// The tracks of one `subtitles`-shaped map with a well-formed language and at least one
/// format yt-dlp fetches itself, through the proxy: http(s), WebVTT or SRT.
fn safe_tracks(map: Option<&Value>) -> Vec<(SubtitleLang, Value)> {
    let Some(Value::Object(map)) = map else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(code, formats)| {
            let lang = SubtitleLang::parse(code)?;
            let formats: Vec<Value> = formats
                .as_array()?
                .iter()
                .filter(|f| fetched_through_the_proxy(f))
                .cloned()
                .collect();
            (!formats.is_empty()).then_some((lang, Value::Array(formats)))
        })
        .collect()
}

fn fetched_through_the_proxy(format: &Value) -> bool {
    let text = |key: &str| format.get(key).and_then(Value::as_str);
    let url_ok = text("url").is_some_and(|url| {
        let url = url.to_ascii_lowercase();
        url.starts_with("https://") || url.starts_with("http://")
    });
    let protocol_ok = text("protocol").is_none_or(|p| matches!(p, "http" | "https"));
    let ext_ok = text("ext").is_some_and(|ext| matches!(ext, "vtt" | "srt"));
    url_ok && protocol_ok && ext_ok && format.get("data").is_none()
}

/// The run's fixed argument list: every option a literal of ours or a path we chose.
pub fn argv(req: &DownloadRequest, info_file: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--ignore-config",
        "--no-plugin-dirs",
        "--no-cache-dir",
        "--no-playlist",
        "--skip-download",
        "--no-write-thumbnail",
        "--no-write-info-json",
        "--write-subs",
        "--write-auto-subs",
        "--sub-langs",
        "all",
        "--sub-format",
        "vtt/srt",
        "--hls-prefer-native",
        "--retries",
        "3",
        // One track that fails is a warning, not the end of the others.
        "--ignore-errors",
        "--color",
        "no_color",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.extend(super::argv::job_options(req));
    args.push("--output".into());
    args.push(format!("subtitle:{SUBTITLE_DIR}/{}.%(ext)s", req.file_stem).into());
    args.push("--load-info-json".into());
    args.push(info_file.as_os_str().to_owned());
    args
}

/// Runs the plan under its own budget (bytes in `subs/`) and deadline, then moves the
/// automatic captions into `subs/auto/`. Logs and returns on any failure.
pub async fn fetch(req: &DownloadRequest, plan: &SubtitlePlan) {
    let info_file = req.work_dir.join("subtitles.info.json");
    if let Err(e) = tokio::fs::write(&info_file, &plan.info).await {
        tracing::warn!(error = %e, "cannot write the info JSON for subtitles");
        return;
    }
    let timeout = RUN_TIMEOUT.min(req.timeout);
    let tool = Tool::new(&req.ytdlp, timeout)
        .args(argv(req, &info_file))
        .in_dir(&req.work_dir);
    match tool.spawn() {
        Ok(mut running) => {
            let subs = req.work_dir.join(SUBTITLE_DIR);
            let budget = (MAX_TRACKS + MAX_CAPTIONS) as u64 * (MAX_BYTES as u64 + 1);
            let deadline = Instant::now() + timeout;
            let ended = loop {
                tokio::select! {
                    status = running.child.wait() => break status.is_ok(),
                    _ = tokio::time::sleep(BUDGET_POLL) => {
                        if super::run::dir_bytes(&subs).await > budget || Instant::now() > deadline {
                            tracing::warn!("the subtitle run went over its budget or deadline; stopped");
                            running.terminate().await;
                            break false;
                        }
                    }
                }
            };
            if !ended {
                tracing::warn!("subtitles were not all fetched");
            }
        }
        Err(e) => tracing::warn!(error = %e, "subtitles were not fetched"),
    }
    let _ = tokio::fs::remove_file(&info_file).await;
    move_auto(req, plan).await;
}

/// Automatic captions go to `subs/auto/`, so processing can tell them from the author's.
async fn move_auto(req: &DownloadRequest, plan: &SubtitlePlan) {
    if plan.auto.is_empty() {
        return;
    }
    let subs = req.work_dir.join(SUBTITLE_DIR);
    let auto = subs.join(AUTO_DIR);
    if tokio::fs::create_dir_all(&auto).await.is_err() {
        return;
    }
    for lang in &plan.auto {
        for ext in ["vtt", "srt"] {
            let name = format!("{}.{lang}.{ext}", req.file_stem);
            let _ = tokio::fs::rename(subs.join(&name), auto.join(&name)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(subtitles: Value, auto: Value) -> String {
        serde_json::json!({"id": "x", "title": "t", "subtitles": subtitles, "automatic_captions": auto}).to_string()
    }

    fn vtt(url: &str) -> Value {
        serde_json::json!([{"ext": "vtt", "url": url}])
    }

    #[test]
    fn only_safe_tracks_and_wanted_captions_the_author_did_not_cover_are_kept() {
        let want = [
            AutoLang::parse("en").unwrap(),
            AutoLang::parse("*-orig").unwrap(),
        ];
        let authored = serde_json::json!({
            "fr": vtt("https://s.example/fr.vtt"),
            "../x": vtt("https://s.example/x.vtt"),
            "de": [{"ext": "vtt", "url": "rtmp://10.0.0.5/de"}],
            "es": [{"ext": "ttml", "url": "https://s.example/es.ttml"}],
            "it": [{"ext": "vtt", "url": "https://s.example/it.m3u8", "protocol": "m3u8_native"}],
            "live_chat": vtt("https://s.example/chat"),
        });
        let auto = serde_json::json!({
            "en": vtt("https://s.example/en.vtt"),
            "fr": vtt("https://s.example/auto-fr.vtt"),
            "fr-orig": vtt("https://s.example/fr-orig.vtt"),
            "de-orig": vtt("https://s.example/de-orig.vtt"),
            "ja": vtt("https://s.example/ja.vtt"),
        });
        let plan = plan(&info(authored, auto), &want).unwrap();
        let kept: Value = serde_json::from_str(&plan.info).unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&kept["subtitles"]), ["fr"]);
        assert_eq!(keys(&kept["automatic_captions"]), ["de-orig", "en"]);
        assert_eq!(kept["_type"], "video");
        let auto: Vec<&str> = plan.auto.iter().map(SubtitleLang::as_str).collect();
        assert_eq!(auto, ["de-orig", "en"]);
        assert!(super::plan(&info(Value::Null, Value::Null), &want).is_none());
        assert!(super::plan("not json", &want).is_none());
        assert!(
            super::plan(
                &info(
                    serde_json::json!({}),
                    serde_json::json!({"ja": vtt("https://s/ja")})
                ),
                &want
            )
            .is_none()
        );
    }
}
