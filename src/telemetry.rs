//! Logging (tracing): human-readable by default, JSON (one object per line) for collectors.
//! Initialised once per process; a second call (tests start many apps) is a no-op.
//!
//! Every line is one line: the writer escapes control characters and bidi overrides that
//! external text (titles, URLs, file names, tool output) could carry (THREATS SUB-08), so no
//! field can forge a log line or drive a terminal. Spans put context on every line inside
//! them: `request{request_id=…}` around each HTTP request, `job{job=… item=…}` around each
//! download and processing run.

use std::borrow::Cow;
use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogFormat, LogSettings};

pub fn init(settings: &LogSettings) {
    let _ = subscriber(settings, io::stderr).try_init();
}

/// The subscriber `init` installs, writing to `writer` (tests give it a buffer).
pub fn subscriber<W>(
    settings: &LogSettings,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(OneLine(writer))
        // Colour codes are control characters too; the writer would escape them.
        .with_ansi(false);
    match settings.format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// A `MakeWriter` whose writers escape everything that could break a line.
pub struct OneLine<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(self.0.make_writer())
    }
}

pub struct OneLineWriter<W>(W);

impl<W: Write> Write for OneLineWriter<W> {
    /// The formatter hands over one whole event (ending in its newline) per call.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `line` with control characters (except a final newline) and bidi controls written as
/// escapes: `\n`, `\r`, `\t`, or `\uXXXX` — which inside a JSON string is the same escape
/// JSON itself uses, so JSON lines stay valid JSON.
pub fn escape_line(line: &[u8]) -> Cow<'_, [u8]> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let suspicious = body
        .iter()
        .any(|&b| b < 0x20 || b == 0x7f || b == 0xe2 || b == 0xd8);
    if !suspicious {
        return Cow::Borrowed(line);
    }
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    if body.len() < line.len() {
        out.push('\n');
    }
    Cow::Owned(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    const HOSTILE: &str = "Title\nFAKE level=ERROR\r\u{1b}[31mred\u{202e}gnp.exe\u{7f}";

    fn captured(format: LogFormat) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let settings = LogSettings {
            format,
            level: "info".into(),
            access_level: crate::settings::AccessLevel::Info,
            access_sample: std::num::NonZeroU32::MIN,
        };
        let subscriber = subscriber(&settings, move || Sink(Arc::clone(&sink)));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", job = "j1", item = "i1");
            let _entered = span.enter();
            tracing::info!(title = %HOSTILE, "stored");
        });
        String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn hostile_text_stays_on_one_text_line() {
        let out = captured(LogFormat::Text);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.ends_with('\n'));
        assert!(!out.contains('\u{1b}') && !out.contains('\r') && !out.contains('\u{202e}'));
        assert!(
            out.contains(r"Title\nFAKE level=ERROR\r\u001b[31mred\u202egnp.exe\u007f"),
            "{out}"
        );
        assert!(
            out.contains("job{job=\"j1\" item=\"i1\"}") || out.contains("job{job=j1 item=i1}"),
            "{out}"
        );
    }

    #[test]
    fn hostile_text_stays_valid_json_on_one_line() {
        let out = captured(LogFormat::Json);
        assert_eq!(out.lines().count(), 1, "{out}");
        let line: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(
            line["title"], HOSTILE,
            "JSON readers get the text back exactly"
        );
        assert!(!out.contains('\u{202e}'));
        assert_eq!(line["span"]["job"], "j1");
        assert_eq!(line["span"]["item"], "i1");
        assert_eq!(line["message"], "stored");
    }

    #[test]
    fn plain_lines_pass_untouched() {
        let line = "INFO prsnl: ünïcödé 👍 ok\n".as_bytes();
        assert!(matches!(escape_line(line), Cow::Borrowed(_)));
    }
}
