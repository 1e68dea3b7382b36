//! ffmpeg: conversion to browser-playable MP4, compression, and thumbnails.
//!
//! What to run is decided by [`plan`] from the probe alone (pure and table-tested); the
//! functions below only build argument lists and run them through the process wrapper.

use std::path::Path;
use std::time::Duration;

use super::ffprobe::{Probe, file_url, safe_input_args};
use super::process::{Tool, ToolError};
use crate::domain::{ErrorCode, JobError, ThumbSize};

/// What it takes to make a file browser-playable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Already H.264/AAC MP4 with its index in front: use the file as it is.
    Keep,
    /// Right codecs, wrong container or index at the end: copy the streams into a new MP4.
    Remux,
    /// Re-encode what is not H.264/AAC; copy what is.
    Transcode { video: Action, audio: Action },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Copy,
    Encode,
    /// The source has no such stream.
    Absent,
}

/// Whether the video stream plays in every mainstream browser as it is: 8-bit 4:2:0 H.264
/// without a profile browsers reject, and even dimensions.
fn video_is_playable(probe: &Probe) -> bool {
    let v = &probe.video;
    let profile_ok = !matches!(
        v.profile.as_deref(),
        Some(
            "High 10"
                | "High 10 Intra"
                | "High 4:2:2"
                | "High 4:2:2 Intra"
                | "High 4:4:4 Predictive"
                | "High 4:4:4 Intra"
        )
    );
    v.codec == "h264"
        && matches!(v.pix_fmt.as_deref(), Some("yuv420p" | "yuvj420p"))
        && profile_ok
        && v.width.is_multiple_of(2)
        && v.height.is_multiple_of(2)
}

/// Decides the conversion. `faststart` is the box order of an MP4-family source.
pub fn plan(probe: &Probe, faststart: Option<bool>) -> Plan {
    let video = if video_is_playable(probe) {
        Action::Copy
    } else {
        Action::Encode
    };
    let audio = match probe.audio.as_ref().map(|a| a.codec.as_str()) {
        None => Action::Absent,
        Some("aac") => Action::Copy,
        Some(_) => Action::Encode,
    };
    match (video, audio) {
        (Action::Copy, Action::Copy | Action::Absent) => {
            // A file with text subtitles inside is remuxed without them: they are kept as
            // checked sidecars, never passed to players as the source wrote them.
            if probe.is_mp4_family() && faststart == Some(true) && probe.text_subtitles.is_empty() {
                Plan::Keep
            } else {
                Plan::Remux
            }
        }
        _ => Plan::Transcode { video, audio },
    }
}

/// Encoder settings for a conversion or compression pass.
#[derive(Debug, Clone)]
pub struct EncodeSettings {
    pub crf: u8,
    pub preset: String,
    pub timeout: Duration,
}

/// Builds the ffmpeg argv that writes `output` (an MP4) from `input`; an encoded video stream
/// keeps its size (rounded down to even) unless `frame` names one.
pub fn convert_args(
    input: &Path,
    output: &Path,
    video: Action,
    audio: Action,
    enc: &EncodeSettings,
    frame: Option<(u32, u32)>,
) -> Vec<String> {
    let mut args = ffmpeg_prelude();
    args.push("-i".into());
    args.push(file_url(input));
    args.extend(["-map", "0:v:0", "-map", "0:a:0?", "-dn", "-sn"].map(String::from));
    match video {
        Action::Copy => args.extend(["-c:v", "copy"].map(String::from)),
        Action::Encode | Action::Absent => {
            args.extend(["-c:v", "libx264", "-preset"].map(String::from));
            args.push(enc.preset.clone());
            args.push("-crf".into());
            args.push(enc.crf.to_string());
            // 4:2:0 needs even dimensions; odd sources lose one pixel row or column.
            let scale = match frame {
                Some((w, h)) => format!("scale={w}:{h}"),
                None => "scale=trunc(iw/2)*2:trunc(ih/2)*2".to_string(),
            };
            args.extend([
                "-pix_fmt".to_string(),
                "yuv420p".into(),
                "-vf".into(),
                scale,
            ]);
        }
    }
    match audio {
        Action::Copy => args.extend(["-c:a", "copy"].map(String::from)),
        Action::Encode => args.extend(["-c:a", "aac", "-b:a", "160k"].map(String::from)),
        Action::Absent => {}
    }
    args.extend(
        [
            "-movflags",
            "+faststart",
            "-max_muxing_queue_size",
            "4096",
            "-f",
            "mp4",
        ]
        .map(String::from),
    );
    args.push(file_url(output));
    args
}

/// What every ffmpeg call starts with: no stdin, only local files in safe containers, quiet,
/// overwrite our own work files.
fn ffmpeg_prelude() -> Vec<String> {
    let mut args = vec!["-nostdin".to_string()];
    args.extend(safe_input_args().iter().map(|s| s.to_string()));
    args.extend(["-v", "error", "-y"].map(String::from));
    args
}

