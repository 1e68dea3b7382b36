//! The parameters of `GET /api/items`: search, filters, sort and paging, checked into a
//! [`Find`]. Every bad value is a 400 naming the parameter; a query that parses is run
//! whatever it contains (its words are bound, never spliced into SQL).

use std::collections::HashMap;

use base64::Engine;

use super::error::ApiError;
use crate::db::search::{Find, Sort, key};
use crate::domain::search::Query;
use crate::domain::{ErrorCode, ItemId, ItemKind, ItemStatus, Platform};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Every parameter the listing knows (`owner` is read by the caller).
const KNOWN: &[&str] = &[
    "q",
    "status",
    "platform",
    "kind",
    "tag",
    "uploader",
    "captured_from",
    "captured_to",
    "uploaded_from",
    "uploaded_to",
    "min_duration",
    "max_duration",
    "sort",
    "order",
    "limit",
    "cursor",
    "owner",
];

fn bad(message: String) -> ApiError {
    ApiError::bad_request(ErrorCode::BadRequest, message)
}

/// The search and filters of `query`; `limit` is the page size asked for (the caller asks
/// the database for one more, to know whether a next page exists).
pub fn parse(query: &HashMap<String, String>) -> Result<(Find, u32), ApiError> {
    if let Some(unknown) = query.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown query parameter '{}'",
            crate::domain::text::clean(unknown, 40)
        )));
    }
    let get = |name: &str| query.get(name).map(String::as_str);
    // A blank `q` is no search; one with only punctuation or symbols is a search for
    // nothing, said plainly rather than answered with the whole vault.
    let text = match get("q").filter(|q| !q.trim().is_empty()).map(Query::parse) {
        None => None,
        Some(Ok(q)) => Some(q),
        Some(Err(e)) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                e.to_string(),
            ));
        }
    };
    let sort = match get("sort") {
        None if text.is_some() => Sort::Relevance,
        None | Some("captured") => Sort::Captured,
        Some("relevance") if text.is_some() => Sort::Relevance,
        Some("relevance") => return Err(bad("sort=relevance needs a search (q)".into())),
        Some("uploaded") => Sort::Uploaded,
        Some("duration") => Sort::Duration,
        Some(other) => {
            return Err(bad(format!(
                "unknown sort '{}': use relevance, captured, uploaded or duration",
                crate::domain::text::clean(other, 20)
            )));
        }
    };
    let ascending = match get("order") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(bad("order must be asc or desc".into())),
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad(format!("limit must be a number from 1 to {MAX_LIMIT}")))?,
    };
    // A keyset cursor belongs to the newest-first listing only.
    let keyset = text.is_none() && sort == Sort::Captured && !ascending;
    let (before, offset) = match get("cursor").map(decode_cursor) {
        None => (None, 0),
        Some(Some(Cursor::Before(id))) if keyset => (Some(id), 0),
        Some(Some(Cursor::Offset(n, listing))) if listing == listing_key(query) => (None, n),
        Some(_) => {
            return Err(bad(
                "invalid cursor (a cursor belongs to the listing that gave it)".into(),
            ));
        }
    };
    let find = Find {
        status: parsed(get("status"), "status", ItemStatus::parse)?,
        platform: parsed(get("platform"), "platform", Platform::parse)?,
        kind: parsed(get("kind"), "kind", ItemKind::parse)?,
        // A value without words matches nothing (no tag or uploader key is empty).
        tag: get("tag").map(key),
        uploader: get("uploader").map(key),
        captured_from_ms: day(get("captured_from"), "captured_from")?.map(|d| d * DAY_MS),
        captured_to_ms: day(get("captured_to"), "captured_to")?.map(|d| (d + 1) * DAY_MS),
        uploaded_from: date_text(get("uploaded_from"), "uploaded_from")?,
        uploaded_to: date_text(get("uploaded_to"), "uploaded_to")?,
        min_duration: seconds(get("min_duration"), "min_duration")?,
        max_duration: seconds(get("max_duration"), "max_duration")?,
        query: text,
        sort,
        ascending,
        before,
        offset,
        limit: limit + 1,
        owner: None,
    };
    Ok((find, limit))
}

