//! Automatic captions: a second, short yt-dlp run that reads back the info JSON the download
//! printed (`--load-info-json`: no page is fetched again) and writes only the captions in the
//! wanted languages, into `subs/auto/`.
//!
//! Why not in the download's own run: yt-dlp picks subtitles and automatic captions from one
//! pool of languages, so asking for "every subtitle the author wrote" there would also fetch
//! every machine translation a platform offers (YouTube lists a hundred, and they draw its
//! rate limits). Like the author's subtitles, captions are best effort: whatever happens here
//! is logged and never fails the capture.

use std::ffi::OsString;
use std::time::Duration;

use super::DownloadRequest;
use super::lines::VideoInfo;
use crate::domain::subtitle_track::{AutoLang, SubtitleLang};
use crate::media::process::Tool;

/// Where automatic captions land, inside the download's subtitle folder.
pub const AUTO_DIR: &str = "auto";

/// Most caption tracks fetched for one video.
const MAX_CAPTIONS: usize = 4;

/// Longest a caption run may take.
const CAPTIONS_TIMEOUT: Duration = Duration::from_secs(120);

/// The automatic captions to fetch: those on offer in a wanted language (in the order of
/// `wanted`) that the author's own subtitles do not already cover.
pub fn wanted(info: &VideoInfo, wanted: &[AutoLang]) -> Vec<SubtitleLang> {
    let mut chosen: Vec<SubtitleLang> = Vec::new();
    for want in wanted {
        for code in &info.automatic_captions {
            let Some(lang) = SubtitleLang::parse(code) else {
                continue;
            };
            let authored = info
                .subtitles
                .iter()
                .any(|s| s.eq_ignore_ascii_case(code) || s.eq_ignore_ascii_case(base(code)));
            if want.matches(code) && !authored && !chosen.contains(&lang) {
                chosen.push(lang);
            }
        }
    }
    chosen.truncate(MAX_CAPTIONS);
    chosen
}

/// `de` of `de-orig`: the author's German subtitles make German captions unnecessary.
fn base(code: &str) -> &str {
    code.strip_suffix("-orig").unwrap_or(code)
}

/// The caption run's fixed argument list: every option a literal of ours or a path we chose;
/// the languages are checked codes (letters, digits, `-`), literal as yt-dlp's regexes.
pub fn argv(
    req: &DownloadRequest,
    info_file: &std::path::Path,
    langs: &[SubtitleLang],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--ignore-config",
        "--no-plugin-dirs",
        "--no-cache-dir",
        "--skip-download",
        "--no-write-subs",
        "--write-auto-subs",
        "--sub-format",
        "vtt/srt/best",
        "--ignore-errors",
        "--color",
        "no_color",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push("--sub-langs".into());
    args.push(
        langs
            .iter()
            .map(SubtitleLang::as_str)
            .collect::<Vec<_>>()
            .join(",")
            .into(),
    );
    args.push("--socket-timeout".into());
    args.push(req.socket_timeout_secs.to_string().into());
    for kind in ["home:", "temp:"] {
        let mut path = OsString::from(kind);
        path.push(&req.work_dir);
        args.push("--paths".into());
        args.push(path);
    }
    args.push("--output".into());
    args.push(format!("{}.%(ext)s", req.file_stem).into());
    args.push("--output".into());
    args.push(
        format!(
            "subtitle:{}/{AUTO_DIR}/{}.%(ext)s",
            super::SUBTITLE_DIR,
            req.file_stem
        )
        .into(),
    );
    if let Some(proxy) = &req.proxy {
        args.push("--proxy".into());
        args.push(proxy.into());
    }
    args.push("--load-info-json".into());
    args.push(info_file.as_os_str().to_owned());
    args
}

/// Fetches the captions; logs and returns on any failure.
pub async fn fetch(req: &DownloadRequest, info_json: &str, langs: &[SubtitleLang]) {
    let info_file = req.work_dir.join("captions.info.json");
    if let Err(e) = tokio::fs::write(&info_file, info_json).await {
        tracing::warn!(error = %e, "cannot write the info JSON for automatic captions");
        return;
    }
    let tool = Tool::new(&req.ytdlp, CAPTIONS_TIMEOUT.min(req.timeout))
        .args(argv(req, &info_file, langs))
        .in_dir(&req.work_dir);
    match tool.run().await {
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "automatic captions were not fetched"),
    }
    let _ = tokio::fs::remove_file(&info_file).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(subtitles: &[&str], auto: &[&str]) -> VideoInfo {
        VideoInfo {
            subtitles: subtitles.iter().map(|s| s.to_string()).collect(),
            automatic_captions: auto.iter().map(|s| s.to_string()).collect(),
            ..VideoInfo::default()
        }
    }

    fn codes(langs: Vec<SubtitleLang>) -> Vec<String> {
        langs.into_iter().map(String::from).collect()
    }

    #[test]
    fn only_wanted_languages_the_author_did_not_cover_are_fetched() {
        let want = [
            AutoLang::parse("en").unwrap(),
            AutoLang::parse("*-orig").unwrap(),
        ];
        let offered = ["af", "de", "de-orig", "en", "fr", "zh-Hans", "../x-orig"];
        assert_eq!(
            codes(wanted(&info(&[], &offered), &want)),
            ["en", "de-orig"]
        );
        assert_eq!(codes(wanted(&info(&["en"], &offered), &want)), ["de-orig"]);
        assert_eq!(
            codes(wanted(&info(&["en", "de"], &offered), &want)),
            Vec::<String>::new()
        );
        assert!(wanted(&info(&[], &offered), &[]).is_empty());
        assert!(wanted(&info(&[], &[]), &want).is_empty());
    }
}
