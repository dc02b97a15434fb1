//! The portal acting on a meter through the real router: its page's forms (each coming
//! back to the page), its one-row download uploaded again, and the upload's and the
//! dashboard's details a new user meets.

use axum::http::StatusCode;
use gridroll_server::portal::password;
use gridroll_store::Role;
use gridroll_testkit::Backend;

use crate::common::portal::{Page, Visitor};
use crate::common::{TestApp, asset, asset_of, csv_file, csv_row, meter_ids};

const PASSWORD: &str = "a long test passphrase";

async fn signed_in(app: &TestApp) -> Visitor<'_> {
    let hash = password::hash(PASSWORD.to_owned()).await.unwrap();
    app.accounts
        .add_user(
            app.partner,
            "ops@example.com",
            Role::Member,
            &hash,
            gridroll_domain::timestamp::now_millis(),
        )
        .await
        .unwrap();
    let mut visitor = Visitor::new(app);
    let page = visitor.sign_in("ops@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    visitor
}

async fn one_meter(app: &TestApp, reference: &str) -> String {
    let job = app
        .submit("/v1.1/jobs/meters", vec![asset(reference)])
        .await;
    app.drain().await;
    meter_ids(&app.job(&job).await)[0].clone()
}

/// Posts one of the meter page's forms and answers where it went.
async fn act(visitor: &mut Visitor<'_>, id: &str, action: &str, fields: &[(&str, &str)]) -> Page {
    let csrf = visitor.get(&format!("/portal/meters/{id}")).await.csrf();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    visitor
        .post_form(&format!("/portal/meters/{id}/{action}"), &all)
        .await
}

fn back_to(page: &Page, id: &str, action: &str) {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("/portal/meters/{id}?done={action}").as_str())
    );
}

