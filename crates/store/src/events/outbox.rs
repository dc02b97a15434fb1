//! Writing events in the transaction of the change they tell of: a rolled-back change
//! leaves no event, and a change processed again (a chunk after a crash) writes its
//! events again only because the first attempt left none.

use gridroll_domain::PartnerId;
use gridroll_domain::event::Event;
use gridroll_domain::webhook::EventType;
use uuid::Uuid;

use crate::db::{Db, Value};
use crate::{Result, StoreError, values};

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

/// How many events one statement writes, largest first: a change's events go out in
/// batches of these sizes, so that each statement's text is one of a few, prepared once
/// per connection and planned once (five values a row, far below either backend's limit
/// of parameters).
const BATCHES: [usize; 5] = [500, 100, 20, 5, 1];

/// The statement that writes `rows` events: $1 partner, $2 now, then per event its
/// number, id, type and payload.
fn insert_statement(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let n = 3 + 4 * r;
            format!("($1, ${n}, ${}, ${}, ${}, $2)", n + 1, n + 2, n + 3)
        })
        .collect();
    format!(
        "INSERT INTO events (partner_id, seq, id, event_type, payload, created_at) VALUES {}",
        values.join(", ")
    )
}

/// Records a partner's events in the transaction open on `db`, numbered after the
/// partner's last. Taking the numbers locks the partner's row until the transaction
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
    let mut seq = last + 1 - events.len() as u64;
    let mut rest = events;
    while !rest.is_empty() {
        let size = BATCHES
            .into_iter()
            .find(|&size| size <= rest.len())
            .unwrap_or(1);
        let (batch, after) = rest.split_at(size);
        let mut params: Vec<Value> = Vec::with_capacity(2 + 4 * size);
        params.extend([partner.into(), now.into()]);
        for event in batch {
            params.extend([
                Value::from(seq),
                Value::Uuid(Uuid::now_v7()),
                Value::from(event.event_type.as_ref()),
                Value::Text(event.stored()),
            ]);
            seq += 1;
        }
        db.execute(&insert_statement(size), &params).await?;
        rest = after;
    }
    Ok(())
}
