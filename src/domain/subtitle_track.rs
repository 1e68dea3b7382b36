//! A stored subtitle track: which language, how big, whether a machine wrote it.
//!
//! The language code comes from the source (a page's `srclang`, a container's tag), so it is
//! checked before it names a file: only ASCII letters and digits in `-`-separated parts, at
//! most 35 bytes (the longest BCP 47 tag in use), which is also what yt-dlp is asked for.

use serde::{Deserialize, Serialize};

/// Most subtitle tracks one item keeps; a source offering more (YouTube offers a hundred
/// machine translations) gets the first ones.
pub const MAX_TRACKS: usize = 20;

/// A checked subtitle language code (`en`, `pt-BR`, `en-orig`, `und`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubtitleLang(String);

impl SubtitleLang {
    pub fn parse(code: &str) -> Option<Self> {
        let well_formed = !code.is_empty()
            && code.len() <= 35
            && code
                .split('-')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
        well_formed.then(|| Self(code.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SubtitleLang {
    type Error = String;

    fn try_from(code: String) -> Result<Self, String> {
        Self::parse(&code).ok_or_else(|| format!("not a subtitle language code: {code:?}"))
    }
}

impl From<SubtitleLang> for String {
    fn from(lang: SubtitleLang) -> String {
        lang.0
    }
}

impl std::fmt::Display for SubtitleLang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stored WebVTT sidecar of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtitleTrack {
    pub lang: SubtitleLang,
    pub bytes: u64,
    pub cues: u64,
    /// Captions a machine made (speech recognition), not the author's.
    #[serde(default)]
    pub auto: bool,
}

/// A language for automatic captions in `subtitles.auto_langs`: a code (`en`), or `*-orig`
/// for whatever language a video was spoken in (YouTube's untranslated captions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoLang {
    Exact(SubtitleLang),
    Original,
}

impl AutoLang {
    pub fn parse(entry: &str) -> Option<Self> {
        if entry == "*-orig" {
            return Some(Self::Original);
        }
        SubtitleLang::parse(entry).map(Self::Exact)
    }

    pub fn matches(&self, code: &str) -> bool {
        match self {
            Self::Exact(lang) => lang.as_str().eq_ignore_ascii_case(code),
            Self::Original => code.len() > 5 && code.ends_with("-orig"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_language_codes_may_name_a_file() {
        for good in ["en", "pt-BR", "en-orig", "zh-Hant-TW", "und", "a"] {
            assert!(SubtitleLang::parse(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "-",
            "en-",
            "-en",
            "en--us",
            "../x",
            "en/x",
            "en.vtt",
            "live_chat",
            "en US",
            "é",
            &"a".repeat(36),
        ] {
            assert!(SubtitleLang::parse(bad).is_none(), "{bad:?}");
        }
        let parsed: Result<SubtitleTrack, _> =
            serde_json::from_str(r#"{"lang":"../../etc","bytes":1,"cues":1}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn automatic_caption_languages_match_codes_and_original_tracks() {
        let en = AutoLang::parse("en").unwrap();
        assert!(en.matches("en") && en.matches("EN") && !en.matches("en-orig"));
        let orig = AutoLang::parse("*-orig").unwrap();
        assert!(orig.matches("de-orig") && !orig.matches("-orig") && !orig.matches("de"));
        assert_eq!(AutoLang::parse("*"), None);
    }
}
