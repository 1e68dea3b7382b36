//! The URL a user asks us to capture, validated and put in canonical form.
//!
//! Only absolute http(s) URLs with a host are accepted (THREATS SSRF-02): no `file:`, `data:`,
//! `ytsearch:` pseudo-URLs, nothing that yt-dlp could read as an option, no embedded
//! credentials. Address policy (private ranges, DNS) is checked elsewhere, because it needs
//! the network; this type is pure.

use std::fmt;

use url::Url;

/// Longest URL we accept; real media URLs are far shorter, and the limit bounds what ends up
/// in the database and in logs.
pub const MAX_URL_LEN: usize = 2048;

/// A syntactically valid capture URL in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureUrl {
    url: Url,
}

/// Why a string is not an acceptable capture URL. Every variant maps to `invalid_url`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL is empty")]
    Empty,
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the URL must not start with '-'")]
    LeadingDash,
    #[error("the URL contains whitespace or control characters")]
    ControlCharacters,
    #[error("not a valid absolute URL: {0}")]
    Unparseable(String),
    #[error("only http and https URLs can be captured, not '{0}:'")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("URLs with embedded credentials are not accepted")]
    Credentials,
}

impl CaptureUrl {
    /// Validates `input` and returns its canonical form: scheme and host lower-cased (done by
    /// the WHATWG parser, which also normalises numeric IPv4 forms such as `0x7f.1`), default
    /// port and fragment removed.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        if input.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        if input.starts_with('-') {
            return Err(UrlError::LeadingDash);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::ControlCharacters);
        }
        let mut url = Url::parse(input).map_err(|e| UrlError::Unparseable(e.to_string()))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(UrlError::Scheme(other.to_string())),
        }
        if url.host().is_none() {
            return Err(UrlError::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        url.set_fragment(None);
        Ok(Self { url })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host as the parser normalised it (IPv6 without brackets).
    pub fn host(&self) -> url::Host<&str> {
        self.url.host().expect("checked in parse")
    }

    pub fn port(&self) -> u16 {
        self.url
            .port_or_known_default()
            .expect("http(s) has a default port")
    }
}

impl fmt::Display for CaptureUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_canonicalises_web_urls() {
        let cases = [
            (
                "https://Example.COM/Video.mp4",
                "https://example.com/Video.mp4",
            ),
            ("http://example.com:80/a#frag", "http://example.com/a"),
            ("  https://example.com/a?b=1  ", "https://example.com/a?b=1"),
            ("https://example.com:8443/x", "https://example.com:8443/x"),
            ("http://0x7f.1/", "http://127.0.0.1/"),
            ("http://2130706433/", "http://127.0.0.1/"),
            ("http://[::1]:8080/v", "http://[::1]:8080/v"),
        ];
        for (input, canonical) in cases {
            let url = CaptureUrl::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(url.as_str(), canonical, "{input}");
        }
    }

    #[test]
    fn refuses_everything_that_is_not_a_plain_web_url() {
        let cases = [
            ("", UrlError::Empty),
            ("   ", UrlError::Empty),
            ("-o/tmp/x", UrlError::LeadingDash),
            ("--exec=touch /tmp/p", UrlError::LeadingDash),
            ("https://exa mple.com/", UrlError::ControlCharacters),
            ("https://example.com/a\tb", UrlError::ControlCharacters),
        ];
        for (input, expected) in cases {
            assert_eq!(CaptureUrl::parse(input).unwrap_err(), expected, "{input:?}");
        }

        for input in [
            "file:///etc/passwd",
            "data:text/plain,hi",
            "ytsearch:cats",
            "ftp://example.com/a.mp4",
            "javascript:alert(1)",
            "gopher://example.com/",
        ] {
            assert!(
                matches!(CaptureUrl::parse(input), Err(UrlError::Scheme(_))),
                "{input}"
            );
        }
        assert!(matches!(
            CaptureUrl::parse("example.com/video"),
            Err(UrlError::Unparseable(_))
        ));
        assert_eq!(
            CaptureUrl::parse("https://user:pw@example.com/").unwrap_err(),
            UrlError::Credentials
        );
        assert_eq!(
            CaptureUrl::parse(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).unwrap_err(),
            UrlError::TooLong
        );
        assert!(matches!(
            CaptureUrl::parse("https://a\u{0}b.com/"),
            Err(UrlError::ControlCharacters)
        ));
    }
}
