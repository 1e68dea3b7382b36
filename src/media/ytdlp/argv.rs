//! The fixed argument list yt-dlp runs with (THREATS SUB-01/02).
//!
//! Every option is a literal of ours; the request contributes only paths and numbers we chose
//! and, after `--`, the URL. This file must never gain an option whose value comes from a
//! user, a source or a settings string that could carry a yt-dlp option (`--exec`,
//! `--netrc-cmd`, an external downloader, browser cookies). The `PRSNL-*` templates here are
//! the prefixes `lines.rs` parses.

use std::ffi::OsString;

use super::DownloadRequest;

/// The argument list: fixed options, then `--`, then the URL. Nothing else, ever.
pub fn argv(req: &DownloadRequest) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--ignore-config",
        "--no-plugin-dirs",
        "--no-playlist",
        "--no-simulate",
        "--no-cache-dir",
        "--no-mtime",
        "--no-write-info-json",
        "--no-write-thumbnail",
        "--color",
        "no_color",
        "--newline",
        "--progress",
        "--progress-template",
        "download:PRSNL-PROGRESS %(progress.downloaded_bytes)s %(progress.total_bytes)s %(progress.total_bytes_estimate)s",
        "--print",
        "video:PRSNL-INFO %()j",
        "--print",
        "after_move:PRSNL-FILE %(filepath)s",
        // Only formats fetched by yt-dlp's own HTTP stack, which goes through the egress
        // proxy: plain HTTP(S), HLS (native, forced below) and DASH fragments. Anything else
        // (rtmp, rtsp, mms, ftp, …) would be handed to ffmpeg or rtmpdump, which connect
        // directly to whatever the page names.
        "--format",
        PROXIED_FORMATS,
        "--merge-output-format",
        "mp4/mkv",
        "--hls-prefer-native",
        "--retries",
        "3",
        "--fragment-retries",
        "3",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    // Prefer what browsers play without re-encoding, no taller than the setting. The height
    // is a number of ours, never text from a settings string.
    args.push("--format-sort".into());
    args.push(format_sort(req.max_height).into());
    args.push("--ffmpeg-location".into());
    args.push(req.ffmpeg.clone().into_os_string());
    args.extend(job_options(req));
    args.push("--".into());
    args.push(req.url.as_str().into());
    args
}

/// What every run of one job shares (the download and its subtitle run): the socket timeout,
/// the job's own directory and file name, the egress proxy and the cookies' copy.
pub(super) fn job_options(req: &DownloadRequest) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--socket-timeout".into(),
        req.socket_timeout_secs.to_string().into(),
    ];
    for kind in ["home:", "temp:"] {
        let mut path = OsString::from(kind);
        path.push(&req.work_dir);
        args.push("--paths".into());
        args.push(path);
    }
    args.push("--output".into());
    args.push(format!("{}.%(ext)s", req.file_stem).into());
    if let Some(proxy) = &req.proxy {
        args.push("--proxy".into());
        args.push(proxy.into());
    }
    if let Some(cookies) = &req.cookies {
        args.push("--cookies".into());
        args.push(cookies.clone().into_os_string());
    }
    args
}

/// `bv*+ba/b`, yt-dlp's default choice, restricted to the protocols it fetches itself.
const PROXIED_FORMATS: &str = "bv*[protocol~='^(https?|m3u8(_native)?|http_dash_segments(_generator)?)$']\
+ba[protocol~='^(https?|m3u8(_native)?|http_dash_segments(_generator)?)$']\
/b[protocol~='^(https?|m3u8(_native)?|http_dash_segments(_generator)?)$']";

fn format_sort(max_height: Option<u32>) -> String {
    match max_height {
        Some(height) => format!("res:{height},vcodec:h264,acodec:aac"),
        None => "vcodec:h264,acodec:aac".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::CaptureUrl;

    fn request() -> DownloadRequest {
        DownloadRequest {
            ytdlp: "yt-dlp".into(),
            ffmpeg: "/usr/bin/ffmpeg".into(),
            url: CaptureUrl::parse("https://example.com/v.mp4").unwrap(),
            work_dir: "/media/temp/processing/j1-1".into(),
            file_stem: "j1".into(),
            max_bytes: 1 << 20,
            max_duration_secs: 600,
            socket_timeout_secs: 30,
            timeout: Duration::from_secs(60),
            proxy: Some("http://u:p@127.0.0.1:9999".into()),
            cookies: Some("/media/temp/processing/j1-1/cookies.txt".into()),
            max_height: Some(1080),
            subtitles: true,
            auto_captions: Vec::new(),
        }
    }

    #[test]
    fn the_height_cap_is_the_setting_and_none_means_the_tallest() {
        let sort = |request: &DownloadRequest| {
            let args = argv(request);
            let at = args.iter().position(|a| a == "--format-sort").unwrap();
            args[at + 1].clone().into_string().unwrap()
        };
        assert_eq!(sort(&request()), "res:1080,vcodec:h264,acodec:aac");
        let mut taller = request();
        taller.max_height = Some(2160);
        assert_eq!(sort(&taller), "res:2160,vcodec:h264,acodec:aac");
        taller.max_height = None;
        assert_eq!(sort(&taller), "vcodec:h264,acodec:aac");
    }

    #[test]
    fn argv_is_the_fixed_list_then_the_url_after_a_double_dash() {
        let args: Vec<String> = argv(&request())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let n = args.len();
        assert_eq!(args[n - 2..], ["--", "https://example.com/v.mp4"]);
        for required in ["--ignore-config", "--no-plugin-dirs", "--no-playlist"] {
            assert!(args.contains(&required.to_string()), "{required}");
        }
        for forbidden in [
            "--exec",
            "--netrc-cmd",
            "--external-downloader",
            "--downloader",
            "--cookies-from-browser",
        ] {
            assert!(
                !args.iter().any(|a| a.starts_with(forbidden)),
                "{forbidden}"
            );
        }
        let out = args.iter().position(|a| a == "--output").unwrap();
        assert_eq!(args[out + 1], "j1.%(ext)s");
        // Subtitles come from a run of their own (`subtitle_run`), never from this one.
        assert!(!args.iter().any(|a| a.contains("sub")), "{args:?}");
        assert!(
            args.windows(2)
                .any(|w| w == ["--paths", "home:/media/temp/processing/j1-1"])
        );
        assert!(
            args.windows(2)
                .any(|w| w == ["--proxy", "http://u:p@127.0.0.1:9999"])
        );
        // Only one element is not a literal of ours: the URL, placed after `--`.
        assert_eq!(args.iter().filter(|a| a.contains("example.com")).count(), 1);
    }
}
