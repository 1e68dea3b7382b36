//! The keys about people: reverse proxies trusted to name the client, and user names that
//! own what a door brings in.

use std::net::IpAddr;

use super::SettingsError;

/// `server.trusted_proxies`: IP addresses.
pub(super) fn trusted_proxies(raw: &[String]) -> Result<Vec<IpAddr>, SettingsError> {
    raw.iter()
        .map(|a| {
            a.parse().map_err(|_| {
                SettingsError::invalid(
                    "server.trusted_proxies",
                    format!("'{}' is not an IP address", a.escape_debug()),
                )
            })
        })
        .collect()
}

/// A user name key such as `watch.owner`; empty means none.
pub(super) fn user_name(key: &str, raw: String) -> Result<Option<String>, SettingsError> {
    if raw.is_empty() {
        return Ok(None);
    }
    crate::domain::people::check_name(&raw)
        .map_err(|e| SettingsError::invalid(key, e.to_string()))?;
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_people_keys_name_themselves() {
        let err = trusted_proxies(&["10.0.0.1".into(), "proxy".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration key `server.trusted_proxies`: 'proxy' is not an IP address"
        );
        assert_eq!(trusted_proxies(&["::1".into()]).unwrap().len(), 1);
        let err = user_name("watch.owner", "a b".into()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("configuration key `watch.owner`: the user name 'a b'"),
            "{err}"
        );
        assert_eq!(user_name("watch.owner", String::new()).unwrap(), None);
        assert_eq!(
            user_name("watch.owner", "alice".into()).unwrap().as_deref(),
            Some("alice")
        );
    }
}
