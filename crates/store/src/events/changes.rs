//! Collecting a change's events as it is made, then recording them as its last step.

use gridroll_domain::PartnerId;
use gridroll_domain::enrollment::{self, Abstention, Enrollment};
use gridroll_domain::event::{self, Event, MeterRef};
use gridroll_domain::webhook::EventType;

use super::outbox::{self, EventTypes};
use crate::Result;
use crate::db::Db;
use crate::evaluate::Catalog;

/// The events of one change of a partner's, kept only for the types that are wanted.
pub struct Outbox {
    partner: PartnerId,
    wanted: EventTypes,
    events: Vec<Event>,
}

impl Outbox {
    /// Starts collecting a partner's events: the types the feed keeps (`feed`) and those
    /// the partner's enabled subscriptions want.
    pub async fn open(db: &mut dyn Db, partner: PartnerId, feed: EventTypes) -> Result<Self> {
        Ok(Self {
            partner,
            wanted: outbox::wanted(db, partner, feed).await?,
            events: Vec::new(),
        })
    }

    pub fn wants(&self, t: EventType) -> bool {
        self.wanted.contains(t)
    }

    /// Adds the event `make` builds, if its type is wanted (it is not built otherwise).
    pub fn add(&mut self, t: EventType, make: impl FnOnce() -> Event) {
        if self.wants(t) {
            self.events.push(make());
        }
    }

    /// Adds the enrollment events of a meter whose enrollments (or participation) went
    /// from `before` to `after`.
    pub fn enrollments_changed(
        &mut self,
        catalog: &Catalog,
        meter: MeterRef,
        before: (&[Enrollment], &[Abstention]),
        after: (&[Enrollment], &[Abstention]),
    ) {
        if !self.wants(EventType::EnrollmentGlobalStatusUpdated)
            && !self.wants(EventType::EnrollmentRequiredActionsUpdated)
        {
            return;
        }
        let view = |(list, abstentions): (&[Enrollment], &[Abstention])| {
            enrollment::view(list, &catalog.by_id, abstentions, &catalog.schedule)
        };
        let (before, after) = (view(before), view(after));
        for e in event::enrollment_changes(meter, &before, &after) {
            if self.wants(e.event_type) {
                self.events.push(e);
            }
        }
    }

    /// Records the events in the transaction open on `db`: the change's last step.
    pub async fn record(self, db: &mut dyn Db, now: i64) -> Result<()> {
        outbox::record(db, self.partner, &self.events, now).await
    }
}
