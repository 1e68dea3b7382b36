//! Typed identifiers. Both are UUIDv7: time-ordered, so their text sorts by creation time,
//! which the item listing uses as its cursor.

use std::fmt;

use uuid::Uuid;

/// The id in a path or body was not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid id")]
pub struct InvalidId(pub String);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                // Only the canonical hyphenated form: ids are minted by us, and accepting the
                // other forms would give one item several URLs (and ETags).
                if s.len() != 36 {
                    return Err(InvalidId(s.chars().take(64).collect()));
                }
                Uuid::try_parse(s)
                    .map(Self)
                    .map_err(|_| InvalidId(s.chars().take(64).collect()))
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// An item: one captured video and its files.
    ItemId
);
uuid_id!(
    /// A job on the durable queue.
    JobId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_text_and_time_ordered() {
        let a = ItemId::new();
        let b = ItemId::new();
        assert!(a.to_string() < b.to_string());
        assert_eq!(ItemId::parse(&a.to_string()), Ok(a));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "42",
            "../../etc/passwd",
            "01932c07000070008000000000000001",
            "{01932c07-0000-7000-8000-000000000001}",
            "01932c07-0000-7000-8000-00000000000g",
        ] {
            assert!(ItemId::parse(bad).is_err(), "{bad}");
        }
    }
}
