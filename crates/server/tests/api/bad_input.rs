//! Bad input gets a clear 4xx JSON error and stores nothing.

use gridroll_testkit::Backend;

use crate::common::{Answer, CSV_HEADER, TestApp, asset, csv_file, csv_row};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use gridroll_server::Config;
use serde_json::{Value, json};

/// Asserts the contract's error shape and that no job, asset or meter was stored.
async fn assert_refused(app: &TestApp, answer: &Answer, status: StatusCode, case: &str) {
    assert_eq!(answer.status, status, "{case}: {}", answer.body);
    assert_eq!(answer.body["status"], status.as_u16(), "{case}");
    assert!(
        answer.body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{case}: {}",
        answer.body
    );
    assert!(!answer.body["details"].is_null(), "{case}: {}", answer.body);
    for table in ["jobs", "job_segments", "meters"] {
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM {table}")).await,
            0,
            "{case}: {table} is not empty"
        );
    }
}

fn first_message(answer: &Answer) -> &str {
    answer.body["details"][0]["message"]
        .as_str()
        .unwrap_or_default()
}

async fn malformed_json_bodies_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cases: [(&str, &[u8], &str); 7] = [
        ("empty body", b"", "empty"),
        ("an empty object", b"{}", "is required"),
        (
            "assets not an array",
            br#"{"assets": {"a": 1}}"#,
            "must be an array",
        ),
        (
            "an empty assets array",
            br#"{"assets": []}"#,
            "at least one meter",
        ),
        ("not JSON", b"assets=1", "not valid JSON"),
        (
            "truncated JSON",
            br#"{"assets": [{"partner_reference": "#,
            "not valid JSON",
        ),
        (
            "not UTF-8",
            b"{\"assets\": [\"\xff\xfe\"]}",
            "not valid JSON",
        ),
    ];
    for (case, body, expected) in cases {
        let answer = app
            .send(
                Method::POST,
                "/v1.1/jobs/meters",
                Some(&app.key),
                Some("application/json"),
                Body::from(body.to_vec()),
            )
            .await;
        assert_refused(&app, &answer, StatusCode::BAD_REQUEST, case).await;
        assert!(
            answer.body.to_string().contains(expected),
            "{case}: {}",
            answer.body
        );
    }
}

async fn every_problem_of_every_asset_is_listed_with_its_index_and_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut unknown_field = asset("ref-2");
    unknown_field["colour"] = json!("red");
    let mut bad_values = asset("ref-3");
    bad_values["transmission_region"] = json!("MARS");
    bad_values["customer"]["postal_code"] = json!("123");
    bad_values["device"] = json!({"install_date": "23/01/2000"});
    let missing = json!({"customer": {"street_1": "1 Main St"}});
    let answer = app
        .post_json(
            "/v1.1/jobs/meters",
            &json!({"assets": [asset("ref-1"), unknown_field, bad_values, missing]}),
        )
        .await;
    assert_refused(&app, &answer, StatusCode::BAD_REQUEST, "invalid assets").await;
    let found: Vec<(u64, String)> = answer.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["json_index"].as_u64().unwrap(),
                p["problem_field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, &str)> = vec![
        (1, "colour"),
        (2, "customer.postal_code"),
        (2, "device.install_date"),
        (2, "transmission_region"),
        (3, "customer.postal_code"),
        (3, "customer.city"),
        (3, "customer.state_or_province_code"),
        (3, "customer.country_code"),
        (3, "partner_reference"),
        (3, "transmission_region"),
        (3, "customer_classification"),
        (3, "load_types"),
        (3, "meter_type"),
    ];
    let expected: Vec<(u64, String)> = expected
        .into_iter()
        .map(|(i, f)| (i, f.to_owned()))
        .collect();
    assert_eq!(found, expected);
    assert!(
        answer.body["title"]
            .as_str()
            .unwrap()
            .contains("13 problems")
    );
}

