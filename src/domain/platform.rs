//! Which platform a URL belongs to, the platform's own media id when the URL carries one,
//! and a canonical form of the URL (tracking parameters removed, one spelling per video).
//!
//! Each platform has its own downloader actor, so this choice routes a job to the right rate
//! limit, concurrency cap and circuit breaker; the media id and the canonical URL are what
//! duplicate submissions are recognised by.

use std::fmt;

use url::Url;

use super::capture_url::CaptureUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    Youtube,
    Instagram,
    Twitter,
    Tiktok,
    Generic,
}

impl Platform {
    pub const ALL: [Platform; 5] = [
        Self::Youtube,
        Self::Instagram,
        Self::Twitter,
        Self::Tiktok,
        Self::Generic,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Youtube => "youtube",
            Self::Instagram => "instagram",
            Self::Twitter => "twitter",
            Self::Tiktok => "tiktok",
            Self::Generic => "generic",
        }
    }

    /// The name people know it by, for messages.
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::Youtube => "YouTube",
            Self::Instagram => "Instagram",
            Self::Twitter => "X/Twitter",
            Self::Tiktok => "TikTok",
            Self::Generic => "web",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The platform whose site `host` belongs to (the domain itself or any subdomain).
    pub fn for_host(host: &str) -> Self {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let on = |domain: &str| {
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|prefix| prefix.ends_with('.'))
        };
        if ["youtube.com", "youtu.be", "youtube-nocookie.com"]
            .iter()
            .any(|d| on(d))
        {
            Self::Youtube
        } else if ["instagram.com", "instagr.am"].iter().any(|d| on(d)) {
            Self::Instagram
        } else if [
            "twitter.com",
            "x.com",
            "fxtwitter.com",
            "vxtwitter.com",
            "fixupx.com",
            "fixvx.com",
        ]
        .iter()
        .any(|d| on(d))
        {
            Self::Twitter
        } else if on("tiktok.com") {
            Self::Tiktok
        } else {
            Self::Generic
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Extra hosts an operator (or a test) assigns to a platform, as `host` or `host:port`.
#[derive(Debug, Clone, Default)]
pub struct HostMap {
    entries: Vec<(String, Platform)>,
}

impl HostMap {
    pub fn new(entries: impl IntoIterator<Item = (String, Platform)>) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|(h, p)| (h.to_ascii_lowercase(), p))
                .collect(),
        }
    }

    fn lookup(&self, url: &Url) -> Option<Platform> {
        let host = url.host_str()?.to_ascii_lowercase();
        let with_port = url.port().map(|p| format!("{host}:{p}"));
        self.entries
            .iter()
            .find(|(h, _)| *h == host || with_port.as_deref() == Some(h.as_str()))
            .map(|(_, p)| *p)
    }
}

/// What a URL is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub platform: Platform,
    /// The platform's id of the video (YouTube video id, Instagram shortcode, tweet id,
    /// TikTok video id) when the URL names one.
    pub media_id: Option<String>,
    /// The URL to store and download: one spelling per video, without tracking parameters.
    pub canonical: CaptureUrl,
}

/// Query parameters that only track who shared what; they never change the video.
fn is_tracking_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_")
        || [
            "fbclid",
            "gclid",
            "dclid",
            "gbraid",
            "wbraid",
            "msclkid",
            "yclid",
            "mc_cid",
            "mc_eid",
            "igshid",
            "igsh",
            "si",
            "feature",
            "ref_src",
            "ref_url",
            "_hsenc",
            "_hsmi",
            "is_from_webapp",
            "sender_device",
            "share_app_id",
            "share_link_id",
            "tt_from",
        ]
        .contains(&name.as_str())
}

/// `url` without tracking parameters (and without an empty `?`).
fn without_tracking(url: &Url) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking_parameter(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut clean = url.clone();
    if kept.is_empty() {
        clean.set_query(None);
    } else {
        clean.query_pairs_mut().clear().extend_pairs(kept);
    }
    clean
}

fn segments(url: &Url) -> Vec<&str> {
    url.path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default()
}

fn valid(
    id: &str,
    allowed: impl Fn(char) -> bool,
    lengths: std::ops::RangeInclusive<usize>,
) -> Option<String> {
    (lengths.contains(&id.len()) && id.chars().all(allowed)).then(|| id.to_string())
}

