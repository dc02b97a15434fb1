//! Writing events in the transaction of the change they tell of: a rolled-back change
//! leaves no event, and a change processed again (a chunk after a crash) writes its
//! events again only because the first attempt left none.

use gridroll_domain::PartnerId;
use gridroll_domain::event::Event;
use gridroll_domain::webhook::EventType;

use super::runs;
use crate::db::Db;
use crate::{Result, StoreError, columns, values};

/// A set of event types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTypes(u32);

impl EventTypes {
    /// No type.
    pub const NONE: Self = Self(0);

    /// Every type Gridroll emits.
    pub fn emitted() -> Self {
        EventType::ALL
            .iter()
            .copied()
            .filter(|t| t.is_emitted())
            .collect()
    }

    fn bit(t: EventType) -> u32 {
        1 << (t as u32)
    }

    pub fn contains(self, t: EventType) -> bool {
        self.0 & Self::bit(t) != 0
    }

    pub fn with(self, t: EventType) -> Self {
        Self(self.0 | Self::bit(t))
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The types in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .iter()
            .copied()
            .filter(move |t| self.contains(*t))
    }
}

impl FromIterator<EventType> for EventTypes {
    fn from_iter<I: IntoIterator<Item = EventType>>(types: I) -> Self {
        types.into_iter().fold(Self::NONE, Self::with)
    }
}

/// The event types a change of the partner's records: those the feed keeps, and those
/// the partner's enabled subscriptions want.
pub async fn wanted(db: &mut dyn Db, partner: PartnerId, feed: EventTypes) -> Result<EventTypes> {
    let rows = db
        .query(
            "SELECT event_types FROM webhooks WHERE partner_id = $1 AND disabled_at IS NULL",
            values![partner],
        )
        .await?;
    let mut wanted = feed;
    for row in rows {
        wanted = wanted.union(EventTypes::parse_stored(&row.get::<String>(0)?));
    }
    Ok(wanted)
}

/// Records a partner's events in the transaction open on `db`, numbered after the
/// partner's last, in runs (see `runs.rs`). Taking the numbers locks the partner's row until the transaction
/// ends, so this is the last step of a change.
pub async fn record(db: &mut dyn Db, partner: PartnerId, events: &[Event], now: i64) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let last: u64 = db
        .query_opt(
            "UPDATE partners SET last_event_seq = last_event_seq + $2 WHERE id = $1
             RETURNING last_event_seq",
            values![partner, events.len()],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("partner {partner} is gone")))?
        .get(0)?;
    let first = last + 1 - events.len() as u64;
    let stored: Vec<(&str, String)> = events
        .iter()
        .map(|e| (e.event_type.as_ref(), e.stored()))
        .collect();
    db.insert_rows(
        "events",
        columns![partner_id: Uuid, seq: Int, span: Int, id: Uuid, event_type: Text,
                 payload: Text, created_at: Int],
        &runs::rows(partner.into(), first, &stored, now),
    )
    .await
}
