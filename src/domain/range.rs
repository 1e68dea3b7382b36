//! HTTP Range evaluation (RFC 9110 §14), pure so every edge case is a table row.
//!
//! warp's own range handling deviates from the RFC (THREATS fact 4), and media looked up in the
//! database cannot use `warp::fs` anyway, so the stream handler asks this module what to send.

/// An inclusive byte range within a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive, as in `Content-Range`.
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// A range always holds at least one byte; empty selections are `Unsatisfiable` instead.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for this range of a `total`-byte representation.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, total)
    }
}

/// What to answer a request with a given (or no) Range header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No usable Range header (absent, malformed, another unit, abusive): 200 with everything.
    Whole,
    /// 206 with these ranges: satisfiable, sorted, overlapping and adjacent ones merged.
    Partial(Vec<ByteRange>),
    /// No requested range overlaps the representation: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// More range specs than this in one header is not a media player, it is an amplification
/// attempt (THREATS HTTP-01); such a header is ignored and the whole file sent once.
pub const MAX_RANGE_SPECS: usize = 64;

/// Evaluates a `Range` header value against a representation of `len` bytes.
pub fn evaluate(header: Option<&str>, len: u64) -> RangeOutcome {
    let Some(header) = header else {
        return RangeOutcome::Whole;
    };
    let Some(specs) = parse(header) else {
        return RangeOutcome::Whole;
    };
    let mut satisfiable: Vec<ByteRange> = specs
        .into_iter()
        .filter_map(|spec| spec.resolve(len))
        .collect();
    if satisfiable.is_empty() {
        // A zero-length file has no byte to select, but a suffix request for it is still
        // answered with the (empty) whole representation rather than an error.
        return if len == 0 && header_has_only_suffixes(header) {
            RangeOutcome::Whole
        } else {
            RangeOutcome::Unsatisfiable
        };
    }
    satisfiable.sort_by_key(|r| r.start);
    let mut merged: Vec<ByteRange> = Vec::with_capacity(satisfiable.len());
    for range in satisfiable {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(1) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    RangeOutcome::Partial(merged)
}

/// One range-spec as written by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last` or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-suffix`.
    Suffix(u64),
}

impl Spec {
    fn resolve(self, len: u64) -> Option<ByteRange> {
        match self {
            Spec::From { first, last } => {
                if first >= len {
                    return None;
                }
                let end = last.map_or(len - 1, |l| l.min(len - 1));
                Some(ByteRange { start: first, end })
            }
            Spec::Suffix(n) => {
                if n == 0 || len == 0 {
                    return None;
                }
                Some(ByteRange {
                    start: len.saturating_sub(n),
                    end: len - 1,
                })
            }
        }
    }
}

/// Parses `bytes=spec, spec, …`; `None` when the header is not a valid bytes range set.
fn parse(header: &str) -> Option<Vec<Spec>> {
    let (unit, set) = header.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // RFC 9110 §5.6.1: recipients accept empty list elements.
    for element in set.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if specs.len() == MAX_RANGE_SPECS {
            return None;
        }
        let (first, last) = element.split_once('-')?;
        let spec = match (first.trim(), last.trim()) {
            ("", "") => return None,
            ("", suffix) => Spec::Suffix(number(suffix)?),
            (first, "") => Spec::From {
                first: number(first)?,
                last: None,
            },
            (first, last) => {
                let (first, last) = (number(first)?, number(last)?);
                if last < first {
                    return None;
                }
                Spec::From {
                    first,
                    last: Some(last),
                }
            }
        };
        specs.push(spec);
    }
    (!specs.is_empty()).then_some(specs)
}

/// A non-empty run of ASCII digits. Values beyond u64 saturate: they are only ever compared
/// with a file length, and a saturated end still clamps correctly.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

fn header_has_only_suffixes(header: &str) -> bool {
    parse(header).is_some_and(|specs| specs.iter().all(|s| matches!(s, Spec::Suffix(n) if *n > 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn golden_table_for_a_100_byte_file() {
        let cases: &[(Option<&str>, RangeOutcome)] = &[
            (None, Whole),
            (Some("bytes=0-0"), Partial(vec![r(0, 0)])),
            (Some("bytes=0-99"), Partial(vec![r(0, 99)])),
            (Some("bytes=10-19"), Partial(vec![r(10, 19)])),
            (Some("bytes=90-110"), Partial(vec![r(90, 99)])),
            (Some("bytes=50-"), Partial(vec![r(50, 99)])),
            (Some("bytes=-10"), Partial(vec![r(90, 99)])),
            (Some("bytes=-100"), Partial(vec![r(0, 99)])),
            (Some("bytes=-500"), Partial(vec![r(0, 99)])),
            (Some("bytes=99-"), Partial(vec![r(99, 99)])),
            (Some("bytes=100-"), Unsatisfiable),
            (Some("bytes=100-200"), Unsatisfiable),
            (Some("bytes=-0"), Unsatisfiable),
            (Some("BYTES=0-9"), Partial(vec![r(0, 9)])),
            (Some("bytes=0-9, 20-29"), Partial(vec![r(0, 9), r(20, 29)])),
            (Some("bytes=20-29,0-9"), Partial(vec![r(0, 9), r(20, 29)])),
            (Some("bytes=0-50,40-60"), Partial(vec![r(0, 60)])),
            (Some("bytes=0-9,10-19"), Partial(vec![r(0, 19)])),
            (Some("bytes=0-9,200-300"), Partial(vec![r(0, 9)])),
            (Some("bytes=0-9,,20-29"), Partial(vec![r(0, 9), r(20, 29)])),
            (
                Some("bytes=0-99999999999999999999999"),
                Partial(vec![r(0, 99)]),
            ),
            (Some("bytes=20-10"), Whole),
            (Some("bytes=abc"), Whole),
            (Some("bytes=1-2-3"), Whole),
            (Some("bytes=-"), Whole),
            (Some("bytes="), Whole),
            (Some("bytes=+1-2"), Whole),
            (Some("items=0-9"), Whole),
            (Some("0-9"), Whole),
            (Some(""), Whole),
        ];
        for (header, expected) in cases {
            assert_eq!(&evaluate(*header, 100), expected, "{header:?}");
        }
    }

    #[test]
    fn golden_table_for_an_empty_file() {
        let cases: &[(Option<&str>, RangeOutcome)] = &[
            (None, Whole),
            (Some("bytes=0-0"), Unsatisfiable),
            (Some("bytes=0-"), Unsatisfiable),
            (Some("bytes=-1"), Whole),
            (Some("bytes=-0"), Unsatisfiable),
            (Some("bytes=junk"), Whole),
        ];
        for (header, expected) in cases {
            assert_eq!(&evaluate(*header, 0), expected, "{header:?}");
        }
    }

    #[test]
    fn too_many_specs_are_ignored_rather_than_amplified() {
        let many = (0..=MAX_RANGE_SPECS)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(evaluate(Some(&format!("bytes={many}")), 1000), Whole);
        let overlapping = vec!["0-999"; MAX_RANGE_SPECS].join(",");
        assert_eq!(
            evaluate(Some(&format!("bytes={overlapping}")), 1000),
            Partial(vec![r(0, 999)])
        );
    }

    #[test]
    fn content_range_formats() {
        assert_eq!(r(90, 99).content_range(100), "bytes 90-99/100");
        assert_eq!(r(90, 99).len(), 10);
    }
}
