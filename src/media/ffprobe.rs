//! ffprobe: what a file really is, decided by its content.
//!
//! Every call restricts ffprobe to local files and to container formats that cannot name other
//! files (THREATS SUB-06): an HLS playlist or ffconcat script saved as `.mp4` is refused
//! instead of making ffprobe open the local paths it lists. Packets are counted, which costs
//! a demux pass but no decoding and exposes truncated files whose index is intact.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::process::{Tool, ToolError};
use crate::domain::source_meta::{RawSourceMeta, SourceMeta};
use crate::domain::{ErrorCode, JobError, MediaInfo};

/// Demuxers allowed to open stored and downloaded media. None of them can reference another
/// file or URL (unlike hls, concat, ffconcat, image2 patterns, …). `avi`, `flv` and `mpegts`
/// are here because downloads and uploads arrive in them.
pub const FORMAT_WHITELIST: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts";

/// The arguments that go before every input of ffprobe and ffmpeg. (ffmpeg also gets
/// `-nostdin`; ffprobe has no such option, and every tool's stdin is /dev/null anyway.)
pub fn safe_input_args() -> [&'static str; 4] {
    [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        FORMAT_WHITELIST,
    ]
}

/// `file:` in front of a path stops ffmpeg from reading a colon in it as a protocol name.
pub fn file_url(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// Limits checked before anything is decoded (THREATS SUB-07).
#[derive(Debug, Clone, Copy)]
pub struct ProbeLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_duration_secs: u64,
}

/// Most streams a file may declare; real videos have a handful.
const MAX_STREAMS: usize = 32;

/// The facts of a probed file that later steps need.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// ffprobe's demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `matroska,webm`.
    pub format_name: String,
    pub duration_seconds: f64,
    pub bitrate_bps: Option<u64>,
    pub video: VideoStream,
    pub audio: Option<AudioStream>,
    /// The container's own tags (keys lowercased), with the audio stream's language.
    pub tags: std::collections::BTreeMap<String, String>,
    /// Text subtitle streams (the ones that convert to WebVTT), by stream index.
    pub text_subtitles: Vec<EmbeddedSubtitle>,
}

/// A text subtitle stream inside a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSubtitle {
    pub index: u32,
    /// The stream's `language` tag as the file says it (unchecked).
    pub language: Option<String>,
}

/// Subtitle codecs that are text, which ffmpeg converts to WebVTT; picture subtitles (DVD,
/// Blu-ray) are not text and are left alone.
const TEXT_SUBTITLE_CODECS: &[&str] =
    &["subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"];

#[derive(Debug, Clone, PartialEq)]
pub struct VideoStream {
    pub codec: String,
    pub profile: Option<String>,
    pub pix_fmt: Option<String>,
    /// Coded size; [`Probe::display_size`] accounts for rotation.
    pub width: u32,
    pub height: u32,
    pub fps: Option<f64>,
    /// Clockwise rotation from the display matrix, in degrees (0, 90, 180, 270).
    pub rotation: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    pub codec: String,
}

impl Probe {
    /// The picture size as players show it (rotated by the display matrix).
    pub fn display_size(&self) -> (u32, u32) {
        if self.video.rotation % 180 == 0 {
            (self.video.width, self.video.height)
        } else {
            (self.video.height, self.video.width)
        }
    }

    pub fn is_mp4_family(&self) -> bool {
        self.format_name
            .split(',')
            .any(|f| f == "mp4" || f == "mov")
    }

