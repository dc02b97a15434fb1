use std::collections::HashMap;

use super::*;
use proptest::prelude::*;

/// The test vector published by Standard Webhooks.
const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const VECTOR_TIMESTAMP: i64 = 1_614_265_330;
const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn vector_secret() -> Secret {
    Secret::parse(VECTOR_SECRET).expect("the published secret")
}

/// Whether the `standardwebhooks` crate accepts this delivery. Its `verify` takes an
/// `http::HeaderMap`, and `http` is not a dependency of this crate, so the map is built
/// through its `TryFrom<&HashMap<String, String>>` and its type is left to inference.
fn standard_webhooks_accepts(
    secret: &Secret,
    msg_id: &str,
    ts: i64,
    body: &[u8],
    sig: &str,
) -> bool {
    let Ok(webhook) = standardwebhooks::Webhook::new(secret.expose_secret()) else {
        return false;
    };
    let map: HashMap<String, String> = HashMap::from([
        (HEADER_ID.to_owned(), msg_id.to_owned()),
        (HEADER_TIMESTAMP.to_owned(), ts.to_string()),
        (HEADER_SIGNATURE.to_owned(), sig.to_owned()),
    ]);
    match (&map).try_into() {
        Ok(headers) => webhook.verify(body, &headers).is_ok(),
        Err(_) => false,
    }
}

