//! Dates as HTTP writes them (IMF-fixdate, RFC 9110 §5.6.7), for `Last-Modified`.

use super::Timestamp;

/// `at` as an IMF-fixdate, e.g. `Tue, 14 Nov 2023 22:13:20 GMT`.
pub fn http_date(at: Timestamp) -> Option<String> {
    at.to_datetime()?
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(
            http_date(Timestamp::from_millis(1_700_000_000_000)).as_deref(),
            Some("Tue, 14 Nov 2023 22:13:20 GMT")
        );
        assert_eq!(
            http_date(Timestamp::from_millis(0)).as_deref(),
            Some("Thu, 01 Jan 1970 00:00:00 GMT")
        );
    }
}
