//! People: who a request acts for, their names, roles and storage sizes.
//!
//! Pure rules only; hashing, tokens and the tables live in `people/` and `db/users`.

use std::fmt;

use super::ids::InvalidId;

/// A user of the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(uuid::Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Only the canonical hyphenated form, like item ids.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() != 36 {
            return Err(InvalidId(s.chars().take(64).collect()));
        }
        uuid::Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| InvalidId(s.chars().take(64).collect()))
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What a user may do beyond their own library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sees every item; manages users, tokens and the storage.
    Admin,
    /// Sees only their own items.
    Member,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// Who a request (or a bot message, a watch-folder file, a CLI capture) acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether an item of `owner` is visible to this principal: admins see everything,
    /// members their own items only (someone else's item is answered as if it did not exist).
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        self.is_admin() || owner.is_some_and(|owner| owner == self.user.to_string())
    }
}

/// A user name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadName(String);

/// The longest user name.
pub const MAX_NAME_CHARS: usize = 64;

/// Checks a user name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit. Names
/// appear in logs, the CLI's tables and (later) web pages, so nothing that needs escaping.
pub fn check_name(name: &str) -> Result<&str, BadName> {
    let shown: String = name.chars().take(MAX_NAME_CHARS).collect();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(BadName(format!(
            "a user name has 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(BadName(format!(
            "the user name '{}' must start with a letter or a digit",
            shown.escape_debug()
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(BadName(format!(
            "the user name '{}' may hold only letters, digits, '.', '_' and '-'",
            shown.escape_debug()
        )));
    }
    Ok(name)
}

/// The shortest password a user may set; long passphrases are welcome (argon2 takes any length,
/// the request body limit bounds it).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted, so that hashing cannot be made to work on megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), BadName> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(BadName(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(BadName(format!(
            "a password has at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A size given by a person: bytes, or a number with a unit (KiB…TiB in powers of 1024,
/// KB…TB in powers of 1000), such as `20GiB`, `1.5 TB` or `500000000`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let factor: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "'{}' is not a size: use bytes, or a unit of KiB, MiB, GiB, TiB, KB, MB, GB or TB",
                text.chars().take(40).collect::<String>().escape_debug()
            ));
        }
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            format!(
                "'{}' is not a size",
                text.chars().take(40).collect::<String>().escape_debug()
            )
        })?;
    let bytes = (value * factor).round();
    if unit.is_empty() && number.contains('.') {
        return Err("a size in bytes is a whole number".into());
    }
    if bytes > u64::MAX as f64 / 2.0 {
        return Err("the size is too large".into());
    }
    Ok(bytes as u64)
}

/// A size for people in powers of 1024: `20.0 GiB`, `512 B` (quotas, the CLI).
pub fn format_size(bytes: u64) -> String {
    scaled(bytes, 1024.0, ["B", "KiB", "MiB", "GiB", "TiB"])
}

/// A size for people in powers of 1000: `1.5 GB` (the bot's replies).
pub fn format_size_decimal(bytes: u64) -> String {
    scaled(bytes, 1000.0, ["B", "KB", "MB", "GB", "TB"])
}

fn scaled(bytes: u64, step: f64, units: [&str; 5]) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= step && unit < units.len() - 1 {
        value /= step;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_words() {
        for good in ["alice", "Bob", "a", "x.y_z-1", "0day"] {
            assert_eq!(check_name(good), Ok(good));
        }
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        for bad in [
            "", "-alice", ".hidden", "a b", "a/b", "ä", "<script>", &long, "a\n",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("500000000", 500_000_000),
            ("20GiB", 20 << 30),
            ("20 GiB", 20 << 30),
            ("1.5TB", 1_500_000_000_000),
            ("10gb", 10_000_000_000),
            ("512KiB", 512 << 10),
            ("3MB", 3_000_000),
            ("7 b", 7),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(*bytes), "{text}");
        }
        for bad in ["", "GiB", "-1", "1.5", "ten", "5 PB", "1e9", "1..2GB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(20 << 30), "20.0 GiB");
        assert_eq!(format_size_decimal(1_500_000_000), "1.5 GB");
        assert_eq!(format_size_decimal(999), "999 B");
    }

    #[test]
    fn members_see_only_their_own_items() {
        let alice = Principal {
            user: UserId::new(),
            role: Role::Member,
        };
        let admin = Principal {
            user: UserId::new(),
            role: Role::Admin,
        };
        let hers = alice.user.to_string();
        let other = UserId::new().to_string();
        assert!(alice.may_see(Some(&hers)));
        assert!(!alice.may_see(Some(&other)));
        assert!(!alice.may_see(None));
        assert!(admin.may_see(Some(&other)) && admin.may_see(None));
        assert_eq!(UserId::parse(&hers).map(|u| u.to_string()), Ok(hers));
    }

    #[test]
    fn passwords_have_a_floor_and_a_ceiling() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
