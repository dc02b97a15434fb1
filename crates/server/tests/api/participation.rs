//! Leap's v1.1 enrollment writes through the API: idle periods in the meter's local
//! dates, disenrollment, participate and the market-registration refresh, each all or
//! nothing where it says so.

use axum::http::{Method, StatusCode};
use gridroll_testkit::Backend;
use serde_json::{Value, json};

use crate::common::{TestApp, asset, asset_of};

/// An idle period as a request gives it.
pub fn idle(start: &str, end: &str) -> Value {
    json!({"start_date": start, "end_date": end, "reason": "Renovation"})
}

async fn idle_periods_are_local_dates_across_daylight_saving(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = app.create_meters(vec![asset("idle-ca")]).await;
    let id = &ids["idle-ca"];
    let path = format!("/v1.1/enrollment/meters/{id}/idle_periods");

    // March 14, 2027: California's clocks go forward within the period.
    let added = app
        .send_json(
            Method::POST,
            &path,
            &json!({"idle_periods": [idle("2027-03-10", "2027-03-20")]}),
        )
        .await
        .assert_ok();
    assert_eq!(added.body["time_zone"], "America/Los_Angeles");
    assert_eq!(
        added.body["idle_periods"],
        json!([idle("2027-03-10", "2027-03-20")])
    );
    let enrollments = app.get(&format!("/v2/meters/{id}/enrollments")).await.body;
    let idle_pref = enrollments["participation_preferences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["participation_preference"] == "IDLE")
        .unwrap()
        .clone();
    assert_eq!(idle_pref["start_time"], "2027-03-10T08:00:00.000Z");
    assert_eq!(idle_pref["end_time"], "2027-03-21T07:00:00.000Z");

    // Overlapping or inverted periods are refused, and nothing is added.
    for body in [
        json!({"idle_periods": [idle("2027-06-01", "2027-06-10"), idle("2027-06-10", "2027-06-20")]}),
        json!({"idle_periods": [idle("2027-07-10", "2027-07-01")]}),
        json!({"idle_periods": [idle("2027-7-1", "2027-07-02")]}),
        json!({"idle_periods": []}),
        // "For ever" is not an idle period's end, nor is a year without four digits.
        json!({"idle_periods": [idle("2027-08-01", "9999-12-31")]}),
        json!({"idle_periods": [idle("+2027-08-01", "2027-08-02")]}),
        json!({"idle_periods": [idle("-0001-01-01", "2027-08-02")]}),
    ] {
        let refused = app.send_json(Method::POST, &path, &body).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.body
        );
    }
    assert_eq!(
        app.get(&path).await.body["idle_periods"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Deleting needs the exact dates: else 404 naming the period, nothing removed.
    let inexact = app
        .send_json(
            Method::DELETE,
            &path,
            &json!({"idle_periods": [idle("2027-03-10", "2027-03-19")]}),
        )
        .await;
    assert_eq!(inexact.status, StatusCode::NOT_FOUND, "{}", inexact.body);
    assert!(
        inexact.body["details"]["error"]
            .as_str()
            .unwrap()
            .contains("2027-03-10 to 2027-03-19")
    );
    let deleted = app
        .send_json(
            Method::DELETE,
            &path,
            &json!({"idle_periods": [idle("2027-03-10", "2027-03-20")]}),
        )
        .await
        .assert_ok();
    assert_eq!(deleted.body["idle_periods"], json!([]));
    let changes = app
        .event_payloads("meter.enrollment.participation-status.updated")
        .await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0]["participation_preference"], "IDLE");
    assert_eq!(changes[1]["participation_preference"], "PARTICIPATE");
}

