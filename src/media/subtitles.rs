//! A capture's subtitles: the author's files yt-dlp left in `subs/`, and the text subtitle
//! streams inside the source file, each re-validated and rewritten as clean WebVTT in the
//! work directory (`subtitles/{lang}.vtt`), ready for the StorageActor to move into the tree.
//!
//! Everything here is best effort: a subtitle that cannot be read, parsed or extracted is
//! logged and left out, never a reason to fail the capture (the video is what was asked for).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ffmpeg;
use super::ffprobe::Probe;
use crate::domain::subtitle_track::{MAX_TRACKS, SubtitleLang, SubtitleTrack};
use crate::domain::subtitles::{self, Cue, SubtitleFormat};
use crate::media::ytdlp::{AUTO_DIR, SUBTITLE_DIR};

/// A subtitle track written in the work directory, with its cues (for the search index).
#[derive(Debug, Clone)]
pub struct GatheredSubtitle {
    pub track: SubtitleTrack,
    pub path: PathBuf,
    pub cues: Vec<Cue>,
}

/// Everything the capture offers: the downloaded files first (the author's, named by the
/// source), then the file's own streams in languages not already taken.
pub async fn gather(
    ffmpeg_path: &Path,
    timeout: Duration,
    source: &Path,
    probe: &Probe,
    work_dir: &Path,
) -> Vec<GatheredSubtitle> {
    let out_dir = work_dir.join("subtitles");
    if let Err(e) = tokio::fs::create_dir_all(&out_dir).await {
        tracing::warn!(error = %e, "cannot make the subtitles work folder; subtitles skipped");
        return Vec::new();
    }
    let downloaded = work_dir.join(SUBTITLE_DIR);
    let dir = out_dir.clone();
    let mut gathered = tokio::task::spawn_blocking(move || {
        let mut found = from_downloads(&downloaded, &dir, false, &BTreeSet::new());
        // Automatic captions only in languages the author's subtitles left free.
        let taken: BTreeSet<SubtitleLang> = found.iter().map(|g| g.track.lang.clone()).collect();
        found.extend(from_downloads(
            &downloaded.join(AUTO_DIR),
            &dir,
            true,
            &taken,
        ));
        found
    })
    .await
    .unwrap_or_default();
    if !probe.text_subtitles.is_empty() && gathered.len() < MAX_TRACKS {
        let taken: BTreeSet<SubtitleLang> = gathered.iter().map(|g| g.track.lang.clone()).collect();
        // ffmpeg's raw output goes to a folder of its own: a language code from the file or
        // a page must never name (and so overwrite or remove) another track's file.
        let raw_dir = work_dir.join("subtitles-raw");
        if tokio::fs::create_dir_all(&raw_dir).await.is_ok() {
            let embedded = embedded(
                ffmpeg_path,
                timeout,
                source,
                probe,
                (&raw_dir, &out_dir),
                taken,
            )
            .await;
            gathered.extend(embedded);
        }
    }
    gathered.truncate(MAX_TRACKS);
    cap_indexed_cues(&mut gathered);
    gathered
}

/// The search index keeps at most [`subtitles::MAX_CUES`] cues of one video, over all its
/// tracks (the sidecars keep every cue): one completion's transaction stays short.
fn cap_indexed_cues(gathered: &mut [GatheredSubtitle]) {
    let mut room = subtitles::MAX_CUES;
    for track in gathered {
        track.cues.truncate(room);
        room -= track.cues.len();
    }
}

/// The files yt-dlp wrote: `{stem}.{lang}.{vtt|srt}`, regular files only (never through a
/// link), in a stable order, except languages already `taken`.
fn from_downloads(
    dir: &Path,
    out_dir: &Path,
    auto: bool,
    taken: &BTreeSet<SubtitleLang>,
) -> Vec<GatheredSubtitle> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(SubtitleLang, SubtitleFormat, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let mut parts = name.rsplitn(3, '.');
            let format = SubtitleFormat::from_extension(parts.next()?)?;
            let lang = SubtitleLang::parse(parts.next()?).filter(|l| !taken.contains(l))?;
            parts.next()?;
            Some((lang, format, e.path()))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    found
        .into_iter()
        .take(MAX_TRACKS)
        .filter_map(|(lang, format, path)| convert(&path, format, lang, auto, out_dir))
        .collect()
}

