//! Events: the outbox every change writes in its own transaction, and the feed that
//! reads it back in order. A partner's events are numbered from the partner's
//! `last_event_seq`, raised by the transaction that writes them: the partner's row stays
//! locked until that transaction ends (on PostgreSQL; SQLite has one writer), so a
//! partner's events commit in the order of their numbers, and a reader that has seen
//! number n has seen every event before it.

mod changes;
pub(crate) mod outbox;
mod retention;
pub(crate) mod runs;

use async_trait::async_trait;
use gridroll_domain::webhook::EventType;
use gridroll_domain::{EventId, PartnerId};

use crate::engine::Engine;
use crate::query::Conditions;
use crate::{Result, values, work};

pub(crate) use changes::Outbox;
pub use outbox::EventTypes;

/// An event as the feed and the dispatcher read it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its number among the partner's events.
    pub seq: u64,
    pub id: EventId,
    pub event_type: String,
    /// The payload, as JSON text.
    pub payload: String,
    pub created_at: i64,
}

/// A page of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    pub events: Vec<StoredEvent>,
    /// Where the next page starts: the last event this page read, or where the feed was
    /// when nothing came after.
    pub position: u64,
    /// Whether events follow the page already.
    pub more: bool,
}

/// The most of a partner's events one page of the feed reads past, when a filter by type
/// skips most of them: a page may then hold fewer events than asked for.
pub const FEED_SCAN: u64 = 50_000;

/// The events partners read back, and their retention.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// The partner's events after `after`, oldest first, of the given types (all when
    /// empty), at most `limit`.
    async fn feed(
        &self,
        partner: PartnerId,
        after: u64,
        types: EventTypes,
        limit: usize,
    ) -> Result<FeedPage>;
    /// Removes a batch of events, delivery attempts and deliveries older than `before`:
    /// answers how many events and attempts went (0 when nothing is left to remove).
    async fn remove_expired(&self, before: i64) -> Result<u64>;
}

#[async_trait]
impl<E: Engine> EventStore for E {
    async fn feed(
        &self,
        partner: PartnerId,
        after: u64,
        types: EventTypes,
        limit: usize,
    ) -> Result<FeedPage> {
        self.read(work!(db => async move {
            let last: u64 = db
                .query_opt("SELECT last_event_seq FROM partners WHERE id = $1", values![partner])
                .await?
                .map_or(Ok(0), |row| row.get(0))?;
            let end = last.min(after.saturating_add(FEED_SCAN));
            let mut c = Conditions::new(db.dialect());
            c.eq("partner_id", partner.into());
            // The runs that overlap the numbers after `after` up to `end`: each holds at
            // least one event the page wants, so `limit` runs are enough.
            let (from, to) = (c.bind(after.into()), c.bind(end.into()));
            c.push(runs::overlapping(&from, &to));
            if !types.is_empty() {
                c.one_of("event_type", types.iter().map(|t| t.as_ref().into()));
            }
            let sql = format!(
                "SELECT {} FROM events WHERE {} ORDER BY seq LIMIT {limit}",
                runs::RUN_COLUMNS,
                c.sql()
            );
            let mut events = Vec::new();
            for run in db.query_built(&sql, &c.params).await? {
                events.extend(runs::events(&run, |seq| seq > after && seq <= end)?);
                if events.len() >= limit {
                    break;
                }
            }
            events.truncate(limit);
            let position = match events.last() {
                Some(e) if events.len() == limit => e.seq,
                // Fewer than asked for: nothing else up to `end`.
                _ => end.max(after),
            };
            Ok(FeedPage { events, position, more: position < last })
        }))
        .await
    }

    async fn remove_expired(&self, before: i64) -> Result<u64> {
        self.write(work!(db => retention::remove_batch(db, before)))
            .await
    }
}

impl EventTypes {
    /// The types named, comma-separated, as a subscription is stored; names this release
    /// does not know are skipped.
    pub fn parse_stored(names: &str) -> Self {
        names
            .split(',')
            .filter_map(|name| name.parse::<EventType>().ok())
            .collect()
    }
}
