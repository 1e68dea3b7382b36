//! The parser and writer, on real-looking and hostile subtitles.

use super::*;

fn cue(start_ms: u64, end_ms: u64, text: &str) -> Cue {
    Cue {
        start_ms,
        end_ms,
        text: text.to_string(),
    }
}

fn vtt(body: &str) -> Result<Vec<Cue>, SubtitleError> {
    parse(body.as_bytes(), SubtitleFormat::Vtt).map(|p| p.cues)
}

fn srt(body: &str) -> Result<Vec<Cue>, SubtitleError> {
    parse(body.as_bytes(), SubtitleFormat::Srt).map(|p| p.cues)
}

#[test]
fn formats_come_from_extensions() {
    assert_eq!(
        SubtitleFormat::from_extension("vtt"),
        Some(SubtitleFormat::Vtt)
    );
    assert_eq!(
        SubtitleFormat::from_extension("SRT"),
        Some(SubtitleFormat::Srt)
    );
    assert_eq!(SubtitleFormat::from_extension("ass"), None);
    assert_eq!(SubtitleFormat::from_extension(""), None);
    assert_eq!(
        SubtitleError::NoCues.to_string(),
        "subtitle file has no usable cues"
    );
}

#[test]
fn youtube_automatic_captions() {
    let file = "WEBVTT\nKind: captions\nLanguage: en\n\n\
        00:00:00.000 --> 00:00:02.350 align:start position:0%\n \n\
        hello<00:00:00.480><c> world</c><00:00:00.960><c.colorE5E5E5> this</c>\n\n\
        00:00:02.350 --> 00:00:02.360 align:start position:0%\nhello world this\n \n\n\
        00:00:02.360 --> 00:00:04.950 align:start position:0%\nhello world this\n\
        is<00:00:02.720><c> a</c><00:00:03.200><c> test</c>\n\n\
        00:00:04.950 --> 00:00:04.960 align:start position:0%\nhello world this\nis a test\n \n";
    assert_eq!(
        vtt(file).unwrap(),
        [
            cue(0, 2_360, "hello world this"),
            cue(2_360, 4_960, "hello world this\nis a test"),
        ]
    );
}

#[test]
fn plain_srt_with_bom_and_crlf() {
    let file = "\u{FEFF}1\r\n00:00:01,000 --> 00:00:02,500\r\nHello <i>there</i>,\r\n\
        {\\an8}General Kenobi!\r\n\r\n2\r\n00:01:00.000 --> 01:00:00,000\r\n\
        <font color=\"#ff0000\">Tom &amp; Jerry</font>\r\n \r\n";
    assert_eq!(
        srt(file).unwrap(),
        [
            cue(1_000, 2_500, "Hello there,\nGeneral Kenobi!"),
            cue(60_000, 3_600_000, "Tom & Jerry"),
        ]
    );
    let lone_cr = "1\r00:00:01,000 --> 00:00:02,000\rone\r\r2\r00:00:03,000 --> 00:00:04,000\rtwo";
    assert_eq!(
        srt(lone_cr).unwrap(),
        [cue(1_000, 2_000, "one"), cue(3_000, 4_000, "two")]
    );
}

#[test]
fn garbage_and_empty_input_are_refused() {
    let html = "<html><!-- error\n -->\n<body>Not found</body></html>";
    assert_eq!(vtt(html), Err(SubtitleError::NotSubtitles));
    assert_eq!(srt(html), Err(SubtitleError::NotSubtitles));
    assert_eq!(srt("\0\u{1}\u{2}binary"), Err(SubtitleError::NotSubtitles));
    assert_eq!(vtt(""), Err(SubtitleError::NotSubtitles));
    assert_eq!(srt(""), Err(SubtitleError::NotSubtitles));
    assert_eq!(
        vtt("WEBVTTX\n\n00:01.000 --> 00:02.000\nhi"),
        Err(SubtitleError::NotSubtitles)
    );
    assert_eq!(vtt("WEBVTT"), Err(SubtitleError::NoCues));
    assert_eq!(vtt("WEBVTT\n"), Err(SubtitleError::NoCues));
    assert_eq!(
        srt("1\n00:00:01,000 --> 00:00:02,000\n<b></b> \u{200B}\n"),
        Err(SubtitleError::NoCues),
        "a cue with no visible text is dropped"
    );
}

