//! The compression pass of a large converted video: re-encode at the compression CRF, then
//! let `processing.compress` decide which file stays (the keeper measures the SSIM first).

use std::path::{Path, PathBuf};

use super::ffmpeg::Action;
use super::ffprobe::Probe;
use super::processing::{ProcessingConfig, convert, file_size};
use crate::domain::JobError;
use crate::domain::encoding::{CompressPolicy, Compression, KEEPER_MIN_SAVING, keeper_keeps};

/// Re-encodes the converted `video` (of `size` bytes) at the compression CRF and decides,
/// by the policy, whether the result replaces it. The caller removes whichever file loses.
pub(super) async fn compress(
    cfg: &ProcessingConfig,
    video: &Path,
    probe: &Probe,
    size: u64,
    work_dir: &Path,
) -> Result<(PathBuf, Probe, Compression), JobError> {
    let audio = match probe.audio.as_ref().map(|a| a.codec.as_str()) {
        None => Action::Absent,
        Some("aac") => Action::Copy,
        Some(_) => Action::Encode,
    };
    let (smaller, smaller_probe) = convert(
        cfg,
        video,
        work_dir,
        "compressed.mp4",
        Action::Encode,
        audio,
        &cfg.compress,
        None,
    )
    .await?;
    let mut outcome = Compression {
        policy: cfg.compress_policy,
        crf: cfg.compress.crf,
        input_bytes: size,
        output_bytes: file_size(&smaller).await?,
        ssim: None,
        kept: false,
    };
    outcome.kept = match cfg.compress_policy {
        CompressPolicy::Off => false,
        CompressPolicy::Aggressive => outcome.output_bytes < size,
        CompressPolicy::Keeper => {
            // Comparing costs a decode of both files: only when the saving could be enough.
            if outcome.saving() >= KEEPER_MIN_SAVING {
                let timeout = cfg.compress.timeout;
                outcome.ssim =
                    Some(super::similarity::ssim(&cfg.ffmpeg, video, &smaller, timeout).await?);
            }
            keeper_keeps(outcome.saving(), outcome.ssim)
        }
    };
    Ok((smaller, smaller_probe, outcome))
}
