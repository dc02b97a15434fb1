//! The events Gridroll tells partners about, as webhooks deliver them and the event feed
//! keeps them: which changes make an event, and each event's payload in the form of
//! Leap's webhook definitions (`webhook_event_type` and the fields of its schema).
//!
//! An event is made only when the thing it names changed: a meter's global status that
//! is the same after an update makes no global-status event. A meter that is created
//! makes `meter.created` alone; its enrollments are read from the meter itself, and
//! later changes to them make the enrollment events.
//!
//! The outbox keeps a `meter.created` or `meter.updated` event (nearly every event of an
//! import) as the values of its four fields, `["<meter_id>","<reference>","<region>",
//! "<type>"]`, half the bytes of the object it stands for; [`payload_json`] writes the
//! object back, the same text as the object's own. Every other event is kept as its
//! payload.

use std::fmt;

use serde_json::{Value, json};

use crate::enrollment::{Action, MeterEnrollments, PreferenceChange};
use crate::enums::EnrollmentStatus;
use crate::job::{JobCounts, JobStatus};
use crate::timestamp::{format, format_millis};
use crate::webhook::EventType;
use crate::{JobId, MeterId};

/// An event about to be recorded: its type and its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: EventType,
    body: Body,
}

/// What an event says: its meter's fields alone, or any payload.
#[derive(Debug, Clone, PartialEq)]
enum Body {
    Meter(MeterFields),
    Payload(Value),
}

/// The fields every meter event carries, owned.
#[derive(Debug, Clone, PartialEq)]
struct MeterFields {
    id: MeterId,
    partner_reference: String,
    transmission_region: String,
    meter_type: String,
}

impl MeterFields {
    fn of(meter: MeterRef) -> Self {
        Self {
            id: meter.id,
            partner_reference: meter.partner_reference.to_owned(),
            transmission_region: meter.transmission_region.to_owned(),
            meter_type: meter.meter_type.to_owned(),
        }
    }

    fn as_ref(&self) -> MeterRef<'_> {
        MeterRef {
            id: self.id,
            partner_reference: &self.partner_reference,
            transmission_region: &self.transmission_region,
            meter_type: &self.meter_type,
        }
    }
}

impl Event {
    fn new(event_type: EventType, mut payload: Value) -> Self {
        payload["webhook_event_type"] = json!(event_type.as_ref());
        Self {
            event_type,
            body: Body::Payload(payload),
        }
    }

    /// An event whose payload is its meter's fields and nothing else.
    fn of_meter(event_type: EventType, meter: MeterRef) -> Self {
        Self {
            event_type,
            body: Body::Meter(MeterFields::of(meter)),
        }
    }

    /// The payload, as delivered: `webhook_event_type` and the fields of its schema.
    pub fn payload(&self) -> Value {
        match &self.body {
            Body::Meter(m) => with_type(self.event_type, m.as_ref().fields()),
            Body::Payload(payload) => payload.clone(),
        }
    }

    /// The payload in the form the outbox keeps (see the module's documentation).
    pub fn stored(&self) -> String {
        match &self.body {
            Body::Meter(m) => serde_json::to_string(&(
                m.id,
                &m.partner_reference,
                &m.transmission_region,
                &m.meter_type,
            ))
            .expect("strings serialize"),
            Body::Payload(payload) => payload.to_string(),
        }
    }
}

fn with_type(event_type: EventType, mut payload: Value) -> Value {
    payload["webhook_event_type"] = json!(event_type.as_ref());
    payload
}

/// A stored payload that is neither of the forms the outbox writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayloadError(String);

impl fmt::Display for StoredPayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored event payload: {}", self.0)
    }
}

impl std::error::Error for StoredPayloadError {}

/// A stored event's payload as the JSON object it is delivered as: the meter fields of a
/// meter event written out, any other payload as it is.
pub fn payload_json(event_type: &str, stored: String) -> Result<String, StoredPayloadError> {
    if !stored.trim_start().starts_with('[') {
        return Ok(stored);
    }
    let event_type: EventType = event_type
        .parse()
        .map_err(|_| StoredPayloadError(format!("unknown event type {event_type:?}")))?;
    let (id, partner_reference, transmission_region, meter_type): (
        MeterId,
        String,
        String,
        String,
    ) = serde_json::from_str(&stored).map_err(|e| StoredPayloadError(e.to_string()))?;
    let meter = MeterRef {
        id,
        partner_reference: &partner_reference,
        transmission_region: &transmission_region,
        meter_type: &meter_type,
    };
    Ok(with_type(event_type, meter.fields()).to_string())
}

/// What every meter event says of its meter.
#[derive(Debug, Clone, Copy)]
pub struct MeterRef<'a> {
    pub id: MeterId,
    pub partner_reference: &'a str,
    pub transmission_region: &'a str,
    pub meter_type: &'a str,
}