#[test]
fn size_and_encoding_are_checked_first() {
    let mut big = b"WEBVTT\n\n".to_vec();
    big.resize(MAX_BYTES + 1, 0xFF);
    assert_eq!(
        parse(&big, SubtitleFormat::Vtt),
        Err(SubtitleError::TooLarge)
    );
    assert_eq!(
        parse(
            b"WEBVTT\n\n00:01.000 --> 00:02.000\n\xC3(",
            SubtitleFormat::Vtt
        ),
        Err(SubtitleError::NotUtf8)
    );
    assert_eq!(
        parse(b"\xEF\xBB", SubtitleFormat::Srt),
        Err(SubtitleError::NotUtf8)
    );
}

#[test]
fn bad_times_skip_only_their_cue() {
    let file = "WEBVTT\n\n\
        00:60.000 --> 00:61.000\nminutes ok, seconds 60\n\n\
        60:00.000 --> 60:01.000\nminutes 60\n\n\
        99:59:59.999 --> 100:00:00.000\nlast moment\n\n\
        100:00:00.000 --> 100:00:00.001\npast 100 hours\n\n\
        00:05.000 --> 00:04.000\nends before it starts\n\n\
        00:01,000 --> 00:02,000\ncomma in WebVTT\n\n\
        0:01.000 --> 0:02.000\none-digit minutes\n\n\
        00:01.00 --> 00:02.000\ntwo-digit millis\n\n\
        00:03.000 --> 00:03.000\ninstant\n\n\
        1:00:04.000 -->\nno end\n";
    assert_eq!(
        vtt(file).unwrap(),
        [
            cue(359_999_999, 360_000_000, "last moment"),
            cue(3_000, 3_000, "instant")
        ]
    );
    let all_bad =
        "1\n00:00:05,000 --> 00:00:04,000\nbackwards\n\n2\n00:61:00,000 --> 00:62:00,000\nx\n";
    assert_eq!(srt(all_bad), Err(SubtitleError::NoCues));
}

#[test]
fn settings_identifiers_and_metadata_blocks() {
    let file = "WEBVTT - a title\n\n\
        STYLE\n::cue { color: red; }\n\n\
        REGION\nid:fred width:40%\n\n\
        NOTE this is a comment\nspanning lines\n\n\
        NOTE\n\n\
        intro\n00:00:01.000 --> 00:00:02.000 region:fred line:0 align:end\n<v Roger>Hi</v>\n\n\
        00:03.000-->00:04.000\n<ruby>漢<rt>kan</rt></ruby> &lt;3\n\n\
        stray text\nwithout timing\n\n\
        00:05.000 --> 00:06.000\n5 < 6 <b>bold\n";
    assert_eq!(
        vtt(file).unwrap(),
        [
            cue(1_000, 2_000, "Hi"),
            cue(3_000, 4_000, "漢kan <3"),
            // An unescaped `<` opens a tag in WebVTT, so browsers would not show ` 6 ` either.
            cue(5_000, 6_000, "5 bold"),
        ]
    );
    // A `<` that never closes keeps what follows.
    assert_eq!(
        vtt("WEBVTT\n\n00:01.000 --> 00:02.000\n<b>1 < 2").unwrap(),
        [cue(1_000, 2_000, "1 < 2")]
    );
}

#[test]
fn entities_decode_once_and_hide_nothing() {
    let file = "WEBVTT\n\n00:01.000 --> 00:02.000\n\
        a&nbsp;b &quot;c&quot; &apos;d&apos; &#65;&#x42;&#X43; &amp;lt; &lrm;e&rlm; \
        &#0; &#x202E; &#x200B; &#xD800; &#9; &bogus; & x &#;\n";
    assert_eq!(
        vtt(file).unwrap()[0].text,
        "a b \"c\" 'd' ABC &lt; e &#0; &#x202E; &#x200B; &#xD800; &#9; &bogus; & x &#;"
    );
}

