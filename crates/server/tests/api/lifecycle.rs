//! A meter's life after its creation through the API: tags, references and archiving,
//! each all or nothing, and every call of a meter's life scoped by partner (Leap's v1.1
//! enrollment writes are in `participation`).

use axum::http::{Method, StatusCode};
use gridroll_testkit::Backend;
use serde_json::{Value, json};

use crate::common::{TestApp, asset, asset_of, csv_file, csv_row, meter_ids};
use crate::participation::idle;

async fn search(app: &TestApp, filter: Value) -> Vec<String> {
    let answer = app
        .post_json("/v2/meters/search", &filter)
        .await
        .assert_ok();
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
    let ids = app
        .create_meters(vec![asset("tag-a"), asset("tag-b"), asset("tag-c")])
        .await;
    let (a, b) = (&ids["tag-a"], &ids["tag-b"]);
    let before = app.meter(a).await;

    let added = app
        .send_json(
            Method::POST,
            "/v1.1/meters/tags",
            &json!({"meter_ids": [a, b], "tags": ["north fleet", "Zoë’s #2"]}),
        )
        .await
        .assert_ok();
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
    let again = app
        .send_json(
            Method::POST,
            "/v1.1/meters/tags",
            &json!({"meter_ids": [a], "tags": ["north fleet"]}),
        )
        .await;
    assert_eq!(again.body["updated"], 0);
    assert_eq!(again.body["unchanged_meter_ids"], json!([a]));

    app.send_json(
        Method::DELETE,
        "/v1.1/meters/tags",
        &json!({"meter_ids": [a], "tags": ["north fleet", "never there"]}),
    )
    .await
    .assert_ok();
    assert_eq!(app.meter(a).await["tags"], json!(["Zoë’s #2"]));
    assert_eq!(
        search(&app, json!({"tags": ["north fleet"]})).await,
        vec![b.clone()]
    );

    // Each meter whose tags changed made one meter.updated: two adds and one removal.
    let updated = app.event_payloads("meter.updated").await;
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
    let ids = app.create_meters(vec![asset("keep-a")]).await;
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
        let answer = app
            .send_json(Method::POST, "/v1.1/meters/tags", &body)
            .await;
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(answer.body["details"]["field"], field, "{}", answer.body);
    }
    // Another partner's meter in the list: 404 naming it, and the partner's own meter
    // is not tagged either.
    let foreign = app
        .send_json(
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
    app.send_json(
        Method::POST,
        "/v1.1/meters/tags",
        &json!({"meter_ids": [a], "tags": fifty}),
    )
    .await
    .assert_ok();
    let over = app
        .send_json(
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
    let ids = app
        .create_meters(vec![asset("ref-a"), asset("ref-b"), asset("ref-c")])
        .await;
    let (a, b, c) = (&ids["ref-a"], &ids["ref-b"], &ids["ref-c"]);
    let before = app.meter(a).await;

    let one = app
        .send_json(
            Method::PATCH,
            &format!("/v1.1/meters/{a}/partner_meter_ref"),
            &json!({"partner_reference": "ref-a2"}),
        )
        .await
        .assert_ok();
    assert_eq!(one.body["partner_reference"], "ref-a2");
    assert_ne!(
        one.body["audit"]["updated_at"],
        before["audit"]["updated_at"]
    );

    let taken = app
        .send_json(
            Method::PATCH,
            &format!("/v1.1/meters/{a}/partner_meter_ref"),
            &json!({"partner_reference": "ref-b"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.body["details"]["meters"][0]["held_by_meter_id"], *b);

    // Two meters swap their references in one request.
    app.send_json(
        Method::PATCH,
        "/v1.1/meters/partner_meter_ref",
        &json!({"meters": [
            {"meter_id": b, "partner_reference": "ref-c"},
            {"meter_id": c, "partner_reference": "ref-b"}]}),
    )
    .await
    .assert_ok();
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
    let half = app
        .send_json(
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
        let answer = app
            .send_json(Method::PATCH, "/v1.1/meters/partner_meter_ref", &body)
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        assert_eq!(answer.body["details"]["field"], field);
    }
    let updated = app.event_payloads("meter.updated").await;
    assert!(
        updated.iter().any(|e| e["partner_reference"] == "ref-a2"),
        "{updated:?}"
    );
}

async fn archived_meters_are_left_out_unmatched_by_uploads_and_in_no_program(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = app
        .create_meters(vec![asset("arch-a"), asset("arch-b")])
        .await;
    let (a, b) = (&ids["arch-a"], &ids["arch-b"]);

    app.archive(json!([a])).await.assert_ok();
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
    let twice = app.archive(json!([b, a])).await;
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
    let back = app.unarchive(json!([a])).await;
    assert_eq!(back.status, StatusCode::CONFLICT, "{}", back.body);
    assert_eq!(back.body["details"]["meters"][0]["held_by_meter_id"], newer);
    app.archive(json!([newer])).await.assert_ok();
    app.unarchive(json!([a])).await.assert_ok();
    let enrollments = app.get(&format!("/v2/meters/{a}/enrollments")).await.body;
    assert_ne!(enrollments["global_enrollment_status"], "INELIGIBLE");
    let not_archived = app.unarchive(json!([b])).await;
    assert_eq!(not_archived.status, StatusCode::CONFLICT);
    // Archiving and bringing back each made a meter.updated for the meter.
    let updated = app.event_payloads("meter.updated").await;
    assert_eq!(
        updated.iter().filter(|e| e["meter_id"] == *a).count(),
        2,
        "{updated:?}"
    );
}

async fn another_partners_meters_are_not_found_by_any_lifecycle_call(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ids = app.create_meters(vec![asset("mine-1")]).await;
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
    let ids = app.create_meters(vec![asset("idem-1")]).await;
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
    let first = archive().await.assert_ok();
    // Without the key, archiving again would be a 409; with it, the first answer again.
    let again = archive().await.assert_ok();
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(app.event_payloads("meter.updated").await.len(), 1);
}

gridroll_testkit::backend_tests!(
    a_repeated_archive_with_its_idempotency_key_replays_the_first_answer,
    tags_added_and_removed_show_in_details_search_and_events,
    tags_come_from_an_upload_and_update_existing_replaces_them,
    a_bad_tag_request_changes_nothing,
    references_change_and_a_taken_one_names_its_meter,
    archived_meters_are_left_out_unmatched_by_uploads_and_in_no_program,
    another_partners_meters_are_not_found_by_any_lifecycle_call,
);