impl MeterRef<'_> {
    fn fields(&self) -> Value {
        json!({
            "meter_id": self.id,
            "partner_reference": self.partner_reference,
            "transmission_region": self.transmission_region,
            "meter_type": self.meter_type,
        })
    }
}

/// `meter.created`.
pub fn meter_created(meter: MeterRef) -> Event {
    Event::of_meter(EventType::MeterCreated, meter)
}

/// `meter.updated`: the meter's data was replaced with different data, its tags or reference
/// changed, or it was archived or brought back.
pub fn meter_updated(meter: MeterRef) -> Event {
    Event::of_meter(EventType::MeterUpdated, meter)
}

/// `meter.enrollment.participation-status.updated`: a participation change applied to
/// the meter.
pub fn participation_updated(meter: MeterRef, change: &PreferenceChange) -> Event {
    let mut payload = meter.fields();
    payload["participation_preference"] = json!(change.preference);
    payload["start_time"] = json!(format_millis(change.start));
    if let Some(end) = change.end {
        payload["end_time"] = json!(format_millis(end));
    }
    Event::new(EventType::EnrollmentParticipationStatusUpdated, payload)
}

/// The enrollment events of a meter whose enrollments went from `before` to `after`:
/// `meter.enrollment.global-status.updated` when the global status changed, and
/// `meter.enrollment.required-actions.updated` when the actions required of the partner
/// did.
pub fn enrollment_changes(
    meter: MeterRef,
    before: &MeterEnrollments,
    after: &MeterEnrollments,
) -> Vec<Event> {
    let mut events = Vec::new();
    if before.global_status != after.global_status {
        events.push(global_status_updated(meter, after.global_status));
    }
    if before.partner_actions != after.partner_actions {
        events.push(required_actions_updated(meter, after));
    }
    events
}

fn global_status_updated(meter: MeterRef, status: EnrollmentStatus) -> Event {
    let mut payload = meter.fields();
    payload["global_enrollment_status"] = json!(status);
    Event::new(EventType::EnrollmentGlobalStatusUpdated, payload)
}

fn required_actions_updated(meter: MeterRef, now: &MeterEnrollments) -> Event {
    let mut payload = meter.fields();
    payload["global_enrollment_status"] = json!(now.global_status);
    payload["required_actions"] = json!({
        "partner": now.partner_actions.iter().map(action).collect::<Vec<_>>(),
    });
    Event::new(EventType::EnrollmentRequiredActionsUpdated, payload)
}

/// `job.completed` (Gridroll's own): a job reached its final status.
pub fn job_completed(job: JobId, status: JobStatus, counts: &JobCounts) -> Event {
    Event::new(
        EventType::JobCompleted,
        json!({
            "job_id": job,
            "status": status.as_ref(),
            "assets_count": counts.assets,
            "created_count": counts.created,
            "updated_count": counts.updated,
            "failed_count": counts.failed,
        }),
    )
}