/// Runs ffmpeg with `args`, mapping failures to job errors.
pub async fn run(ffmpeg: &Path, args: Vec<String>, timeout: Duration) -> Result<(), JobError> {
    Tool::new(ffmpeg, timeout)
        .args(args)
        .run()
        .await
        .map(drop)
        .map_err(ffmpeg_error)
}

fn ffmpeg_error(e: ToolError) -> JobError {
    match e {
        ToolError::Failed { ref stderr, .. } if stderr.contains("No space left on device") => {
            JobError::new(ErrorCode::DiskFull, "media_root is full")
        }
        ToolError::Failed { ref stderr, .. }
            if stderr.contains("Invalid data found") || stderr.contains("corrupt") =>
        {
            JobError::new(
                ErrorCode::InvalidMedia,
                format!("the video could not be decoded: {}", last_line(stderr)),
            )
        }
        ToolError::Failed { ref stderr, .. } => JobError::new(
            ErrorCode::ProcessingFailed,
            format!("ffmpeg failed: {}", last_line(stderr)),
        ),
        other => other.into(),
    }
}

fn last_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message")
}

/// The argv that writes all three thumbnails in one decoding pass, from the frame at `at`
/// seconds, each `width` wide (never wider than the source: `min(w, iw)`).
pub fn thumbnail_args(
    input: &Path,
    at_seconds: f64,
    outputs: &[(ThumbSize, &Path)],
) -> Vec<String> {
    let mut args = ffmpeg_prelude();
    args.push("-ss".into());
    args.push(format!("{at_seconds:.3}"));
    args.push("-i".into());
    args.push(file_url(input));
    args.extend(thumbnail_outputs(outputs));
    args
}

/// The argv that writes each text subtitle stream of `input` (by stream index) as WebVTT, in
/// one reading of the file.
pub fn subtitle_args(input: &Path, outputs: &[(u32, &Path)]) -> Vec<String> {
    let mut args = ffmpeg_prelude();
    args.push("-i".into());
    args.push(file_url(input));
    for (index, output) in outputs {
        args.extend(["-map".to_string(), format!("0:{index}")]);
        args.extend(["-c:s", "webvtt", "-f", "webvtt", "-fs"].map(String::from));
        // Compressed tracks can expand without bound; past what the parser accepts, the
        // rest would be refused anyway.
        args.push((crate::domain::subtitles::MAX_BYTES + 1).to_string());
        args.push(file_url(output));
    }
    args
}

/// The filter graph and outputs that scale the first picture stream of the input to each
/// thumbnail width (never wider than the source, height even) and write one JPEG each. Shared
/// by videos and images, so both kinds get the same thumbnails.
pub fn thumbnail_outputs(outputs: &[(ThumbSize, &Path)]) -> Vec<String> {
    let mut args = Vec::new();
    let labels: Vec<String> = (0..outputs.len()).map(|i| format!("t{i}")).collect();
    let mut graph = format!(
        "[0:v:0]split={}{}",
        outputs.len(),
        labels
            .iter()
            .map(|l| format!("[{l}in]"))
            .collect::<String>()
    );
    for ((size, _), label) in outputs.iter().zip(&labels) {
        graph.push_str(&format!(
            ";[{label}in]scale=w='min({},iw)':h=-2[{label}]",
            size.width()
        ));
    }
    args.push("-filter_complex".into());
    args.push(graph);
    for ((_, path), label) in outputs.iter().zip(&labels) {
        args.extend(["-map".to_string(), format!("[{label}]")]);
        args.extend(
            [
                "-frames:v",
                "1",
                "-q:v",
                "3",
                "-f",
                "image2",
                "-update",
                "1",
            ]
            .map(String::from),
        );
        args.push(file_url(path));
    }
    args
}

