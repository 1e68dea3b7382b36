//! One processing run: probe → validate → convert → compress → thumbnails and hash; for an
//! image, probe → validate → thumbnails and hash (the JPEG itself is stored as it came).
//!
//! Plain async code driven by a [`ProcessingConfig`]; the processing worker actor runs it in a
//! task it owns. All files are written inside the attempt's work directory; moving them into
//! the media tree is the StorageActor's job.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ffmpeg::{self, Action, EncodeSettings, Plan};
use super::ffprobe::{self, Probe, ProbeLimits};
use super::subtitles::GatheredSubtitle;
use crate::domain::encoding::{CompressPolicy, Conversion, Encoding, SourceFile};
use crate::domain::source_meta::SourceMeta;
use crate::domain::{ErrorCode, JobError, MediaInfo, Stage, ThumbSize};

#[derive(Debug, Clone)]
pub struct ProcessingConfig {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub limits: ProbeLimits,
    pub convert: EncodeSettings,
    pub compress: EncodeSettings,
    pub compress_policy: CompressPolicy,
    pub compress_above_bytes: u64,
    pub thumbnail_at: f64,
    pub probe_timeout: Duration,
    /// Keep subtitles (the downloaded ones and the file's own text streams).
    pub subtitles: bool,
}

/// The files and facts a successful run produced, all inside the work directory.
#[derive(Debug, Clone)]
pub struct ProcessedMedia {
    pub video: PathBuf,
    pub thumbnails: Vec<(ThumbSize, PathBuf)>,
    pub thumbnails_bytes: u64,
    pub media: MediaInfo,
    pub size_bytes: u64,
    pub sha256: String,
    pub plan: Plan,
    /// How the stored file came from the source.
    pub encoding: Encoding,
    /// What the source file's own tags say.
    pub source_meta: SourceMeta,
    /// Subtitle tracks, as WebVTT files in the work directory.
    pub subtitles: Vec<GatheredSubtitle>,
}

fn io_error(context: &str, e: std::io::Error) -> JobError {
    crate::storage::io_job_error(context, &e)
}

pub(super) async fn file_size(path: &Path) -> Result<u64, JobError> {
    tokio::fs::metadata(path)
        .await
        .map(|m| m.len())
        .map_err(|e| io_error("cannot read the converted file", e))
}

