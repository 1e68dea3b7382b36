//! Bodies this API reads as JSON must say so when they name a type at all.
//!
//! A body declared as something else (an HTML form's `multipart/form-data` or `text/plain`,
//! an image) was not meant for a JSON route: it is refused with `415 unsupported_media_type`
//! rather than read as JSON by chance. A body that names no type is read as JSON.

use warp::http::StatusCode;

use super::error::ApiError;
use crate::domain::ErrorCode;

/// `Ok` for no `Content-Type`, `application/json` and any `…+json` type (parameters such as
/// `charset` aside).
pub fn require_json(content_type: Option<&str>) -> Result<(), ApiError> {
    let Some(value) = content_type else {
        return Ok(());
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || essence
            .split_once('/')
            .is_some_and(|(kind, sub)| !kind.is_empty() && sub.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "the body must be JSON, sent with Content-Type: application/json",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_or_no_type_is_read_anything_else_refused() {
        for ok in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
        ] {
            assert!(require_json(ok).is_ok(), "{ok:?}");
        }
        for refused in [
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "+json",
            "",
        ] {
            let error = require_json(Some(refused)).expect_err(refused);
            assert_eq!(error.code, ErrorCode::UnsupportedMediaType);
        }
    }
}
