//! The `[subtitles]` section: whether captures keep subtitles, and which automatic captions.

use serde::Deserialize;

use super::SettingsError;
use crate::domain::subtitle_track::AutoLang;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubtitles {
    pub enabled: bool,
    pub auto_langs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SubtitleSettings {
    /// Keep the author's subtitles (and embedded text subtitles of files).
    pub enabled: bool,
    /// Automatic captions wanted, in this order; empty: none.
    pub auto_langs: Vec<AutoLang>,
}

pub(super) fn subtitles(raw: RawSubtitles) -> Result<SubtitleSettings, SettingsError> {
    let auto_langs = raw
        .auto_langs
        .iter()
        .map(|entry| {
            AutoLang::parse(entry).ok_or_else(|| {
                SettingsError::invalid(
                    "subtitles.auto_langs",
                    format!("{entry:?} is neither a language code (en, pt-BR) nor \"*-orig\""),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(SubtitleSettings {
        enabled: raw.enabled,
        auto_langs,
    })
}
