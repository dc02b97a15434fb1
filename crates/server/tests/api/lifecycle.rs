//! A meter's life after its creation through the API: tags, references, archiving, and
//! Leap's v1.1 enrollment writes (idle periods in the meter's local dates,
//! disenrollment, participate, the market-registration refresh), each all or nothing
//! where it says so.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use gridroll_testkit::Backend;
use serde_json::{Value, json};

use crate::common::{Answer, TestApp, asset, asset_of, csv_file, csv_row, meter_ids};

async fn send(app: &TestApp, method: Method, uri: &str, body: &Value) -> Answer {
    app.send(
        method,
        uri,
        Some(&app.key),
        Some("application/json"),
        body.to_string(),
    )
    .await
}

/// Creates meters from assets and answers their ids by reference.
async fn create(app: &TestApp, assets: Vec<Value>) -> BTreeMap<String, String> {
    let job_id = app.submit("/v1.1/jobs/meters", assets).await;
    app.drain().await;
    let job = app.job(&job_id).await;
    job["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["partner_reference"].as_str().unwrap().to_owned(),
                a["meter_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn events(app: &TestApp, types: &str) -> Vec<Value> {
    let feed = app.get(&format!("/v1.1/events?event_types={types}")).await;
    assert_eq!(feed.status, StatusCode::OK, "{}", feed.body);
    feed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].clone())
        .collect()
}

