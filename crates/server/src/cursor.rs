//! Page tokens: opaque to clients, bound to the partner and the listing they came from,
//! and checked, so that a tampered or foreign token is refused rather than misread.
//!
//! A token holds a version, the kind of listing, the partner, and the key of the last row
//! served (keyset paging), followed by a checksum. It carries no secret: the position it
//! names is only ever looked up within the caller's own rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gridroll_domain::PartnerId;
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
const CHECKSUM: usize = 8;

/// The listing a token pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Listing {
    Meters = 1,
    Jobs = 2,
    ProvisionalAssets = 3,
    Events = 4,
    Deliveries = 5,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the page token is not one this listing issued to this partner")]
pub struct InvalidToken;

pub fn encode(listing: Listing, partner: PartnerId, position: &[u8]) -> String {
    let mut payload = Vec::with_capacity(18 + position.len() + CHECKSUM);
    payload.push(VERSION);
    payload.push(listing as u8);
    payload.extend_from_slice(partner.as_uuid().as_bytes());
    payload.extend_from_slice(position);
    let checksum = Sha256::digest(&payload);
    payload.extend_from_slice(&checksum[..CHECKSUM]);
    URL_SAFE_NO_PAD.encode(payload)
}

/// The position a token names, if it is intact and was issued for this listing and partner.
pub fn decode(token: &str, listing: Listing, partner: PartnerId) -> Result<Vec<u8>, InvalidToken> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| InvalidToken)?;
    if bytes.len() < 18 + CHECKSUM {
        return Err(InvalidToken);
    }
    let (payload, checksum) = bytes.split_at(bytes.len() - CHECKSUM);
    if Sha256::digest(payload)[..CHECKSUM] != *checksum
        || payload[0] != VERSION
        || payload[1] != listing as u8
        || payload[2..18] != partner.as_uuid().as_bytes()[..]
    {
        return Err(InvalidToken);
    }
    Ok(payload[18..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_token_round_trips_for_its_partner_and_listing_only() {
        let partner = PartnerId::new();
        let token = encode(Listing::Meters, partner, b"position");
        assert_eq!(
            decode(&token, Listing::Meters, partner).unwrap(),
            b"position"
        );
        assert_eq!(decode(&token, Listing::Jobs, partner), Err(InvalidToken));
        assert_eq!(
            decode(&token, Listing::Meters, PartnerId::new()),
            Err(InvalidToken)
        );
        assert_eq!(
            decode("not a token", Listing::Meters, partner),
            Err(InvalidToken)
        );
        assert_eq!(decode("", Listing::Meters, partner), Err(InvalidToken));
    }

    proptest! {
        #[test]
        fn any_change_to_a_token_is_detected(position in proptest::collection::vec(any::<u8>(), 0..40), flip in 0usize..1000) {
            let partner = PartnerId::new();
            let token = encode(Listing::ProvisionalAssets, partner, &position);
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let i = flip % bytes.len();
            bytes[i] ^= 0x01;
            let tampered = URL_SAFE_NO_PAD.encode(bytes);
            prop_assert_eq!(decode(&tampered, Listing::ProvisionalAssets, partner), Err(InvalidToken));
        }
    }
}
