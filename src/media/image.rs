//! Still images (photos): what ffprobe says about a JPEG, and the ffmpeg run that makes its
//! thumbnails.
//!
//! Both tools get the JPEG demuxer forced and whitelisted, and only the `file` protocol
//! (THREATS SUB-06): ffmpeg never guesses the format of a file a user sent, so a playlist or
//! an `image2` pattern dressed as a photo is read as (broken) JPEG data and refused. Limits
//! are checked on the probe, before anything is decoded (SUB-07).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::ffprobe::{ProbeLimits, file_url, invalid};
use crate::domain::{ErrorCode, JobError, MediaInfo, ThumbSize};

/// The one demuxer images are read with: a sequence of JPEG pictures, of which we accept one.
const JPEG_DEMUXER: &str = "jpeg_pipe";

/// The arguments that go before an image input of ffprobe and ffmpeg.
fn input_args() -> [&'static str; 6] {
    [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        JPEG_DEMUXER,
        "-f",
        JPEG_DEMUXER,
    ]
}

/// The facts of a probed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageProbe {
    pub width: u32,
    pub height: u32,
    pub codec: String,
}

impl ImageProbe {
    /// The stored-item view: an image has a size and a codec, and nothing only a video has.
    pub fn media_info(&self) -> MediaInfo {
        MediaInfo {
            duration_seconds: None,
            width: self.width,
            height: self.height,
            video_codec: self.codec.clone(),
            audio_codec: None,
            bitrate_bps: None,
            fps: None,
            container: "jpeg".to_string(),
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
}

#[derive(Deserialize)]
struct StreamJson {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    nb_read_packets: Option<String>,
}

/// Turns ffprobe's JSON into an [`ImageProbe`], refusing anything but one JPEG picture within
/// the size limits. The JPEG demuxer reads any bytes; what is not a JPEG shows up as a
/// picture without a size.
pub fn interpret(json: &[u8], limits: &ProbeLimits) -> Result<ImageProbe, JobError> {
    let parsed: ProbeJson = serde_json::from_slice(json)
        .map_err(|e| invalid(format!("ffprobe output could not be read: {e}")))?;
    let format = parsed
        .format
        .and_then(|f| f.format_name)
        .ok_or_else(|| invalid("the file is not a JPEG image"))?;
    if format != JPEG_DEMUXER {
        return Err(invalid(format!("the file was read as {format}, not JPEG")));
    }
    let [stream] = parsed.streams.as_slice() else {
        return Err(invalid(format!(
            "a JPEG image has one picture stream, this file has {}",
            parsed.streams.len()
        )));
    };
    if stream.codec_type.as_deref() != Some("video")
        || stream.codec_name.as_deref() != Some("mjpeg")
    {
        return Err(invalid("the file is not a JPEG image"));
    }
    let pictures: Option<u64> = stream
        .nb_read_packets
        .as_deref()
        .and_then(|n| n.parse().ok());
    if pictures != Some(1) {
        return Err(invalid(format!(
            "a photo is one JPEG picture, this file holds {}",
            pictures.map_or_else(|| "an unknown number".to_string(), |n| n.to_string())
        )));
    }
    let (width, height) = match (stream.width, stream.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(invalid("the file is not a readable JPEG image")),
    };
    if width > limits.max_width || height > limits.max_height {
        return Err(invalid(format!(
            "the image is {width}×{height}, larger than the {}×{} limit",
            limits.max_width, limits.max_height
        )));
    }
    Ok(ImageProbe {
        width,
        height,
        codec: "mjpeg".to_string(),
    })
}

/// Runs ffprobe on the image at `path` and interprets the result.
pub async fn probe(
    ffprobe: &Path,
    path: &Path,
    limits: &ProbeLimits,
    timeout: Duration,
) -> Result<ImageProbe, JobError> {
    let output =
        super::ffprobe::run_json(ffprobe, &input_args(), path, timeout, "JPEG image").await?;
    interpret(&output.stdout, limits)
}

/// ffmpeg's arguments for the thumbnails of the image at `input`: the same scaling and JPEG
/// outputs as a video's thumbnails, from the picture itself.
pub fn thumbnail_args(input: &Path, outputs: &[(ThumbSize, &Path)]) -> Vec<String> {
    let mut args = vec!["-nostdin".to_string()];
    args.extend(["-v", "error", "-y"].map(String::from));
    args.extend(input_args().map(String::from));
    args.push("-i".into());
    args.push(file_url(input));
    args.extend(super::ffmpeg::thumbnail_outputs(outputs));
    args
}

/// Runs ffmpeg with image `args`. The input already passed the probe, so a decoding failure
/// means a damaged picture (`invalid_media`, not worth another attempt); a full disk or a
/// timeout keep their own codes.
pub async fn run_ffmpeg(
    ffmpeg: &Path,
    args: Vec<String>,
    timeout: Duration,
) -> Result<(), JobError> {
    match super::ffmpeg::run(ffmpeg, args, timeout).await {
        Err(e) if e.code == ErrorCode::ProcessingFailed => Err(invalid(format!(
            "the image could not be decoded: {}",
            e.message
        ))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ProbeLimits = ProbeLimits {
        max_width: 7680,
        max_height: 4320,
        max_duration_secs: 14400,
    };

    #[test]
    fn reads_a_single_jpeg_picture() {
        let p = interpret(include_bytes!("testdata/jpeg_photo.json"), &LIMITS).unwrap();
        assert_eq!(
            p,
            ImageProbe {
                width: 1600,
                height: 900,
                codec: "mjpeg".into()
            }
        );
        let info = p.media_info();
        assert_eq!(
            (info.width, info.height, info.container.as_str()),
            (1600, 900, "jpeg")
        );
        assert_eq!(
            (info.duration_seconds, info.fps, info.audio_codec),
            (None, None, None)
        );
    }

    #[test]
    fn refuses_what_is_not_one_jpeg_picture() {
        // A PNG read with the JPEG demuxer forced: a picture without a size.
        let png = interpret(include_bytes!("testdata/png_as_jpeg.json"), &LIMITS).unwrap_err();
        assert_eq!(png.code, ErrorCode::InvalidMedia);
        assert!(
            png.message.contains("not a readable JPEG"),
            "{}",
            png.message
        );
        // Two JPEGs back to back are a motion-JPEG sequence, not a photo.
        let two = interpret(include_bytes!("testdata/two_jpegs.json"), &LIMITS).unwrap_err();
        assert_eq!(two.code, ErrorCode::InvalidMedia);
        assert!(two.message.contains("holds 2"), "{}", two.message);
        for junk in [
            &b""[..],
            b"{}",
            b"not json",
            br#"{"streams": [], "format": {"format_name": "jpeg_pipe"}}"#,
        ] {
            assert_eq!(
                interpret(junk, &LIMITS).unwrap_err().code,
                ErrorCode::InvalidMedia
            );
        }
        let video = br#"{"streams": [{"codec_type": "video", "codec_name": "h264", "width": 640,
            "height": 360, "nb_read_packets": "1"}], "format": {"format_name": "jpeg_pipe"}}"#;
        assert_eq!(
            interpret(video, &LIMITS).unwrap_err().code,
            ErrorCode::InvalidMedia
        );
    }

    #[test]
    fn refuses_pictures_above_the_size_limits() {
        let small = ProbeLimits {
            max_width: 1599,
            ..LIMITS
        };
        let err = interpret(include_bytes!("testdata/jpeg_photo.json"), &small).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMedia);
        assert!(err.message.contains("1600×900"), "{}", err.message);
        let short = ProbeLimits {
            max_height: 899,
            ..LIMITS
        };
        assert!(interpret(include_bytes!("testdata/jpeg_photo.json"), &short).is_err());
    }

    #[test]
    fn every_tool_run_forces_the_jpeg_demuxer_on_local_files() {
        let (small, large) = (Path::new("/w/s.jpg"), Path::new("/w/l.jpg"));
        let args = thumbnail_args(
            Path::new("/w/import.jpg"),
            &[(ThumbSize::Small, small), (ThumbSize::Large, large)],
        );
        let input = args.iter().position(|a| a == "-i").unwrap();
        let before = &args[..input];
        for pair in [
            ["-f", "jpeg_pipe"],
            ["-format_whitelist", "jpeg_pipe"],
            ["-protocol_whitelist", "file"],
        ] {
            assert!(before.windows(2).any(|w| w == pair), "{pair:?} in {args:?}");
        }
        assert_eq!(args[0], "-nostdin");
        assert_eq!(args[input + 1], "file:/w/import.jpg");
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(
            graph.contains("min(160,iw)") && graph.contains("min(1280,iw)"),
            "{graph}"
        );
    }
}
