//! Requests per API key: counted per key, refused past the limit with the time to come
//! back, and allowed again once the window has passed.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use gridroll_server::Config;
use gridroll_server::rate_limit::RateLimit;
use gridroll_testkit::Backend;

use crate::common::{TestApp, TestClock, csv_file, csv_row};

fn limited(requests: u32) -> Config {
    Config {
        rate_limit: RateLimit {
            requests: NonZeroU32::new(requests).unwrap(),
            window: Duration::from_secs(60),
        },
        ..Config::default()
    }
}

fn standing(answer: &crate::common::Answer) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        answer.header("ratelimit-limit"),
        answer.header("ratelimit-remaining"),
        answer.header("ratelimit-reset"),
    )
}

async fn a_key_past_its_limit_is_refused_until_the_window_has_passed(backend: Backend) {
    let clock = TestClock::new();
    let app = TestApp::with_config(backend, limited(3))
        .await
        .with_clock(clock.clone());
    // An upload of three rows is one request.
    let upload = app
        .post_csv(
            "/v1.1/jobs/meters",
            csv_file(["rl-1", "rl-2", "rl-3"].map(csv_row)),
        )
        .await;
    assert_eq!(upload.status, StatusCode::CREATED, "{}", upload.body);
    assert_eq!(standing(&upload), (Some("3"), Some("2"), Some("60")));
    let read = app.get("/v1.1/programs").await;
    assert_eq!(standing(&read).1, Some("1"));
    clock.advance(Duration::from_secs(20));
    let last = app.get("/v1.1/programs").await.assert_ok();
    assert_eq!(standing(&last), (Some("3"), Some("0"), Some("40")));

    let refused = app.get("/v1.1/programs").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("40"));
    assert_eq!(standing(&refused), (Some("3"), Some("0"), Some("40")));
    assert_eq!(refused.body["status"], 429);
    assert_eq!(refused.body["details"]["retry_after_seconds"], 40);

    // Another key is counted apart, even of the same partner.
    let (_, other) = gridroll_server::auth::issue_api_key(
        app.accounts.as_ref(),
        app.partner,
        "second",
        gridroll_domain::scope::Scopes::ALL,
        gridroll_domain::timestamp::now_millis(),
    )
    .await
    .unwrap();
    app.send(
        Method::GET,
        "/v1.1/programs",
        Some(&other),
        None,
        Body::empty(),
    )
    .await
    .assert_ok();

    clock.advance(Duration::from_secs(40));
    let again = app.get("/v1.1/programs").await.assert_ok();
    assert_eq!(standing(&again), (Some("3"), Some("2"), Some("60")));
}

async fn requests_without_a_key_are_not_counted_against_one(backend: Backend) {
    let app = TestApp::with_config(backend, limited(1)).await;
    for _ in 0..3 {
        let anonymous = app
            .send(Method::GET, "/v1.1/programs", None, None, Body::empty())
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        assert_eq!(anonymous.header("ratelimit-limit"), None);
    }
    assert_eq!(app.get("/v1.1/programs").await.status, StatusCode::OK);
}

gridroll_testkit::backend_tests!(
    a_key_past_its_limit_is_refused_until_the_window_has_passed,
    requests_without_a_key_are_not_counted_against_one,
);