/// Reads, checks and rewrites one subtitle file; `None` (logged) when it is not usable.
fn convert(
    path: &Path,
    format: SubtitleFormat,
    lang: SubtitleLang,
    auto: bool,
    out_dir: &Path,
) -> Option<GatheredSubtitle> {
    let bytes = match read_capped(path, subtitles::MAX_BYTES as u64 + 1) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(%lang, error = %e, "cannot read a subtitle file; left out");
            return None;
        }
    };
    let cues = match subtitles::parse(&bytes, format) {
        Ok(parsed) => {
            if parsed.cues_dropped > 0 || parsed.texts_cut > 0 {
                tracing::warn!(
                    %lang,
                    kept = parsed.cues.len(),
                    cues_dropped = parsed.cues_dropped,
                    texts_cut = parsed.texts_cut,
                    max_cues = subtitles::MAX_CUES,
                    max_cue_chars = subtitles::MAX_CUE_CHARS,
                    "a subtitle file is larger than kept: cues past the cap are left out, \
                     longer cue texts cut"
                );
            }
            parsed.cues
        }
        Err(e) => {
            tracing::warn!(%lang, error = %e, "a subtitle file is not usable; left out");
            return None;
        }
    };
    let vtt = subtitles::to_webvtt(&cues);
    let out = out_dir.join(format!("{lang}.vtt"));
    if let Err(e) = std::fs::write(&out, vtt.as_bytes()) {
        tracing::warn!(%lang, error = %e, "cannot write a subtitle file; left out");
        return None;
    }
    Some(GatheredSubtitle {
        track: SubtitleTrack {
            lang,
            bytes: vtt.len() as u64,
            cues: cues.len() as u64,
            auto,
        },
        path: out,
        cues,
    })
}

/// At most `cap` bytes of the regular file at `path` (never through a link): a larger file
/// reads as `cap` bytes, which the parser refuses as too large.
fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The file's own text subtitle streams, extracted by ffmpeg in one pass. A stream without a
/// usable language tag is `und`; a second stream in a language already taken gets `-2`,
/// `-3`… so none overwrites another.
async fn embedded(
    ffmpeg_path: &Path,
    timeout: Duration,
    source: &Path,
    probe: &Probe,
    (raw_dir, out_dir): (&Path, &Path),
    mut taken: BTreeSet<SubtitleLang>,
) -> Vec<GatheredSubtitle> {
    let room = MAX_TRACKS.saturating_sub(taken.len());
    let mut wanted = Vec::new();
    for stream in probe.text_subtitles.iter().take(room) {
        let base = stream
            .language
            .as_deref()
            .and_then(SubtitleLang::parse)
            .unwrap_or_else(|| SubtitleLang::parse("und").expect("a valid code"));
        let lang = (1..=MAX_TRACKS)
            .filter_map(|n| match n {
                1 => Some(base.clone()),
                n => SubtitleLang::parse(&format!("{base}-{n}")),
            })
            .find(|lang| !taken.contains(lang));
        let Some(lang) = lang else { continue };
        taken.insert(lang.clone());
        let raw = raw_dir.join(format!("{}.vtt", stream.index));
        wanted.push((stream.index, lang, raw));
    }
    let outputs: Vec<(u32, &Path)> = wanted.iter().map(|(i, _, p)| (*i, p.as_path())).collect();
    if let Err(e) = ffmpeg::run(
        ffmpeg_path,
        ffmpeg::subtitle_args(source, &outputs),
        timeout,
    )
    .await
    {
        tracing::warn!(error = %e, "cannot extract the file's subtitles; left out");
        return Vec::new();
    }
    let dir = out_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .filter_map(|(_, lang, raw)| {
                let made = convert(&raw, SubtitleFormat::Vtt, lang, false, &dir);
                let _ = std::fs::remove_file(&raw);
                made
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}