    /// The stored-item view of this probe.
    /// What the file's own tags say about it: artist, date, description, genre, keywords,
    /// language (the tags phones, cameras and tagging tools write).
    pub fn source_meta(&self) -> SourceMeta {
        let tag = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| self.tags.get(*k))
                .map(String::as_str)
        };
        let mut tags: Vec<&str> = Vec::new();
        for key in ["genre", "keywords"] {
            if let Some(value) = self.tags.get(key) {
                tags.extend(value.split([',', ';']).map(str::trim));
            }
        }
        SourceMeta::from_raw(&RawSourceMeta {
            uploader: tag(&["artist", "album_artist", "author", "composer"]),
            upload_date: tag(&["date", "creation_time"]),
            description: tag(&["description", "synopsis", "comment"]),
            tags,
            language: tag(&["language"]),
            ..RawSourceMeta::default()
        })
    }

    pub fn media_info(&self) -> MediaInfo {
        let (width, height) = self.display_size();
        let container = if self.is_mp4_family() {
            "mp4"
        } else {
            self.format_name.split(',').next().unwrap_or("unknown")
        };
        MediaInfo {
            duration_seconds: Some(self.duration_seconds),
            width,
            height,
            video_codec: self.video.codec.clone(),
            audio_codec: self.audio.as_ref().map(|a| a.codec.clone()),
            bitrate_bps: self.bitrate_bps,
            fps: self.video.fps,
            container: container.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<StreamJson>,
    format: Option<FormatJson>,
}

#[derive(Deserialize)]
struct FormatJson {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct StreamJson {
    index: Option<u32>,
    codec_type: Option<String>,
    codec_name: Option<String>,
    profile: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    pix_fmt: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    nb_frames: Option<String>,
    nb_read_packets: Option<String>,
    disposition: Option<Disposition>,
    #[serde(default)]
    side_data_list: Vec<SideData>,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct SideData {
    rotation: Option<f64>,
}

pub(crate) fn invalid(message: impl Into<String>) -> JobError {
    JobError::new(ErrorCode::InvalidMedia, message)
}

/// Turns ffprobe's JSON into a [`Probe`], refusing what is not one sound, bounded video.
pub fn interpret(json: &[u8], limits: &ProbeLimits) -> Result<Probe, JobError> {
    let parsed: ProbeJson = serde_json::from_slice(json)
        .map_err(|e| invalid(format!("ffprobe output could not be read: {e}")))?;
    let format = parsed
        .format
        .ok_or_else(|| invalid("the file has no recognisable container"))?;
    if parsed.streams.len() > MAX_STREAMS {
        return Err(invalid(format!(
            "the file declares {} streams (at most {MAX_STREAMS} are accepted)",
            parsed.streams.len()
        )));
    }
    let is_picture = |s: &StreamJson| s.disposition.as_ref().is_some_and(|d| d.attached_pic == 1);
    let video = parsed
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && !is_picture(s))
        .ok_or_else(|| invalid("the file contains no video stream"))?;
    let audio = parsed
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"));

    let (width, height) = match (video.width, video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(invalid("the video stream has no picture size")),
    };
    if width > limits.max_width || height > limits.max_height {
        return Err(invalid(format!(
            "the video is {width}×{height}, larger than the {}×{} limit",
            limits.max_width, limits.max_height
        )));
    }
    let duration = parse_f64(format.duration.as_deref())
        .or_else(|| parse_f64(video.duration.as_deref()))
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| invalid("the video has no duration"))?;
    if duration > limits.max_duration_secs as f64 {
        return Err(JobError::new(
            ErrorCode::TooLong,
            format!(
                "the video lasts {:.0} s, longer than the {} s limit",
                duration, limits.max_duration_secs
            ),
        ));
    }
    // A container whose index promises more frames than the file holds was cut short.
    if let (Some(promised), Some(present)) = (
        parse_u64(video.nb_frames.as_deref()),
        parse_u64(video.nb_read_packets.as_deref()),
    ) && cut_short(promised, present)
    {
        return Err(invalid(format!(
            "the file is truncated: {present} of {promised} video frames are present"
        )));
    }
    let codec = video
        .codec_name
        .clone()
        .ok_or_else(|| invalid("the video codec is unknown"))?;
    let mut tags: std::collections::BTreeMap<String, String> = format
        .tags
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    if let Some(language) = audio.and_then(|a| a.tags.get("language")) {
        tags.entry("language".into())
            .or_insert_with(|| language.clone());
    }
    let text_subtitles = parsed
        .streams
        .iter()
        .filter(|s| s.codec_type.as_deref() == Some("subtitle"))
        .filter(|s| {
            s.codec_name
                .as_deref()
                .is_some_and(|c| TEXT_SUBTITLE_CODECS.contains(&c))
        })
        .filter_map(|s| {
            Some(EmbeddedSubtitle {
                index: s.index?,
                language: s.tags.get("language").cloned(),
            })
        })
        .collect();
    Ok(Probe {
        tags,
        text_subtitles,
        format_name: format.format_name.unwrap_or_default(),
        duration_seconds: duration,
        bitrate_bps: parse_u64(format.bit_rate.as_deref()),
        video: VideoStream {
            codec,
            profile: video.profile.clone(),
            pix_fmt: video.pix_fmt.clone(),
            width,
            height,
            fps: frame_rate(video.avg_frame_rate.as_deref())
                .or_else(|| frame_rate(video.r_frame_rate.as_deref())),
            rotation: rotation(video),
        },
        audio: audio
            .and_then(|a| a.codec_name.clone())
            .map(|codec| AudioStream { codec }),
    })
}

/// Container indexes are often off by a frame or two (ffmpeg's own AVI muxer counts one frame
/// more than it writes) and players play such files, so a shortfall within that slack is not
/// a truncation. A file cut short lacks far more: the truncated downloads seen keep half.
const INDEX_SLACK_FRAMES: u64 = 2;

fn cut_short(promised: u64, present: u64) -> bool {
    let missing = promised.saturating_sub(present);
    missing > INDEX_SLACK_FRAMES.max(promised / 100)
}

fn parse_f64(s: Option<&str>) -> Option<f64> {
    s?.trim().parse().ok()
}

fn parse_u64(s: Option<&str>) -> Option<u64> {
    s?.trim().parse().ok()
}

/// `30000/1001` → 29.97; `0/0` (unknown) → None.
fn frame_rate(s: Option<&str>) -> Option<f64> {
    let (num, den) = s?.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0.0 && den > 0.0).then(|| ((num / den) * 1000.0).round() / 1000.0)
}

