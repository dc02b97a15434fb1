//! What an API key may do: a set of scopes, each naming a kind of work
//! (`meters:read`, `webhooks:manage`, ...). A key is given its scopes when it is created;
//! every operation of the partner API needs one of them.

use std::fmt;

/// One kind of work an API key may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Jobs, provisional assets, meters, enrollments and programs; validation.
    MetersRead,
    /// Creating and updating meters, one at a time or in jobs.
    MetersWrite,
    /// Changing a meter's participation in programs.
    EnrollmentsWrite,
    /// The event feed.
    EventsRead,
    /// Webhook subscriptions and their delivery logs, read.
    WebhooksRead,
    /// Webhook subscriptions created, changed, tested and deleted; secrets rotated;
    /// deliveries sent again.
    WebhooksManage,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 6] = [
        Scope::MetersRead,
        Scope::MetersWrite,
        Scope::EnrollmentsWrite,
        Scope::EventsRead,
        Scope::WebhooksRead,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MetersRead => "meters:read",
            Scope::MetersWrite => "meters:write",
            Scope::EnrollmentsWrite => "enrollments:write",
            Scope::EventsRead => "events:read",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    /// What the scope allows, in a sentence for people choosing a key's scopes.
    pub fn describe(self) -> &'static str {
        match self {
            Scope::MetersRead => {
                "Read jobs, provisional assets, meters, enrollments and programs; validate uploads"
            }
            Scope::MetersWrite => "Create and update meters, one at a time or in jobs",
            Scope::EnrollmentsWrite => "Change meters' participation in programs",
            Scope::EventsRead => "Read the event feed",
            Scope::WebhooksRead => "Read webhook subscriptions and their delivery logs",
            Scope::WebhooksManage => {
                "Create, change, test and delete webhook subscriptions; rotate secrets; redeliver"
            }
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, UnknownScope> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// A scope name Gridroll does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}; the scopes are {all}", all = Scope::ALL.map(Scope::as_str).join(", "))]
pub struct UnknownScope(pub String);

/// Why a list of scopes is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopesError {
    #[error(transparent)]
    Unknown(#[from] UnknownScope),
    #[error("a key needs at least one scope")]
    Empty,
}

/// The scopes of one key. Never empty when parsed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// Everything: what a read-write key had.
    pub const ALL: Scopes = Scopes((1 << Scope::ALL.len()) - 1);
    /// Every read: what a read-only key had.
    pub const READ_ONLY: Scopes = Scopes(
        (1 << Scope::MetersRead as u8)
            | (1 << Scope::EventsRead as u8)
            | (1 << Scope::WebhooksRead as u8),
    );

    /// Scopes from names separated by spaces or commas, such as
    /// `"meters:read meters:write"`; repeats are allowed.
    pub fn parse(text: &str) -> Result<Scopes, ScopesError> {
        Self::from_names(text.split([' ', ',']).filter(|name| !name.is_empty()))
    }

    /// Scopes from their names.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, ScopesError> {
        let mut scopes = Scopes(0);
        for name in names {
            scopes.0 |= name.trim().parse::<Scope>()?.bit();
        }
        if scopes.0 == 0 {
            return Err(ScopesError::Empty);
        }
        Ok(scopes)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes, in the order of [`Scope::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Whether these are every read and nothing else.
    pub fn is_read_only(self) -> bool {
        self == Self::READ_ONLY
    }
}

impl std::str::FromStr for Scopes {
    type Err = ScopesError;

    fn from_str(s: &str) -> Result<Self, ScopesError> {
        Scopes::parse(s)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Display for Scopes {
    /// Names separated by spaces, the form [`Scopes::parse`] reads and the store keeps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

/// The label a key is recognised by in lists: 1 to 100 characters once trimmed, without
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

/// The longest key name, in characters.
pub const MAX_KEY_NAME: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key's name must be 1 to {MAX_KEY_NAME} characters, without tabs or line breaks")]
pub struct KeyNameError;

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, KeyNameError> {
        let name = raw.trim();
        let fits = (1..=MAX_KEY_NAME).contains(&name.chars().count());
        if !fits || crate::text::control_character(name).is_some() {
            return Err(KeyNameError);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_key_name_is_trimmed_and_bounded_and_has_no_control_characters() {
        assert_eq!(
            KeyName::parse("  billing sync ").unwrap().as_str(),
            "billing sync"
        );
        let longest = "é".repeat(MAX_KEY_NAME);
        assert!(KeyName::parse(&longest).is_ok());
        for refused in [
            "",
            "   ",
            "tab\there",
            "line\nbreak",
            &"x".repeat(MAX_KEY_NAME + 1),
        ] {
            assert_eq!(KeyName::parse(refused), Err(KeyNameError), "{refused:?}");
        }
    }

    #[test]
    fn every_scope_reads_back_from_its_name() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
    }

    #[test]
    fn read_only_keys_have_every_read_and_no_write() {
        let reads: Vec<Scope> = Scopes::READ_ONLY.iter().collect();
        assert_eq!(
            reads,
            [Scope::MetersRead, Scope::EventsRead, Scope::WebhooksRead]
        );
        assert!(Scopes::ALL.iter().eq(Scope::ALL));
    }

    #[test]
    fn names_may_be_separated_by_spaces_or_commas_and_repeat() {
        let scopes = Scopes::parse("meters:read, meters:write meters:read").unwrap();
        assert_eq!(scopes.to_string(), "meters:read meters:write");
    }

    #[test]
    fn an_unknown_or_empty_list_is_refused_naming_the_problem() {
        let unknown = Scopes::parse("meters:read meters:delete").unwrap_err();
        assert!(
            unknown.to_string().contains("\"meters:delete\""),
            "{unknown}"
        );
        assert!(unknown.to_string().contains("webhooks:manage"), "{unknown}");
        assert_eq!(Scopes::parse(" , "), Err(ScopesError::Empty));
    }

    proptest! {
        #[test]
        fn any_set_of_scopes_survives_its_stored_form(bits in 1u8..(1 << Scope::ALL.len())) {
            let scopes: Scopes = Scope::ALL
                .into_iter()
                .filter(|s| bits & s.bit() != 0)
                .collect();
            prop_assert_eq!(Scopes::parse(&scopes.to_string()), Ok(scopes));
        }
    }
}
