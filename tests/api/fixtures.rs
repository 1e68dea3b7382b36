//! Media fixtures made with ffmpeg's lavfi sources, once per test run.
//!
//! Files are cached under `target/test-fixtures/<version>/` (written to a temporary name and
//! renamed, so concurrent test processes never see half a file); bump VERSION when a recipe
//! changes. Every recipe is deterministic: a source or filter with random parameters gets them
//! fixed (a seed, explicit colours), so that a threshold a test checks is met on every run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const VERSION: &str = "v2";

pub struct Fixtures {
    pub dir: PathBuf,
}

/// What each fixture is and how to make it.
const RECIPES: &[(&str, &[&str])] = &[
    // H.264/AAC with the index in front: needs no ffmpeg pass at all.
    (
        "h264_aac_faststart.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
        ],
    ),
    // The same codecs with the index at the end (ffmpeg's default): remuxed.
    (
        "h264_aac.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    ),
    (
        "vp9_opus.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:duration=2",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-b:v",
            "300k",
            "-c:a",
            "libopus",
            "-shortest",
        ],
    ),
    (
        "hevc_aac.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=550:duration=2",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-c:a",
            "aac",
            "-shortest",
        ],
    ),
    (
        "mpeg4_pcm.avi",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660:duration=2",
            "-c:v",
            "mpeg4",
            "-q:v",
            "5",
            "-c:a",
            "pcm_s16le",
            "-shortest",
        ],
    ),
    // Long enough that transcoding it takes seconds (to cancel a transcode mid-way).
    (
        "long_720p.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30:duration=20",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
        ],
    ),
    (
        "h264_silent.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24:duration=2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    ),
    // Noise at near-lossless quality: several MiB for a few seconds, and very compressible
    // at normal quality.
    (
        "big_noisy.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30:duration=4",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=4",
            "-vf",
            // A fixed seed: every run makes the same bytes.
            "noise=alls=20:allf=t:all_seed=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "4",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
        ],
    ),
    // The corpus of complete files in several containers, as the real tools write them (6 s
    // each). AVI's index counts one video frame more than it holds.
    (
        "corpus_mpeg4_mp3.avi",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-c:v",
            "mpeg4",
            "-c:a",
            "libmp3lame",
            "-shortest",
        ],
    ),
    // Flash video, as old sites still serve it.
    (
        "corpus_flv1_mp3.flv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-c:v",
            "flv",
            "-c:a",
            "libmp3lame",
            "-ar",
            "44100",
            "-shortest",
        ],
    ),
    // MPEG-TS, as a recorder or an HLS download leaves it.
    (
        "corpus_h264_aac.ts",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    ),
    // QuickTime, as a phone writes it.
    (
        "corpus_h264_aac.mov",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    ),
    // 3GP, as an old phone writes it.
    (
        "corpus_h263_aac.3gp",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=352x288:rate=25:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-c:v",
            "h263",
            "-c:a",
            "aac",
            "-ar",
            "8000",
            "-ac",
            "1",
            "-shortest",
        ],
    ),
    // WebM with the older codecs.
    (
        "corpus_vp8_vorbis.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-c:v",
            "libvpx",
            "-c:a",
            "libvorbis",
            "-shortest",
        ],
    ),
    // Matroska around the AVI's codecs.
    (
        "corpus_mpeg4_mp3.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-c:v",
            "mpeg4",
            "-c:a",
            "libmp3lame",
            "-shortest",
        ],
    ),
    // Smooth, slow gradients at near-lossless quality: several MiB that a compression pass
    // shrinks many times over with no visible difference.
    (
        "smooth_720p.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            // Colours and end points spelled out: left unset, ffmpeg 5.1 picks them at
            // random whatever the seed, and a fixture that changes between runs made the
            // keeper's decision change with it.
            "gradients=size=1280x720:rate=30:duration=4:speed=0.05:seed=1:nb_colors=3:c0=0x203060:c1=0xd0a070:c2=0x60b040:x0=0:y0=0:x1=1279:y1=719",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
        ],
    ),
    // Photos, as the Telegram bot would download them: one JPEG picture each.
    (
        "photo.jpg",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1600x900",
            "-frames:v",
            "1",
        ],
    ),
    // Narrower than the smallest thumbnail: thumbnails keep its width.
    (
        "small.jpg",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=100x80",
            "-frames:v",
            "1",
        ],
    ),
    // A picture, but not a JPEG: refused as an image.
    (
        "small.png",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=100x80",
            "-frames:v",
            "1",
        ],
    ),
];

pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("test-fixtures")
            .join(VERSION);
        std::fs::create_dir_all(&dir).expect("fixture directory");
        for (name, args) in RECIPES {
            let path = dir.join(name);
            if path.exists() {
                continue;
            }
            let partial = dir.join(format!(
                ".{name}.{}.partial{}",
                std::process::id(),
                extension(name)
            ));
            let status = Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-y"])
                .args(*args)
                .arg(&partial)
                .status()
                .expect("ffmpeg must be installed to run the tests");
            assert!(status.success(), "ffmpeg could not make fixture {name}");
            std::fs::rename(&partial, &path).expect("fixture rename");
        }
        make_hls(&dir.join("hls_announces_1080p"));
        let truncated = dir.join("truncated.mp4");
        if !truncated.exists() {
            let full = std::fs::read(dir.join("h264_aac.mp4")).unwrap();
            let partial = dir.join(format!(".truncated.{}.partial", std::process::id()));
            std::fs::write(&partial, &full[..full.len() / 2]).unwrap();
            std::fs::rename(&partial, &truncated).unwrap();
        }
        Fixtures { dir }
    })
}

/// An HLS stream whose master playlist announces 1080p while its only variant is 240p: what a
/// throttling platform looks like to yt-dlp.
fn make_hls(dir: &Path) {
    if dir.join("master.m3u8").exists() {
        return;
    }
    let partial = dir.with_extension(format!("partial{}", std::process::id()));
    std::fs::create_dir_all(&partial).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=3",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .args([
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_playlist_type",
            "vod",
            "-hls_segment_filename",
        ])
        .arg(partial.join("seg%d.ts"))
        .arg(partial.join("media.m3u8"))
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg could not make the HLS fixture");
    std::fs::write(
        partial.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=6000000,RESOLUTION=1920x1080,CODECS=\"avc1.640028,mp4a.40.2\"\nmedia.m3u8\n",
    )
    .unwrap();
    std::fs::rename(&partial, dir).unwrap();
}

/// ffmpeg picks the muxer from the extension, so the temporary name keeps it.
fn extension(name: &str) -> String {
    Path::new(name)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default()
}

impl Fixtures {
    pub fn path(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        assert!(path.exists(), "no fixture {name}");
        path
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

/// What ffprobe says about a file, for comparing stored metadata with the tool's own view.
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        output.status.success(),
        "ffprobe failed on {}",
        path.display()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The first stream of `kind` ("video"/"audio") in an ffprobe report.
pub fn stream<'a>(probe: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    probe["streams"]
        .as_array()?
        .iter()
        .find(|s| s["codec_type"] == kind)
}

/// Width of an image file, by ffprobe.
pub fn image_width(path: &Path) -> u64 {
    stream(&ffprobe(path), "video")
        .and_then(|s| s["width"].as_u64())
        .expect("image width")
}
