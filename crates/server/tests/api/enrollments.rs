//! Programs, eligibility and enrollment through the API: what each meter may join, what
//! it lacks, participation preferences and the operator's moves.

use std::collections::BTreeMap;

use crate::common::{Answer, TestApp, asset_of as meter};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use gridroll_server::Config;
use gridroll_testkit::Backend;
use serde_json::{Value, json};

const OPERATOR: &str = "operator-token-for-tests";

async fn app(backend: Backend) -> TestApp {
    TestApp::with_config(backend, Config::default().with_operator_token(OPERATOR)).await
}

/// A CAISO home battery with everything CEC-DSGS asks for.
fn battery() -> Value {
    meter(
        "battery-1",
        "CAISO",
        "RESIDENTIAL",
        &["BATTERY_STORAGE"],
        json!({
            "device": {"device_serial_number": "SN-1", "device_manufacturer": "Acme", "device_model": "B1",
                       "battery_power_capacity_kw": 5.0, "battery_energy_capacity_kwh": 13.5,
                       "permission_to_operate_date": "2023-01-15"},
            "site": {"number_of_devices": 1},
            "utility": {"utility_name": "PGE"},
            "caiso": {"nem_type": "NEM3"}
        }),
    )
}

/// A New York office on Con Edison with what the Con Edison programs ask for.
fn office() -> Value {
    meter(
        "office-1",
        "NYISO",
        "COMMERCIAL",
        &["HVAC"],
        json!({
            "utility": {"utility_name": "CECONY", "electric_service_account_number": "CE-1"},
            "nyiso": {"cbl_method": "AVERAGE_DAY"}
        }),
    )
}

/// A Tennessee home that has not said who its utility is.
fn home() -> Value {
    meter("home-1", "SERC", "RESIDENTIAL", &["HVAC"], json!({}))
}

/// A commercial site where the only program takes homes.
fn shop() -> Value {
    meter("shop-1", "WECC_PC", "COMMERCIAL", &["HVAC"], json!({}))
}

async fn enrollments(app: &TestApp, meter_id: &str) -> Value {
    let answer = app
        .get(&format!("/v2/meters/{meter_id}/enrollments"))
        .await
        .assert_ok();
    answer.body
}

