//! The pure rules of webhooks: which events a partner may subscribe to, which receivers and
//! headers a subscription may name, when a failed delivery is tried again, and how a
//! delivery is signed (the Standard Webhooks form, <https://www.standardwebhooks.com>).
//!
//! Nothing here resolves names, sends requests or reads a clock: the caller passes in the
//! time and the random bytes, so a test drives every rule with fixed values.

mod address;
mod event;
mod receiver;
mod retry;
mod signing;
mod subscription;

pub use address::is_public;
pub use event::EventType;
pub use receiver::ReceiverUrl;
pub use retry::{RetrySchedule, RetryScheduleError, jittered, next_delay, parse_retry_after};
pub use signing::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret, SecretError, sign, signature_header,
    verify,
};
pub use subscription::{Header, Subscription, SubscriptionProblem, SubscriptionRequest};
