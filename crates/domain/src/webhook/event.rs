//! The kinds of event a subscription names, by their wire names.

use serde::{Deserialize, Serialize};
use strum::{AsRefStr, Display, EnumIter, EnumString, IntoStaticStr};

/// A kind of event a partner can subscribe to, serialized as its wire name
/// (`meter.created`, ...). Leap's names are kept exactly so that a subscription written for
/// Leap's partner API is accepted unchanged.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Display,
    EnumString,
    AsRefStr,
    IntoStaticStr,
    EnumIter,
)]
pub enum EventType {
    /// A meter was created.
    #[serde(rename = "meter.created")]
    #[strum(serialize = "meter.created")]
    MeterCreated,
    /// A meter's data was replaced (Gridroll's own event).
    #[serde(rename = "meter.updated")]
    #[strum(serialize = "meter.updated")]
    MeterUpdated,
    /// An enrollment's global status changed.
    #[serde(rename = "meter.enrollment.global-status.updated")]
    #[strum(serialize = "meter.enrollment.global-status.updated")]
    EnrollmentGlobalStatusUpdated,
    /// An enrollment's participation status changed.
    #[serde(rename = "meter.enrollment.participation-status.updated")]
    #[strum(serialize = "meter.enrollment.participation-status.updated")]
    EnrollmentParticipationStatusUpdated,
    /// The actions an enrollment requires changed.
    #[serde(rename = "meter.enrollment.required-actions.updated")]
    #[strum(serialize = "meter.enrollment.required-actions.updated")]
    EnrollmentRequiredActionsUpdated,
    /// A meter batch job finished (Gridroll's own event).
    #[serde(rename = "job.completed")]
    #[strum(serialize = "job.completed")]
    JobCompleted,
    /// Leap's enrollment-group event; accepted in a subscription, never sent.
    #[serde(rename = "meter.enrollment.group.updated")]
    #[strum(serialize = "meter.enrollment.group.updated")]
    EnrollmentGroupUpdated,
    /// Leap's connect-session event; accepted in a subscription, never sent.
    #[serde(rename = "connect_session.updated")]
    #[strum(serialize = "connect_session.updated")]
    ConnectSessionUpdated,
    /// Leap's connect-session authorization event; accepted in a subscription, never sent.
    #[serde(rename = "connect_session.authorization_updated")]
    #[strum(serialize = "connect_session.authorization_updated")]
    ConnectSessionAuthorizationUpdated,
}

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [EventType; 9] = [
        Self::MeterCreated,
        Self::MeterUpdated,
        Self::EnrollmentGlobalStatusUpdated,
        Self::EnrollmentParticipationStatusUpdated,
        Self::EnrollmentRequiredActionsUpdated,
        Self::JobCompleted,
        Self::EnrollmentGroupUpdated,
        Self::ConnectSessionUpdated,
        Self::ConnectSessionAuthorizationUpdated,
    ];

    /// The wire name, for callers that need it beyond the value's lifetime.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether Gridroll ever sends this event. Gridroll has no enrollment groups or connect
    /// sessions, so those three are accepted only so Leap-shaped subscriptions still parse.
    pub fn is_emitted(self) -> bool {
        !matches!(
            self,
            Self::EnrollmentGroupUpdated
                | Self::ConnectSessionUpdated
                | Self::ConnectSessionAuthorizationUpdated
        )
    }

    /// Whether Leap's partner API defines this event; `meter.updated` and `job.completed`
    /// are Gridroll's own.
    pub fn is_leap(self) -> bool {
        !matches!(self, Self::MeterUpdated | Self::JobCompleted)
    }

    /// The wire names of every event type, comma-separated, for messages.
    pub(crate) fn known_names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    const TABLE: [(EventType, &str, bool, bool); 9] = [
        (EventType::MeterCreated, "meter.created", true, true),
        (EventType::MeterUpdated, "meter.updated", true, false),
        (
            EventType::EnrollmentGlobalStatusUpdated,
            "meter.enrollment.global-status.updated",
            true,
            true,
        ),
        (
            EventType::EnrollmentParticipationStatusUpdated,
            "meter.enrollment.participation-status.updated",
            true,
            true,
        ),
        (
            EventType::EnrollmentRequiredActionsUpdated,
            "meter.enrollment.required-actions.updated",
            true,
            true,
        ),
        (EventType::JobCompleted, "job.completed", true, false),
        (
            EventType::EnrollmentGroupUpdated,
            "meter.enrollment.group.updated",
            false,
            true,
        ),
        (
            EventType::ConnectSessionUpdated,
            "connect_session.updated",
            false,
            true,
        ),
        (
            EventType::ConnectSessionAuthorizationUpdated,
            "connect_session.authorization_updated",
            false,
            true,
        ),
    ];

    #[test]
    fn every_event_type_has_its_wire_name_and_flags() {
        for (event, name, emitted, leap) in TABLE {
            assert_eq!(event.as_str(), name);
            assert_eq!(event.as_ref(), name);
            assert_eq!(event.to_string(), name);
            assert_eq!(name.parse::<EventType>(), Ok(event));
            assert_eq!(
                serde_json::to_string(&event).ok(),
                Some(format!("\"{name}\""))
            );
            assert_eq!(
                serde_json::from_str::<EventType>(&format!("\"{name}\"")).ok(),
                Some(event)
            );
            assert_eq!(event.is_emitted(), emitted, "{name}");
            assert_eq!(event.is_leap(), leap, "{name}");
        }
    }

    #[test]
    fn the_all_constant_lists_every_variant_once() {
        assert_eq!(
            EventType::ALL.to_vec(),
            EventType::iter().collect::<Vec<_>>()
        );
        assert_eq!(EventType::ALL.len(), TABLE.len());
    }

    #[test]
    fn names_that_differ_in_case_or_spelling_are_not_event_types() {
        for text in [
            "Meter.Created",
            "meter.created ",
            "meter_created",
            "MeterCreated",
            "",
        ] {
            assert!(text.parse::<EventType>().is_err(), "{text:?}");
            assert!(serde_json::from_str::<EventType>(&format!("{text:?}")).is_err());
        }
    }
}