async fn malformed_csv_bodies_are_refused_with_the_row_and_column(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ragged = format!("{CSV_HEADER}\n{}\nref-2,CAISO\n", csv_row("ref-1"));
    let unknown = format!("{CSV_HEADER},colour\n{},red\n", csv_row("ref-1"));
    let duplicated = format!("{CSV_HEADER},customer.city\n{},Oakland\n", csv_row("ref-1"));
    let no_header = format!("{}\n{}\n", csv_row("ref-1"), csv_row("ref-2"));
    let mut not_utf8 = format!("{CSV_HEADER}\n").into_bytes();
    not_utf8.extend_from_slice(b"ref-1,CAISO,RESIDENTIAL,HVAC,DEVICE,\xe9 Main,94105,SF,CA,US\n");
    let bad_value = format!(
        "{CSV_HEADER}\n{}\n{}\n",
        csv_row("ref-1"),
        csv_row("ref-2").replace("94105", "9410")
    );
    // (case, body, the first problem's csv_row, its problem_field, words in its message)
    type Case<'a> = (&'a str, Vec<u8>, Option<u64>, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        ("empty body", Vec::new(), None, None, "empty"),
        (
            "header only",
            CSV_HEADER.as_bytes().to_vec(),
            None,
            None,
            "no rows",
        ),
        ("ragged row", ragged.into_bytes(), Some(3), None, "cells"),
        (
            "unknown column",
            unknown.into_bytes(),
            Some(1),
            Some("colour"),
            "unknown column",
        ),
        (
            "duplicated column",
            duplicated.into_bytes(),
            Some(1),
            Some("customer.city"),
            "same field",
        ),
        (
            "no header",
            no_header.into_bytes(),
            Some(1),
            Some("ref-1"),
            "unknown column",
        ),
        ("not UTF-8", not_utf8, Some(2), None, "UTF-8"),
        (
            "bad value",
            bad_value.into_bytes(),
            Some(3),
            Some("postal_code"),
            "ZIP",
        ),
    ];
    for (case, body, row, field, expected) in cases {
        let answer = app.post_csv("/v1.1/jobs/meters", body).await;
        assert_refused(&app, &answer, StatusCode::BAD_REQUEST, case).await;
        let problem = &answer.body["details"][0];
        assert_eq!(problem["csv_row"].as_u64(), row, "{case}: {problem}");
        assert_eq!(
            problem["problem_field"].as_str(),
            field,
            "{case}: {problem}"
        );
        assert!(
            first_message(&answer).contains(expected),
            "{case}: {problem}"
        );
    }
}

async fn a_wrong_content_type_is_unsupported(backend: Backend) {
    let app = TestApp::new(backend).await;
    for content_type in [None, Some("text/plain"), Some("application/xml")] {
        let answer = app
            .send(
                Method::POST,
                "/v1.1/jobs/meters",
                Some(&app.key),
                content_type,
                json!({"assets": [asset("ref-1")]}).to_string(),
            )
            .await;
        assert_refused(
            &app,
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type",
        )
        .await;
    }
    let charset = app
        .send(
            Method::POST,
            "/v1.1/jobs/meters",
            Some(&app.key),
            Some("text/csv; charset=utf-8"),
            format!("{CSV_HEADER}\n{}\n", csv_row("ref-1")),
        )
        .await;
    assert_eq!(
        charset.status,
        StatusCode::CREATED,
        "parameters of the type are allowed"
    );
}

async fn a_body_over_the_limit_is_too_large_whether_declared_or_streamed(backend: Backend) {
    let app = TestApp::with_config(
        backend,
        Config {
            max_body_bytes: 2048,
            ..Config::default()
        },
    )
    .await;
    let csv = csv_file((0..40).map(|n| csv_row(&format!("ref-{n}"))));
    assert!(csv.len() > 2048);
    let declared = app.post_csv("/v1.1/jobs/meters", csv.clone()).await;
    assert_refused(
        &app,
        &declared,
        StatusCode::PAYLOAD_TOO_LARGE,
        "declared length",
    )
    .await;

    // A chunked body has no length up front: the limit applies as it streams.
    let chunks: Vec<Result<String, std::io::Error>> = csv
        .as_bytes()
        .chunks(256)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let streamed = app
        .post_csv(
            "/v1.1/jobs/meters",
            Body::from_stream(futures_util::stream::iter(chunks)),
        )
        .await;
    assert_refused(
        &app,
        &streamed,
        StatusCode::PAYLOAD_TOO_LARGE,
        "streamed body",
    )
    .await;
    assert_eq!(streamed.body["details"]["limit_bytes"], 2048);
}