/// The thumbnail position: `fraction` of the duration, but inside the video even when it is
/// shorter than a frame or two.
pub fn thumbnail_time(duration: f64, fraction: f64) -> f64 {
    (duration * fraction).clamp(0.0, (duration - 0.1).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ffprobe::{AudioStream, VideoStream};

    fn probe(format: &str, vcodec: &str, pix: &str, acodec: Option<&str>) -> Probe {
        Probe {
            tags: Default::default(),
            text_subtitles: Vec::new(),
            format_name: format.into(),
            duration_seconds: 10.0,
            bitrate_bps: None,
            video: VideoStream {
                codec: vcodec.into(),
                profile: Some("High".into()),
                pix_fmt: Some(pix.into()),
                width: 1280,
                height: 720,
                fps: Some(30.0),
                rotation: 0,
            },
            audio: acodec.map(|c| AudioStream { codec: c.into() }),
        }
    }

    const MP4: &str = "mov,mp4,m4a,3gp,3g2,mj2";

    #[test]
    fn plans_the_cheapest_conversion() {
        use Action::*;
        let cases = [
            (
                probe(MP4, "h264", "yuv420p", Some("aac")),
                Some(true),
                Plan::Keep,
            ),
            (probe(MP4, "h264", "yuv420p", None), Some(true), Plan::Keep),
            (
                probe(MP4, "h264", "yuv420p", Some("aac")),
                Some(false),
                Plan::Remux,
            ),
            (
                probe("matroska,webm", "h264", "yuv420p", Some("aac")),
                None,
                Plan::Remux,
            ),
            (
                probe("matroska,webm", "vp9", "yuv420p", Some("opus")),
                None,
                Plan::Transcode {
                    video: Encode,
                    audio: Encode,
                },
            ),
            (
                probe("matroska,webm", "hevc", "yuv420p", Some("aac")),
                None,
                Plan::Transcode {
                    video: Encode,
                    audio: Copy,
                },
            ),
            (
                probe("avi", "mpeg4", "yuv420p", Some("pcm_s16le")),
                None,
                Plan::Transcode {
                    video: Encode,
                    audio: Encode,
                },
            ),
            (
                probe(MP4, "h264", "yuv420p", Some("pcm_s16le")),
                Some(true),
                Plan::Transcode {
                    video: Copy,
                    audio: Encode,
                },
            ),
            (
                probe(MP4, "h264", "yuv444p", Some("aac")),
                Some(true),
                Plan::Transcode {
                    video: Encode,
                    audio: Copy,
                },
            ),
            (
                probe(MP4, "hevc", "yuv420p", None),
                Some(true),
                Plan::Transcode {
                    video: Encode,
                    audio: Absent,
                },
            ),
        ];
        for (p, faststart, expected) in cases {
            assert_eq!(
                plan(&p, faststart),
                expected,
                "{} {} {:?}",
                p.format_name,
                p.video.codec,
                p.audio
            );
        }
    }

    #[test]
    fn ten_bit_and_odd_sized_h264_is_re_encoded() {
        let mut p = probe(MP4, "h264", "yuv420p", Some("aac"));
        p.video.profile = Some("High 10".into());
        assert!(matches!(
            plan(&p, Some(true)),
            Plan::Transcode {
                video: Action::Encode,
                ..
            }
        ));
        let mut p = probe(MP4, "h264", "yuv420p", Some("aac"));
        p.video.width = 1279;
        assert!(matches!(
            plan(&p, Some(true)),
            Plan::Transcode {
                video: Action::Encode,
                ..
            }
        ));
    }

    #[test]
    fn every_input_is_whitelisted_and_addressed_as_a_file() {
        let enc = EncodeSettings {
            crf: 23,
            preset: "veryfast".into(),
            timeout: Duration::from_secs(1),
        };
        let args = convert_args(
            Path::new("/w/in.webm"),
            Path::new("/w/out.mp4"),
            Action::Encode,
            Action::Encode,
            &enc,
            None,
        );
        let i = args.iter().position(|a| a == "-i").unwrap();
        assert_eq!(args[i + 1], "file:/w/in.webm");
        assert!(
            args[..i]
                .windows(2)
                .any(|w| w == ["-protocol_whitelist", "file"])
        );
        assert!(args[..i].iter().any(|a| a == "-nostdin"));
        assert_eq!(args.last().unwrap(), "file:/w/out.mp4");
        assert!(args.windows(2).any(|w| w == ["-movflags", "+faststart"]));
        let sized = convert_args(
            Path::new("/w/v.mp4"),
            Path::new("/w/r.mp4"),
            Action::Encode,
            Action::Copy,
            &enc,
            Some((854, 480)),
        );
        assert!(sized.windows(2).any(|w| w == ["-vf", "scale=854:480"]));
        assert!(sized.windows(2).any(|w| w == ["-c:a", "copy"]));

        let small = Path::new("/w/s.jpg");
        let large = Path::new("/w/l.jpg");
        let thumbs = thumbnail_args(
            Path::new("/w/v.mp4"),
            1.5,
            &[(ThumbSize::Small, small), (ThumbSize::Large, large)],
        );
        let graph = &thumbs[thumbs.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(graph.starts_with("[0:v:0]split=2[t0in][t1in]"), "{graph}");
        assert!(
            graph.contains("min(160,iw)") && graph.contains("min(1280,iw)"),
            "{graph}"
        );
        assert_eq!(
            thumbs.iter().filter(|a| a.starts_with("file:/w/")).count(),
            3
        );
    }

    #[test]
    fn thumbnail_time_stays_inside_the_video() {
        assert_eq!(thumbnail_time(20.0, 0.1), 2.0);
        assert_eq!(thumbnail_time(0.05, 0.1), 0.0);
        assert!(thumbnail_time(1.0, 0.99) <= 0.9);
    }
}
