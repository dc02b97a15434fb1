//! The OpenAPI document, read by an independent validator. (Every answer of the other
//! tests is checked against it as well: see `common::conformance`.)

use std::process::Command;

/// Runs `openapi-spec-validator` (Python) on the document. Where it is not installed the
/// test says so and passes, unless `GRIDROLL_REQUIRE_OPENAPI_VALIDATOR=1` (as in CI).
#[test]
fn the_document_is_valid_openapi_3_1_for_an_independent_validator() {
    let required = std::env::var("GRIDROLL_REQUIRE_OPENAPI_VALIDATOR").is_ok_and(|v| v == "1");
    let available = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !available {
        assert!(
            !required,
            "openapi-spec-validator is required (GRIDROLL_REQUIRE_OPENAPI_VALIDATOR=1) but \
             not installed: pip install openapi-spec-validator"
        );
        eprintln!(
            "skipping: openapi-spec-validator is not installed (pip install openapi-spec-validator)"
        );
        return;
    }
    let document = &*gridroll_server::openapi::DOCUMENT;
    assert_eq!(document["openapi"], "3.1.0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the validator refuses the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `/docs` shows every operation and schema of the document, and loads nothing from
/// another site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_page_shows_every_operation_and_schema_from_this_server_alone() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let app = crate::common::TestApp::new(gridroll_testkit::Backend::Sqlite).await;
    let request = axum::http::Request::get("/docs")
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), axum::http::StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(bytes.to_vec()).unwrap();

    let document = &*gridroll_server::openapi::DOCUMENT;
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                page.contains(&format!("id=\"{id}\"")),
                "{id} is not on the page"
            );
        }
    }
    for name in document["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(
            page.contains(&format!("id=\"schema-{name}\"")),
            "{name} is not on the page"
        );
    }
    for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!page.contains(outside), "the page loads {outside}...");
    }
}

/// An operation that answers 409 or 404 for a reason of its own says so: its conflicts
/// beside the Idempotency-Key's, a period to delete that is not there beside a meter.
#[test]
fn an_operations_own_conflicts_and_missing_periods_are_described() {
    let document = &*gridroll_server::openapi::DOCUMENT;
    for (path, method, own) in [
        ("/v1.1/meters/archive", "post", "archived already"),
        (
            "/v1.1/meters/unarchive",
            "post",
            "reference is another meter's",
        ),
        ("/v1.1/meters/partner_meter_ref", "patch", "other meters'"),
        (
            "/v1.1/enrollment/meters/{meter_id}/market_registration_refresh",
            "post",
            "archived",
        ),
    ] {
        let conflict = document["paths"][path][method]["responses"]["409"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(conflict.contains(own), "{method} {path}: {conflict}");
        assert!(
            conflict.contains("Idempotency-Key"),
            "{method} {path}: {conflict}"
        );
    }
    let missing = &document["paths"]["/v1.1/enrollment/meters/{meter_id}/idle_periods"]["delete"]["responses"]
        ["404"]["description"];
    assert!(
        missing.as_str().unwrap_or_default().contains("to the day"),
        "{missing}"
    );
}
