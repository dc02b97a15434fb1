//! Typed identifiers. Every id is a UUID; new ones are UUIDv7, so they sort by creation
//! time and keep B-tree inserts local.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Text that is not a hyphenated UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a UUID")]
pub struct InvalidId;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an id read back from storage.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            /// Accepts the hyphenated form only, as the contract's `format: uuid` does.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != 36 {
                    return Err(InvalidId);
                }
                Uuid::try_parse(s).map(Self).map_err(|_| InvalidId)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

id_type!(
    /// A meter on the platform.
    MeterId
);
id_type!(
    /// A meter batch job.
    JobId
);
id_type!(
    /// A partner: the tenant every other object belongs to.
    PartnerId
);
id_type!(
    /// One API key of a partner.
    ApiKeyId
);
id_type!(
    /// A person who signs in to the portal on behalf of one partner.
    UserId
);
id_type!(
    /// A partner's webhook subscription.
    WebhookId
);
id_type!(
    /// One event, as webhooks deliver it and the feed keeps it (`webhook_event_id`).
    EventId
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn new_ids_sort_by_creation_time() {
        let first = MeterId::new();
        let second = MeterId::new();
        assert!(first < second);
    }

    #[test]
    fn ids_parse_only_the_hyphenated_form() {
        assert!(
            "f1080382-ec33-48ed-a511-528af08f747e"
                .parse::<JobId>()
                .is_ok()
        );
        assert!("f1080382ec3348eda511528af08f747e".parse::<JobId>().is_err());
        assert!("not-a-uuid".parse::<JobId>().is_err());
        assert!("".parse::<JobId>().is_err());
    }

    proptest! {
        #[test]
        fn an_id_survives_display_and_parse(bytes in any::<[u8; 16]>()) {
            let id = MeterId::from_uuid(Uuid::from_bytes(bytes));
            prop_assert_eq!(id.to_string().parse::<MeterId>().unwrap(), id);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".*") {
            let _ = s.parse::<PartnerId>();
        }
    }
}