async fn an_upload_refused_after_some_of_its_assets_were_stored_leaves_none_of_them(
    backend: Backend,
) {
    // Batches of two: the first rows are stored before the bad one is read.
    let app = TestApp::with_config(
        backend,
        Config {
            upload_batch: 2,
            ..Config::default()
        },
    )
    .await;
    let good = (0..5).map(|n| csv_row(&format!("ref-{n}")));
    let csv = csv_file(good.chain([csv_row("ref-5").replace("94105", "9410")]));
    let answer = app.post_csv("/v1.1/jobs/meters", csv).await;
    assert_refused(&app, &answer, StatusCode::BAD_REQUEST, "a bad last row").await;
    assert_eq!(answer.body["details"][0]["csv_row"], 7);
}

async fn bad_query_parameters_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = json!({"assets": [asset("ref-1")]});
    let long_name = format!("/v1.1/jobs/meters?file_name={}.csv", "a".repeat(252));
    for uri in [
        "/v1.1/jobs/meters?update_existing=maybe",
        "/v1.1/jobs/meters?update_exisitng=true",
        "/v1.1/jobs/meters?file_name=../etc/passwd",
        "/v1.1/jobs/meters?file_name=a/b.csv",
        &long_name,
    ] {
        let answer = app.post_json(uri, &body).await;
        assert_refused(&app, &answer, StatusCode::BAD_REQUEST, uri).await;
    }
    for uri in [
        "/v1.1/jobs/meters?page_size=0",
        "/v1.1/jobs/meters?page_size=501",
        "/v1.1/jobs/meters?page_size=ten",
        "/v1.1/jobs/meters?page_token=not-a-token",
    ] {
        let answer = app.get(uri).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            answer.body
        );
    }
}

async fn ids_that_are_not_uuids_are_bad_requests(backend: Backend) {
    let app = TestApp::new(backend).await;
    let job = app.get("/v1.1/jobs/meters/not-a-uuid").await;
    assert_eq!(job.status, StatusCode::BAD_REQUEST);
    assert_eq!(job.body["title"], "Job id is not a UUID");
    assert_eq!(job.body["details"]["job_id"], "not-a-uuid");
    let meter = app.get("/v2/meters/abcdef").await;
    assert_eq!(meter.status, StatusCode::BAD_REQUEST);
    assert_eq!(meter.body["title"], "Meter id is not a UUID");
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let app = TestApp::new(backend).await;
    let missing = app.get("/v1.1/nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["status"], 404);
    let wrong = app
        .send(
            Method::DELETE,
            "/v1.1/jobs/meters",
            Some(&app.key),
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.body["status"], 405);
}

async fn the_server_keeps_serving_after_refusing_bad_input(backend: Backend) {
    let app = TestApp::new(backend).await;
    let refused = app
        .send(
            Method::POST,
            "/v1.1/jobs/meters",
            Some(&app.key),
            Some("application/json"),
            Body::from(vec![0xff, 0x00, 0x7b]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let accepted = app.submit("/v1.1/jobs/meters", vec![asset("ref-1")]).await;
    app.drain().await;
    assert_eq!(app.job(&accepted).await["status"], Value::from("COMPLETED"));
}

async fn uploads_past_the_concurrency_limit_are_asked_to_retry(backend: Backend) {
    let app = TestApp::with_config(
        backend,
        Config {
            max_concurrent_uploads: 1,
            ..Config::default()
        },
    )
    .await;
    // An upload whose body is still arriving holds the only permit.
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    sender.send(format!("{CSV_HEADER}\n")).unwrap();
    let receiver = futures_util::stream::unfold(receiver, |mut r| async move {
        r.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), r))
    });
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/v1.1/jobs/meters")
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "text/csv")
        .body(Body::from_stream(receiver))
        .unwrap();
    let first = tokio::spawn(tower::ServiceExt::oneshot(app.router.clone(), request));
    // Once its job is being received, the first upload holds the permit.
    for _ in 0..500 {
        if app
            .count("SELECT count(*) FROM jobs WHERE status = 'RECEIVING'")
            .await
            == 1
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let body = format!("{CSV_HEADER}\n{}\n", csv_row("r-2"));
    let second = app.post_csv("/v1.1/jobs/meters", body.clone()).await;
    assert_eq!(
        second.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        second.body
    );
    assert_eq!(second.body["status"], 429);

    sender.send(format!("{}\n", csv_row("r-1"))).unwrap();
    drop(sender);
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let third = app.post_csv("/v1.1/jobs/meters", body).await;
    assert_eq!(
        third.status,
        StatusCode::CREATED,
        "the permit is given back"
    );
}

