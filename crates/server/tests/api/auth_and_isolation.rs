//! API keys and partner isolation: no key, no access; another partner's objects do not exist.

use gridroll_domain::scope::{Scope, Scopes};
use gridroll_testkit::Backend;

use crate::common::{TestApp, asset, meter_ids};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

async fn requests_without_a_valid_key_are_unauthorized(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = json!({"assets": [asset("ref-1")]}).to_string();
    for key in [None, Some(""), Some("grk_not-a-real-key")] {
        let answer = app
            .send(
                Method::POST,
                "/v1.1/jobs/meters",
                key,
                Some("application/json"),
                body.clone(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(answer.body["status"], 401);
        assert_eq!(answer.body["title"], "Unauthorized");
    }
    let basic = app.router.clone();
    let request = axum::http::Request::builder()
        .uri("/v1.1/jobs/meters")
        .header("authorization", format!("Basic {}", app.key))
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(basic, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 0);
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = TestApp::new(backend).await;
    let request = axum::http::Request::builder()
        .uri("/v1.1/jobs/meters")
        .header("authorization", format!("bearer {}", app.key))
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn keys_are_stored_only_as_hashes(backend: Backend) {
    let app = TestApp::new(backend).await;
    assert_eq!(app.count("SELECT length(key_hash) FROM api_keys").await, 32);
    if let Some(raw) = app.db.raw_file() {
        let needle = app.key.as_bytes();
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "the key is in the file"
        );
    }
}

async fn another_partners_jobs_and_meters_are_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let job_id = app.submit("/v1.1/jobs/meters", vec![asset("ref-1")]).await;
    app.drain().await;
    let meter_id = app.job(&job_id).await["assets"][0]["meter_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other) = app.other_partner().await;

    let get = |uri: String| {
        let key = other.clone();
        let app = &app;
        async move {
            app.send(Method::GET, &uri, Some(&key), None, Body::empty())
                .await
        }
    };
    let job = get(format!("/v1.1/jobs/meters/{job_id}")).await;
    assert_eq!(job.status, StatusCode::NOT_FOUND);
    assert_eq!(job.body["title"], "Job not found");
    let meter = get(format!("/v2/meters/{meter_id}")).await;
    assert_eq!(meter.status, StatusCode::NOT_FOUND);
    assert_eq!(meter.body["title"], "Meter not found");
    let list = get("/v1.1/jobs/meters".to_owned()).await;
    assert_eq!(list.body["jobs"], json!([]));

    // The same reference is free for the other partner, and does not touch the first's meter.
    let answer = app
        .send(
            Method::POST,
            "/v1.1/meters",
            Some(&other),
            Some("application/json"),
            json!({"provisional_asset": asset("ref-1")}).to_string(),
        )
        .await;
    assert_eq!(answer.body["status_detail"]["name"], "METER_CREATED");
    assert_ne!(answer.body["meter_id"], meter_id.as_str());
}

/// Reads of many meters at once, by two partners, each of them also asking for the
/// other's meters: every read answers its own partner's meter and only that. (On
/// PostgreSQL reads arriving together are answered by one statement.)
async fn meters_read_at_once_by_two_partners_are_each_found_only_by_their_own(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, other) = app.other_partner().await;
    let mut own = Vec::new();
    for (key, prefix) in [(app.key.clone(), "first"), (other.clone(), "second")] {
        let assets: Vec<_> = (0..12).map(|i| asset(&format!("{prefix}-{i}"))).collect();
        let answer = app
            .send(
                Method::POST,
                "/v1.1/jobs/meters",
                Some(&key),
                Some("application/json"),
                json!({ "assets": assets }).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        let job_id = answer.body["job_id"].as_str().unwrap().to_owned();
        app.drain().await;
        let job = app
            .send(
                Method::GET,
                &format!("/v1.1/jobs/meters/{job_id}"),
                Some(&key),
                None,
                Body::empty(),
            )
            .await;
        let ids = meter_ids(&job.body);
        assert_eq!(ids.len(), 12);
        own.push((key, prefix, ids));
    }

    let app = &app;
    let mut reads = Vec::new();
    for (reader, _, _) in &own {
        for (owner, prefix, ids) in &own {
            for (i, id) in ids.iter().enumerate() {
                let expected = (reader == owner).then(|| format!("{prefix}-{i}"));
                reads.push(async move {
                    let answer = app
                        .send(
                            Method::GET,
                            &format!("/v2/meters/{id}"),
                            Some(reader),
                            None,
                            Body::empty(),
                        )
                        .await;
                    (id, expected, answer)
                });
            }
        }
    }
    for (id, expected, answer) in futures_util::future::join_all(reads).await {
        match expected {
            Some(reference) => {
                assert_eq!(answer.status, StatusCode::OK, "{id}");
                assert_eq!(answer.body["meter_id"], id.as_str());
                assert_eq!(answer.body["partner_reference"], reference);
            }
            None => {
                assert_eq!(answer.status, StatusCode::NOT_FOUND, "{id}");
                assert_eq!(answer.body["title"], "Meter not found");
            }
        }
    }
}

/// A meter whose stored data cannot be read fails its own read, with a 500, and no other:
/// reads arriving at the same moment are still answered.
async fn a_damaged_meter_fails_only_its_own_read(backend: Backend) {
    let app = TestApp::new(backend).await;
    let job_id = app
        .submit(
            "/v1.1/jobs/meters",
            (0..6).map(|i| asset(&format!("ref-{i}"))).collect(),
        )
        .await;
    app.drain().await;
    let ids = meter_ids(&app.job(&job_id).await);
    app.db
        .execute("UPDATE meters SET data = 'not json' WHERE partner_reference = 'ref-2'")
        .await;

    let app = &app;
    let reads = ids
        .iter()
        .map(|id| async move { app.get(&format!("/v2/meters/{id}")).await });
    let answers = futures_util::future::join_all(reads).await;
    for (i, answer) in answers.iter().enumerate() {
        if i == 2 {
            assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(answer.body["status"], 500);
        } else {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            assert_eq!(answer.body["partner_reference"], format!("ref-{i}"));
        }
    }
}

async fn a_nonexistent_job_or_meter_is_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = "01900000-0000-7000-8000-000000000000";
    assert_eq!(
        app.get(&format!("/v1.1/jobs/meters/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/v2/meters/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

/// A key with one scope is let through exactly the operations the OpenAPI document marks
/// with that scope, and refused every other one with a 403 naming the scope it lacks: the
/// document and the server agree, and no partner operation is left without a scope.
async fn each_scope_opens_exactly_the_operations_documented_with_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let document = app.get("/openapi.json").await.body;
    let mut operations = Vec::new();
    for (path, methods) in document["paths"].as_object().unwrap() {
        if !(path.starts_with("/v1.1/") || path.starts_with("/v2/")) {
            continue;
        }
        let concrete = path
            .replace("{job_id}", "01900000-0000-7000-8000-000000000000")
            .replace("{meter_id}", "01900000-0000-7000-8000-000000000000")
            .replace("{program_identifier}", "CEC-DSGS")
            .replace("{webhook_id}", "01900000-0000-7000-8000-000000000000")
            .replace("{webhook_event_id}", "01900000-0000-7000-8000-000000000000");
        for (method, operation) in methods.as_object().unwrap() {
            let scope = operation["x-scope"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no scope"));
            let method: Method = method.to_uppercase().parse().unwrap();
            operations.push((method, concrete.clone(), scope.to_owned()));
        }
    }
    for scope in Scope::ALL {
        let (_, key) = gridroll_server::auth::issue_api_key(
            app.accounts.as_ref(),
            app.partner,
            scope.as_str(),
            [scope].into_iter().collect::<Scopes>(),
            gridroll_domain::timestamp::now_millis(),
        )
        .await
        .unwrap();
        for (method, path, needed) in &operations {
            let answer = app
                .send(method.clone(), path, Some(&key), None, Body::empty())
                .await;
            let opens = needed == scope.as_str();
            assert_eq!(
                answer.status != StatusCode::FORBIDDEN,
                opens,
                "{scope} on {method} {path}: {} {}",
                answer.status,
                answer.body
            );
            if !opens {
                assert_eq!(answer.body["details"]["scope"], needed.as_str());
            }
        }
    }
    let count = |scope: Scope| operations.iter().filter(|o| o.2 == scope.as_str()).count();
    assert_eq!(
        (count(Scope::MetersWrite), count(Scope::EnrollmentsWrite)),
        (8, 11),
        "jobs, single meters, tags (add, remove), references (one, many), archiving (archive, unarchive); participation (one, many), idle periods (add and remove, one and many), disenrollment (one, many), participate (one, many), the market-registration refresh"
    );
    assert_eq!(
        count(Scope::WebhooksManage),
        8,
        "the eight changes of webhooks (create, replace, delete, test, rotate, enable, \
         redeliver, recover)"
    );
}

/// A read-only key (what `--read-only` makes) reads meters, events and webhooks, and a
/// change is refused naming the scope it lacks.
async fn a_read_only_key_may_read_everything_and_change_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = gridroll_server::auth::issue_api_key(
        app.accounts.as_ref(),
        app.partner,
        "reader",
        Scopes::READ_ONLY,
        gridroll_domain::timestamp::now_millis(),
    )
    .await
    .unwrap();
    for path in ["/v1.1/programs", "/v1.1/events", "/v1.1/webhooks"] {
        let answer = app
            .send(Method::GET, path, Some(&key), None, Body::empty())
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    }
    let write = app
        .send(
            Method::POST,
            "/v1.1/meters",
            Some(&key),
            Some("application/json"),
            Body::from("{}"),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert_eq!(write.body["title"], "Forbidden");
    assert_eq!(write.body["details"]["scope"], "meters:write");
}

/// The operator makes a key with chosen scopes, shown once; a bad name, an unknown scope
/// or an unknown partner is refused and makes nothing.
async fn the_operator_makes_a_key_with_the_scopes_it_names(backend: Backend) {
    const TOKEN: &str = "operator-token-for-tests";
    let config = gridroll_server::Config::default().with_operator_token(TOKEN);
    let app = TestApp::with_config(backend, config).await;
    let path = format!("/operator/v1/partners/{}/keys", app.partner);
    let make = |body: serde_json::Value, path: String| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                &path,
                Some(TOKEN),
                Some("application/json"),
                body.to_string(),
            )
            .await
        }
    };
    let keys_before = app.accounts.list_api_keys(app.partner).await.unwrap().len();
    for (body, field) in [
        (
            json!({"name": "sync", "scopes": ["meters:delete"]}),
            "scopes",
        ),
        (json!({"name": "", "scopes": ["meters:read"]}), "name"),
        (json!({"name": "sync", "scopes": []}), "scopes"),
    ] {
        let refused = make(body, path.clone()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(
            refused.body["details"].get(field).is_some(),
            "{}",
            refused.body
        );
    }
    let nobody = make(
        json!({"name": "sync"}),
        "/operator/v1/partners/01900000-0000-7000-8000-000000000000/keys".to_owned(),
    )
    .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    let keys_after = app.accounts.list_api_keys(app.partner).await.unwrap().len();
    assert_eq!(keys_after, keys_before, "nothing refused was made");

    let made = make(json!({"name": "sync", "scopes": ["events:read"]}), path).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.body["scopes"], json!(["events:read"]));
    let key = made.body["api_key"].as_str().unwrap();
    app.send(Method::GET, "/v1.1/events", Some(key), None, Body::empty())
        .await
        .assert_ok();
    let meters = app
        .send(
            Method::GET,
            "/v1.1/programs",
            Some(key),
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(meters.status, StatusCode::FORBIDDEN);
}

gridroll_testkit::backend_tests!(
    the_operator_makes_a_key_with_the_scopes_it_names,
    each_scope_opens_exactly_the_operations_documented_with_it,
    a_read_only_key_may_read_everything_and_change_nothing,
    requests_without_a_valid_key_are_unauthorized,
    the_bearer_scheme_is_case_insensitive,
    keys_are_stored_only_as_hashes,
    another_partners_jobs_and_meters_are_not_found,
    meters_read_at_once_by_two_partners_are_each_found_only_by_their_own,
    a_damaged_meter_fails_only_its_own_read,
    a_nonexistent_job_or_meter_is_not_found,
);