fn parsed<T>(
    value: Option<&str>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            parse(v).ok_or_else(|| {
                bad(format!(
                    "unknown {name} '{}'",
                    crate::domain::text::clean(v, 40)
                ))
            })
        })
        .transpose()
}

const DAY_MS: i64 = 86_400_000;

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// A `YYYY-MM-DD` date as days since 1970-01-01 (UTC).
fn day(value: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(value, &format)
        .map_err(|_| bad(format!("{name} must be a date like 2024-03-05")))?;
    Ok(Some(i64::from(
        date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY,
    )))
}

/// A checked `YYYY-MM-DD`, as the text upload dates are stored as.
fn date_text(value: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    Ok(day(value, name)?.and(value.map(str::to_string)))
}

fn seconds(value: Option<&str>, name: &str) -> Result<Option<f64>, ApiError> {
    value
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| bad(format!("{name} must be a number of seconds")))
        })
        .transpose()
}

/// Where the next page starts: below an item (newest-first listings, stable while new items
/// arrive) or after a number of results (searches and other sorts) of one listing, named by
/// its [`listing_key`]: a position means nothing in another search's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Before(ItemId),
    Offset(u64, u32),
}

/// Names a listing by everything that chooses and orders its results (all parameters but
/// the cursor and the page size, which may change from page to page).
pub fn listing_key(query: &HashMap<String, String>) -> u32 {
    use sha2::{Digest, Sha256};
    let mut pairs: Vec<(&String, &String)> = query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "cursor" | "limit"))
        .collect();
    pairs.sort();
    let mut hash = Sha256::new();
    for (k, v) in pairs {
        // Lengths first, so no two different lists of pairs hash the same bytes.
        for part in [k, v] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
    }
    let digest = hash.finalize();
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Cursors are opaque to clients.
pub fn encode_cursor(cursor: Cursor) -> String {
    let inner = match cursor {
        Cursor::Before(id) => id.to_string(),
        Cursor::Offset(n, listing) => format!("+{n}.{listing:08x}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(inner)
}

fn decode_cursor(cursor: &str) -> Option<Cursor> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    match text.strip_prefix('+') {
        Some(rest) => {
            let (n, listing) = rest.split_once('.')?;
            Some(Cursor::Offset(
                n.parse().ok()?,
                u32::from_str_radix(listing, 16).ok()?,
            ))
        }
        None => ItemId::parse(text).ok().map(Cursor::Before),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = ItemId::new();
        for cursor in [
            Cursor::Before(id),
            Cursor::Offset(0, 0),
            Cursor::Offset(150, u32::MAX),
        ] {
            assert_eq!(decode_cursor(&encode_cursor(cursor)), Some(cursor));
        }
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(""), None);
    }

    #[test]
    fn parameters_become_a_search_or_a_clear_error() {
        let (find, limit) = parse(&query(&[
            ("q", "cats -dogs"),
            ("tag", "Crème Brûlée"),
            ("captured_to", "1970-01-02"),
        ]))
        .unwrap();
        assert_eq!(
            (find.sort, limit, find.limit),
            (Sort::Relevance, DEFAULT_LIMIT, DEFAULT_LIMIT + 1)
        );
        assert_eq!(find.tag.as_deref(), Some("creme brulee"));
        assert_eq!(find.captured_to_ms, Some(2 * DAY_MS));
        let (plain, _) = parse(&query(&[
            ("q", "  "),
            ("sort", "duration"),
            ("order", "asc"),
        ]))
        .unwrap();
        assert!(plain.query.is_none() && plain.ascending && plain.sort == Sort::Duration);
        for (pairs, code) in [
            (vec![("q", "-only")], ErrorCode::InvalidQuery),
            (vec![("q", "!!! ***")], ErrorCode::InvalidQuery),
            (vec![("sort", "relevance")], ErrorCode::BadRequest),
            (vec![("sort", "name")], ErrorCode::BadRequest),
            (vec![("captured_from", "2024-13-01")], ErrorCode::BadRequest),
            (vec![("min_duration", "-1")], ErrorCode::BadRequest),
            (vec![("kind", "audio")], ErrorCode::BadRequest),
            (vec![("bogus", "1")], ErrorCode::BadRequest),
        ] {
            let err = parse(&query(&pairs)).unwrap_err();
            assert_eq!(err.code, code, "{pairs:?}");
        }
    }
}