/// A required action as the API shows it (`RequiredAction`).
pub fn action(action: &Action) -> Value {
    let mut a = json!({
        "program_identifier": action.program,
        "delivery_period": action.delivery_period,
        "action_type": action.action_type,
        "action_description": action.description,
        "action_code": action.code,
    });
    if let Some(deadline) = action.deadline {
        a["enrollment_deadline_date_time"] = json!(format(deadline));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enums::{ActionType, ParticipationPreference};

    fn meter() -> MeterRef<'static> {
        MeterRef {
            id: MeterId::new(),
            partner_reference: "site-1",
            transmission_region: "CAISO",
            meter_type: "DEVICE",
        }
    }

    fn standing(status: EnrollmentStatus, actions: Vec<Action>) -> MeterEnrollments {
        MeterEnrollments {
            global_status: status,
            programs: Vec::new(),
            partner_actions: actions,
            operator_actions: Vec::new(),
        }
    }

    fn missing_fields(program: &str) -> Action {
        Action {
            program: program.to_owned(),
            delivery_period: format!("{program}_2027"),
            deadline: None,
            action_type: ActionType::NoMissingFields,
            description: "There are missing fields: utility.name".to_owned(),
            code: "FIELDS_0001",
        }
    }

    #[test]
    fn a_payload_names_its_type_and_its_meter() {
        let m = meter();
        let event = meter_created(m);
        assert_eq!(event.event_type, EventType::MeterCreated);
        assert_eq!(event.payload()["webhook_event_type"], "meter.created");
        assert_eq!(event.payload()["meter_id"], json!(m.id));
        assert_eq!(event.payload()["partner_reference"], "site-1");
        assert_eq!(event.payload()["transmission_region"], "CAISO");
        assert_eq!(event.payload()["meter_type"], "DEVICE");
    }

    #[test]
    fn unchanged_enrollments_make_no_event() {
        let same = standing(EnrollmentStatus::Eligible, vec![missing_fields("ELRP")]);
        assert!(enrollment_changes(meter(), &same, &same.clone()).is_empty());
    }

    #[test]
    fn a_changed_global_status_makes_one_event_with_the_new_status() {
        let before = standing(EnrollmentStatus::Pending, vec![]);
        let after = standing(EnrollmentStatus::Active, vec![]);
        let events = enrollment_changes(meter(), &before, &after);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].event_type,
            EventType::EnrollmentGlobalStatusUpdated
        );
        assert_eq!(events[0].payload()["global_enrollment_status"], "ACTIVE");
    }

    #[test]
    fn changed_partner_actions_make_a_required_actions_event_listing_them() {
        let before = standing(EnrollmentStatus::Eligible, vec![missing_fields("ELRP")]);
        let after = standing(
            EnrollmentStatus::Eligible,
            vec![missing_fields("ELRP"), missing_fields("DRAM")],
        );
        let events = enrollment_changes(meter(), &before, &after);
        assert_eq!(events.len(), 1);
        let payload = &events[0].payload();
        assert_eq!(
            payload["webhook_event_type"],
            "meter.enrollment.required-actions.updated"
        );
        assert_eq!(payload["global_enrollment_status"], "ELIGIBLE");
        let partner = payload["required_actions"]["partner"].as_array().unwrap();
        assert_eq!(partner.len(), 2);
        assert_eq!(partner[1]["program_identifier"], "DRAM");
        assert_eq!(partner[1]["action_code"], "FIELDS_0001");
    }

    #[test]
    fn a_participation_event_carries_the_preference_and_its_period() {
        let change = PreferenceChange {
            preference: ParticipationPreference::Idle,
            start: 1_711_014_231_186,
            end: Some(1_711_100_631_186),
            reason: None,
        };
        let event = participation_updated(meter(), &change);
        assert_eq!(event.payload()["participation_preference"], "IDLE");
        assert_eq!(event.payload()["start_time"], "2024-03-21T09:43:51.186Z");
        assert_eq!(event.payload()["end_time"], "2024-03-22T09:43:51.186Z");
    }

    #[test]
    fn a_completed_job_event_carries_its_counts() {
        let counts = JobCounts {
            assets: 3,
            created: 1,
            updated: 1,
            failed: 1,
        };
        let event = job_completed(JobId::new(), JobStatus::CompletedWithErrors, &counts);
        assert_eq!(event.payload()["status"], "COMPLETED_WITH_ERRORS");
        assert_eq!(event.payload()["failed_count"], 1);
        assert_eq!(event.payload()["assets_count"], 3);
    }

    #[test]
    fn a_meter_event_is_kept_as_its_values_and_delivered_as_its_object() {
        let event = meter_created(meter());
        let stored = event.stored();
        assert!(stored.starts_with('['), "{stored}");
        assert!(stored.len() * 3 < event.payload().to_string().len() * 2);
        assert_eq!(
            payload_json("meter.created", stored).unwrap(),
            event.payload().to_string()
        );
    }

    #[test]
    fn any_other_event_is_kept_as_its_payload() {
        let counts = JobCounts::default();
        let event = job_completed(JobId::new(), JobStatus::Completed, &counts);
        assert_eq!(event.stored(), event.payload().to_string());
        let object = event.payload().to_string();
        assert_eq!(
            payload_json("job.completed", object.clone()).unwrap(),
            object
        );
    }

    #[test]
    fn a_damaged_stored_payload_is_an_error_rather_than_a_guess() {
        for (event_type, stored) in [
            ("meter.created", "[1,2]"),
            ("meter.created", "[\"not-a-uuid\",\"a\",\"b\",\"c\"]"),
            ("meter.sometimes", "[]"),
        ] {
            assert!(
                payload_json(event_type, stored.to_owned()).is_err(),
                "{stored}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn every_meter_event_reads_back_as_the_object_it_stands_for(
            reference in "\\PC{0,40}",
            region in "[A-Z_]{1,10}",
            meter_type in "\\PC{0,12}",
            updated in proptest::bool::ANY,
        ) {
            let m = MeterRef {
                id: MeterId::new(),
                partner_reference: &reference,
                transmission_region: &region,
                meter_type: &meter_type,
            };
            let (event, name) = if updated {
                (meter_updated(m), "meter.updated")
            } else {
                (meter_created(m), "meter.created")
            };
            proptest::prop_assert_eq!(
                payload_json(name, event.stored()).unwrap(),
                event.payload().to_string()
            );
        }
    }
}