async fn bulk_idle_periods_apply_to_the_meters_found_and_deletes_are_all_or_nothing(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let ids = app
        .create_meters(vec![asset("bulk-a"), asset("bulk-b")])
        .await;
    let (a, b) = (&ids["bulk-a"], &ids["bulk-b"]);
    let unknown = "0193a5b0-0000-7000-8000-000000000000";
    let path = "/v1.1/enrollment/meters/idle_periods";

    let added = app
        .send_json(
            Method::POST,
            path,
            &json!({"enrollment": [
        {"meter_id": a, "idle_periods": [idle("2027-06-01", "2027-06-30")]},
        {"meter_id": unknown, "idle_periods": [idle("2027-06-01", "2027-06-30")]}]}),
        )
        .await
        .assert_ok();
    assert_eq!(added.body["meter_ids"], json!([a]));
    assert_eq!(added.body["not_found_meter_ids"], json!([unknown]));
    let none = app
        .send_json(
            Method::POST,
            path,
            &json!({"enrollment": [
        {"meter_id": unknown, "idle_periods": [idle("2027-06-01", "2027-06-30")]}]}),
        )
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let twice = app
        .send_json(
            Method::POST,
            path,
            &json!({"enrollment": [
        {"meter_id": b, "idle_periods": [idle("2027-06-01", "2027-06-30")]},
        {"meter_id": b, "idle_periods": [idle("2027-08-01", "2027-08-30")]}]}),
        )
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);

    let read = app
        .get(&format!("{path}?meter_ids={a},{b}"))
        .await
        .assert_ok();
    assert_eq!(
        read.body["enrollment"][0]["idle_periods"],
        json!([idle("2027-06-01", "2027-06-30")])
    );
    assert_eq!(read.body["enrollment"][1]["idle_periods"], json!([]));
    // The read takes 1 to 100 meters, and says so however the count is off.
    let hundred_and_one = vec![a.as_str(); 101].join(",");
    for query in ["", "?meter_ids=", &format!("?meter_ids={hundred_and_one}")] {
        let refused = app.get(&format!("{path}{query}")).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(
            refused.body["details"]["error"]
                .as_str()
                .unwrap()
                .starts_with("must list from 1 to 100 meters"),
            "{query}: {}",
            refused.body
        );
    }

    // One period not found refuses the whole delete.
    let partly = app
        .send_json(
            Method::DELETE,
            path,
            &json!({"enrollment": [
        {"meter_id": a, "idle_periods": [idle("2027-06-01", "2027-06-30")]},
        {"meter_id": b, "idle_periods": [idle("2027-06-01", "2027-06-30")]}]}),
        )
        .await;
    assert_eq!(partly.status, StatusCode::NOT_FOUND, "{}", partly.body);
    assert_eq!(partly.body["details"]["meters"][0]["meter_id"], *b);
    assert_eq!(
        app.get(&format!("/v1.1/enrollment/meters/{a}/idle_periods"))
            .await
            .body["idle_periods"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.send_json(
        Method::DELETE,
        path,
        &json!({"enrollment": [
        {"meter_id": a, "idle_periods": [idle("2027-06-01", "2027-06-30")]}]}),
    )
    .await
    .assert_ok();
}

async fn disenrollment_and_participate_move_the_meters_periods(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = app
        .create_meters(vec![asset("dis-a"), asset("dis-b")])
        .await;
    let (a, b) = (&ids["dis-a"], &ids["dis-b"]);
    let today = time::OffsetDateTime::now_utc().date();
    let in_days = |n: i64| (today + time::Duration::days(n)).to_string();

    let yesterday = app
        .send_json(
            Method::POST,
            &format!("/v1.1/enrollment/meters/{a}/disenrollment_requests"),
            &json!({"disenrollment_date": in_days(-1), "reason": "moved out"}),
        )
        .await;
    assert_eq!(
        yesterday.status,
        StatusCode::BAD_REQUEST,
        "{}",
        yesterday.body
    );
    let no_reason = app
        .send_json(
            Method::POST,
            &format!("/v1.1/enrollment/meters/{a}/disenrollment_requests"),
            &json!({"disenrollment_date": in_days(30)}),
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    // A single meter's form takes no meter_ids: the request is for one form or the other.
    for (path, body) in [
        (
            format!("/v1.1/enrollment/meters/{a}/disenrollment_requests"),
            json!({"disenrollment_date": in_days(30), "reason": "sold", "meter_ids": [b]}),
        ),
        (
            format!("/v1.1/enrollment/meters/{a}/participate"),
            json!({"start_date": in_days(30), "meter_ids": [b]}),
        ),
    ] {
        let both = app.send_json(Method::POST, &path, &body).await;
        assert_eq!(both.status, StatusCode::BAD_REQUEST, "{}", both.body);
        assert_eq!(both.body["details"]["field"], "meter_ids");
    }
    let far = app
        .send_json(
            Method::POST,
            &format!("/v1.1/enrollment/meters/{a}/disenrollment_requests"),
            &json!({"disenrollment_date": "9999-12-31", "reason": "moved out"}),
        )
        .await;
    assert_eq!(far.status, StatusCode::BAD_REQUEST, "{}", far.body);
    assert_eq!(far.body["details"]["field"], "disenrollment_date");
    assert!(
        far.body["details"]["error"]
            .as_str()
            .unwrap()
            .contains("from 1970-01-01 to 9998-12-31"),
        "{}",
        far.body
    );

    let gone = app
        .send_json(
            Method::POST,
            &format!("/v1.1/enrollment/meters/{a}/disenrollment_requests"),
            &json!({"disenrollment_date": in_days(30), "reason": "moved out"}),
        )
        .await
        .assert_ok();
    let last = gone.body["participation_preferences"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["participation_preference"], "DISENROLL");
    assert_eq!(last["reason"], "moved out");

    let back = app
        .send_json(
            Method::POST,
            &format!("/v1.1/enrollment/meters/{a}/participate"),
            &json!({"start_date": in_days(60)}),
        )
        .await
        .assert_ok();
    let kinds: Vec<&str> = back.body["participation_preferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["participation_preference"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["PARTICIPATE", "DISENROLL", "PARTICIPATE"]);

    // The bulk forms are all or nothing.
    let unknown = "0193a5b0-0000-7000-8000-000000000000";
    let refused = app.send_json(Method::POST,
        "/v1.1/enrollment/meters/disenrollment_requests",
        &json!({"meter_ids": [b, unknown], "disenrollment_date": in_days(10), "reason": "sold"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let b_prefs =
        app.get(&format!("/v2/meters/{b}/enrollments")).await.body["participation_preferences"]
            .clone();
    assert_eq!(b_prefs.as_array().unwrap().len(), 1);
    let many = app
        .send_json(
            Method::POST,
            "/v1.1/enrollment/meters/disenrollment_requests",
            &json!({"meter_ids": [a, b], "disenrollment_date": in_days(10), "reason": "sold"}),
        )
        .await
        .assert_ok();
    assert_eq!(many.body["updated"], 2);
    app.send_json(
        Method::POST,
        "/v1.1/enrollment/meters/participate",
        &json!({"meter_ids": [a, b], "start_date": in_days(1)}),
    )
    .await
    .assert_ok();
    let b_prefs =
        app.get(&format!("/v2/meters/{b}/enrollments")).await.body["participation_preferences"]
            .clone();
    assert_eq!(b_prefs.as_array().unwrap().len(), 1, "{b_prefs}");
}

async fn a_season_long_idle_period_is_named_as_why_a_program_is_not_participating(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let home = asset_of(
        "np-home",
        "SERC",
        "RESIDENTIAL",
        &["HVAC"],
        json!({"utility": {"utility_name": "TVA"}}),
    );
    let ids = app.create_meters(vec![home]).await;
    let id = &ids["np-home"];
    let before = app.get(&format!("/v2/meters/{id}/enrollments")).await.body;
    let program = &before["program_enrollment"][0];
    let start = &program["delivery_period_start_date_time"].as_str().unwrap()[..10];
    let end = &program["delivery_period_end_date_time"].as_str().unwrap()[..10];

    // A day idle (the period's first, in the meter's Central time): still in the season,
    // the day listed beside the enrollment.
    app.send_json(
        Method::POST,
        &format!("/v1.1/enrollment/meters/{id}/idle_periods"),
        &json!({"idle_periods": [idle(start, start)]}),
    )
    .await;
    let one_day = app.get(&format!("/v2/meters/{id}/enrollments")).await.body;
    assert_eq!(
        one_day["program_enrollment"][0]["enrollment_status"],
        program["enrollment_status"]
    );
    assert_eq!(
        one_day["program_enrollment"][0]["participation_in_period"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        one_day["program_enrollment"][0]
            .get("not_participating_reason")
            .is_none()
    );

    // Idle over the whole delivery period: NOT_PARTICIPATING, saying why.
    app.send_json(
        Method::POST,
        &format!("/v1.1/enrollment/meters/{id}/idle_periods"),
        &json!({"idle_periods": [idle("2020-01-01", end)]}),
    )
    .await
    .assert_ok();
    let out = app.get(&format!("/v2/meters/{id}/enrollments")).await.body;
    assert_eq!(
        out["program_enrollment"][0]["enrollment_status"],
        "NOT_PARTICIPATING"
    );
    let reason = out["program_enrollment"][0]["not_participating_reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.starts_with("The meter is idle from ") && reason.contains("(Renovation)"),
        "{reason}"
    );
}

async fn the_market_registration_refresh_is_only_for_caiso_utility_meters(backend: Backend) {
    let app = TestApp::new(backend).await;
    let utility = asset_of(
        "util-1",
        "CAISO",
        "RESIDENTIAL",
        &["HVAC"],
        json!({"meter_type": "UTILITY_METER"}),
    );
    let mut utility = utility;
    utility["meter_type"] = json!("UTILITY_METER");
    let ids = app.create_meters(vec![utility, asset("device-1")]).await;
    let before = app.meter(&ids["util-1"]).await;
    let refreshed = app
        .post_json(
            &format!(
                "/v1.1/enrollment/meters/{}/market_registration_refresh",
                ids["util-1"]
            ),
            &json!({}),
        )
        .await
        .assert_ok();
    assert_eq!(refreshed.body["meter_id"], ids["util-1"]);
    // An evaluation that finds what was there changes nothing, not even the time.
    assert_eq!(
        app.meter(&ids["util-1"]).await["audit"]["updated_at"],
        before["audit"]["updated_at"]
    );
    let refused = app
        .post_json(
            &format!(
                "/v1.1/enrollment/meters/{}/market_registration_refresh",
                ids["device-1"]
            ),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body["details"]["error"]
            .as_str()
            .unwrap()
            .contains("CAISO utility meters")
    );
}

async fn a_meter_holds_at_most_500_periods_whichever_call_adds_them(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = app.create_meters(vec![asset("many-periods")]).await;
    let id = &ids["many-periods"];
    let path = format!("/v1.1/enrollment/meters/{id}/idle_periods");
    // Single days two days apart, a hundred a request: five requests make 500.
    let first = time::macros::date!(2030 - 01 - 01);
    let day = |i: i64| (first + time::Duration::days(2 * i)).to_string();
    for hundred in 0..5 {
        let periods: Vec<Value> = (hundred * 100..(hundred + 1) * 100)
            .map(|i| json!({"start_date": day(i), "end_date": day(i)}))
            .collect();
        app.send_json(Method::POST, &path, &json!({"idle_periods": periods}))
            .await
            .assert_ok();
    }
    let one_more = app
        .send_json(
            Method::POST,
            &path,
            &json!({"idle_periods": [{"start_date": day(600), "end_date": day(600)}]}),
        )
        .await;
    assert_eq!(
        one_more.status,
        StatusCode::BAD_REQUEST,
        "{}",
        one_more.body
    );
    assert!(
        one_more.body["details"]["error"]
            .as_str()
            .unwrap()
            .contains("at most 500"),
        "{}",
        one_more.body
    );
    // Gridroll's own participation call takes the same rule, with the same answer.
    let v2 = app
        .send_json(
            Method::POST,
            &format!("/v2/meters/{id}/participation"),
            &json!({"participation_preference": "IDLE", "start_time": "2035-01-01T00:00:00Z",
                "end_time": "2035-01-02T00:00:00Z"}),
        )
        .await;
    assert_eq!(v2.status, StatusCode::BAD_REQUEST, "{}", v2.body);
    let kept = app.get(&path).await.body["idle_periods"].clone();
    assert_eq!(kept.as_array().unwrap().len(), 500);
    // Removing some makes room again.
    app.send_json(
        Method::DELETE,
        &path,
        &json!({"idle_periods": [{"start_date": day(0), "end_date": day(0)}]}),
    )
    .await
    .assert_ok();
    app.send_json(
        Method::POST,
        &path,
        &json!({"idle_periods": [{"start_date": day(600), "end_date": day(600)}]}),
    )
    .await
    .assert_ok();
}

gridroll_testkit::backend_tests!(
    idle_periods_are_local_dates_across_daylight_saving,
    bulk_idle_periods_apply_to_the_meters_found_and_deletes_are_all_or_nothing,
    disenrollment_and_participate_move_the_meters_periods,
    a_season_long_idle_period_is_named_as_why_a_program_is_not_participating,
    the_market_registration_refresh_is_only_for_caiso_utility_meters,
    a_meter_holds_at_most_500_periods_whichever_call_adds_them,
);