fn youtube_id(url: &Url) -> Option<String> {
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let id = |s: &str| valid(s, is_id_char, 11..=11);
    let host = url.host_str().unwrap_or_default();
    let parts = segments(url);
    if host.ends_with("youtu.be") {
        return parts.first().and_then(|s| id(s));
    }
    match parts.as_slice() {
        ["watch", ..] => url
            .query_pairs()
            .find(|(k, _)| k == "v")
            .and_then(|(_, v)| id(&v)),
        ["shorts" | "live" | "embed" | "v" | "e", video, ..] => id(video),
        _ => None,
    }
}

fn instagram_id(url: &Url) -> Option<String> {
    let is_code_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let parts = segments(url);
    // /p/CODE, /reel/CODE, /reels/CODE, /tv/CODE, also behind a user name: /USER/p/CODE.
    let kind_at = parts
        .iter()
        .position(|p| matches!(*p, "p" | "reel" | "reels" | "tv"))?;
    if kind_at > 1 {
        return None;
    }
    parts
        .get(kind_at + 1)
        .and_then(|code| valid(code, is_code_char, 5..=64))
}

fn twitter_id(url: &Url) -> Option<String> {
    let parts = segments(url);
    // /USER/status/ID, /USER/statuses/ID, /i/status/ID, /i/web/status/ID (+ /video/1 …).
    let at = parts
        .iter()
        .position(|p| matches!(*p, "status" | "statuses"))?;
    if at == 0 || at > 2 {
        return None;
    }
    parts
        .get(at + 1)
        .and_then(|id| valid(id, |c| c.is_ascii_digit(), 1..=25))
}

fn tiktok_id(url: &Url) -> Option<String> {
    let parts = segments(url);
    let digits = |s: &str| valid(s, |c| c.is_ascii_digit(), 8..=25);
    match parts.as_slice() {
        [user, "video" | "photo", id, ..] if user.starts_with('@') => digits(id),
        ["v", file] => digits(file.trim_end_matches(".html")),
        ["embed", "v2", id] | ["embed", id] => digits(id),
        _ => None,
    }
}

fn canonical_for(platform: Platform, url: &Url, media_id: Option<&str>) -> String {
    match (platform, media_id) {
        (Platform::Youtube, Some(id)) => format!("https://www.youtube.com/watch?v={id}"),
        (Platform::Instagram, Some(code)) => format!("https://www.instagram.com/p/{code}/"),
        (Platform::Twitter, Some(id)) => format!("https://x.com/i/status/{id}"),
        (Platform::Tiktok, Some(id)) => {
            let user = segments(url)
                .first()
                .filter(|s| s.starts_with('@'))
                .map_or("@_", |u| u)
                .to_string();
            format!("https://www.tiktok.com/{user}/video/{id}")
        }
        _ => without_tracking(url).to_string(),
    }
}