/// Processes `input` inside `work_dir`, reporting each stage through `on_stage`.
pub async fn process(
    cfg: &ProcessingConfig,
    input: &Path,
    work_dir: &Path,
    on_stage: &(dyn Fn(Stage) + Send + Sync),
) -> Result<ProcessedMedia, JobError> {
    on_stage(Stage::Probe);
    let source = ffprobe::probe(&cfg.ffprobe, input, &cfg.limits, cfg.probe_timeout).await?;
    let source_meta = source.source_meta();
    let faststart = if source.is_mp4_family() {
        let path = input.to_path_buf();
        tokio::task::spawn_blocking(move || super::mp4::is_faststart(&path))
            .await
            .map_err(|e| JobError::new(ErrorCode::ProcessingFailed, e.to_string()))?
            .map_err(|e| io_error("cannot read the download", e))?
    } else {
        None
    };
    let plan = ffmpeg::plan(&source, faststart);
    // Read before conversion: the file's own subtitle streams are dropped from the MP4.
    let subtitles = if cfg.subtitles {
        super::subtitles::gather(&cfg.ffmpeg, cfg.probe_timeout, input, &source, work_dir).await
    } else {
        Vec::new()
    };
    let source_file = SourceFile {
        container: source.format_name.clone(),
        video_codec: source.video.codec.clone(),
        audio_codec: source.audio.as_ref().map(|a| a.codec.clone()),
        bitrate_bps: source.bitrate_bps,
        size_bytes: file_size(input).await?,
    };
    let conversion = match plan {
        Plan::Keep => Conversion::Kept,
        Plan::Remux => Conversion::Remuxed,
        Plan::Transcode { .. } => Conversion::Transcoded,
    };

    let (mut video, mut probe) = match plan {
        Plan::Keep => (input.to_path_buf(), source),
        Plan::Remux => {
            on_stage(Stage::Convert);
            let audio = if source.audio.is_some() {
                Action::Copy
            } else {
                Action::Absent
            };
            convert(
                cfg,
                input,
                work_dir,
                "converted.mp4",
                Action::Copy,
                audio,
                &cfg.convert,
                None,
            )
            .await?
        }
        Plan::Transcode { video, audio } => {
            on_stage(Stage::Convert);
            convert(
                cfg,
                input,
                work_dir,
                "converted.mp4",
                video,
                audio,
                &cfg.convert,
                None,
            )
            .await?
        }
    };
    if video != input {
        // The download is no longer needed; free its space before compressing.
        let _ = tokio::fs::remove_file(input).await;
    }

    let mut size = file_size(&video).await?;
    let mut compression = None;
    if size > cfg.compress_above_bytes && cfg.compress_policy != CompressPolicy::Off {
        on_stage(Stage::Compress);
        let (smaller, smaller_probe, outcome) =
            super::compression::compress(cfg, &video, &probe, size, work_dir).await?;
        if outcome.kept {
            let _ = tokio::fs::remove_file(&video).await;
            (video, probe, size) = (smaller, smaller_probe, outcome.output_bytes);
        } else {
            let _ = tokio::fs::remove_file(&smaller).await;
        }
        compression = Some(outcome);
    }

    on_stage(Stage::Thumbnails);
    let thumbnails = thumbnail_paths(work_dir);
    let (thumbs_done, hash) = tokio::join!(
        make_thumbnails(cfg, &video, &probe, &thumbnails),
        sha256_file(video.clone())
    );
    let thumbnails_bytes = thumbs_done?;
    let sha256 = hash.map_err(|e| io_error("cannot hash the video", e))?;

    Ok(ProcessedMedia {
        source_meta,
        subtitles,
        media: probe.media_info(),
        video,
        thumbnails,
        thumbnails_bytes,
        size_bytes: size,
        sha256,
        plan,
        encoding: Encoding {
            source: source_file,
            conversion,
            compression,
        },
    })
}

/// Writes `work_dir/name` from `input` and probes the result (its facts are what we store).
#[allow(clippy::too_many_arguments)]
pub(super) async fn convert(
    cfg: &ProcessingConfig,
    input: &Path,
    work_dir: &Path,
    name: &str,
    video: Action,
    audio: Action,
    enc: &EncodeSettings,
    frame: Option<(u32, u32)>,
) -> Result<(PathBuf, Probe), JobError> {
    let output = work_dir.join(name);
    ffmpeg::run(
        &cfg.ffmpeg,
        ffmpeg::convert_args(input, &output, video, audio, enc, frame),
        enc.timeout,
    )
    .await?;
    let probe = ffprobe::probe(&cfg.ffprobe, &output, &cfg.limits, cfg.probe_timeout)
        .await
        .map_err(|e| {
            JobError::new(
                ErrorCode::ProcessingFailed,
                format!("the converted file is unreadable: {}", e.message),
            )
        })?;
    Ok((output, probe))
}

/// Writes the thumbnails; returns their total size.
async fn make_thumbnails(
    cfg: &ProcessingConfig,
    video: &Path,
    probe: &Probe,
    outputs: &[(ThumbSize, PathBuf)],
) -> Result<u64, JobError> {
    let at = ffmpeg::thumbnail_time(probe.duration_seconds, cfg.thumbnail_at);
    let targets: Vec<(ThumbSize, &Path)> = outputs.iter().map(|(s, p)| (*s, p.as_path())).collect();
    ffmpeg::run(
        &cfg.ffmpeg,
        ffmpeg::thumbnail_args(video, at, &targets),
        cfg.convert.timeout,
    )
    .await?;
    thumbnail_bytes(outputs).await
}

