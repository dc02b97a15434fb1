//! Places among the bulk uploads received at once. Each upload holds a thread reading its
//! body, so there are few; so that one partner cannot take them all, a partner may hold
//! only its share. Past either limit the client is asked to come back rather than left
//! to queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderValue, StatusCode, header};
use gridroll_domain::PartnerId;
use serde_json::json;

use crate::error::ApiError;

/// Seconds a refused client is told to wait: uploads are received at tens of megabytes a
/// second, so a place frees up within seconds.
const RETRY_AFTER_SECONDS: u64 = 5;

/// The upload places of one process.
pub struct UploadSlots {
    total: usize,
    per_partner: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    total: usize,
    by_partner: HashMap<PartnerId, usize>,
}

/// Why no place was free.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{title}: {error}")]
pub struct SlotRefused {
    pub title: &'static str,
    pub error: String,
    pub limit: usize,
}

impl From<SlotRefused> for ApiError {
    fn from(refused: SlotRefused) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            refused.title,
            json!({"error": refused.error, "limit": refused.limit, "retry_after_seconds": RETRY_AFTER_SECONDS}),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS))
    }
}

/// A place held until dropped.
pub struct Slot {
    slots: Arc<UploadSlots>,
    partner: PartnerId,
}

impl UploadSlots {
    /// `total` places, of which one partner may hold `per_partner` (both at least one).
    pub fn new(total: usize, per_partner: usize) -> Self {
        let total = total.max(1);
        Self {
            total,
            per_partner: per_partner.clamp(1, total),
            held: Mutex::new(Held::default()),
        }
    }

    /// The share of `total` places one partner gets by default: half, so that one busy
    /// partner always leaves room for the others.
    pub fn default_share(total: usize) -> usize {
        (total / 2).max(1)
    }

    /// Takes a place for `partner`, or says why there is none.
    pub fn take(self: &Arc<Self>, partner: PartnerId) -> Result<Slot, SlotRefused> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let mine = held.by_partner.get(&partner).copied().unwrap_or(0);
        if mine >= self.per_partner {
            return Err(refusal(
                "Too many uploads of yours in progress",
                format!(
                    "this partner is already sending {mine} uploads, the most one partner may send at once; retry when one of them has been accepted"
                ),
                self.per_partner,
            ));
        }
        if held.total >= self.total {
            return Err(refusal(
                "The server is receiving as many uploads as it takes at once",
                format!(
                    "{} uploads of all partners are being received; retry in a few seconds",
                    held.total
                ),
                self.total,
            ));
        }
        held.total += 1;
        *held.by_partner.entry(partner).or_default() += 1;
        Ok(Slot {
            slots: self.clone(),
            partner,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        held.total -= 1;
        if let Some(mine) = held.by_partner.get_mut(&self.partner) {
            *mine -= 1;
            if *mine == 0 {
                held.by_partner.remove(&self.partner);
            }
        }
    }
}

fn refusal(title: &'static str, error: String, limit: usize) -> SlotRefused {
    SlotRefused {
        title,
        error,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_holds_at_most_its_share_and_leaves_the_rest_to_others() {
        let slots = Arc::new(UploadSlots::new(4, 2));
        let (busy, other) = (PartnerId::new(), PartnerId::new());
        let first = slots.take(busy).unwrap();
        let _second = slots.take(busy).unwrap();
        let refused = slots.take(busy).err().unwrap();
        assert!(refused.title.contains("of yours"));
        assert_eq!(
            ApiError::from(refused).status,
            StatusCode::TOO_MANY_REQUESTS
        );
        let _a = slots.take(other).unwrap();
        let _b = slots.take(other).unwrap();
        // Every place is taken now: a third partner hears that the server is full.
        let full = slots.take(PartnerId::new()).err().unwrap();
        assert!(full.title.contains("as many uploads as it takes"));
        drop(first);
        assert!(slots.take(busy).is_ok());
    }
}