async fn search(app: &TestApp, filter: Value) -> Vec<String> {
    let answer = app.post_json("/v2/meters/search", &filter).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let mut ids: Vec<String> = answer.body["meters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["meter_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn tags_added_and_removed_show_in_details_search_and_events(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("tag-a"), asset("tag-b"), asset("tag-c")]).await;
    let (a, b) = (&ids["tag-a"], &ids["tag-b"]);
    let before = app.meter(a).await;

    let added = send(
        &app,
        Method::POST,
        "/v1.1/meters/tags",
        &json!({"meter_ids": [a, b], "tags": ["north fleet", "Zoë’s #2"]}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["updated"], 2);
    let meter = app.meter(a).await;
    assert_eq!(meter["tags"], json!(["north fleet", "Zoë’s #2"]));
    assert_ne!(meter["audit"]["updated_at"], before["audit"]["updated_at"]);
    assert_eq!(app.meter(&ids["tag-c"]).await["tags"], json!([]));

    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(search(&app, json!({"tags": ["north fleet"]})).await, both);
    assert_eq!(
        search(&app, json!({"tags": ["north"]})).await,
        Vec::<String>::new()
    );

    // Adding a tag a meter has changes nothing for it.
    let again = send(
        &app,
        Method::POST,
        "/v1.1/meters/tags",
        &json!({"meter_ids": [a], "tags": ["north fleet"]}),
    )
    .await;
    assert_eq!(again.body["updated"], 0);
    assert_eq!(again.body["unchanged_meter_ids"], json!([a]));

    let removed = send(
        &app,
        Method::DELETE,
        "/v1.1/meters/tags",
        &json!({"meter_ids": [a], "tags": ["north fleet", "never there"]}),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(app.meter(a).await["tags"], json!(["Zoë’s #2"]));
    assert_eq!(
        search(&app, json!({"tags": ["north fleet"]})).await,
        vec![b.clone()]
    );

    // Each meter whose tags changed made one meter.updated: two adds and one removal.
    let updated = events(&app, "meter.updated").await;
    assert_eq!(updated.len(), 3, "{updated:?}");
    assert!(
        updated
            .iter()
            .all(|e| e["meter_id"] == *a || e["meter_id"] == *b)
    );
}

async fn tags_come_from_an_upload_and_update_existing_replaces_them(backend: Backend) {
    let app = TestApp::new(backend).await;
    let header = format!("{},tags", crate::common::CSV_HEADER);
    let body = format!("{header}\n{},\"north;south\"\n", csv_row("csv-tag"));
    let created = app.post_csv("/v1.1/jobs/meters", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    app.drain().await;
    let id = meter_ids(&app.job(created.body["job_id"].as_str().unwrap()).await)[0].clone();
    assert_eq!(app.meter(&id).await["tags"], json!(["north", "south"]));

    // Tags are part of the data: an update without them leaves the meter none.
    let update = app
        .post_csv(
            "/v1.1/jobs/meters?update_existing=true",
            csv_file([csv_row("csv-tag")]),
        )
        .await;
    assert_eq!(update.status, StatusCode::CREATED);
    app.drain().await;
    assert_eq!(app.meter(&id).await["tags"], json!([]));

    // A tag with a separator of list cells is refused in JSON as in CSV.
    let mut bad = asset("bad-tag");
    bad["tags"] = json!(["a|b"]);
    let refused = app
        .post_json("/v1.1/jobs/meters", &json!({"assets": [bad]}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["details"][0]["problem_field"], "tags");
}

async fn a_bad_tag_request_changes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("keep-a")]).await;
    let a = &ids["keep-a"];
    let (_, other_key) = app.other_partner().await;
    let theirs = {
        let answer = app
            .send(
                Method::POST,
                "/v1.1/jobs/meters",
                Some(&other_key),
                Some("application/json"),
                json!({"assets": [asset("theirs-1")]}).to_string(),
            )
            .await;
        app.drain().await;
        let job = app
            .send(
                Method::GET,
                &format!(
                    "/v1.1/jobs/meters/{}",
                    answer.body["job_id"].as_str().unwrap()
                ),
                Some(&other_key),
                None,
                "",
            )
            .await;
        meter_ids(&job.body)[0].clone()
    };
    let too_many: Vec<String> = (0..1001).map(|_| a.clone()).collect();
    for (body, status, field) in [
        (
            json!({"meter_ids": [a], "tags": ["a,b"]}),
            StatusCode::BAD_REQUEST,
            "tags.0",
        ),
        (
            json!({"meter_ids": [a], "tags": []}),
            StatusCode::BAD_REQUEST,
            "tags",
        ),
        (
            json!({"meter_ids": too_many, "tags": ["x"]}),
            StatusCode::BAD_REQUEST,
            "meter_ids",
        ),
        (
            json!({"meter_ids": ["nope"], "tags": ["x"]}),
            StatusCode::BAD_REQUEST,
            "meter_ids.0",
        ),
    ] {
        let answer = send(&app, Method::POST, "/v1.1/meters/tags", &body).await;
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(answer.body["details"]["field"], field, "{}", answer.body);
    }
    // Another partner's meter in the list: 404 naming it, and the partner's own meter
    // is not tagged either.
    let foreign = send(
        &app,
        Method::POST,
        "/v1.1/meters/tags",
        &json!({"meter_ids": [a, theirs], "tags": ["x"]}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
    assert_eq!(foreign.body["details"]["meter_ids"], json!([theirs]));
    assert_eq!(app.meter(a).await["tags"], json!([]));
    // Fifty tags is the most a meter has.
    let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    let full = send(
        &app,
        Method::POST,
        "/v1.1/meters/tags",
        &json!({"meter_ids": [a], "tags": fifty}),
    )
    .await;
    assert_eq!(full.status, StatusCode::OK);
    let over = send(
        &app,
        Method::POST,
        "/v1.1/meters/tags",
        &json!({"meter_ids": [a], "tags": ["one more"]}),
    )
    .await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST, "{}", over.body);
    assert_eq!(app.meter(a).await["tags"].as_array().unwrap().len(), 50);
}

async fn references_change_and_a_taken_one_names_its_meter(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("ref-a"), asset("ref-b"), asset("ref-c")]).await;
    let (a, b, c) = (&ids["ref-a"], &ids["ref-b"], &ids["ref-c"]);
    let before = app.meter(a).await;

    let one = send(
        &app,
        Method::PATCH,
        &format!("/v1.1/meters/{a}/partner_meter_ref"),
        &json!({"partner_reference": "ref-a2"}),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["partner_reference"], "ref-a2");
    assert_ne!(
        one.body["audit"]["updated_at"],
        before["audit"]["updated_at"]
    );

    let taken = send(
        &app,
        Method::PATCH,
        &format!("/v1.1/meters/{a}/partner_meter_ref"),
        &json!({"partner_reference": "ref-b"}),
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.body["details"]["meters"][0]["held_by_meter_id"], *b);

    // Two meters swap their references in one request.
    let swap = send(
        &app,
        Method::PATCH,
        "/v1.1/meters/partner_meter_ref",
        &json!({"meters": [
            {"meter_id": b, "partner_reference": "ref-c"},
            {"meter_id": c, "partner_reference": "ref-b"}]}),
    )
    .await;
    assert_eq!(swap.status, StatusCode::OK, "{}", swap.body);
    assert_eq!(app.meter(b).await["partner_reference"], "ref-c");
    assert_eq!(app.meter(c).await["partner_reference"], "ref-b");

    // An update_existing upload finds each meter by its new reference.
    let job = app
        .submit(
            "/v1.1/jobs/meters?update_existing=true",
            vec![asset_of(
                "ref-c",
                "CAISO",
                "COMMERCIAL",
                &["HVAC"],
                json!({}),
            )],
        )
        .await;
    app.drain().await;
    assert_eq!(meter_ids(&app.job(&job).await), vec![b.clone()]);

    // A request whose second meter takes the first's reference is refused whole.
    let half = send(
        &app,
        Method::PATCH,
        "/v1.1/meters/partner_meter_ref",
        &json!({"meters": [
            {"meter_id": a, "partner_reference": "ref-new"},
            {"meter_id": b, "partner_reference": "ref-b"}]}),
    )
    .await;
    assert_eq!(half.status, StatusCode::CONFLICT, "{}", half.body);
    assert_eq!(half.body["details"]["meters"][0]["meter_id"], *b);
    assert_eq!(half.body["details"]["meters"][0]["held_by_meter_id"], *c);
    assert_eq!(app.meter(a).await["partner_reference"], "ref-a2");

    for (body, field) in [
        (
            json!({"meters": [{"meter_id": a, "partner_reference": "a/b"}]}),
            "meters.0.partner_reference",
        ),
        (
            json!({"meters": [{"meter_id": a, "partner_reference": "x1"}, {"meter_id": a, "partner_reference": "x2"}]}),
            "meters",
        ),
    ] {
        let answer = send(&app, Method::PATCH, "/v1.1/meters/partner_meter_ref", &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        assert_eq!(answer.body["details"]["field"], field);
    }
    let updated = events(&app, "meter.updated").await;
    assert!(
        updated.iter().any(|e| e["partner_reference"] == "ref-a2"),
        "{updated:?}"
    );
}

async fn archived_meters_are_left_out_unmatched_by_uploads_and_in_no_program(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("arch-a"), asset("arch-b")]).await;
    let (a, b) = (&ids["arch-a"], &ids["arch-b"]);

    let archived = send(
        &app,
        Method::POST,
        "/v1.1/meters/archive",
        &json!({"meter_ids": [a]}),
    )
    .await;
    assert_eq!(archived.status, StatusCode::OK, "{}", archived.body);
    assert_eq!(app.meter(a).await["is_archived"], true);
    assert_eq!(
        search(&app, json!({"exclude_archived": true})).await,
        vec![b.clone()]
    );
    let enrollments = app.get(&format!("/v2/meters/{a}/enrollments")).await.body;
    assert_eq!(enrollments["is_archived"], true);
    assert_eq!(enrollments["global_enrollment_status"], "INELIGIBLE");
    for program in enrollments["program_enrollment"].as_array().unwrap() {
        assert_eq!(program["enrollment_status"], "INELIGIBLE");
        assert!(
            program["ineligibility_reasons"][0]
                .as_str()
                .unwrap()
                .contains("archived")
        );
    }

    // Archiving it again, or archiving it with another meter, changes nothing.
    let twice = send(
        &app,
        Method::POST,
        "/v1.1/meters/archive",
        &json!({"meter_ids": [b, a]}),
    )
    .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert_eq!(twice.body["details"]["meters"][0]["meter_id"], *a);
    assert_eq!(app.meter(b).await["is_archived"], false);

    // An upload with update_existing does not find it: a new meter takes the reference.
    let job = app
        .submit(
            "/v1.1/jobs/meters?update_existing=true",
            vec![asset("arch-a")],
        )
        .await;
    app.drain().await;
    let job = app.job(&job).await;
    assert_eq!(job["assets"][0]["status_detail"]["name"], "METER_CREATED");
    let newer = meter_ids(&job)[0].clone();
    assert_ne!(newer, *a);

    // Bringing the archived one back needs its reference, which the new meter has.
    let back = send(
        &app,
        Method::POST,
        "/v1.1/meters/unarchive",
        &json!({"meter_ids": [a]}),
    )
    .await;
    assert_eq!(back.status, StatusCode::CONFLICT, "{}", back.body);
    assert_eq!(back.body["details"]["meters"][0]["held_by_meter_id"], newer);
    send(
        &app,
        Method::POST,
        "/v1.1/meters/archive",
        &json!({"meter_ids": [newer]}),
    )
    .await;
    let back = send(
        &app,
        Method::POST,
        "/v1.1/meters/unarchive",
        &json!({"meter_ids": [a]}),
    )
    .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    let enrollments = app.get(&format!("/v2/meters/{a}/enrollments")).await.body;
    assert_ne!(enrollments["global_enrollment_status"], "INELIGIBLE");
    let not_archived = send(
        &app,
        Method::POST,
        "/v1.1/meters/unarchive",
        &json!({"meter_ids": [b]}),
    )
    .await;
    assert_eq!(not_archived.status, StatusCode::CONFLICT);
    // Archiving and bringing back each made a meter.updated for the meter.
    let updated = events(&app, "meter.updated").await;
    assert_eq!(
        updated.iter().filter(|e| e["meter_id"] == *a).count(),
        2,
        "{updated:?}"
    );
}