/// The files and facts of a processed image, all inside the work directory.
#[derive(Debug, Clone)]
pub struct ProcessedImage {
    pub image: PathBuf,
    pub thumbnails: Vec<(ThumbSize, PathBuf)>,
    pub thumbnails_bytes: u64,
    pub media: MediaInfo,
    pub size_bytes: u64,
    pub sha256: String,
}

/// Processes the image at `input` inside `work_dir`: only a single JPEG within the size limits
/// is accepted, and it is kept byte for byte (no re-encoding loses quality); the thumbnails
/// are made from it.
pub async fn process_image(
    cfg: &ProcessingConfig,
    input: &Path,
    work_dir: &Path,
    on_stage: &(dyn Fn(Stage) + Send + Sync),
) -> Result<ProcessedImage, JobError> {
    on_stage(Stage::Probe);
    let probe = super::image::probe(&cfg.ffprobe, input, &cfg.limits, cfg.probe_timeout).await?;
    on_stage(Stage::Thumbnails);
    let thumbnails = thumbnail_paths(work_dir);
    let targets: Vec<(ThumbSize, &Path)> =
        thumbnails.iter().map(|(s, p)| (*s, p.as_path())).collect();
    let (made, hash) = tokio::join!(
        super::image::run_ffmpeg(
            &cfg.ffmpeg,
            super::image::thumbnail_args(input, &targets),
            cfg.convert.timeout,
        ),
        sha256_file(input.to_path_buf())
    );
    made?;
    let thumbnails_bytes = thumbnail_bytes(&thumbnails).await?;
    Ok(ProcessedImage {
        image: input.to_path_buf(),
        thumbnails_bytes,
        media: probe.media_info(),
        size_bytes: file_size(input).await?,
        sha256: hash.map_err(|e| io_error("cannot hash the image", e))?,
        thumbnails,
    })
}

/// Where a run writes the thumbnails, inside its work directory.
fn thumbnail_paths(work_dir: &Path) -> Vec<(ThumbSize, PathBuf)> {
    ThumbSize::ALL
        .iter()
        .map(|size| (*size, work_dir.join(format!("thumb_{}.jpg", size.as_str()))))
        .collect()
}

/// The total size of the thumbnails ffmpeg wrote; an empty or missing one is a failure.
async fn thumbnail_bytes(outputs: &[(ThumbSize, PathBuf)]) -> Result<u64, JobError> {
    let mut total = 0;
    for (size, path) in outputs {
        let bytes = tokio::fs::metadata(path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if bytes == 0 {
            return Err(JobError::new(
                ErrorCode::ProcessingFailed,
                format!("ffmpeg wrote no {} thumbnail", size.as_str()),
            ));
        }
        total += bytes;
    }
    Ok(total)
}

/// A finished rendition, inside the work directory.
#[derive(Debug, Clone)]
pub struct Transcoded {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u64,
    pub sha256: String,
}

/// Re-encodes a stored video at `frame` size (H.264; stored audio is AAC, so it is copied),
/// and probes and hashes the result.
pub async fn transcode(
    cfg: &ProcessingConfig,
    source: &Path,
    work_dir: &Path,
    frame: (u32, u32),
    on_stage: &(dyn Fn(Stage) + Send + Sync),
) -> Result<Transcoded, JobError> {
    on_stage(Stage::Convert);
    let (path, probe) = convert(
        cfg,
        source,
        work_dir,
        "rendition.mp4",
        Action::Encode,
        Action::Copy,
        &cfg.convert,
        Some(frame),
    )
    .await?;
    let size_bytes = file_size(&path).await?;
    let sha256 = sha256_file(path.clone())
        .await
        .map_err(|e| io_error("cannot hash the rendition", e))?;
    let (width, height) = probe.display_size();
    Ok(Transcoded {
        path,
        width,
        height,
        size_bytes,
        sha256,
    })
}

/// SHA-256 of a file as lowercase hex, read in 1 MiB blocks on the blocking pool.
pub async fn sha256_file(path: PathBuf) -> std::io::Result<String> {
    tokio::task::spawn_blocking(move || {
        use sha2::Digest;
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(path).await.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
