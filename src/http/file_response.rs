//! Serving an immutable stored file: conditional requests, RFC 9110 ranges, streaming body.
//!
//! The body is the memory-mapped file handed to hyper in 1 MiB `Bytes` slices that borrow the
//! mapping: no read(2) per chunk, no copy in userspace, and memory that stays flat whatever the
//! file size (mapped pages are page cache, not heap). A body of one slice (a range request of
//! up to 1 MiB, a thumbnail) is a full body rather than a stream, so hyper sends it with the
//! head and knows at once that it is complete. The ETag and Last-Modified values were made once
//! when the file was loaded (`ServedFile`). Range decisions come from `domain::range`. A multi-range request is answered with its first (lowest) satisfiable
//! range as a plain 206: RFC 9110 allows serving fewer ranges than asked, and media players
//! only ever ask for one.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use warp::Reply;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::domain::range::{self, ByteRange, RangeOutcome};
use crate::storage::served::ServedFile;
use crate::sys::MappedFile;

/// Bytes per body frame.
const CHUNK: u64 = 1 << 20;

/// How a file is presented.
pub struct Presentation {
    pub content_type: &'static str,
    pub cache_control: &'static str,
    /// Counts body bytes as they are handed to the connection (`None`: metrics are off).
    pub sent: Option<prometheus::IntCounter>,
}

/// A slice of a mapping, owned by a `Bytes` (keeps the mapping alive while hyper writes it).
struct MappedSlice {
    file: Arc<MappedFile>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MappedSlice {
    fn as_ref(&self) -> &[u8] {
        &self.file.bytes()[self.start..self.end]
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// True when an `If-None-Match` list names `etag` (weak comparison, RFC 9110 §13.1.2).
fn none_match(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header
        .split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

pub fn serve(
    file: &ServedFile,
    how: &Presentation,
    headers: &HeaderMap,
    head_only: bool,
) -> Response {
    let len = file.len;
    let etag = file.etag.to_str().unwrap_or_default();
    let last_modified = file.last_modified.as_ref();

    let mut base = Response::default();
    {
        let h = base.headers_mut();
        h.reserve(8);
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(how.content_type),
        );
        h.insert(header::ETAG, file.etag.clone());
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(how.cache_control),
        );
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        if let Some(date) = last_modified {
            h.insert(header::LAST_MODIFIED, date.clone());
        }
    }

    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::IF_NONE_MATCH).is_some_and(|inm| none_match(inm, etag)) {
        *base.status_mut() = StatusCode::NOT_MODIFIED;
        base.headers_mut().remove(header::CONTENT_TYPE);
        return base;
    }
    // A Range under If-Range applies only while the client's copy is still current.
    let if_range_ok = match text(header::IF_RANGE) {
        None => true,
        Some(v) => {
            v.trim() == etag
                || last_modified.is_some_and(|date| date.as_bytes() == v.trim().as_bytes())
        }
    };
    let range_header = text(header::RANGE).filter(|_| if_range_ok);

    let (status, selected) = match range::evaluate(range_header, len) {
        RangeOutcome::Whole => (StatusCode::OK, None),
        RangeOutcome::Partial(ranges) => (StatusCode::PARTIAL_CONTENT, ranges.first().copied()),
        RangeOutcome::Unsatisfiable => {
            *base.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = base.headers_mut();
            h.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{len}")),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            h.remove(header::CONTENT_TYPE);
            return base;
        }
    };
    let (start, count) = match selected {
        Some(ByteRange { start, end }) => (start, end - start + 1),
        None => (0, len),
    };
    let mut response = match (&file.data, head_only || count == 0) {
        (Some(map), false) => {
            let (head, _empty) = base.into_parts();
            let end = start + count;
            if count <= CHUNK {
                // One slice: no stream to poll, and hyper sees the end with the head. It is
                // counted now, which is when hyper would have pulled it from a stream.
                if let Some(sent) = &how.sent {
                    sent.inc_by(count);
                }
                let slice = MappedSlice {
                    file: Arc::clone(map),
                    start: start as usize,
                    end: end as usize,
                };
                Response::from_parts(head, Bytes::from_owner(slice).into())
            } else {
                let map = Arc::clone(map);
                let sent = how.sent.clone();
                // The iterator is pulled as the connection takes frames, so a client that
                // hangs up is not counted for what it never received.
                let chunks = (start..end).step_by(CHUNK as usize).map(move |offset| {
                    let slice = MappedSlice {
                        file: Arc::clone(&map),
                        start: offset as usize,
                        end: (offset + CHUNK).min(end) as usize,
                    };
                    if let Some(sent) = &sent {
                        sent.inc_by((slice.end - slice.start) as u64);
                    }
                    Ok::<Bytes, Infallible>(Bytes::from_owner(slice))
                });
                let body = warp::reply::stream(futures_util::stream::iter(chunks))
                    .into_response()
                    .into_body();
                Response::from_parts(head, body)
            }
        }
        _ => base,
    };
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if let Some(range) = selected {
        h.insert(
            header::CONTENT_RANGE,
            header_value(&range.content_range(len)),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        assert!(none_match("\"abc\"", "\"abc\""));
        assert!(none_match("W/\"abc\"", "\"abc\""));
        assert!(none_match("\"x\", \"abc\"", "\"abc\""));
        assert!(none_match("*", "\"abc\""));
        assert!(!none_match("\"abd\"", "\"abc\""));
    }
}