async fn control_characters_are_refused_with_the_field_named_on_every_backend(backend: Backend) {
    let app = TestApp::new(backend).await;
    for uri in ["/v2/meters/search", "/v2/meters/enrollments/search"] {
        let answer = app
            .post_json(uri, &json!({"partner_references": ["\u{0}"]}))
            .await;
        assert_refused(&app, &answer, StatusCode::BAD_REQUEST, uri).await;
        assert_eq!(answer.body["details"]["field"], "partner_references.0");
    }
    for uri in [
        "/v1.1/provisional-assets?search_query=%00&search_fields=partner_reference",
        "/v1.1/provisional-assets?filter=partner_reference:a%00b",
        "/v1.1/jobs/meters?search_query=a%01",
    ] {
        let answer = app.get(uri).await;
        assert_refused(&app, &answer, StatusCode::BAD_REQUEST, uri).await;
        assert!(
            answer.body["details"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("control characters")),
            "{uri}: {}",
            answer.body
        );
    }

    let csv = csv_file([csv_row("ref\u{0}1")]);
    let answer = app.post_csv("/v1.1/jobs/meters", csv).await;
    assert_refused(
        &app,
        &answer,
        StatusCode::BAD_REQUEST,
        "a NUL in a CSV cell",
    )
    .await;
    assert_eq!(
        answer.body["details"][0]["problem_field"],
        "partner_reference"
    );
    assert_eq!(answer.body["details"][0]["csv_row"], 2);

    let mut nested = asset("ref-1");
    nested["nyiso"] = json!({"partner_nyiso_resource_name": "x\u{0}y"});
    let answer = app
        .post_json("/v1.1/jobs/meters", &json!({"assets": [nested.clone()]}))
        .await;
    assert_refused(
        &app,
        &answer,
        StatusCode::BAD_REQUEST,
        "a NUL in a nested field",
    )
    .await;
    assert_eq!(
        answer.body["details"][0]["problem_field"],
        "nyiso.partner_nyiso_resource_name"
    );
    let answer = app
        .post_json("/v1.1/meters", &json!({"provisional_asset": nested}))
        .await;
    assert_refused(
        &app,
        &answer,
        StatusCode::BAD_REQUEST,
        "a NUL in a single meter",
    )
    .await;
}

