//! Slowing password guessing without letting anyone lock a user out. Every failed
//! sign-in is answered late once failures pile up: per account (from anywhere) after the
//! lockout threshold, and per client address (over any accounts) after a few more, the
//! wait doubling with each failure up to half a minute. A correct password is never
//! made to wait. The lockout itself is only ever of the source that failed (see the
//! store's `sign_in_attempt`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};

use super::session::LOCK_AFTER;

/// The longest a failed sign-in is made to wait.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Failures from one address, over any accounts, answered at once.
const ADDRESS_FREE_FAILURES: u32 = 10;

/// How long an address's failures are remembered after its last one.
const ADDRESS_MEMORY: Duration = Duration::from_secs(3600);

/// Addresses remembered at most; past it, those not seen for longest are forgotten.
const ADDRESSES: usize = 100_000;

/// The wait before answering a failure that is the `failures`-th in a row, the first
/// `free` of them answered at once.
fn doubling(failures: u32, free: u32) -> Duration {
    match failures.checked_sub(free + 1) {
        None => Duration::ZERO,
        Some(extra) => Duration::from_secs(1u64 << extra.min(5)).min(MAX_DELAY),
    }
}

/// The wait for an account's `failures`-th failed sign-in in a row.
pub fn account_delay(failures: u32) -> Duration {
    doubling(failures, LOCK_AFTER)
}

/// Failed sign-ins per client address, in this process.
#[derive(Default)]
pub struct SignInThrottle {
    addresses: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl SignInThrottle {
    /// Notes a failure from `address`; answers how long its answer waits.
    pub fn failed(&self, address: IpAddr, now: Instant) -> Duration {
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        if addresses.len() >= ADDRESSES {
            addresses.retain(|_, (_, last)| now.duration_since(*last) < ADDRESS_MEMORY);
            if addresses.len() >= ADDRESSES {
                addresses.clear();
            }
        }
        let entry = addresses.entry(address).or_insert((0, now));
        if now.duration_since(entry.1) >= ADDRESS_MEMORY {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = now;
        doubling(entry.0, ADDRESS_FREE_FAILURES)
    }

    /// A success from `address` clears its failures.
    pub fn succeeded(&self, address: IpAddr) {
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        addresses.remove(&address);
    }
}

/// The client's address: the connection's peer, or behind a reverse proxy the last
/// address of `X-Forwarded-For` (the one the proxy added). Unknown (a request made
/// in-process) counts as one address.
pub fn client_address(headers: &HeaderMap, extensions: &Extensions, behind_proxy: bool) -> IpAddr {
    if behind_proxy
        && let Some(forwarded) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return forwarded;
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// The client's address, as [`client_address`] finds it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

impl axum::extract::FromRequestParts<crate::AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_address(
            &parts.headers,
            &parts.extensions,
            state.config.behind_proxy,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_failures_wait_longer_each_time_past_the_lockout_threshold() {
        let waits: Vec<u64> = (1..=12).map(|n| account_delay(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn an_address_that_keeps_failing_waits_longer_until_it_succeeds_or_an_hour_passes() {
        let throttle = SignInThrottle::default();
        let (address, other) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        let waits: Vec<u64> = (0..13)
            .map(|_| throttle.failed(address, start).as_secs())
            .collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4]);
        assert_eq!(throttle.failed(other, start), Duration::ZERO);
        assert_eq!(
            throttle.failed(address, start + ADDRESS_MEMORY),
            Duration::ZERO
        );
        for _ in 0..12 {
            throttle.failed(address, start);
        }
        throttle.succeeded(address);
        assert_eq!(throttle.failed(address, start), Duration::ZERO);
    }

    #[test]
    fn behind_a_proxy_the_last_forwarded_address_is_the_clients() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let extensions = Extensions::new();
        assert_eq!(
            client_address(&headers, &extensions, true),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(&headers, &extensions, false),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }
}