/// Classifies `url`. Hosts in `extra` count as their platform; a platform's id patterns then
/// apply to them too (so a test fixture can play YouTube).
pub fn detect(url: &CaptureUrl, extra: &HostMap) -> Detection {
    let parsed = url.url();
    let mapped = extra.lookup(parsed);
    let platform =
        mapped.unwrap_or_else(|| Platform::for_host(parsed.host_str().unwrap_or_default()));
    let media_id = match platform {
        Platform::Youtube => youtube_id(parsed),
        Platform::Instagram => instagram_id(parsed),
        Platform::Twitter => twitter_id(parsed),
        Platform::Tiktok => tiktok_id(parsed),
        Platform::Generic => None,
    };
    // Mapped hosts keep their own address (they are not the real site); only tracking goes.
    let canonical = if mapped.is_some() {
        without_tracking(parsed).to_string()
    } else {
        canonical_for(platform, parsed, media_id.as_deref())
    };
    Detection {
        platform,
        media_id,
        canonical: CaptureUrl::parse(&canonical).unwrap_or_else(|_| url.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, platform: Platform, id: Option<&str>, canonical: &str) {
        let url = CaptureUrl::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        let d = detect(&url, &HostMap::default());
        assert_eq!(d.platform, platform, "{input}");
        assert_eq!(d.media_id.as_deref(), id, "{input}");
        assert_eq!(d.canonical.as_str(), canonical, "{input}");
    }

    const YT: &str = "https://www.youtube.com/watch?v=dQw4w9WgXcQ";

    #[test]
    fn youtube_shapes() {
        use Platform::Youtube as P;
        let id = Some("dQw4w9WgXcQ");
        for input in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com/watch?v=dQw4w9WgXcQ",
            "http://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://m.youtube.com/watch?v=dQw4w9WgXcQ&feature=share",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ&si=abc123",
            "https://www.youtube.com/watch?feature=youtu.be&v=dQw4w9WgXcQ",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs&index=2",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ?si=Q1w2E3r4T5y6",
            "https://youtu.be/dQw4w9WgXcQ?t=10",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "https://youtube.com/shorts/dQw4w9WgXcQ?feature=share",
            "https://www.youtube.com/live/dQw4w9WgXcQ?si=xyz",
            "https://www.youtube.com/embed/dQw4w9WgXcQ",
            "https://www.youtube.com/embed/dQw4w9WgXcQ?autoplay=1",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
            "https://www.youtube.com/v/dQw4w9WgXcQ",
            "https://WWW.YOUTUBE.COM/watch?v=dQw4w9WgXcQ#t=30",
        ] {
            check(input, P, id, YT);
        }
        // No video id: channels, playlists, malformed ids keep their (cleaned) URL.
        check(
            "https://www.youtube.com/@somechannel",
            P,
            None,
            "https://www.youtube.com/@somechannel",
        );
        check(
            "https://www.youtube.com/playlist?list=PL123&si=x",
            P,
            None,
            "https://www.youtube.com/playlist?list=PL123",
        );
        check(
            "https://www.youtube.com/watch?v=short",
            P,
            None,
            "https://www.youtube.com/watch?v=short",
        );
        check("https://youtu.be/", P, None, "https://youtu.be/");
    }

    #[test]
    fn instagram_shapes() {
        use Platform::Instagram as P;
        let canonical = "https://www.instagram.com/p/C0dE_x-12/";
        for input in [
            "https://www.instagram.com/p/C0dE_x-12/",
            "https://instagram.com/p/C0dE_x-12",
            "https://www.instagram.com/p/C0dE_x-12/?igshid=MzRlODBiNWFlZA==",
            "https://www.instagram.com/p/C0dE_x-12/?utm_source=ig_web_copy_link&igsh=abc",
            "https://www.instagram.com/reel/C0dE_x-12/",
            "https://www.instagram.com/reel/C0dE_x-12/?utm_source=ig_web_copy_link",
            "https://www.instagram.com/reels/C0dE_x-12/",
            "https://www.instagram.com/tv/C0dE_x-12/",
            "https://www.instagram.com/someuser/p/C0dE_x-12/",
            "https://www.instagram.com/someuser/reel/C0dE_x-12/?hl=en",
            "https://instagr.am/p/C0dE_x-12/",
        ] {
            check(input, P, Some("C0dE_x-12"), canonical);
        }
        check(
            "https://www.instagram.com/someuser/",
            P,
            None,
            "https://www.instagram.com/someuser/",
        );
        check(
            "https://www.instagram.com/stories/someuser/123/",
            P,
            None,
            "https://www.instagram.com/stories/someuser/123/",
        );
    }

    #[test]
    fn twitter_shapes() {
        use Platform::Twitter as P;
        let canonical = "https://x.com/i/status/1790000000000000001";
        for input in [
            "https://twitter.com/someone/status/1790000000000000001",
            "https://www.twitter.com/someone/status/1790000000000000001?s=20",
            "https://mobile.twitter.com/someone/status/1790000000000000001",
            "https://x.com/someone/status/1790000000000000001",
            "https://x.com/someone/status/1790000000000000001?s=46&t=abcDEF",
            "https://x.com/someone/status/1790000000000000001/video/1",
            "https://x.com/i/status/1790000000000000001",
            "https://twitter.com/i/web/status/1790000000000000001",
            "https://twitter.com/someone/statuses/1790000000000000001",
            "https://fxtwitter.com/someone/status/1790000000000000001",
            "https://vxtwitter.com/someone/status/1790000000000000001",
            "https://fixupx.com/someone/status/1790000000000000001",
        ] {
            check(input, P, Some("1790000000000000001"), canonical);
        }
        check("https://x.com/someone", P, None, "https://x.com/someone");
        check(
            "https://x.com/someone/status/notanumber",
            P,
            None,
            "https://x.com/someone/status/notanumber",
        );
    }

    #[test]
    fn tiktok_shapes() {
        use Platform::Tiktok as P;
        let id = Some("7234567890123456789");
        check(
            "https://www.tiktok.com/@some.user/video/7234567890123456789",
            P,
            id,
            "https://www.tiktok.com/@some.user/video/7234567890123456789",
        );
        check(
            "https://www.tiktok.com/@some.user/video/7234567890123456789?is_from_webapp=1&sender_device=pc",
            P,
            id,
            "https://www.tiktok.com/@some.user/video/7234567890123456789",
        );
        check(
            "https://tiktok.com/@some.user/video/7234567890123456789?lang=en",
            P,
            id,
            "https://www.tiktok.com/@some.user/video/7234567890123456789",
        );
        check(
            "https://m.tiktok.com/v/7234567890123456789.html",
            P,
            id,
            "https://www.tiktok.com/@_/video/7234567890123456789",
        );
        check(
            "https://www.tiktok.com/embed/v2/7234567890123456789",
            P,
            id,
            "https://www.tiktok.com/@_/video/7234567890123456789",
        );
        // Short links name no id until they are followed.
        check(
            "https://vm.tiktok.com/ZMabc123/",
            P,
            None,
            "https://vm.tiktok.com/ZMabc123/",
        );
        check(
            "https://vt.tiktok.com/ZSxyz789/?utm_source=copy",
            P,
            None,
            "https://vt.tiktok.com/ZSxyz789/",
        );
        check(
            "https://www.tiktok.com/t/ZTRabc123/",
            P,
            None,
            "https://www.tiktok.com/t/ZTRabc123/",
        );
        check(
            "https://www.tiktok.com/@some.user",
            P,
            None,
            "https://www.tiktok.com/@some.user",
        );
    }

    #[test]
    fn everything_else_is_generic_with_tracking_removed() {
        use Platform::Generic as P;
        check(
            "https://example.com/video.mp4",
            P,
            None,
            "https://example.com/video.mp4",
        );
        check(
            "https://example.com/v.mp4?utm_source=x&utm_medium=y&fbclid=z",
            P,
            None,
            "https://example.com/v.mp4",
        );
        check(
            "https://example.com/watch?id=7&gclid=abc&ref=home",
            P,
            None,
            "https://example.com/watch?id=7&ref=home",
        );
        check(
            "https://vimeo.com/123456789",
            P,
            None,
            "https://vimeo.com/123456789",
        );
        check(
            "https://notyoutube.com/watch?v=dQw4w9WgXcQ",
            P,
            None,
            "https://notyoutube.com/watch?v=dQw4w9WgXcQ",
        );
        check(
            "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
            P,
            None,
            "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
        );
        check(
            "http://127.0.0.1:8080/clip.mp4?si=1",
            P,
            None,
            "http://127.0.0.1:8080/clip.mp4",
        );
    }

    #[test]
    fn extra_hosts_play_a_platform() {
        let map = HostMap::new([
            ("127.0.0.1:9001".to_string(), Platform::Youtube),
            ("tube.lan".to_string(), Platform::Tiktok),
        ]);
        let url =
            CaptureUrl::parse("http://127.0.0.1:9001/watch?v=dQw4w9WgXcQ&utm_source=x").unwrap();
        let d = detect(&url, &map);
        assert_eq!(
            (d.platform, d.media_id.as_deref()),
            (Platform::Youtube, Some("dQw4w9WgXcQ"))
        );
        assert_eq!(
            d.canonical.as_str(),
            "http://127.0.0.1:9001/watch?v=dQw4w9WgXcQ"
        );
        let other_port = CaptureUrl::parse("http://127.0.0.1:9002/watch?v=dQw4w9WgXcQ").unwrap();
        assert_eq!(detect(&other_port, &map).platform, Platform::Generic);
        let lan = CaptureUrl::parse("http://tube.lan/@a/video/7234567890123456789").unwrap();
        assert_eq!(
            detect(&lan, &map).media_id.as_deref(),
            Some("7234567890123456789")
        );
    }

    #[test]
    fn names_round_trip() {
        for p in Platform::ALL {
            assert_eq!(Platform::parse(p.as_str()), Some(p));
        }
        assert_eq!(Platform::parse("myspace"), None);
    }

    #[test]
    fn hosts_map_to_their_platform() {
        assert_eq!(Platform::for_host("www.youtube.com."), Platform::Youtube);
        assert_eq!(Platform::for_host("box.com"), Platform::Generic);
        assert_eq!(Platform::for_host("x.com"), Platform::Twitter);
        assert_eq!(Platform::for_host("xx.com"), Platform::Generic);
    }
}