/// The current time: `standardwebhooks` refuses a timestamp more than five minutes from
/// its own clock, so the cross-check, alone in this crate, reads the clock.
fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn the_published_test_vector_signs_and_verifies() {
    let secret = vector_secret();
    assert_eq!(
        sign(&secret, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
        VECTOR_SIGNATURE
    );
    assert!(verify(
        &secret,
        VECTOR_ID,
        VECTOR_TIMESTAMP,
        VECTOR_BODY,
        VECTOR_SIGNATURE
    ));
}

#[test]
fn a_signature_over_other_data_does_not_verify() {
    let secret = vector_secret();
    let other = Secret::from_key_bytes(&[7; 32]);
    let verifies = |secret: &Secret, id: &str, ts: i64, body: &[u8], header: &str| {
        verify(secret, id, ts, body, header)
    };
    assert!(!verifies(
        &secret,
        VECTOR_ID,
        VECTOR_TIMESTAMP + 1,
        VECTOR_BODY,
        VECTOR_SIGNATURE
    ));
    assert!(!verifies(
        &secret,
        "msg_other",
        VECTOR_TIMESTAMP,
        VECTOR_BODY,
        VECTOR_SIGNATURE
    ));
    assert!(!verifies(
        &secret,
        VECTOR_ID,
        VECTOR_TIMESTAMP,
        b"{}",
        VECTOR_SIGNATURE
    ));
    assert!(!verifies(
        &other,
        VECTOR_ID,
        VECTOR_TIMESTAMP,
        VECTOR_BODY,
        VECTOR_SIGNATURE
    ));
}

#[test]
fn malformed_or_foreign_signature_values_do_not_verify() {
    let secret = vector_secret();
    let digest = VECTOR_SIGNATURE.trim_start_matches("v1,");
    for header in [
        "",
        " ",
        "v1,",
        digest,
        &format!("v2,{digest}"),
        &format!("v1a,{digest}"),
        &format!("V1,{digest}"),
        &format!("v1,{}", &digest[..20]),
        &format!("v1,{digest}AA"),
        "v1,not base64!",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
    ] {
        assert!(
            !verify(&secret, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, header),
            "{header:?}"
        );
    }
}

#[test]
fn any_matching_signature_among_several_verifies() {
    let secret = vector_secret();
    for header in [
        format!("v1,bm90IGl0 {VECTOR_SIGNATURE}"),
        format!("{VECTOR_SIGNATURE} v1,bm90IGl0"),
        format!("v1a,xyz  v2,abc {VECTOR_SIGNATURE}"),
    ] {
        assert!(
            verify(&secret, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, &header),
            "{header:?}"
        );
    }
}

#[test]
fn during_a_rotation_both_secrets_sign_newest_first() {
    let old = vector_secret();
    let new = Secret::from_key_bytes(&[42; 32]);
    let header = signature_header(&[&new, &old], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY);
    assert_eq!(
        header,
        format!(
            "{} {VECTOR_SIGNATURE}",
            sign(&new, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
        )
    );
    for secret in [&old, &new] {
        assert!(verify(
            secret,
            VECTOR_ID,
            VECTOR_TIMESTAMP,
            VECTOR_BODY,
            &header
        ));
    }
    assert_eq!(
        signature_header(&[], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
        ""
    );
}

#[test]
fn a_secret_never_prints_its_key() {
    let secret = Secret::from_key_bytes(&[1; 32]);
    assert_eq!(format!("{secret:?}"), "Secret(..)");
    assert_eq!(format!("{:?}", Some(vector_secret())), "Some(Secret(..))");
}

#[test]
fn a_new_secret_is_whsec_and_the_base64_of_its_key() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let secret = Secret::from_key_bytes(&key);
    assert_eq!(
        secret.expose_secret(),
        format!("whsec_{}", STANDARD.encode(key))
    );
    assert_eq!(
        Secret::parse(secret.expose_secret()).map(|s| s.expose_secret().to_owned()),
        Ok(secret.expose_secret().to_owned())
    );
}

#[test]
fn secret_texts_that_break_a_rule_are_refused_without_echoing_them() {
    let key_of = |n: usize| format!("whsec_{}", STANDARD.encode(vec![9u8; n]));
    let cases: &[(&str, Option<SecretError>)] = &[
        (VECTOR_SECRET, None),
        (&key_of(24), None),
        (&key_of(64), None),
        (&key_of(23), Some(SecretError::KeyLength(23))),
        (&key_of(65), Some(SecretError::KeyLength(65))),
        ("whsec_", Some(SecretError::KeyLength(0))),
        (
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            Some(SecretError::MissingPrefix),
        ),
        (
            "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            Some(SecretError::MissingPrefix),
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
            Some(SecretError::NotBase64),
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS_",
            Some(SecretError::NotBase64),
        ),
        (
            "whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            Some(SecretError::NotBase64),
        ),
    ];
    for (text, expected) in cases {
        let result = Secret::parse(text).err();
        assert_eq!(result, *expected, "{text}");
        if let Some(error) = result {
            assert!(!error.to_string().contains("MfKQ9r8"), "{error}");
        }
    }
}

#[test]
fn the_standard_webhooks_crate_signs_the_vector_the_same_way() {
    let webhook = standardwebhooks::Webhook::new(VECTOR_SECRET).expect("a valid secret");
    let theirs = webhook
        .sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
        .expect("a UTF-8 body");
    assert_eq!(theirs, VECTOR_SIGNATURE);
}

proptest! {
    #[test]
    fn every_delivery_we_sign_verifies_with_the_standard_webhooks_crate(
        key in any::<[u8; 32]>(),
        msg_id in "msg_[A-Za-z0-9]{1,32}",
        skew in -240i64..240,
        body in ".{1,200}",
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let secret = Secret::from_key_bytes(&key);
        let timestamp = now() + skew;
        let signature = sign(&secret, &msg_id, timestamp, body.as_bytes());
        prop_assert!(standard_webhooks_accepts(&secret, &msg_id, timestamp, body.as_bytes(), &signature));
        prop_assert!(verify(&secret, &msg_id, timestamp, body.as_bytes(), &signature));

        let mut tampered = body.clone().into_bytes();
        let at = flip.index(tampered.len());
        tampered[at] ^= 1 << bit;
        // The crate reads only UTF-8 bodies; a flip that breaks UTF-8 is refused by it anyway.
        prop_assert!(!standard_webhooks_accepts(&secret, &msg_id, timestamp, &tampered, &signature));
        prop_assert!(!verify(&secret, &msg_id, timestamp, &tampered, &signature));
    }

    #[test]
    fn any_body_signed_verifies_and_a_flipped_byte_does_not(
        key in any::<[u8; 32]>(),
        msg_id in ".{0,40}",
        timestamp in any::<i64>(),
        body in proptest::collection::vec(any::<u8>(), 1..300),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        let secret = Secret::from_key_bytes(&key);
        let header = signature_header(&[&secret], &msg_id, timestamp, &body);
        prop_assert!(verify(&secret, &msg_id, timestamp, &body, &header));
        let mut tampered = body.clone();
        let at = flip.index(tampered.len());
        tampered[at] ^= mask;
        prop_assert!(!verify(&secret, &msg_id, timestamp, &tampered, &header));
    }

    #[test]
    fn parsing_arbitrary_secret_text_never_panics(text in ".{0,100}") {
        let _ = Secret::parse(&text);
        let secret = vector_secret();
        let _ = verify(&secret, "msg", 0, b"", &text);
    }
}
