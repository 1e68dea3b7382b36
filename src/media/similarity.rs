//! How alike two encodes of the same video look: ffmpeg's `ssim` filter over every frame, both
//! scaled to at most 640 px wide first (the keeper's rule: fine detail that only a full-size
//! comparison sees is not what decides whether a copy looks the same, and the scaled
//! comparison costs a fraction of a full one).

use std::path::Path;
use std::time::Duration;

use super::ffprobe::{file_url, safe_input_args};
use super::process::Tool;
use crate::domain::{ErrorCode, JobError};

/// The argv comparing `candidate` against `reference`; the result is the `All:` figure of the
/// summary ffmpeg logs at `info`.
pub fn ssim_args(reference: &Path, candidate: &Path) -> Vec<String> {
    let mut args = vec![
        "-nostdin".to_string(),
        "-hide_banner".into(),
        "-nostats".into(),
    ];
    args.extend(["-v", "info"].map(String::from));
    for input in [candidate, reference] {
        args.extend(safe_input_args().iter().map(|s| s.to_string()));
        args.push("-i".into());
        args.push(file_url(input));
    }
    args.push("-lavfi".into());
    args.push(
        "[0:v:0]scale=w=min(640\\,iw):h=-2,setsar=1[c];\
         [1:v:0]scale=w=min(640\\,iw):h=-2,setsar=1[r];[c][r]ssim"
            .into(),
    );
    args.extend(["-an", "-f", "null", "-"].map(String::from));
    args
}

/// The overall SSIM in ffmpeg's summary line (`SSIM Y:… U:… V:… All:0.987654 (19.08)`).
pub fn parse_ssim(stderr: &str) -> Option<f64> {
    let line = stderr.lines().rev().find(|l| l.contains("SSIM Y:"))?;
    let all = line.split("All:").nth(1)?;
    let value: f64 = all.split_whitespace().next()?.parse().ok()?;
    (0.0..=1.0).contains(&value).then_some(value)
}

/// The SSIM of `candidate` against `reference`.
pub async fn ssim(
    ffmpeg: &Path,
    reference: &Path,
    candidate: &Path,
    timeout: Duration,
) -> Result<f64, JobError> {
    let output = Tool::new(ffmpeg, timeout)
        .args(ssim_args(reference, candidate))
        .run()
        .await
        .map_err(|e| JobError::new(e.code(), format!("comparing the encodes failed: {e}")))?;
    parse_ssim(&output.stderr).ok_or_else(|| {
        JobError::new(
            ErrorCode::ProcessingFailed,
            "ffmpeg's comparison of the encodes printed no SSIM",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_overall_figure_of_the_summary() {
        let stderr = "Input #0, mov,mp4 ...\n[Parsed_ssim_4 @ 0x55] SSIM Y:0.991 (20.4) U:0.995 (23.1) V:0.994 (22.2) All:0.992521 (21.26)\n";
        assert_eq!(parse_ssim(stderr), Some(0.992521));
        assert_eq!(parse_ssim("no summary"), None);
        assert_eq!(parse_ssim("SSIM Y:1 All:inf (inf)"), None);
    }

    #[test]
    fn every_input_is_restricted_and_both_are_scaled_alike() {
        let args = ssim_args(
            Path::new("/w/converted.mp4"),
            Path::new("/w/compressed.mp4"),
        );
        let whitelists = args.iter().filter(|a| *a == "-protocol_whitelist").count();
        assert_eq!(whitelists, 2, "{args:?}");
        let graph = &args[args.iter().position(|a| a == "-lavfi").unwrap() + 1];
        assert_eq!(graph.matches("min(640\\,iw)").count(), 2, "{graph}");
        assert_eq!(args.last().map(String::as_str), Some("-"));
    }
}
