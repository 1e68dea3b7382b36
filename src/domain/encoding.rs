//! How a stored video came to be from the file that arrived: kept as it came, its streams
//! copied into MP4, or re-encoded (for browsers, or to be smaller). Kept with the item so that
//! nobody has to guess whether the vault's copy lost quality against the source.

use serde::{Deserialize, Serialize};

/// What to do with a converted video over `storage.compress_above_mb`
/// (`processing.compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressPolicy {
    /// Never re-encode to save space.
    Off,
    /// Re-encode, and keep the result only when it saves a lot at no visible cost
    /// ([`keeper_keeps`]).
    Keeper,
    /// Keep any re-encode that is smaller, whatever it costs in quality.
    Aggressive,
}

/// The keeper keeps a compressed encode at least this much smaller than the converted file…
pub const KEEPER_MIN_SAVING: f64 = 0.30;
/// …whose SSIM against the converted file (both scaled to at most 640 px wide) is at least
/// this: differences below it are not visible at normal viewing.
pub const KEEPER_MIN_SSIM: f64 = 0.98;

/// Whether the keeper keeps an encode that saved `saving` (a fraction of the converted size)
/// at `ssim` (`None`: not measured, because the saving alone already ruled it out).
pub fn keeper_keeps(saving: f64, ssim: Option<f64>) -> bool {
    saving >= KEEPER_MIN_SAVING && ssim.is_some_and(|s| s >= KEEPER_MIN_SSIM)
}

/// The file that arrived (downloaded or imported), as ffprobe saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceFile {
    pub container: String,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub bitrate_bps: Option<u64>,
    pub size_bytes: u64,
}

/// What the conversion to a browser-playable MP4 did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conversion {
    /// Stored byte for byte as it arrived.
    Kept,
    /// The streams copied unchanged into a new MP4 (no quality change).
    Remuxed,
    /// Re-encoded (the video, the audio or both) because browsers cannot play the source's.
    Transcoded,
}

/// A compression pass over a large converted file, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compression {
    pub policy: CompressPolicy,
    pub crf: u8,
    /// The converted file's size, and the compressed encode's.
    pub input_bytes: u64,
    pub output_bytes: u64,
    /// The compressed encode's SSIM against the converted file, when measured.
    pub ssim: Option<f64>,
    /// Whether the compressed encode is what was stored.
    pub kept: bool,
}

impl Compression {
    /// The fraction of the converted size the encode saves (negative when it grew).
    pub fn saving(&self) -> f64 {
        if self.input_bytes == 0 {
            return 0.0;
        }
        1.0 - self.output_bytes as f64 / self.input_bytes as f64
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    pub source: SourceFile,
    pub conversion: Conversion,
    pub compression: Option<Compression>,
}

impl Encoding {
    /// Whether the stored video was re-encoded at all, by conversion or compression: the
    /// stored copy is then not the source's own picture.
    pub fn reencoded(&self) -> bool {
        self.conversion == Conversion::Transcoded
            || self.compression.as_ref().is_some_and(|c| c.kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keeper_wants_both_a_large_saving_and_no_visible_loss() {
        assert!(keeper_keeps(0.45, Some(0.99)));
        assert!(keeper_keeps(0.30, Some(0.98)));
        // The measured case from the field: 26% saved at SSIM 0.957.
        assert!(!keeper_keeps(0.26, Some(0.957)));
        assert!(!keeper_keeps(0.50, Some(0.97)));
        assert!(!keeper_keeps(0.29, Some(0.999)));
        assert!(!keeper_keeps(0.60, None));
    }

    #[test]
    fn only_a_transcode_or_a_kept_compression_is_a_reencode() {
        let source = SourceFile {
            container: "mov,mp4".into(),
            video_codec: "h264".into(),
            audio_codec: Some("aac".into()),
            bitrate_bps: Some(1),
            size_bytes: 10,
        };
        let mut encoding = Encoding {
            source,
            conversion: Conversion::Remuxed,
            compression: None,
        };
        assert!(!encoding.reencoded());
        encoding.compression = Some(Compression {
            policy: CompressPolicy::Keeper,
            crf: 30,
            input_bytes: 100,
            output_bytes: 80,
            ssim: None,
            kept: false,
        });
        assert!(!encoding.reencoded());
        assert!((encoding.compression.as_ref().unwrap().saving() - 0.2).abs() < 1e-9);
        encoding.compression.as_mut().unwrap().kept = true;
        assert!(encoding.reencoded());
    }
}