async fn the_meter_page_tags_idles_renames_and_archives_the_meter(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = one_meter(&app, "portal-1").await;
    let other = one_meter(&app, "portal-2").await;
    let mut visitor = signed_in(&app).await;

    back_to(
        &act(&mut visitor, &id, "tag", &[("tags", "north, fleet A")]).await,
        &id,
        "tag",
    );
    let page = visitor.get(&format!("/portal/meters/{id}?done=tag")).await;
    page.assert_contains("The tags were added.");
    page.assert_contains(r#"<span class="tag">fleet A</span>"#);
    assert_eq!(
        app.meter(&id).await["tags"],
        serde_json::json!(["north", "fleet A"])
    );
    back_to(
        &act(&mut visitor, &id, "untag", &[("tags", "north")]).await,
        &id,
        "untag",
    );
    assert_eq!(app.meter(&id).await["tags"], serde_json::json!(["fleet A"]));

    let idle = [
        ("start_date", "2027-06-01"),
        ("end_date", "2027-06-30"),
        ("reason", "Renovation"),
    ];
    back_to(&act(&mut visitor, &id, "idle", &idle).await, &id, "idle");
    visitor
        .get(&format!("/portal/meters/{id}"))
        .await
        .assert_contains("Idle 2027-06-01 to 2027-06-30 (Renovation)");
    // A refused form shows why on the page and changes nothing.
    let inverted = [("start_date", "2027-07-30"), ("end_date", "2027-07-01")];
    let refused = act(&mut visitor, &id, "idle", &inverted).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    refused.assert_contains(
        "Nothing was changed: The period ends (2027-07-01) before it starts (2027-07-30).",
    );
    let taken = act(
        &mut visitor,
        &id,
        "reference",
        &[("partner_reference", "portal-2")],
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    taken.assert_contains(&format!(
        "Another of your meters ({other}) has the reference portal-2"
    ));
    back_to(
        &act(&mut visitor, &id, "end-idle", &idle[..2]).await,
        &id,
        "end-idle",
    );
    assert!(
        !visitor
            .get(&format!("/portal/meters/{id}"))
            .await
            .text
            .contains("Idle 2027-06-01")
    );

    back_to(
        &act(&mut visitor, &id, "archive", &[]).await,
        &id,
        "archive",
    );
    let archived = visitor
        .get(&format!("/portal/meters/{id}?done=archive"))
        .await;
    archived.assert_contains(r#"<span class="badge archived">ARCHIVED</span>"#);
    archived.assert_contains("Bring the meter back");
    // Its row would make a new meter: the page says so rather than invite the update.
    archived.assert_contains("No upload finds an archived meter");
    assert!(
        !archived
            .text
            .contains("then upload it with “Update existing meters” on")
    );
    assert_eq!(app.meter(&id).await["is_archived"], true);
    let again = act(&mut visitor, &id, "archive", &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    again.assert_contains("The meter is archived already.");

    // A form without the session's token is refused.
    let forged = visitor
        .post_form(
            &format!("/portal/meters/{id}/unarchive"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.meter(&id).await["is_archived"], true);
}

async fn the_one_row_download_uploads_again_as_an_update_of_the_same_meter(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = one_meter(&app, "row-1").await;
    let mut visitor = signed_in(&app).await;
    back_to(
        &act(&mut visitor, &id, "tag", &[("tags", "north")]).await,
        &id,
        "tag",
    );

    let download = visitor
        .get(&format!("/portal/meters/{id}/meter.csv"))
        .await
        .assert_ok();
    assert!(download.content_type.starts_with("text/csv"));
    let mut lines = download.text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("partner_reference,") && header.ends_with(",tags"),
        "{header}"
    );
    assert!(!header.contains("status"), "{header}");
    let row = lines.next().unwrap().replace("San Francisco", "Oakland");
    assert!(lines.next().is_none());

    let csrf = visitor.csrf().await;
    let uploaded = visitor
        .upload(
            &[("csrf", &csrf), ("update_existing", "true")],
            "meter-row-1.csv",
            &format!("{header}\n{row}\n"),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.text);
    app.drain().await;
    let meter = app.meter(&id).await;
    assert_eq!(meter["customer"]["city"], "Oakland");
    assert_eq!(
        meter["tags"],
        serde_json::json!(["north"]),
        "the row carries the tags"
    );
}

async fn the_meter_page_names_in_its_dates_the_idle_period_that_keeps_a_program_out(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let home = asset_of(
        "np-portal",
        "SERC",
        "RESIDENTIAL",
        &["HVAC"],
        serde_json::json!({"utility": {"utility_name": "TVA"}}),
    );
    let job = app.submit("/v1.1/jobs/meters", vec![home]).await;
    app.drain().await;
    let id = meter_ids(&app.job(&job).await)[0].clone();
    let enrollments = app.get(&format!("/v2/meters/{id}/enrollments")).await.body;
    let end = enrollments["program_enrollment"][0]["delivery_period_end_date_time"]
        .as_str()
        .unwrap()[..10]
        .to_owned();
    app.post_json(
        &format!("/v1.1/enrollment/meters/{id}/idle_periods"),
        &serde_json::json!({"idle_periods": [
                {"start_date": "2020-01-01", "end_date": end, "reason": "Renovation"}]}),
    )
    .await
    .assert_ok();

    let mut visitor = signed_in(&app).await;
    let page = visitor.get(&format!("/portal/meters/{id}")).await;
    page.assert_contains(&format!(
        "Idle 2020-01-01 to {end} (Renovation), which keeps it out of "
    ));
    assert!(
        !page.text.contains(".000Z"),
        "dates as the meter's, not instants"
    );
}

async fn a_browsers_file_name_is_kept_with_what_the_rules_allow(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = signed_in(&app).await;
    let csrf = visitor.csrf().await;
    let page = visitor
        .upload(
            &[("csrf", &csrf)],
            "meters (1).csv",
            &csv_file([csv_row("fn-1")]),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    let job = page.location.unwrap();
    visitor.get(&job).await.assert_contains("meters 1.csv");
    visitor
        .get("/portal/upload")
        .await
        .assert_contains("“meters (1).csv” is kept as “meters 1.csv”");

    // A name typed in the form that breaks the rules is refused in a sentence.
    let csrf = visitor.csrf().await;
    let refused = visitor
        .upload(
            &[("csrf", &csrf), ("file_name", "meters (1).csv")],
            "meters.csv",
            &csv_file([csv_row("fn-2")]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    refused.assert_contains("The file name is not valid: file_name “meters (1).csv”: must be");
    assert!(!refused.text.contains(r#"{"error""#), "{}", refused.text);
}

async fn the_status_chart_follows_the_enrollment_order_in_badge_colours(backend: Backend) {
    let app = TestApp::new(backend).await;
    let eligible = asset("chart-eligible");
    let mut ineligible = asset("chart-ineligible");
    ineligible["transmission_region"] = serde_json::json!("WECC_PC");
    ineligible["customer_classification"] = serde_json::json!("COMMERCIAL");
    app.submit("/v1.1/jobs/meters", vec![ineligible, eligible])
        .await;
    app.drain().await;
    let mut visitor = signed_in(&app).await;
    let dashboard = visitor.get("/portal").await;
    let eligible_at = dashboard
        .text
        .find(r#"class="chart-bar eligible""#)
        .unwrap();
    let ineligible_at = dashboard
        .text
        .find(r#"class="chart-bar ineligible""#)
        .unwrap();
    assert!(
        eligible_at < ineligible_at,
        "ELIGIBLE comes before INELIGIBLE"
    );
    dashboard.assert_contains(
        r#"<link rel="icon" type="image/svg+xml" href="/portal/assets/favicon.svg">"#,
    );
    let icon = visitor.get("/portal/assets/favicon.svg").await.assert_ok();
    assert_eq!(icon.content_type, "image/svg+xml");
    assert!(icon.text.starts_with("<svg"));
}

gridroll_testkit::backend_tests!(
    the_meter_page_tags_idles_renames_and_archives_the_meter,
    the_one_row_download_uploads_again_as_an_update_of_the_same_meter,
    a_browsers_file_name_is_kept_with_what_the_rules_allow,
    the_status_chart_follows_the_enrollment_order_in_badge_colours,
    the_meter_page_names_in_its_dates_the_idle_period_that_keeps_a_program_out,
);