/// What a release that took control characters may have stored: a NUL escaped inside
/// a nested field of a job input and of a meter.
async fn a_nul_stored_by_an_earlier_release_breaks_no_read(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut stored = asset("ref-1");
    stored["nyiso"] = json!({"partner_nyiso_resource_name": "xMARKy"});
    stored["device"] = json!({"device_serial_number": "SER-1"});
    let job = app.submit("/v1.1/jobs/meters", vec![stored]).await;
    app.drain().await;
    for (table, column) in [("job_segments", "body"), ("meters", "data")] {
        app.db
            .execute(&format!(
                "UPDATE {table} SET {column} = replace({column}, 'MARK', '\\u0000')"
            ))
            .await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM job_segments WHERE body LIKE '%\\u0000%'")
            .await,
        1
    );

    let search = "/v1.1/provisional-assets?search_query=ser-1&search_fields=device_serial_number";
    let found = app.get(search).await.assert_ok();
    assert_eq!(
        found.body["provisional_assets"].as_array().map(Vec::len),
        Some(1)
    );
    app.send(
        Method::GET,
        &format!("/v1.1/provisional-assets?filter=job_id:{job}"),
        Some(&app.key),
        None,
        Body::empty(),
    )
    .await
    .assert_ok();
    let csv = tower::ServiceExt::oneshot(
        app.router.clone(),
        axum::http::Request::get(format!("/v1.1/provisional-assets?filter=job_id:{job}"))
            .header("authorization", format!("Bearer {}", app.key))
            .header("accept", "text/csv")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let meter = app.job(&job).await["assets"][0]["meter_id"].clone();
    let details = app.meter(meter.as_str().unwrap()).await;
    assert_eq!(
        details["nyiso"]["partner_nyiso_resource_name"], "x\u{0}y",
        "the meter reads back as stored"
    );
}

async fn a_key_given_twice_in_a_single_meter_is_refused_naming_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = asset("ref-1").to_string().replacen(
        r#""city":"San Francisco""#,
        r#""city":"San Francisco","city":"Oakland""#,
        1,
    );
    let body = format!(r#"{{"provisional_asset": {body}}}"#);
    let answer = app
        .send(
            Method::POST,
            "/v1.1/meters",
            Some(&app.key),
            Some("application/json"),
            body,
        )
        .await;
    assert_refused(&app, &answer, StatusCode::BAD_REQUEST, "a repeated key").await;
    assert_eq!(answer.body["details"][0]["problem_field"], "customer.city");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn send_encoded(app: &TestApp, encoding: &str, body: Vec<u8>) -> Answer {
    let request = axum::http::Request::post("/v1.1/jobs/meters")
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "text/csv")
        .header("content-encoding", encoding)
        .body(Body::from(body))
        .unwrap();
    crate::common::answer(
        tower::ServiceExt::oneshot(app.router.clone(), request)
            .await
            .unwrap(),
    )
    .await
}

async fn gzip_bodies_are_decoded_within_the_size_limit_and_other_encodings_refused(
    backend: Backend,
) {
    let app = TestApp::with_config(
        backend,
        Config {
            max_body_bytes: 64 * 1024,
            ..Config::default()
        },
    )
    .await;
    let answer = send_encoded(&app, "br", b"whatever".to_vec()).await;
    assert_refused(&app, &answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, "br").await;
    assert_eq!(
        answer.body["details"]["supported"],
        json!(["gzip", "identity"])
    );

    let answer = send_encoded(&app, "gzip", b"not gzip at all".to_vec()).await;
    assert_refused(&app, &answer, StatusCode::BAD_REQUEST, "broken gzip").await;

    // Small compressed, far past the limit decoded.
    let rows = (0..2000).map(|n| csv_row(&format!("ref-{n}")));
    let large = gzip(csv_file(rows).as_bytes());
    assert!(large.len() < 64 * 1024);
    let answer = send_encoded(&app, "gzip", large).await;
    assert_refused(
        &app,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a large decoded body",
    )
    .await;

    let small = gzip(csv_file((0..3).map(|n| csv_row(&format!("ref-{n}")))).as_bytes());
    let answer = send_encoded(&app, "gzip", small).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    app.drain().await;
    let job = app.job(answer.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["assets_created_count"], 3);
}

/// A request whose body sends `first` and then nothing more until `release` is dropped.
fn stalled_upload(
    app: &TestApp,
    key: &str,
    first: String,
) -> (
    tokio::task::JoinHandle<Answer>,
    tokio::sync::mpsc::UnboundedSender<String>,
) {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    sender.send(first).unwrap();
    let stream = futures_util::stream::unfold(receiver, |mut r| async move {
        r.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), r))
    });
    let request = axum::http::Request::post("/v1.1/jobs/meters")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "text/csv")
        .body(Body::from_stream(stream))
        .unwrap();
    let router = app.router.clone();
    let task = tokio::spawn(async move {
        crate::common::answer(tower::ServiceExt::oneshot(router, request).await.unwrap()).await
    });
    (task, sender)
}

