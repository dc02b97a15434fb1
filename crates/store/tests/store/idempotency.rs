//! Idempotency keys: held by one request, answered once, taken over when the holder died,
//! new again once expired; each partner's own.

use gridroll_store::{Claim, Hold, KeptAnswer};
use gridroll_testkit::Backend;
use uuid::Uuid;

use crate::{Fixture, NOW};

const DAY: i64 = 86_400_000;

fn hold(until: i64) -> Hold {
    Hold {
        owner: Uuid::now_v7(),
        until,
    }
}

fn answer() -> KeptAnswer {
    KeptAnswer {
        fingerprint: [7; 32],
        status: 201,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: br#"{"job_id":"x"}"#.to_vec(),
    }
}

async fn a_key_is_held_then_answered_once_and_replayed(backend: Backend) {
    let f = Fixture::new(backend).await;
    let keys = &f.stores.idempotency;
    let first = hold(NOW + 60_000);
    let claim = keys.claim_key(f.partner, "k", first, NOW, NOW - DAY);
    assert_eq!(claim.await.unwrap(), Claim::Held);
    let again = keys.claim_key(f.partner, "k", hold(NOW + 60_000), NOW + 1, NOW - DAY);
    assert_eq!(again.await.unwrap(), Claim::InFlight);

    let stranger = Uuid::now_v7();
    assert!(
        !keys
            .answer_key(f.partner, "k", stranger, &answer())
            .await
            .unwrap()
    );
    assert!(
        keys.answer_key(f.partner, "k", first.owner, &answer())
            .await
            .unwrap()
    );
    assert!(
        !keys
            .answer_key(f.partner, "k", first.owner, &answer())
            .await
            .unwrap(),
        "an answer is kept once"
    );
    let replayed = keys.claim_key(f.partner, "k", hold(NOW + 60_000), NOW + 2, NOW - DAY);
    assert_eq!(replayed.await.unwrap(), Claim::Answered(answer()));

    let other = f
        .stores
        .accounts
        .create_partner("Other", NOW)
        .await
        .unwrap();
    let theirs = keys.claim_key(other.id, "k", hold(NOW + 60_000), NOW + 2, NOW - DAY);
    assert_eq!(
        theirs.await.unwrap(),
        Claim::Held,
        "keys are each partner's own"
    );
}

async fn a_hold_that_lapsed_is_taken_over_and_the_first_holder_keeps_nothing(backend: Backend) {
    let f = Fixture::new(backend).await;
    let keys = &f.stores.idempotency;
    let dead = hold(NOW + 60_000);
    keys.claim_key(f.partner, "k", dead, NOW, NOW - DAY)
        .await
        .unwrap();
    let later = NOW + 61_000;
    let next = hold(later + 60_000);
    let claim = keys.claim_key(f.partner, "k", next, later, later - DAY);
    assert_eq!(claim.await.unwrap(), Claim::Held);
    assert!(!keys.renew_key(f.partner, "k", dead).await.unwrap());
    assert!(
        !keys
            .answer_key(f.partner, "k", dead.owner, &answer())
            .await
            .unwrap()
    );
    assert!(keys.renew_key(f.partner, "k", next).await.unwrap());
    assert!(
        keys.answer_key(f.partner, "k", next.owner, &answer())
            .await
            .unwrap()
    );
}

async fn a_released_key_runs_afresh_and_an_expired_one_is_new_then_removed(backend: Backend) {
    let f = Fixture::new(backend).await;
    let keys = &f.stores.idempotency;
    let first = hold(NOW + 60_000);
    keys.claim_key(f.partner, "k", first, NOW, NOW - DAY)
        .await
        .unwrap();
    keys.release_key(f.partner, "k", first.owner).await.unwrap();
    let retry = hold(NOW + 60_000);
    let claim = keys.claim_key(f.partner, "k", retry, NOW + 1, NOW - DAY);
    assert_eq!(claim.await.unwrap(), Claim::Held);
    keys.answer_key(f.partner, "k", retry.owner, &answer())
        .await
        .unwrap();

    let tomorrow = NOW + 1 + DAY + 1;
    let fresh = hold(tomorrow + 60_000);
    let claim = keys.claim_key(f.partner, "k", fresh, tomorrow, tomorrow - DAY);
    assert_eq!(claim.await.unwrap(), Claim::Held, "a day old: new again");
    // Its time now runs from its new first use.
    assert_eq!(
        keys.remove_expired_keys(tomorrow - DAY, 10).await.unwrap(),
        0
    );
    // A day-old key is removed once answered, or once its hold lapsed a day ago; one
    // still held is left to its request.
    let old = hold(NOW + 60_000);
    keys.claim_key(f.partner, "old", old, NOW, NOW - DAY)
        .await
        .unwrap();
    let held = hold(tomorrow + 60_000);
    keys.claim_key(f.partner, "held", held, NOW, NOW - DAY)
        .await
        .unwrap();
    assert!(keys.renew_key(f.partner, "held", held).await.unwrap());
    keys.answer_key(f.partner, "old", old.owner, &answer())
        .await
        .unwrap();
    assert_eq!(
        keys.remove_expired_keys(tomorrow - DAY, 10).await.unwrap(),
        1
    );
}

gridroll_testkit::backend_tests!(
    a_key_is_held_then_answered_once_and_replayed,
    a_hold_that_lapsed_is_taken_over_and_the_first_holder_keeps_nothing,
    a_released_key_runs_afresh_and_an_expired_one_is_new_then_removed,
);