fn statuses(enrollments: &Value) -> BTreeMap<String, String> {
    enrollments["program_enrollment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["program_identifier"].as_str().unwrap().to_owned(),
                p["enrollment_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
        .collect()
}

async fn search(app: &TestApp, path: &str, body: Value) -> Vec<String> {
    let answer = app.post_json(path, &body).await.assert_ok();
    let mut ids: Vec<String> = answer.body["meters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["meter_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn operator(app: &TestApp, method: Method, path: &str, body: Value) -> Answer {
    app.send(
        method,
        path,
        Some(OPERATOR),
        Some("application/json"),
        body.to_string(),
    )
    .await
}

/// Has the operator evaluate every meter of the test partner again.
async fn refresh(app: &TestApp) -> Answer {
    let path = format!("/operator/v1/partners/{}/enrollments/refresh", app.partner);
    operator(app, Method::POST, &path, json!({}))
        .await
        .assert_ok()
}

async fn a_bulk_job_lands_each_meter_in_the_expected_programs(backend: Backend) {
    let app = app(backend).await;
    let ids = app
        .create_meters(vec![battery(), office(), home(), shop()])
        .await;

    let battery = enrollments(&app, &ids["battery-1"]).await;
    assert_eq!(
        statuses(&battery),
        expect(&[
            ("CEC-DSGS", "PENDING"),
            ("CEC-DSGS-OPTION2", "ELIGIBLE"),
            ("DRAM", "ELIGIBLE"),
            ("ELRP", "ELIGIBLE"),
            ("PGE-CBP", "INELIGIBLE"),
        ])
    );
    assert_eq!(battery["global_enrollment_status"], "PENDING");
    let cbp = battery["program_enrollment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["program_identifier"] == "PGE-CBP")
        .unwrap();
    assert!(
        cbp["ineligibility_reasons"][0]
            .as_str()
            .unwrap()
            .contains("COMMERCIAL")
    );
    let elrp_action = battery["required_actions"]["partner"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["program_identifier"] == "ELRP")
        .unwrap();
    assert_eq!(elrp_action["action_type"], "NO_MISSING_FIELDS");
    assert_eq!(
        elrp_action["action_description"],
        "There are missing fields: utility.electric_service_account_number, utility.utility_meter_serial_number"
    );
    assert!(elrp_action["enrollment_deadline_date_time"].is_string());
    let dsgs = battery["program_enrollment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["program_identifier"] == "CEC-DSGS")
        .unwrap();
    assert!(
        dsgs["delivery_period"]
            .as_str()
            .unwrap()
            .starts_with("CEC-DSGS_")
    );
    assert!(!dsgs["enrollment_deadlines"].as_array().unwrap().is_empty());
    assert!(
        battery["required_actions"]["leap"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["program_identifier"] == "CEC-DSGS"
                && a["action_type"] == "IS_ASSIGNED_TO_A_RESOURCE")
    );
    assert_eq!(
        battery["participation_preferences"][0]["participation_preference"],
        "PARTICIPATE"
    );

    assert_eq!(
        statuses(&enrollments(&app, &ids["office-1"]).await),
        expect(&[
            ("CONED-CSRP", "PENDING"),
            ("CONED-DLRP", "PENDING"),
            ("NYISO-SCR", "ELIGIBLE"),
            ("PSEGLI-CSRP", "INELIGIBLE"),
        ])
    );
    let home = enrollments(&app, &ids["home-1"]).await;
    assert_eq!(statuses(&home), expect(&[("TVA-RPO", "ELIGIBLE")]));
    assert_eq!(
        home["program_enrollment"][0]["missing_fields"],
        json!(["utility.utility_name"])
    );
    let shop = enrollments(&app, &ids["shop-1"]).await;
    assert_eq!(statuses(&shop), expect(&[("PSE-RPO", "INELIGIBLE")]));
    assert_eq!(shop["global_enrollment_status"], "INELIGIBLE");

    let details = app.meter(&ids["office-1"]).await;
    assert_eq!(details["global_enrollment_status"], "PENDING");
}

async fn partner_action_required_finds_exactly_the_meters_that_need_the_partner(backend: Backend) {
    let app = app(backend).await;
    let ids = app
        .create_meters(vec![battery(), office(), home(), shop()])
        .await;
    let mut needing = Vec::new();
    for id in ids.values() {
        let e = enrollments(&app, id).await;
        if !e["required_actions"]["partner"]
            .as_array()
            .unwrap()
            .is_empty()
        {
            needing.push(id.clone());
        }
    }
    needing.sort();
    assert_eq!(
        needing.len(),
        3,
        "the shop needs nothing: it can join nothing"
    );
    for path in ["/v2/meters/search", "/v2/meters/enrollments/search"] {
        assert_eq!(
            search(&app, path, json!({"partner_action_required": true})).await,
            needing
        );
        assert_eq!(
            search(&app, path, json!({"action_type": ["NO_MISSING_FIELDS"]})).await,
            needing
        );
    }

    // Supplying the missing field clears the action: ELIGIBLE becomes PENDING.
    let mut complete_home = home();
    complete_home["utility"] = json!({"utility_name": "TVA"});
    app.submit(
        "/v1.1/jobs/meters?update_existing=true",
        vec![complete_home],
    )
    .await;
    app.drain().await;
    let home = enrollments(&app, &ids["home-1"]).await;
    assert_eq!(statuses(&home), expect(&[("TVA-RPO", "PENDING")]));
    assert!(
        home["required_actions"]["partner"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let still: Vec<String> = search(
        &app,
        "/v2/meters/search",
        json!({"partner_action_required": true}),
    )
    .await;
    assert!(!still.contains(&ids["home-1"]));
    assert_eq!(still.len(), 2);
}

async fn a_meter_that_moves_region_is_ineligible_for_its_old_programs(backend: Backend) {
    let app = app(backend).await;
    let ids = app.create_meters(vec![battery()]).await;
    let mut moved = battery();
    moved["transmission_region"] = json!("ISONE");
    moved["utility"] =
        json!({"utility_name": "NATGRID", "electric_service_account_number": "NG-1"});
    moved["isone"] = json!({"in_connected_solutions": true});
    app.submit("/v1.1/jobs/meters?update_existing=true", vec![moved])
        .await;
    app.drain().await;
    let after = enrollments(&app, &ids["battery-1"]).await;
    let shown = statuses(&after);
    for old in ["CEC-DSGS", "CEC-DSGS-OPTION2", "DRAM", "ELRP", "PGE-CBP"] {
        assert_eq!(shown[old], "INELIGIBLE", "{old}");
    }
    let dsgs = after["program_enrollment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["program_identifier"] == "CEC-DSGS")
        .unwrap();
    assert!(
        dsgs["ineligibility_reasons"][0]
            .as_str()
            .unwrap()
            .contains("ISONE")
    );
    assert_eq!(shown["MA_DOER-CPS"], "PENDING");
    assert_eq!(shown["NATGRID-CS"], "ELIGIBLE");
}

async fn idle_and_disenrolled_meters_are_not_participating(backend: Backend) {
    let app = app(backend).await;
    let ids = app.create_meters(vec![office(), home()]).await;
    let now = time::OffsetDateTime::now_utc();
    let later = now + time::Duration::days(400);
    let at = |t: time::OffsetDateTime| gridroll_domain::timestamp::format(t);

    let idle = app
        .post_json(
            &format!("/v2/meters/{}/participation", ids["office-1"]),
            &json!({"participation_preference": "IDLE", "start_time": at(now), "end_time": at(later), "reason": "Renovation"}),
        )
        .await.assert_ok();
    assert!(
        statuses(&idle.body)
            .values()
            .all(|s| s == "NOT_PARTICIPATING" || s == "INELIGIBLE")
    );
    assert_eq!(idle.body["global_enrollment_status"], "NOT_PARTICIPATING");
    let kinds: Vec<&str> = idle.body["participation_preferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["participation_preference"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["PARTICIPATE", "IDLE", "PARTICIPATE"]);
    assert_eq!(
        idle.body["participation_preferences"][1]["reason"],
        "Renovation"
    );

    app
        .post_json(
            "/v2/meters/participation",
            &json!({"participation_preference": "DISENROLL", "start_time": at(now), "meter_ids": [ids["home-1"]]}),
        )
        .await.assert_ok();
    let home = enrollments(&app, &ids["home-1"]).await;
    assert_eq!(statuses(&home), expect(&[("TVA-RPO", "NOT_PARTICIPATING")]));

    let mut found = search(
        &app,
        "/v2/meters/search",
        json!({"global_enrollment_statuses": ["NOT_PARTICIPATING"]}),
    )
    .await;
    found.sort();
    let mut both = vec![ids["office-1"].clone(), ids["home-1"].clone()];
    both.sort();
    assert_eq!(found, both);

    // Taking part again lifts it.
    let back = app
        .post_json(
            &format!("/v2/meters/{}/participation", ids["home-1"]),
            &json!({"participation_preference": "PARTICIPATE", "start_time": at(now)}),
        )
        .await;
    assert_eq!(statuses(&back.body), expect(&[("TVA-RPO", "ELIGIBLE")]));
}

async fn bad_participation_requests_are_refused_and_change_nothing(backend: Backend) {
    let app = app(backend).await;
    let ids = app.create_meters(vec![office()]).await;
    let path = format!("/v2/meters/{}/participation", ids["office-1"]);
    for body in [
        json!({"participation_preference": "IDLE", "start_time": "2030-01-01T00:00:00Z"}),
        json!({"participation_preference": "IDLE", "start_time": "2030-01-02T00:00:00Z", "end_time": "2030-01-01T00:00:00Z"}),
        json!({"participation_preference": "NAP", "start_time": "2030-01-01T00:00:00Z"}),
        json!({"participation_preference": "DISENROLL", "start_time": "tomorrow"}),
        json!({"participation_preference": "DISENROLL"}),
    ] {
        let answer = app.post_json(&path, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
    }
    let stranger = "01900000-0000-7000-8000-000000000000";
    let bulk = app
        .post_json(
            "/v2/meters/participation",
            &json!({"participation_preference": "DISENROLL", "start_time": "2030-01-01T00:00:00Z",
                    "meter_ids": [ids["office-1"], stranger]}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::NOT_FOUND);
    assert_eq!(bulk.body["details"]["meter_ids"], json!([stranger]));
    let shown = enrollments(&app, &ids["office-1"]).await;
    assert_eq!(
        shown["participation_preferences"].as_array().unwrap().len(),
        1,
        "nothing changed"
    );
    let (_, other_key) = app.other_partner().await;
    let foreign = app
        .send(
            Method::POST,
            &path,
            Some(&other_key),
            Some("application/json"),
            json!({"participation_preference": "DISENROLL", "start_time": "2030-01-01T00:00:00Z"})
                .to_string(),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

async fn operator_activation_shows_active_in_details_search_and_enrollments(backend: Backend) {
    let app = app(backend).await;
    let ids = app.create_meters(vec![office(), battery()]).await;
    let path = format!("/operator/v1/partners/{}/enrollments/activate", app.partner);
    let answer = operator(&app, Method::POST, &path, json!({"program": "CONED-CSRP"}))
        .await
        .assert_ok();
    assert_eq!(answer.body["activated"], 1);

    assert_eq!(
        app.meter(&ids["office-1"]).await["global_enrollment_status"],
        "ACTIVE"
    );
    assert_eq!(
        search(
            &app,
            "/v2/meters/search",
            json!({"global_enrollment_statuses": ["ACTIVE"]})
        )
        .await,
        vec![ids["office-1"].clone()]
    );
    let shown = enrollments(&app, &ids["office-1"]).await;
    assert_eq!(statuses(&shown)["CONED-CSRP"], "ACTIVE");
    assert_eq!(statuses(&shown)["CONED-DLRP"], "PENDING");
    assert_eq!(shown["global_enrollment_status"], "ACTIVE");

    // Activating again changes nothing; ACTIVE survives an update that keeps the meter complete.
    let again = operator(&app, Method::POST, &path, json!({"program": "CONED-CSRP"})).await;
    assert_eq!(again.body["activated"], 0);
    let mut renamed = office();
    renamed["customer"]["city"] = json!("Brooklyn");
    app.submit("/v1.1/jobs/meters?update_existing=true", vec![renamed])
        .await;
    app.drain().await;
    assert_eq!(
        statuses(&enrollments(&app, &ids["office-1"]).await)["CONED-CSRP"],
        "ACTIVE"
    );
}

async fn the_operator_api_is_closed_without_the_token(backend: Backend) {
    let closed = TestApp::new(backend).await;
    let answer = closed
        .send(
            Method::GET,
            "/operator/v1/programs",
            Some(OPERATOR),
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    let app = app(backend).await;
    for key in [None, Some(app.key.as_str()), Some("wrong-token")] {
        let answer = app
            .send(
                Method::GET,
                "/operator/v1/programs",
                key,
                None,
                Body::empty(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{key:?}");
    }
    let listed = operator(&app, Method::GET, "/operator/v1/programs", json!(null))
        .await
        .assert_ok();
    assert!(listed.body["programs"].as_array().unwrap().len() >= 18);
}

async fn the_operator_keeps_the_catalog_and_what_each_partner_may_use(backend: Backend) {
    let app = app(backend).await;
    let ids = app.create_meters(vec![home()]).await;

    // A new program for the south-east, then a refresh puts existing meters in it.
    let program = json!({
        "identifier": "SERC-PILOT", "name": "South-East pilot", "transmission_regions": ["SERC"],
        "required_fields": ["customer.end_customer_name"],
        "delivery": {"every": "month", "deadline_days_before": 5}
    });
    operator(
        &app,
        Method::PUT,
        "/operator/v1/programs/SERC-PILOT",
        program.clone(),
    )
    .await
    .assert_ok();
    let bad = operator(&app, Method::PUT, "/operator/v1/programs/SERC-PILOT",
        json!({"identifier": "SERC-PILOT", "name": "x", "transmission_regions": ["SERC"],
               "required_fields": ["customer.colour"], "delivery": {"every": "month", "deadline_days_before": 5}})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let refreshed = refresh(&app).await;
    assert_eq!(refreshed.body["changed"], 1);
    let home = enrollments(&app, &ids["home-1"]).await;
    assert_eq!(
        statuses(&home),
        expect(&[("SERC-PILOT", "ELIGIBLE"), ("TVA-RPO", "ELIGIBLE")])
    );

    let programs = app.get("/v1.1/programs").await;
    assert!(
        programs.body["programs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["program_identifier"] == "SERC-PILOT")
    );
    let one = app.get("/v1.1/programs/SERC-PILOT").await;
    assert_eq!(
        one.body["required_fields"],
        json!(["customer.end_customer_name"])
    );
    assert!(
        one.body["next_delivery_period"]["delivery_period"]
            .as_str()
            .unwrap()
            .starts_with("SERC-PILOT_")
    );

    // Limit the partner to TVA-RPO: the pilot disappears from its view.
    let limit = operator(
        &app,
        Method::PUT,
        &format!("/operator/v1/partners/{}/programs", app.partner),
        json!({"programs": ["TVA-RPO"]}),
    )
    .await;
    assert_eq!(limit.body["programs"], json!(["TVA-RPO"]));
    assert_eq!(
        app.get("/v1.1/programs/SERC-PILOT").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v1.1/programs").await.body["programs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Retiring a program takes it out of the catalog partners see.
    operator(
        &app,
        Method::PUT,
        &format!("/operator/v1/partners/{}/programs", app.partner),
        json!({"programs": null}),
    )
    .await;
    let retired = app
        .send(
            Method::DELETE,
            "/operator/v1/programs/SERC-PILOT",
            Some(OPERATOR),
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(retired.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/v1.1/programs/SERC-PILOT").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn a_programs_template_is_a_csv_file_the_dry_run_finds_ready_for_it(backend: Backend) {
    let app = app(backend).await;
    let request = axum::http::Request::builder()
        .uri("/v1.1/programs/CEC-DSGS/template")
        .header("authorization", format!("Bearer {}", app.key))
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.starts_with("partner_reference,"), "{text}");
    let verdict = app
        .send(
            Method::POST,
            "/v1.1/meters/validate",
            Some(&app.key),
            Some("text/csv"),
            Body::from(text.clone()),
        )
        .await;
    assert_eq!(verdict.body["valid"], true, "{}", verdict.body);
    let programs = verdict.body["assets"][0]["programs"].as_array().unwrap();
    let dsgs = programs
        .iter()
        .find(|p| p["program_identifier"] == "CEC-DSGS")
        .unwrap();
    assert_eq!(dsgs["ready"], true, "{dsgs}");
    let unknown = app.get("/v1.1/programs/NOPE/template").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["details"]["program_identifier"], "NOPE");
}

async fn validate_reports_problems_and_programs_without_storing_anything(backend: Backend) {
    let app = app(backend).await;
    let mut broken = home();
    broken["customer"]["postal_code"] = json!("ABCDE");
    let answer = app
        .post_json(
            "/v1.1/meters/validate",
            &json!({"assets": [battery(), broken, home()]}),
        )
        .await
        .assert_ok();
    assert_eq!(answer.body["valid"], false);
    assert_eq!(answer.body["problems"][0]["json_index"], 1);
    let assets = answer.body["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 2);
    assert_eq!(assets[0]["json_index"], 0);
    let dsgs = assets[0]["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["program_identifier"] == "CEC-DSGS")
        .unwrap();
    assert_eq!(dsgs["ready"], true);
    assert_eq!(assets[1]["json_index"], 2);
    assert_eq!(
        assets[1]["programs"][0]["missing_fields"],
        json!(["utility.utility_name"])
    );

    let csv = format!(
        "{}\n{}\n",
        crate::common::CSV_HEADER,
        crate::common::csv_row("csv-home")
    );
    let checked = app
        .send(
            Method::POST,
            "/v1.1/meters/validate",
            Some(&app.key),
            Some("text/csv"),
            csv,
        )
        .await;
    assert_eq!(checked.body["valid"], true);
    assert_eq!(checked.body["assets"][0]["csv_row"], 2);
    for table in ["jobs", "job_segments", "meters"] {
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
}

/// Enrollments stored as entries (`PROGRAM STATUS[ mMISSING][ rREASONS][ @AT]`) written as
/// the arrays of values of earlier builds, each reason as the sentence those builds kept.
fn with_sentences(stored: &str) -> String {
    let sentence = |letter: char| match letter {
        'g' => "runs in X; the meter is in Y",
        'c' => "is open to X customers; the meter is Y",
        't' => "takes meters of type X; the meter is a Y",
        'l' => "needs one of the load types X; the meter has Y",
        'u' => "is offered in the territories of X; the meter's utility is Y",
        other => panic!("no sentence for {other}"),
    };
    let status = |letter: &str| match letter {
        "A" => "ACTIVE",
        "E" => "ELIGIBLE",
        "I" => "INELIGIBLE",
        "N" => "NOT_PARTICIPATING",
        "P" => "PENDING",
        other => panic!("no status {other}"),
    };
    let entries: Vec<Value> = stored
        .split(';')
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let mut tokens = entry.split(' ');
            let (program, code) = (tokens.next().unwrap(), tokens.next().unwrap());
            let (mut missing, mut reasons) = (Vec::new(), Vec::new());
            for token in tokens {
                if let Some(at) = token.strip_prefix('m') {
                    for item in at.split(',') {
                        let at: Vec<usize> = item.split('.').map(|n| n.parse().unwrap()).collect();
                        missing.push(gridroll_domain::compact::path_at(&at).unwrap());
                    }
                } else if let Some(letters) = token.strip_prefix('r') {
                    reasons.extend(letters.chars().map(sentence));
                }
            }
            json!([program, status(code), missing, reasons])
        })
        .collect();
    Value::Array(entries).to_string()
}

/// Earlier builds stored each ineligibility as its sentence; this one stores the criterion
/// and writes the sentence when it is shown.
async fn reasons_stored_as_sentences_read_the_same_and_a_refresh_leaves_them(backend: Backend) {
    let app = app(backend).await;
    let ids = app.create_meters(vec![battery(), office()]).await;
    let mut shown = Vec::new();
    for id in [&ids["battery-1"], &ids["office-1"]] {
        shown.push(enrollments(&app, id).await);
    }
    assert!(
        shown
            .iter()
            .any(|m| m.to_string().contains("ineligibility_reasons")),
        "the meters need a program they cannot join"
    );

    // Each meter's enrollments as such a build stored them: arrays of values, each
    // reason its sentence.
    for id in [&ids["battery-1"], &ids["office-1"]] {
        let stored = app
            .db
            .text(&format!(
                "SELECT enrollments FROM meters WHERE id = {}",
                crate::common::uuid_literal(backend, &id.parse().unwrap())
            ))
            .await;
        let as_before = with_sentences(&stored);
        app.db
            .execute(&format!(
                "UPDATE meters SET enrollments = {} WHERE id = {}",
                crate::common::text_literal(&as_before),
                crate::common::uuid_literal(backend, &id.parse().unwrap())
            ))
            .await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM meters WHERE enrollments LIKE '%the meter%'")
            .await,
        2
    );
    let updated = app.count("SELECT max(updated_at) FROM meters").await;

    for (id, before) in [&ids["battery-1"], &ids["office-1"]].iter().zip(&shown) {
        assert_eq!(&enrollments(&app, id).await, before);
    }
    let refreshed = refresh(&app).await;
    assert_eq!(refreshed.body["changed"], 0);
    assert_eq!(
        app.count("SELECT max(updated_at) FROM meters").await,
        updated
    );
}

/// Earlier builds stored each enrollment as an object with named fields; this one stores
/// arrays. A meter keeps the objects until it is next written, and reads the same.
async fn enrollments_stored_as_objects_read_the_same_until_the_meter_is_written_again(
    backend: Backend,
) {
    let app = app(backend).await;
    let ids = app.create_meters(vec![office(), battery(), home()]).await;
    let path = format!("/operator/v1/partners/{}/enrollments/activate", app.partner);
    let answer = operator(&app, Method::POST, &path, json!({"program": "CONED-CSRP"})).await;
    assert_eq!(answer.body["activated"], 1, "{}", answer.body);
    let mut shown = BTreeMap::new();
    for (reference, id) in &ids {
        shown.insert(reference, enrollments(&app, id).await);
        let meter = app
            .meters
            .get_meter(app.partner, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let objects = serde_json::to_string(&meter.enrollments).unwrap();
        assert!(objects.starts_with("[{"), "{objects}");
        app.db
            .execute(&format!(
                "UPDATE meters SET enrollments = '{objects}' WHERE partner_reference = '{reference}'"
            ))
            .await;
    }
    let as_objects = "SELECT count(*) FROM meters WHERE enrollments LIKE '[{%'";
    assert_eq!(app.count(as_objects).await, 3);
    let texts = ["activated_at", "missing", "reasons"];
    for text in texts {
        let sql = format!("SELECT count(*) FROM meters WHERE enrollments LIKE '%\"{text}\"%'");
        assert!(app.count(&sql).await > 0, "no stored enrollment has {text}");
    }

    for (reference, id) in &ids {
        assert_eq!(
            &enrollments(&app, id).await,
            &shown[reference],
            "{reference}"
        );
    }
    assert_eq!(refresh(&app).await.body["changed"], 0);
    assert_eq!(app.count(as_objects).await, 3);

    let mut renamed = office();
    renamed["customer"]["city"] = json!("Brooklyn");
    app.submit("/v1.1/jobs/meters?update_existing=true", vec![renamed])
        .await;
    app.drain().await;
    assert_eq!(app.count(as_objects).await, 2);
    assert_eq!(
        statuses(&enrollments(&app, &ids["office-1"]).await),
        statuses(&shown[&"office-1".to_owned()])
    );
}

gridroll_testkit::backend_tests!(
    a_bulk_job_lands_each_meter_in_the_expected_programs,
    a_programs_template_is_a_csv_file_the_dry_run_finds_ready_for_it,
    partner_action_required_finds_exactly_the_meters_that_need_the_partner,
    a_meter_that_moves_region_is_ineligible_for_its_old_programs,
    idle_and_disenrolled_meters_are_not_participating,
    bad_participation_requests_are_refused_and_change_nothing,
    operator_activation_shows_active_in_details_search_and_enrollments,
    the_operator_api_is_closed_without_the_token,
    the_operator_keeps_the_catalog_and_what_each_partner_may_use,
    validate_reports_problems_and_programs_without_storing_anything,
    reasons_stored_as_sentences_read_the_same_and_a_refresh_leaves_them,
    enrollments_stored_as_objects_read_the_same_until_the_meter_is_written_again,
);