fn rotation(stream: &StreamJson) -> i32 {
    let degrees = stream
        .side_data_list
        .iter()
        .find_map(|d| d.rotation)
        .or_else(|| stream.tags.get("rotate").and_then(|r| r.parse().ok()))
        .unwrap_or(0.0);
    (degrees.round() as i32).rem_euclid(360)
}

/// Runs ffprobe on `path` and interprets the result.
pub async fn probe(
    ffprobe: &Path,
    path: &Path,
    limits: &ProbeLimits,
    timeout: Duration,
) -> Result<Probe, JobError> {
    let output = run_json(ffprobe, &safe_input_args(), path, timeout, "video").await?;
    if output.stderr.contains("partial file") {
        return Err(invalid("the file is truncated (ffprobe: partial file)"));
    }
    interpret(&output.stdout, limits)
}

/// Runs ffprobe's JSON report (format, streams, packet counts) on the local file at `path`
/// with `input_args` restricting how it may be read; a refusal is `invalid_media` ("not a
/// readable {what}").
pub(crate) async fn run_json(
    ffprobe: &Path,
    input_args: &[&str],
    path: &Path,
    timeout: Duration,
    what: &str,
) -> Result<super::process::ToolOutput, JobError> {
    Tool::new(ffprobe, timeout)
        .args(input_args.iter().copied())
        .args(["-v", "error", "-count_packets", "-print_format", "json"])
        .args(["-show_format", "-show_streams"])
        .arg(file_url(path))
        .run()
        .await
        .map_err(|e| match e {
            ToolError::Failed { stderr, .. } => invalid(format!(
                "not a readable {what}: {}",
                first_line(&stderr).unwrap_or("ffprobe refused the file")
            )),
            other => other.into(),
        })
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ProbeLimits = ProbeLimits {
        max_width: 7680,
        max_height: 4320,
        max_duration_secs: 14400,
    };

    fn fixture(name: &str) -> &'static [u8] {
        match name {
            "h264_aac" => include_bytes!("testdata/h264_aac.json"),
            "vp9_opus_webm" => include_bytes!("testdata/vp9_opus_webm.json"),
            "h264_no_audio" => include_bytes!("testdata/h264_no_audio.json"),
            "truncated_faststart" => include_bytes!("testdata/truncated_faststart.json"),
            "audio_with_cover" => include_bytes!("testdata/audio_with_cover.json"),
            "rotated" => include_bytes!("testdata/rotated.json"),
            _ => unreachable!("unknown fixture {name}"),
        }
    }

    #[test]
    fn reads_an_h264_aac_mp4() {
        let p = interpret(fixture("h264_aac"), &LIMITS).unwrap();
        assert!(p.is_mp4_family());
        assert_eq!(
            (p.video.codec.as_str(), p.video.width, p.video.height),
            ("h264", 640, 360)
        );
        assert_eq!(p.video.fps, Some(30.0));
        assert_eq!(p.audio.as_ref().map(|a| a.codec.as_str()), Some("aac"));
        assert_eq!(p.duration_seconds, 3.0);
        let info = p.media_info();
        assert_eq!(info.container, "mp4");
        assert_eq!(info.bitrate_bps, Some(868_690));
    }

    #[test]
    fn reads_vp9_opus_webm_and_video_without_audio() {
        let webm = interpret(fixture("vp9_opus_webm"), &LIMITS).unwrap();
        assert_eq!(webm.video.codec, "vp9");
        assert_eq!(webm.audio.as_ref().unwrap().codec, "opus");
        assert!(!webm.is_mp4_family());
        let silent = interpret(fixture("h264_no_audio"), &LIMITS).unwrap();
        assert!(silent.audio.is_none());
        assert_eq!(silent.video.fps, Some(24.0));
    }

    #[test]
    fn rotation_swaps_the_display_size() {
        let p = interpret(fixture("rotated"), &LIMITS).unwrap();
        assert_eq!(p.video.rotation, 90);
        assert_eq!(p.display_size(), (240, 320));
    }

    #[test]
    fn an_index_off_by_a_frame_or_two_is_not_a_truncation() {
        // ffmpeg's own 6 s AVI: 151 frames promised, 150 present.
        assert!(!cut_short(151, 150));
        assert!(!cut_short(150, 150));
        assert!(!cut_short(20, 18));
        // A long file may be off by up to 1% of its frames.
        assert!(!cut_short(90_000, 89_100));
        assert!(cut_short(90_000, 89_000));
        // The truncated fixture keeps 259 of 600 frames; three missing of a short clip is more
        // than an index's error.
        assert!(cut_short(600, 259));
        assert!(cut_short(20, 17));
    }

    #[test]
    fn refuses_truncated_files_and_audio_with_cover_art() {
        let err = interpret(fixture("truncated_faststart"), &LIMITS).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMedia);
        assert!(err.message.contains("truncated"), "{}", err.message);
        let err = interpret(fixture("audio_with_cover"), &LIMITS).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMedia);
        assert!(err.message.contains("no video"), "{}", err.message);
    }

    #[test]
    fn refuses_decoder_bombs_and_overlong_media() {
        let small = ProbeLimits {
            max_width: 320,
            max_height: 200,
            max_duration_secs: 1,
        };
        let err = interpret(fixture("h264_aac"), &small).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMedia);
        let long = ProbeLimits {
            max_duration_secs: 1,
            ..LIMITS
        };
        assert_eq!(
            interpret(fixture("h264_aac"), &long).unwrap_err().code,
            ErrorCode::TooLong
        );
    }

    #[test]
    fn garbage_is_invalid_media() {
        for junk in [&b""[..], b"{}", b"not json", br#"{"streams": []}"#] {
            assert_eq!(
                interpret(junk, &LIMITS).unwrap_err().code,
                ErrorCode::InvalidMedia
            );
        }
    }

    #[test]
    fn frame_rates_parse() {
        assert_eq!(frame_rate(Some("30000/1001")), Some(29.97));
        assert_eq!(frame_rate(Some("0/0")), None);
        assert_eq!(frame_rate(Some("25")), None);
    }
}