fn idle(start: &str, end: &str) -> Value {
    json!({"start_date": start, "end_date": end, "reason": "Renovation"})
}

async fn idle_periods_are_local_dates_across_daylight_saving(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("idle-ca")]).await;
    let id = &ids["idle-ca"];
    let path = format!("/v1.1/enrollment/meters/{id}/idle_periods");

    // March 14, 2027: California's clocks go forward within the period.
    let added = send(
        &app,
        Method::POST,
        &path,
        &json!({"idle_periods": [idle("2027-03-10", "2027-03-20")]}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
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
        let refused = send(&app, Method::POST, &path, &body).await;
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
    let inexact = send(
        &app,
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
    let deleted = send(
        &app,
        Method::DELETE,
        &path,
        &json!({"idle_periods": [idle("2027-03-10", "2027-03-20")]}),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["idle_periods"], json!([]));
    let changes = events(&app, "meter.enrollment.participation-status.updated").await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0]["participation_preference"], "IDLE");
    assert_eq!(changes[1]["participation_preference"], "PARTICIPATE");
}

async fn bulk_idle_periods_apply_to_the_meters_found_and_deletes_are_all_or_nothing(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("bulk-a"), asset("bulk-b")]).await;
    let (a, b) = (&ids["bulk-a"], &ids["bulk-b"]);
    let unknown = "0193a5b0-0000-7000-8000-000000000000";
    let path = "/v1.1/enrollment/meters/idle_periods";

    let added = send(
        &app,
        Method::POST,
        path,
        &json!({"enrollment": [
        {"meter_id": a, "idle_periods": [idle("2027-06-01", "2027-06-30")]},
        {"meter_id": unknown, "idle_periods": [idle("2027-06-01", "2027-06-30")]}]}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["meter_ids"], json!([a]));
    assert_eq!(added.body["not_found_meter_ids"], json!([unknown]));
    let none = send(
        &app,
        Method::POST,
        path,
        &json!({"enrollment": [
        {"meter_id": unknown, "idle_periods": [idle("2027-06-01", "2027-06-30")]}]}),
    )
    .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let twice = send(
        &app,
        Method::POST,
        path,
        &json!({"enrollment": [
        {"meter_id": b, "idle_periods": [idle("2027-06-01", "2027-06-30")]},
        {"meter_id": b, "idle_periods": [idle("2027-08-01", "2027-08-30")]}]}),
    )
    .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);

    let read = app.get(&format!("{path}?meter_ids={a},{b}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
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
    let partly = send(
        &app,
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
    let whole = send(
        &app,
        Method::DELETE,
        path,
        &json!({"enrollment": [
        {"meter_id": a, "idle_periods": [idle("2027-06-01", "2027-06-30")]}]}),
    )
    .await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.body);
}

async fn disenrollment_and_participate_move_the_meters_periods(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("dis-a"), asset("dis-b")]).await;
    let (a, b) = (&ids["dis-a"], &ids["dis-b"]);
    let today = time::OffsetDateTime::now_utc().date();
    let in_days = |n: i64| (today + time::Duration::days(n)).to_string();

    let yesterday = send(
        &app,
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
    let no_reason = send(
        &app,
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
        let both = send(&app, Method::POST, &path, &body).await;
        assert_eq!(both.status, StatusCode::BAD_REQUEST, "{}", both.body);
        assert_eq!(both.body["details"]["field"], "meter_ids");
    }
    let far = send(
        &app,
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

    let gone = send(
        &app,
        Method::POST,
        &format!("/v1.1/enrollment/meters/{a}/disenrollment_requests"),
        &json!({"disenrollment_date": in_days(30), "reason": "moved out"}),
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    let last = gone.body["participation_preferences"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["participation_preference"], "DISENROLL");
    assert_eq!(last["reason"], "moved out");

    let back = send(
        &app,
        Method::POST,
        &format!("/v1.1/enrollment/meters/{a}/participate"),
        &json!({"start_date": in_days(60)}),
    )
    .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    let kinds: Vec<&str> = back.body["participation_preferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["participation_preference"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["PARTICIPATE", "DISENROLL", "PARTICIPATE"]);

    // The bulk forms are all or nothing.
    let unknown = "0193a5b0-0000-7000-8000-000000000000";
    let refused = send(
        &app,
        Method::POST,
        "/v1.1/enrollment/meters/disenrollment_requests",
        &json!({"meter_ids": [b, unknown], "disenrollment_date": in_days(10), "reason": "sold"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let b_prefs =
        app.get(&format!("/v2/meters/{b}/enrollments")).await.body["participation_preferences"]
            .clone();
    assert_eq!(b_prefs.as_array().unwrap().len(), 1);
    let many = send(
        &app,
        Method::POST,
        "/v1.1/enrollment/meters/disenrollment_requests",
        &json!({"meter_ids": [a, b], "disenrollment_date": in_days(10), "reason": "sold"}),
    )
    .await;
    assert_eq!(many.status, StatusCode::OK, "{}", many.body);
    assert_eq!(many.body["updated"], 2);
    let all_back = send(
        &app,
        Method::POST,
        "/v1.1/enrollment/meters/participate",
        &json!({"meter_ids": [a, b], "start_date": in_days(1)}),
    )
    .await;
    assert_eq!(all_back.status, StatusCode::OK, "{}", all_back.body);
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
    let ids = create(&app, vec![home]).await;
    let id = &ids["np-home"];
    let before = app.get(&format!("/v2/meters/{id}/enrollments")).await.body;
    let program = &before["program_enrollment"][0];
    let start = &program["delivery_period_start_date_time"].as_str().unwrap()[..10];
    let end = &program["delivery_period_end_date_time"].as_str().unwrap()[..10];

    // A day idle (the period's first, in the meter's Central time): still in the season,
    // the day listed beside the enrollment.
    send(
        &app,
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
    let whole = send(
        &app,
        Method::POST,
        &format!("/v1.1/enrollment/meters/{id}/idle_periods"),
        &json!({"idle_periods": [idle("2020-01-01", end)]}),
    )
    .await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.body);
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
    let ids = create(&app, vec![utility, asset("device-1")]).await;
    let before = app.meter(&ids["util-1"]).await;
    let refreshed = app
        .post_json(
            &format!(
                "/v1.1/enrollment/meters/{}/market_registration_refresh",
                ids["util-1"]
            ),
            &json!({}),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
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

async fn another_partners_meters_are_not_found_by_any_lifecycle_call(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("mine-1")]).await;
    let id = &ids["mine-1"];
    let (_, other_key) = app.other_partner().await;
    let calls = [
        (
            Method::POST,
            "/v1.1/meters/tags".to_owned(),
            json!({"meter_ids": [id], "tags": ["x"]}),
        ),
        (
            Method::PATCH,
            format!("/v1.1/meters/{id}/partner_meter_ref"),
            json!({"partner_reference": "stolen"}),
        ),
        (
            Method::POST,
            "/v1.1/meters/archive".to_owned(),
            json!({"meter_ids": [id]}),
        ),
        (
            Method::GET,
            format!("/v1.1/enrollment/meters/{id}/idle_periods"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1.1/enrollment/meters/{id}/idle_periods"),
            json!({"idle_periods": [idle("2027-01-01", "2027-01-02")]}),
        ),
        (
            Method::POST,
            format!("/v1.1/enrollment/meters/{id}/participate"),
            json!({"start_date": "2027-01-01"}),
        ),
        (
            Method::POST,
            format!("/v1.1/enrollment/meters/{id}/market_registration_refresh"),
            json!(null),
        ),
    ];
    for (method, uri, body) in calls {
        let answer = if body.is_null() {
            app.send(method, &uri, Some(&other_key), None, "").await
        } else {
            app.send(
                method,
                &uri,
                Some(&other_key),
                Some("application/json"),
                body.to_string(),
            )
            .await
        };
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{uri}: {}",
            answer.body
        );
    }
    let meter = app.meter(id).await;
    assert_eq!(meter["partner_reference"], "mine-1");
    assert_eq!(meter["is_archived"], false);
}

async fn a_repeated_archive_with_its_idempotency_key_replays_the_first_answer(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("idem-1")]).await;
    let body = json!({"meter_ids": [ids["idem-1"]]}).to_string();
    let archive = || {
        app.send_with(
            Method::POST,
            "/v1.1/meters/archive",
            Some(&app.key),
            Some("application/json"),
            &[("idempotency-key", "archive-idem-1")],
            body.clone(),
        )
    };
    let first = archive().await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // Without the key, archiving again would be a 409; with it, the first answer again.
    let again = archive().await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(events(&app, "meter.updated").await.len(), 1);
}

async fn a_meter_holds_at_most_500_periods_whichever_call_adds_them(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = create(&app, vec![asset("many-periods")]).await;
    let id = &ids["many-periods"];
    let path = format!("/v1.1/enrollment/meters/{id}/idle_periods");
    // Single days two days apart, a hundred a request: five requests make 500.
    let first = time::macros::date!(2030 - 01 - 01);
    let day = |i: i64| (first + time::Duration::days(2 * i)).to_string();
    for hundred in 0..5 {
        let periods: Vec<Value> = (hundred * 100..(hundred + 1) * 100)
            .map(|i| json!({"start_date": day(i), "end_date": day(i)}))
            .collect();
        let added = send(&app, Method::POST, &path, &json!({"idle_periods": periods})).await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    }
    let one_more = send(
        &app,
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
    let v2 = send(
        &app,
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
    let removed = send(
        &app,
        Method::DELETE,
        &path,
        &json!({"idle_periods": [{"start_date": day(0), "end_date": day(0)}]}),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let again = send(
        &app,
        Method::POST,
        &path,
        &json!({"idle_periods": [{"start_date": day(600), "end_date": day(600)}]}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}

gridroll_testkit::backend_tests!(
    a_repeated_archive_with_its_idempotency_key_replays_the_first_answer,
    tags_added_and_removed_show_in_details_search_and_events,
    tags_come_from_an_upload_and_update_existing_replaces_them,
    a_bad_tag_request_changes_nothing,
    references_change_and_a_taken_one_names_its_meter,
    archived_meters_are_left_out_unmatched_by_uploads_and_in_no_program,
    idle_periods_are_local_dates_across_daylight_saving,
    bulk_idle_periods_apply_to_the_meters_found_and_deletes_are_all_or_nothing,
    disenrollment_and_participate_move_the_meters_periods,
    a_season_long_idle_period_is_named_as_why_a_program_is_not_participating,
    the_market_registration_refresh_is_only_for_caiso_utility_meters,
    another_partners_meters_are_not_found_by_any_lifecycle_call,
    a_meter_holds_at_most_500_periods_whichever_call_adds_them,
);