#[test]
fn caps_on_cues_and_text() {
    let many: Vec<Cue> = (0..MAX_CUES as u64 + 5)
        .map(|i| cue(i, i + 1, &format!("cue {i}")))
        .collect();
    let parsed = parse(to_webvtt(&many).as_bytes(), SubtitleFormat::Vtt).unwrap();
    assert_eq!(parsed.cues, many[..MAX_CUES]);
    assert_eq!(
        (parsed.cues_dropped, parsed.texts_cut),
        (5, 0),
        "what was left out is counted"
    );

    let long = format!(
        "WEBVTT\n\n00:01.000 --> 00:02.000\n{}\n",
        "ab ".repeat(2_000)
    );
    let parsed = parse(long.as_bytes(), SubtitleFormat::Vtt).unwrap();
    assert_eq!((parsed.cues_dropped, parsed.texts_cut), (0, 1));
    let text = &parsed.cues[0].text;
    assert_eq!(
        text.chars().count(),
        MAX_CUE_CHARS - 1,
        "no space before the ellipsis"
    );
    assert!(text.ends_with("ab…"));
}

#[test]
fn written_webvtt_reads_back_the_same() {
    let hostile = format!(
        "1\n00:00:01,000 --> 00:00:02,000\na --&gt; b\nWEBVTT\n-->\n\n\
         2\n00:00:03,000 --> 00:00:04,000\n<script>alert(1)</script>\n\
         &lt;script&gt;alert(1)&lt;/script&gt;\n\n\
         3\n00:00:05,000 --> 00:00:06,000\nevil\u{202E}txt.exe \0nul \u{1b}[31mesc\n\
         &amp;lt; &amp;amp; &#38;gt;\n\n\
         4\n00:00:07,000 --> 00:00:08,000\n{}\n\n\
         5\n00:00:09,000 --> 100:00:00,000\n👨\u{200D}👩 字幕 {{not an override}}\nNOTE\n",
        "x".repeat(5_000)
    );
    let cues = srt(&hostile).unwrap();
    assert_eq!(cues.len(), 5);
    assert_eq!(cues[0].text, "a --> b\nWEBVTT\n-->");
    assert_eq!(cues[1].text, "alert(1)\n<script>alert(1)</script>");
    assert_eq!(cues[2].text, "eviltxt.exe nul [31mesc\n&lt; &amp; &gt;");
    assert_eq!(cues[3].text.chars().count(), MAX_CUE_CHARS);
    assert_eq!(cues[4].text, "👨\u{200D}👩 字幕 {not an override}\nNOTE");

    let written = to_webvtt(&cues);
    assert!(
        written
            .starts_with("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na --&gt; b\nWEBVTT\n--&gt;\n\n")
    );
    assert!(written.contains("\n00:00:09.000 --> 100:00:00.000\n"));
    assert!(!written.contains("<script>") && !written.contains('\u{202E}'));
    assert_eq!(vtt(&written).unwrap(), cues);

    let built = [
        cue(0, 0, "WEBVTT\nNOTE\n1 --> 2\n<b>&amp;</b>"),
        cue(1, 2, "{\\an8} 00:00.000 --> 00:01.000"),
    ];
    assert_eq!(vtt(&to_webvtt(&built)).unwrap(), built);
    assert_eq!(
        to_webvtt(&[cue(0, 1, "a\n\nb\r\rc")]),
        "WEBVTT\n\n00:00:00.000 --> 00:00:00.001\na\nb\nc\n\n",
        "empty lines would end the cue"
    );
}

#[test]
fn an_arrow_in_srt_text_is_text_but_a_timing_line_starts_the_next_cue() {
    let file = "1\n00:00:01,000 --> 00:00:02,000\nfrom A --> to B\nand on\n\
                00:00:03,000 --> 00:00:04,000\nno blank line before me\n";
    assert_eq!(
        srt(file).unwrap(),
        [
            cue(1_000, 2_000, "from A --> to B\nand on"),
            cue(3_000, 4_000, "no blank line before me"),
        ]
    );
    // In WebVTT a cue's text cannot hold `-->`: such a line ends it, as in browsers.
    let file = "WEBVTT\n\n00:01.000 --> 00:02.000\nfrom A --> to B\n";
    assert!(vtt(file).is_err());
}