async fn wait_for_receiving(app: &TestApp, uploads: i64) {
    for _ in 0..500 {
        if app
            .count("SELECT count(*) FROM jobs WHERE status = 'RECEIVING'")
            .await
            == uploads
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{uploads} uploads never began");
}

async fn a_body_that_stops_arriving_times_out_and_frees_its_place(backend: Backend) {
    let app = TestApp::with_config(
        backend,
        Config {
            max_concurrent_uploads: 1,
            body_pace: gridroll_server::body::BodyPace {
                idle_timeout: std::time::Duration::from_millis(300),
                min_rate: 1,
            },
            ..Config::default()
        },
    )
    .await;
    let (stalled, _held) = stalled_upload(&app, &app.key, format!("{CSV_HEADER}\n"));
    let answer = stalled.await.unwrap();
    assert_refused(&app, &answer, StatusCode::REQUEST_TIMEOUT, "a stalled body").await;
    assert!(
        answer.body["details"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no part of the request body arrived")),
        "{}",
        answer.body
    );
    let next = app
        .post_csv("/v1.1/jobs/meters", csv_file([csv_row("r-1")]))
        .await;
    assert_eq!(next.status, StatusCode::CREATED, "the place was given back");
}

async fn one_partner_cannot_take_every_upload_place(backend: Backend) {
    let app = TestApp::with_config(
        backend,
        Config {
            max_concurrent_uploads: 4,
            max_uploads_per_partner: 2,
            ..Config::default()
        },
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(stalled_upload(&app, &app.key, format!("{CSV_HEADER}\n")));
    }
    wait_for_receiving(&app, 2).await;
    let third = app
        .post_csv("/v1.1/jobs/meters", csv_file([csv_row("r-1")]))
        .await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        third.body
    );
    assert!(third.body["title"].as_str().unwrap().contains("of yours"));
    assert_eq!(third.body["details"]["limit"], 2);
    assert_eq!(third.body["details"]["retry_after_seconds"], 5);

    let (_, other_key) = app.other_partner().await;
    let theirs = app
        .send(
            Method::POST,
            "/v1.1/jobs/meters",
            Some(&other_key),
            Some("text/csv"),
            csv_file([csv_row("r-1")]),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
    for (task, sender) in held {
        drop(sender);
        task.await.unwrap();
    }
}

async fn a_full_database_answers_507_and_stores_nothing(backend: Backend) {
    let app = match backend {
        Backend::Sqlite => {
            crate::common::TestApp::with_options(
                backend,
                Config::default(),
                gridroll_store::StoreOptions {
                    max_size: Some(2 * 1024 * 1024),
                    ..gridroll_store::StoreOptions::default()
                },
            )
            .await
        }
        Backend::Postgres => {
            let app = TestApp::new(backend).await;
            app.db
                .execute(
                    "CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN
                         RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left on device'
                             USING ERRCODE = 'disk_full';
                     END $$;
                     CREATE TRIGGER full_disk BEFORE INSERT ON job_segments
                         FOR EACH ROW EXECUTE FUNCTION full_disk();",
                )
                .await;
            app
        }
    };
    let rows = (0..20_000).map(|n| csv_row(&format!("a-rather-long-reference-{n:06}")));
    let answer = app.post_csv("/v1.1/jobs/meters", csv_file(rows)).await;
    assert_refused(
        &app,
        &answer,
        StatusCode::INSUFFICIENT_STORAGE,
        "a full database",
    )
    .await;
    assert!(
        answer.body["title"]
            .as_str()
            .unwrap()
            .contains("no storage left")
    );
}

gridroll_testkit::backend_tests!(
    an_upload_refused_after_some_of_its_assets_were_stored_leaves_none_of_them,
    uploads_past_the_concurrency_limit_are_asked_to_retry,
    malformed_json_bodies_are_refused,
    every_problem_of_every_asset_is_listed_with_its_index_and_field,
    malformed_csv_bodies_are_refused_with_the_row_and_column,
    a_wrong_content_type_is_unsupported,
    a_body_over_the_limit_is_too_large_whether_declared_or_streamed,
    bad_query_parameters_are_refused,
    ids_that_are_not_uuids_are_bad_requests,
    unknown_routes_and_methods_answer_json,
    the_server_keeps_serving_after_refusing_bad_input,
    control_characters_are_refused_with_the_field_named_on_every_backend,
    a_nul_stored_by_an_earlier_release_breaks_no_read,
    a_key_given_twice_in_a_single_meter_is_refused_naming_it,
    gzip_bodies_are_decoded_within_the_size_limit_and_other_encodings_refused,
    a_body_that_stops_arriving_times_out_and_frees_its_place,
    one_partner_cannot_take_every_upload_place,
    a_full_database_answers_507_and_stores_nothing,
);
