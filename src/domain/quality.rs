//! Rendition qualities ("480p" …) and the frame size each gives a video.
//!
//! The number names the short side of the picture, so a portrait 1080×1920 video is "1080p"
//! like a landscape 1920×1080 one. Renditions are never larger than the source.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quality {
    P360,
    P480,
    P720,
    P1080,
}

/// The requested quality is above the source's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the source is {source_short_side}p; a {quality} rendition would upscale it")]
pub struct WouldUpscale {
    pub quality: Quality,
    pub source_short_side: u32,
}

impl Quality {
    pub const ALL: [Quality; 4] = [Self::P360, Self::P480, Self::P720, Self::P1080];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::P360 => "360p",
            Self::P480 => "480p",
            Self::P720 => "720p",
            Self::P1080 => "1080p",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == s)
    }

    pub const fn short_side(self) -> u32 {
        match self {
            Self::P360 => 360,
            Self::P480 => 480,
            Self::P720 => 720,
            Self::P1080 => 1080,
        }
    }

    /// The rendition's frame size for a `width`×`height` source: the short side becomes
    /// this quality's, the long side keeps the aspect ratio, both even (H.264 4:2:0).
    pub fn frame_for(self, width: u32, height: u32) -> Result<(u32, u32), WouldUpscale> {
        let short = width.min(height);
        let target = self.short_side();
        if target > short {
            return Err(WouldUpscale {
                quality: self,
                source_short_side: short,
            });
        }
        let long = width.max(height);
        let scaled_long = even((u64::from(long) * u64::from(target)) as f64 / f64::from(short));
        Ok(if width >= height {
            (scaled_long, target)
        } else {
            (target, scaled_long)
        })
    }
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_keep_the_aspect_ratio_and_stay_even() {
        assert_eq!(Quality::P480.frame_for(1280, 720), Ok((854, 480)));
        assert_eq!(Quality::P360.frame_for(640, 360), Ok((640, 360)));
        assert_eq!(Quality::P720.frame_for(1080, 1920), Ok((720, 1280)));
        assert_eq!(Quality::P360.frame_for(1000, 1000), Ok((360, 360)));
        assert_eq!(Quality::P360.frame_for(4000, 361), Ok((3988, 360)));
    }

    #[test]
    fn never_upscales() {
        assert_eq!(
            Quality::P720.frame_for(640, 360),
            Err(WouldUpscale {
                quality: Quality::P720,
                source_short_side: 360
            })
        );
        assert!(Quality::P1080.frame_for(1920, 1079).is_err());
    }

    #[test]
    fn names_round_trip() {
        for q in Quality::ALL {
            assert_eq!(Quality::parse(q.as_str()), Some(q));
        }
        assert_eq!(Quality::parse("4k"), None);
    }
}
