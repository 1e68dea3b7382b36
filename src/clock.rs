//! The wall clock, read in one place: everything below the actors takes `now` as an argument
//! (a `Timestamp`, Unix milliseconds UTC, as the database stores it).

use time::OffsetDateTime;

use crate::domain::Timestamp;

/// The current moment.
pub fn now() -> Timestamp {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    Timestamp::from_millis(
        i64::try_from(nanos / 1_000_000).expect("the clock is within ±292 million years"),
    )
}

/// RFC 3339 text of a stored timestamp, for API responses.
pub fn rfc3339(at: Timestamp) -> String {
    at.to_datetime()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub fn datetime(at: Timestamp) -> OffsetDateTime {
    at.to_datetime().unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_milliseconds_as_rfc3339() {
        assert_eq!(rfc3339(Timestamp::from_millis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp::from_millis(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
        assert!(now().as_millis() > 1_700_000_000_000);
    }
}
