//! The portal through the real router and database: signing in, sessions, CSRF, lockout,
//! uploads, jobs, meters, keys, invitations, webhooks, and that one partner's user can
//! never reach another partner's objects.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use gridroll_domain::PartnerId;
use gridroll_server::config::WebhookConfig;
use gridroll_server::portal::password;
use gridroll_store::Role;
use gridroll_testkit::Backend;
use serde_json::Value;
use tower::ServiceExt;

use crate::common::portal::{Page, Visitor};
use crate::common::receiver::{Receiver, Reply};
use crate::common::{TestApp, TestClock, asset, csv_file_crlf, csv_row};

const PASSWORD: &str = "a long test passphrase";

async fn add_user(app: &TestApp, partner: PartnerId, email: &str, role: Role) {
    let hash = password::hash(PASSWORD.to_owned()).await.unwrap();
    app.accounts
        .add_user(
            partner,
            email,
            role,
            &hash,
            gridroll_domain::timestamp::now_millis(),
        )
        .await
        .unwrap();
}

/// A visitor signed in as an admin of the app's partner.
async fn admin(app: &TestApp) -> Visitor<'_> {
    add_user(app, app.partner, "admin@example.com", Role::Admin).await;
    let mut visitor = Visitor::new(app);
    let page = visitor.sign_in("admin@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    visitor
}

/// The id in a `/portal/jobs/{id}` location.
fn job_id(page: &Page) -> String {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    page.location
        .as_deref()
        .and_then(|l| l.strip_prefix("/portal/jobs/"))
        .unwrap_or_else(|| panic!("not a job page: {:?}", page.location))
        .to_owned()
}

async fn signing_in_opens_the_dashboard_and_signing_out_ends_the_session(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let dashboard = visitor.get("/portal").await.assert_ok();
    dashboard.assert_contains("Meters by enrollment status");
    dashboard.assert_contains("admin@example.com");

    let csrf = dashboard.csrf();
    let out = visitor
        .post_form("/portal/sign-out", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!visitor.cookies.contains_key("gridroll_session"));
    let again = visitor.get("/portal/jobs?status=FAILED").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(
        again.location.as_deref(),
        Some("/portal/sign-in?next=%2Fportal%2Fjobs%3Fstatus%3DFAILED")
    );
}

async fn a_stolen_cookie_stops_working_once_its_session_is_signed_out(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let stolen = visitor.cookies.clone();
    let csrf = visitor.csrf().await;
    visitor
        .post_form("/portal/sign-out", &[("csrf", &csrf)])
        .await;
    let mut thief = Visitor::new(&app);
    thief.cookies = stolen;
    assert_eq!(thief.get("/portal").await.status, StatusCode::SEE_OTHER);
}

async fn a_wrong_password_or_unknown_email_is_refused_alike(backend: Backend) {
    let app = TestApp::new(backend).await;
    add_user(&app, app.partner, "ops@example.com", Role::Member).await;
    let mut visitor = Visitor::new(&app);
    let wrong = visitor.sign_in("ops@example.com", "not the password").await;
    let unknown = visitor.sign_in("nobody@example.com", PASSWORD).await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        page.assert_contains("The email or the password is not right.");
    }
    assert!(!visitor.cookies.contains_key("gridroll_session"));
    // The email is matched whatever its case.
    let right = visitor.sign_in(" OPS@Example.com ", PASSWORD).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
}

/// The harness behind a reverse proxy, so that visitors can come from addresses.
async fn behind_proxy(backend: Backend) -> TestApp {
    TestApp::with_config(
        backend,
        gridroll_server::Config {
            behind_proxy: true,
            ..gridroll_server::Config::default()
        },
    )
    .await
}

async fn repeated_failed_sign_ins_lock_out_their_source_and_never_the_user(backend: Backend) {
    let app = behind_proxy(backend).await;
    add_user(&app, app.partner, "ops@example.com", Role::Member).await;
    // The user's own browser, signed in once before.
    let mut own = Visitor::from(&app, "198.51.100.1");
    assert_eq!(
        own.sign_in("ops@example.com", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    own.cookies.remove("gridroll_session");

    let mut stranger = Visitor::from(&app, "203.0.113.9");
    for _ in 0..gridroll_server::portal::session::LOCK_AFTER {
        let page = stranger
            .sign_in("ops@example.com", "guess guess guess")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // The stranger is locked out: even the right password is refused, with the answer
    // every refusal gets.
    let locked = stranger.sign_in("ops@example.com", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
    locked.assert_contains("signing in from there is paused for 15 minutes");
    assert!(!stranger.cookies.contains_key("gridroll_session"));

    // The user is not: from the browser they used before, even on the stranger's
    // network, and from a new browser elsewhere.
    own.address = Some("203.0.113.9");
    assert_eq!(
        own.sign_in("ops@example.com", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let mut elsewhere = Visitor::from(&app, "192.0.2.44");
    assert_eq!(
        elsewhere.sign_in("ops@example.com", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // A new browser on the stranger's network shares its lock.
    let mut beside = Visitor::from(&app, "203.0.113.9");
    assert_eq!(
        beside.sign_in("ops@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_lapsed_lock_lets_the_source_in_and_starts_its_count_again(backend: Backend) {
    let app = TestApp::new(backend).await;
    add_user(&app, app.partner, "ops@example.com", Role::Member).await;
    let user = app
        .accounts
        .user_credentials("ops@example.com")
        .await
        .unwrap()[0]
        .user
        .id;
    let (source, other) = (
        gridroll_store::TokenHash([1; 32]),
        gridroll_store::TokenHash([2; 32]),
    );
    let attempt = |source, at: i64| {
        let store = app.accounts.clone();
        async move {
            store
                .sign_in_attempt(user, &source, at, 3, at + 900_000)
                .await
                .unwrap()
        }
    };
    let t0 = 1_000_000;
    for i in 0..3 {
        assert!(attempt(source, t0 + i).await.allowed);
    }
    // The third attempt locked the source until t0 + 2 + lock, and only that source.
    assert!(!attempt(source, t0 + 10).await.allowed);
    let beside = attempt(other, t0 + 10).await;
    assert!(beside.allowed);
    assert_eq!(
        beside.account_failures, 4,
        "the account counts every source"
    );
    let later = t0 + 2 + 900_000;
    for i in 0..3 {
        assert!(
            attempt(source, later + i).await.allowed,
            "attempt {i} after"
        );
    }
    assert!(
        !attempt(source, later + 3).await.allowed,
        "the count started again at the lapse, and locked at the third"
    );
}

async fn forms_without_the_sessions_csrf_token_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let keys_before = app.accounts.list_api_keys(app.partner).await.unwrap().len();

    let missing = visitor
        .post_form("/portal/keys", &[("name", "x"), ("meters:read", "on")])
        .await;
    let forged = visitor
        .post_form(
            "/portal/keys",
            &[("csrf", "forged"), ("name", "x"), ("meters:read", "on")],
        )
        .await;
    for page in [&missing, &forged] {
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
        page.assert_contains("security token");
    }
    assert_eq!(
        app.accounts.list_api_keys(app.partner).await.unwrap().len(),
        keys_before
    );

    // Another session's token is no good either.
    add_user(&app, app.partner, "second@example.com", Role::Admin).await;
    let mut second = Visitor::new(&app);
    second.sign_in("second@example.com", PASSWORD).await;
    let others = second.csrf().await;
    let page = visitor
        .post_form("/portal/sign-out", &[("csrf", &others)])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    let key = app.accounts.list_api_keys(app.partner).await.unwrap()[0].id;
    let revoke = visitor
        .post_form(&format!("/portal/keys/{key}/revoke"), &[("csrf", "forged")])
        .await;
    assert_eq!(revoke.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/v1.1/programs").await.status, StatusCode::OK);
    let invite = visitor
        .post_form(
            "/portal/users",
            &[("email", "x@example.com"), ("role", "member")],
        )
        .await;
    assert_eq!(invite.status, StatusCode::FORBIDDEN);

    let upload = visitor
        .upload(
            &[("csrf", "forged")],
            "m.csv",
            &csv_file_crlf(&[csv_row("csrf-1")]),
        )
        .await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 0);

    // The sign-in form carries its own token, matched against a cookie.
    let mut stranger = Visitor::new(&app);
    let page = stranger
        .post_form(
            "/portal/sign-in",
            &[
                ("csrf", "x"),
                ("email", "admin@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

async fn a_broken_file_lists_its_problems_by_row_and_column_and_stores_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let file = csv_file_crlf(&[
        csv_row("good-1"),
        "bad-2,NOWHERE,RESIDENTIAL,HVAC,DEVICE,1 Main St,94105,San Francisco,CA,US".to_owned(),
        "bad-3,CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main St,9410,San Francisco,CA,US".to_owned(),
    ]);
    let page = visitor
        .upload(&[("csrf", &csrf)], "broken.csv", &file)
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("The file has 2 problems; nothing was stored");
    page.assert_contains("<td class=\"num\">3</td><td><code>transmission_region</code></td>");
    page.assert_contains("<td class=\"num\">4</td><td><code>postal_code</code></td>");
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM job_segments").await, 0);
}

async fn a_good_file_becomes_a_job_whose_failed_rows_download_in_the_upload_layout(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let first = visitor
        .upload(
            &[("csrf", &csrf)],
            "first.csv",
            &csv_file_crlf(&[csv_row("dup-1")]),
        )
        .await;
    job_id(&first);
    app.drain().await;

    let file = csv_file_crlf(&[csv_row("new-1"), csv_row("dup-1"), csv_row("new-2")]);
    let page = visitor
        .upload(&[("csrf", &csrf), ("file_name", "")], "second.csv", &file)
        .await;
    let job = job_id(&page);
    let running = visitor.get(&format!("/portal/jobs/{job}")).await;
    running.assert_contains(r#"<meta http-equiv="refresh" content="2">"#);
    app.drain().await;

    let done = visitor
        .get(&format!("/portal/jobs/{job}"))
        .await
        .assert_ok();
    done.assert_contains("second.csv");
    done.assert_contains("COMPLETED WITH ERRORS");
    done.assert_contains("3</span> of 3 rows processed");
    done.assert_contains("DUPLICATE_REF_ID");
    assert!(!done.text.contains("http-equiv=\"refresh\""));

    let with_errors = visitor
        .get("/portal/jobs?status=COMPLETED_WITH_ERRORS")
        .await;
    with_errors.assert_contains("second.csv");
    assert!(!with_errors.text.contains("first.csv"));
    let searched = visitor.get("/portal/jobs?q=FIRST").await;
    searched.assert_contains("first.csv");
    assert!(!searched.text.contains("second.csv"));
    let failed_rows = visitor
        .get(&format!("/portal/jobs/{job}?status=failed"))
        .await;
    failed_rows.assert_contains("dup-1");
    assert!(!failed_rows.text.contains("new-1"));

    let progress = visitor.get(&format!("/portal/jobs/{job}/progress")).await;
    let progress: Value = serde_json::from_str(&progress.text).unwrap();
    assert_eq!(progress["final"], true);
    assert_eq!(progress["created"], 2);
    assert_eq!(progress["failed"], 1);

    let failed = visitor
        .get(&format!("/portal/jobs/{job}/failed.csv"))
        .await
        .assert_ok();
    assert!(failed.content_type.starts_with("text/csv"));
    let mut lines = failed.text.trim_start_matches('\u{feff}').lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("partner_reference,transmission_region"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].starts_with("dup-1,CAISO"));

    // Fixed (here: renamed), the downloaded file uploads as it is.
    let fixed = failed.text.replace("dup-1,", "dup-1-fixed,");
    let again = visitor
        .upload(&[("csrf", &csrf)], "second-failed-rows.csv", &fixed)
        .await;
    let again = job_id(&again);
    app.drain().await;
    let page = visitor.get(&format!("/portal/jobs/{again}")).await;
    page.assert_contains(
        "1</span> of 1 rows processed: <span data-field=\"created\">1</span> created",
    );
}

async fn update_existing_from_the_form_replaces_meters(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    visitor
        .upload(
            &[("csrf", &csrf)],
            "a.csv",
            &csv_file_crlf(&[csv_row("m-1")]),
        )
        .await;
    app.drain().await;
    let page = visitor
        .upload(
            &[
                ("csrf", &csrf),
                ("update_existing", "true"),
                ("file_name", "again.csv"),
            ],
            "ignored.csv",
            &csv_file_crlf(&[csv_row("m-1")]),
        )
        .await;
    let job = job_id(&page);
    app.drain().await;
    let page = visitor.get(&format!("/portal/jobs/{job}")).await;
    page.assert_contains("again.csv");
    page.assert_contains("<span data-field=\"updated\">1</span> updated");
}

async fn meters_are_found_by_reference_and_status_and_open_with_their_fields(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let file = csv_file_crlf(&[csv_row("north-1"), csv_row("north-2"), csv_row("south-1")]);
    visitor.upload(&[("csrf", &csrf)], "m.csv", &file).await;
    app.drain().await;

    let found = visitor.get("/portal/meters?q=NORTH").await;
    found.assert_contains(">north-1<");
    found.assert_contains(">north-2<");
    assert!(!found.text.contains(">south-1<"));
    let none = visitor.get("/portal/meters?status=ACTIVE").await;
    none.assert_contains("No meters match.");
    // The filter form keeps what was picked, and only that.
    none.assert_contains(r#"<option value="ACTIVE" selected>ACTIVE</option>"#);
    assert!(!none.text.contains(r#"<option value="PENDING" selected>"#));
    let elsewhere = visitor.get("/portal/meters?region=ERCOT").await;
    elsewhere.assert_contains("No meters match.");
    elsewhere.assert_contains(r#"<option value="ERCOT" selected>ERCOT</option>"#);
    let bad = visitor.get("/portal/meters?region=MARS").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Only a meter's own link has a slash after /portal/meters.
    let href = &found.from("/portal/meters/", '"');
    let meter = visitor.get(href).await.assert_ok();
    meter.assert_contains("What this meter needs from you");
    // ELRP takes this meter once its utility account is known: said in column names.
    meter.assert_contains("fill in utility_name, electric_service_account_number");
    meter.assert_contains("<dt>postal_code</dt><dd>94105</dd>");
    meter.assert_contains("Enrollments");
}

async fn the_meter_list_pages_through_every_meter(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let rows: Vec<String> = (0..60).map(|i| csv_row(&format!("page-{i:02}"))).collect();
    visitor
        .upload(&[("csrf", &csrf)], "m.csv", &csv_file_crlf(&rows))
        .await;
    app.drain().await;
    let first = visitor.get("/portal/meters?q=page").await;
    first.assert_contains(">page-00<");
    assert!(!first.text.contains(">page-50<"));
    let href = first.from("/portal/meters?q=page&amp;after=", '"');
    let second = visitor.get(&href.replace("&amp;", "&")).await;
    second.assert_contains(">page-50<");
    second.assert_contains(">page-59<");
    assert!(!second.text.contains(">page-00<"));
    assert!(!second.text.contains("More meters"));
}

async fn the_dashboard_counts_meters_by_status_and_region(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let file = csv_file_crlf(&[
        csv_row("d-1"),
        csv_row("d-2"),
        "d-3,ERCOT,RESIDENTIAL,HVAC,DEVICE,1 Main St,94105,Austin,TX,US".to_owned(),
    ]);
    visitor.upload(&[("csrf", &csrf)], "m.csv", &file).await;
    app.drain().await;
    let page = visitor.get("/portal").await;
    page.assert_contains("<title>CAISO: 2</title>");
    page.assert_contains("<title>ERCOT: 1</title>");
    page.assert_contains("<title>ELIGIBLE: 2</title>");
    page.assert_contains("<title>INELIGIBLE: 1</title>");
    let overview = app.meters.meter_overview(app.partner).await.unwrap();
    assert_eq!(overview.total, 3);
    assert!(overview.action_required > 0);
    page.assert_contains("<div class=\"card\"><p class=\"figure\">3</p><p>meters</p>");
    page.assert_contains(&format!(
        "<a class=\"card action\" href=\"/portal/meters?action=required\"><p class=\"figure\">{}</p>",
        overview.action_required
    ));
    page.assert_contains("m.csv");
    // The CAISO meters could join programs once they say more; the ERCOT one cannot.
    let needing = visitor.get("/portal/meters?action=required").await;
    needing.assert_contains(">d-1<");
    needing.assert_contains(">d-2<");
    assert!(!needing.text.contains(">d-3<"));
}

async fn a_key_without_any_scope_is_refused_and_not_made(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let before = app.accounts.list_api_keys(app.partner).await.unwrap().len();
    let page = visitor
        .post_form(
            "/portal/keys",
            &[
                ("csrf", &csrf),
                ("name", "nothing"),
                ("meters:delete", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("at least one scope");
    let after = app.accounts.list_api_keys(app.partner).await.unwrap().len();
    assert_eq!(after, before);
}

async fn a_key_made_in_the_portal_is_shown_once_and_works_until_revoked(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let page = visitor
        .post_form(
            "/portal/keys",
            &[
                ("csrf", &csrf),
                ("name", "sync job"),
                ("meters:read", "on"),
                ("events:read", "on"),
                ("webhooks:read", "on"),
            ],
        )
        .await
        .assert_ok();
    let key = page.from("grk_", '<');

    let listed = visitor.get("/portal/keys").await;
    assert!(!listed.text.contains(&key), "the key is shown only once");
    listed.assert_contains("sync job");
    listed.assert_contains("Read only");

    app.send(
        Method::GET,
        "/v1.1/programs",
        Some(&key),
        None,
        Body::empty(),
    )
    .await
    .assert_ok();
    let write = app
        .send(
            Method::POST,
            "/v1.1/jobs/meters",
            Some(&key),
            Some("text/csv"),
            csv_file_crlf(&[csv_row("ro-1")]),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.body);
    assert_eq!(write.body["details"]["scope"], "meters:write");

    let keys = app.accounts.list_api_keys(app.partner).await.unwrap();
    let made = keys.iter().find(|k| k.name == "sync job").unwrap();
    assert!(made.last_used_at.is_some(), "its use is noted");
    let revoked = visitor
        .post_form(
            &format!("/portal/keys/{}/revoke", made.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let after = app
        .send(
            Method::GET,
            "/v1.1/programs",
            Some(&key),
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    visitor
        .get("/portal/keys")
        .await
        .assert_contains("Revoked ");
}

async fn another_partners_jobs_meters_and_keys_are_not_found_by_changing_the_id(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut owner = admin(&app).await;
    let csrf = owner.csrf().await;
    let page = owner
        .upload(
            &[("csrf", &csrf)],
            "mine.csv",
            &csv_file_crlf(&[csv_row("secret-1")]),
        )
        .await;
    let job = job_id(&page);
    app.drain().await;
    let meter = app
        .meters
        .search_meters(app.partner, &Default::default(), None, 1)
        .await
        .unwrap()[0]
        .id;
    let key = app.accounts.list_api_keys(app.partner).await.unwrap()[0].id;
    gridroll_server::auth::issue_api_key(
        app.accounts.as_ref(),
        app.partner,
        "owner-billing-key",
        gridroll_domain::scope::Scopes::READ_ONLY,
        gridroll_domain::timestamp::now_millis(),
    )
    .await
    .unwrap();

    let (other, _) = app.other_partner().await;
    add_user(&app, other, "intruder@example.com", Role::Admin).await;
    let mut intruder = Visitor::new(&app);
    intruder.sign_in("intruder@example.com", PASSWORD).await;
    for uri in [
        format!("/portal/jobs/{job}"),
        format!("/portal/jobs/{job}/progress"),
        format!("/portal/jobs/{job}/failed.csv"),
        format!("/portal/meters/{meter}"),
    ] {
        let page = intruder.get(&uri).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!page.text.contains("secret-1"), "{uri}");
    }
    for uri in ["/portal/jobs", "/portal/meters", "/portal/keys", "/portal"] {
        let page = intruder.get(uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        assert!(
            !page.text.contains("secret-1") && !page.text.contains("mine.csv"),
            "{uri}"
        );
    }
    let csrf = intruder.csrf().await;
    let revoke = intruder
        .post_form(&format!("/portal/keys/{key}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(revoke.status, StatusCode::NOT_FOUND);
    let still = app.get("/v1.1/programs").await;
    assert_eq!(still.status, StatusCode::OK, "the owner's key still works");
}

async fn members_cannot_manage_keys_or_users(backend: Backend) {
    let app = TestApp::new(backend).await;
    add_user(&app, app.partner, "member@example.com", Role::Member).await;
    let mut member = Visitor::new(&app);
    member.sign_in("member@example.com", PASSWORD).await;
    let dashboard = member.get("/portal").await;
    assert!(!dashboard.text.contains("href=\"/portal/keys\""));
    assert_eq!(
        member.get("/portal/keys").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        member.get("/portal/users").await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = dashboard.csrf();
    let page = member
        .post_form(
            "/portal/keys",
            &[("csrf", &csrf), ("name", "x"), ("meters:read", "on")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

async fn an_invitation_link_makes_a_signed_in_user_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let page = visitor
        .post_form(
            "/portal/users",
            &[
                ("csrf", &csrf),
                ("email", "New.Person@Example.com"),
                ("role", "member"),
            ],
        )
        .await
        .assert_ok();
    let link = page.from("/portal/invitations/", '<');

    let mut invitee = Visitor::new(&app);
    let form = invitee.get(&link).await.assert_ok();
    form.assert_contains("new.person@example.com");
    let token = form.csrf();
    let short = invitee
        .post_form(
            &link,
            &[
                ("csrf", &token),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    let accepted = invitee
        .post_form(
            &link,
            &[
                ("csrf", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
    assert_eq!(invitee.get("/portal").await.status, StatusCode::OK);
    assert_eq!(
        invitee.get("/portal/keys").await.status,
        StatusCode::FORBIDDEN
    );

    let reused = Visitor::new(&app).get(&link).await;
    assert_eq!(reused.status, StatusCode::NOT_FOUND);
    let mut late = Visitor::new(&app);
    let token = late.get("/portal/sign-in").await.csrf();
    let reposted = late
        .post_form(
            &link,
            &[
                ("csrf", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(reposted.status, StatusCode::NOT_FOUND);
    visitor
        .get("/portal/users")
        .await
        .assert_contains("new.person@example.com");
}

/// An invitation link as an admin makes it.
async fn invitation_link(visitor: &mut Visitor<'_>, email: &str) -> String {
    let csrf = visitor.csrf().await;
    let page = visitor
        .post_form(
            "/portal/users",
            &[("csrf", &csrf), ("email", email), ("role", "member")],
        )
        .await
        .assert_ok();
    page.from("/portal/invitations/", '<')
}

/// Another site that holds an invitation link (its own, say) cannot make a visitor's
/// browser accept it, which would sign the visitor into that site's account.
async fn an_invitation_cannot_be_accepted_from_another_site(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut admin = admin(&app).await;
    let link = invitation_link(&mut admin, "attacker@example.com").await;

    let mut victim = Visitor::new(&app);
    let forged = victim
        .post_form(&link, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross_site = victim
        .send(
            Request::builder()
                .method(Method::POST)
                .uri(&link)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::HOST, "portal.example")
                .header(header::ORIGIN, "https://evil.example"),
            Body::from(format!("password={PASSWORD}&confirm={PASSWORD}")),
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert!(!victim.cookies.contains_key("gridroll_session"));
    // The link still works for the one it was made for.
    let mut invitee = Visitor::new(&app);
    let token = invitee.get(&link).await.csrf();
    let accepted = invitee
        .post_form(
            &link,
            &[
                ("csrf", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
}

/// An admin who invites an address learns nothing of whether it has an account with
/// another partner: the invitation makes a user of the admin's partner either way, and
/// each account signs in with its own password.
async fn inviting_an_address_registered_elsewhere_tells_nothing_and_makes_a_user_here(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let (elsewhere, _) = app.other_partner().await;
    add_user(&app, elsewhere, "someone@example.com", Role::Admin).await;
    let mut admin = admin(&app).await;
    let link = invitation_link(&mut admin, "someone@example.com").await;

    let mut invitee = Visitor::new(&app);
    let token = invitee.get(&link).await.csrf();
    let here = "another long passphrase";
    let accepted = invitee
        .post_form(
            &link,
            &[("csrf", &token), ("password", here), ("confirm", here)],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.text);
    admin
        .get("/portal/users")
        .await
        .assert_contains("someone@example.com");

    let users = app
        .accounts
        .user_credentials("someone@example.com")
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    for (password, partner) in [(here, app.partner), (PASSWORD, elsewhere)] {
        let mut visitor = Visitor::new(&app);
        let page = visitor.sign_in("someone@example.com", password).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let token =
            gridroll_server::portal::session::hash_token(&visitor.cookies["gridroll_session"]);
        let session = app
            .accounts
            .session(&token, gridroll_domain::timestamp::now_millis())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            session.user.partner, partner,
            "the password says which account"
        );
    }
}

async fn a_programs_template_uploads_as_a_meter_ready_for_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = admin(&app).await;
    let programs = visitor.get("/portal/programs").await;
    programs.assert_contains("/portal/programs/CEC-DSGS/template.csv");
    let template = visitor
        .get("/portal/programs/CEC-DSGS/template.csv")
        .await
        .assert_ok();
    assert_eq!(template.text.lines().count(), 2);
    let csrf = visitor.csrf().await;
    let page = visitor
        .upload(&[("csrf", &csrf)], "template.csv", &template.text)
        .await;
    let job = job_id(&page);
    app.drain().await;
    let job = app.job(&job).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    let meter_id = job["assets"][0]["meter_id"].as_str().unwrap().to_owned();
    let enrollments = app.get(&format!("/v2/meters/{meter_id}/enrollments")).await;
    let programs = enrollments.body["program_enrollment"].as_array().unwrap();
    let dsgs = programs
        .iter()
        .find(|p| p["program_identifier"] == "CEC-DSGS")
        .unwrap_or_else(|| panic!("{}", enrollments.body));
    // Complete for the program: waiting only for the operator.
    assert_eq!(dsgs["enrollment_status"], "PENDING", "{dsgs}");
    assert_eq!(
        visitor
            .get("/portal/programs/NOPE/template.csv")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn files_beyond_two_megabytes_upload_and_beyond_the_limit_are_refused(backend: Backend) {
    let config = gridroll_server::Config {
        max_body_bytes: 4 * 1024 * 1024,
        ..Default::default()
    };
    let app = TestApp::with_config(backend, config).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let rows: Vec<String> = (0..30_000)
        .map(|i| csv_row(&format!("bulk-{i:05}")))
        .collect();
    let file = csv_file_crlf(&rows);
    assert!(file.len() > 2 * 1024 * 1024);
    let page = visitor.upload(&[("csrf", &csrf)], "bulk.csv", &file).await;
    job_id(&page);

    let rows: Vec<String> = (0..60_000)
        .map(|i| csv_row(&format!("huge-{i:05}")))
        .collect();
    let page = visitor
        .upload(&[("csrf", &csrf)], "huge.csv", &csv_file_crlf(&rows))
        .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.text);
    page.assert_contains("Files of up to 4 MiB are accepted");
    assert_eq!(
        app.count("SELECT count(*) FROM jobs").await,
        1,
        "nothing of the refused file is kept"
    );
}

async fn unknown_portal_pages_are_an_html_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut visitor = Visitor::new(&app);
    let page = visitor.get("/portal/nowhere").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.content_type.starts_with("text/html"));
    let css = visitor.get("/portal/assets/portal.css").await;
    let sign_in = app
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/portal/sign-in")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let policy = sign_in.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type.starts_with("text/css"));
}

/// A harness whose webhooks may go to a receiver on 127.0.0.1.
async fn webhook_app(backend: Backend, webhooks: WebhookConfig) -> TestApp {
    let config = gridroll_server::Config {
        webhooks: WebhookConfig {
            allow_private: true,
            ..webhooks
        },
        ..gridroll_server::Config::default()
    };
    TestApp::with_config(backend, config).await
}

/// The fields of the portal's subscription form: one receiver, these event types, and
/// these headers in its three header rows (the rest left blank).
fn webhook_fields<'a>(
    csrf: &'a str,
    url: &'a str,
    types: &[&'a str],
    headers: &[(&'a str, &'a str)],
) -> Vec<(String, String)> {
    let mut fields = vec![
        ("csrf".to_owned(), csrf.to_owned()),
        ("receiver_url".to_owned(), url.to_owned()),
    ];
    for event in types {
        fields.push(("event_type".to_owned(), (*event).to_owned()));
    }
    for row in 0..3 {
        let (name, value) = headers.get(row).copied().unwrap_or_default();
        fields.push((format!("header_name_{row}"), name.to_owned()));
        fields.push((format!("header_value_{row}"), value.to_owned()));
    }
    fields
}

fn borrowed(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Posts a portal form with the visitor's cookies, answering the status, the
/// `Cache-Control` header (which `Visitor` does not keep) and the page.
async fn post_for_headers(
    app: &TestApp,
    visitor: &Visitor<'_>,
    uri: &str,
    fields: &[(String, String)],
) -> (StatusCode, Option<String>, String) {
    let cookies = visitor
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::COOKIE, cookies)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let cache = response
        .headers()
        .get(header::CACHE_CONTROL)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, cache, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Subscribes `url` to `meter.created` through the portal's form: answers the new
/// subscription's id and its secret.
async fn portal_subscribe(app: &TestApp, visitor: &mut Visitor<'_>, url: &str) -> (String, String) {
    let csrf = visitor.csrf().await;
    let fields = webhook_fields(
        &csrf,
        url,
        &["meter.created"],
        &[("x-api-key", "receiver-key")],
    );
    let (status, cache, text) = post_for_headers(app, visitor, "/portal/webhooks", &fields).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        cache.as_deref(),
        Some("no-store"),
        "the secret is not cached"
    );
    let page = Page {
        status,
        location: None,
        content_type: String::new(),
        text,
    };
    page.assert_contains("shown only once");
    (
        page.after(r#"<a href="/portal/webhooks/"#, '"'),
        page.from("whsec_", '<'),
    )
}

async fn dispatch(app: &TestApp) -> usize {
    gridroll_server::webhooks::dispatch::Dispatcher::new(&app.state)
        .drain()
        .await
        .unwrap()
}

async fn an_admin_creates_a_webhook_in_the_portal_and_sees_its_secret_once(backend: Backend) {
    let app = webhook_app(backend, WebhookConfig::default()).await;
    let receiver = Receiver::start().await;
    let mut visitor = admin(&app).await;
    let (id, secret) = portal_subscribe(&app, &mut visitor, &receiver.url).await;
    assert!(secret.len() > "whsec_".len(), "{secret}");

    let listed = visitor.get("/portal/webhooks").await.assert_ok();
    assert!(
        !listed.text.contains(&secret),
        "the secret is shown only once"
    );
    listed.assert_contains(&receiver.url);
    listed.assert_contains(&format!(r#"href="/portal/webhooks/{id}""#));
    listed.assert_contains("<code>meter.created</code>");
    listed.assert_contains(">ENABLED<");

    // The subscription delivers, signed with the secret shown, with its header.
    app.import(vec![asset("ref-a")]).await;
    assert_eq!(dispatch(&app).await, 1);
    let got = receiver.received();
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&got[0].body, &got[0].headers)
        .unwrap();
    assert_eq!(got[0].header("x-api-key"), "receiver-key");

    let page = visitor
        .get(&format!("/portal/webhooks/{id}"))
        .await
        .assert_ok();
    assert!(!page.text.contains(&secret));
    page.assert_contains(r#"value="receiver-key""#);
    page.assert_contains(">SUCCEEDED<");
    page.assert_contains("/redeliver");

    // A form without the session's token makes nothing.
    let forged = visitor
        .post_form(
            "/portal/webhooks",
            &borrowed(&webhook_fields(
                "forged",
                &receiver.url,
                &["meter.created"],
                &[],
            )),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let stored = app.state.webhooks.list_webhooks(app.partner).await.unwrap();
    assert_eq!(stored.len(), 1);
}

async fn a_refused_webhook_form_names_each_problem_and_keeps_what_was_typed(backend: Backend) {
    let app = webhook_app(backend, WebhookConfig::default()).await;
    let mut visitor = admin(&app).await;
    let csrf = visitor.csrf().await;
    let fields = webhook_fields(
        &csrf,
        "not a receiver",
        &[],
        &[("", ""), ("bad name", "<b>kept</b>")],
    );
    let page = visitor
        .post_form("/portal/webhooks", &borrowed(&fields))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let alert = page.from(r#"<div class="alert" role="alert">"#, '\u{0}');
    for field in ["receiver_url", "event_types", "headers[0].name"] {
        assert!(
            alert.contains(&format!("<code>{field}</code>: ")),
            "{field}: {alert}"
        );
    }
    // The blank first row is dropped, so the named row comes back as the first.
    page.assert_contains(r#"value="not a receiver""#);
    page.assert_contains(r#"name="header_name_0" value="bad name""#);
    page.assert_contains(r#"value="&lt;b&gt;kept&lt;/b&gt;""#);
    assert!(!page.text.contains("<b>kept"), "what was typed is escaped");

    let fields = webhook_fields(&csrf, "ftp://receiver.example/in", &["job.completed"], &[]);
    let page = visitor
        .post_form("/portal/webhooks", &borrowed(&fields))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("<code>receiver_url</code>: ");
    page.assert_contains(r#"value="job.completed" checked"#);
    assert!(!page.text.contains(r#"value="meter.created" checked"#));
    assert!(
        app.state
            .webhooks
            .list_webhooks(app.partner)
            .await
            .unwrap()
            .is_empty(),
        "nothing is stored"
    );
}

async fn the_webhook_page_tests_rotates_and_redelivers_from_its_log(backend: Backend) {
    let app = webhook_app(backend, WebhookConfig::default()).await;
    let receiver = Receiver::start().await;
    let mut visitor = admin(&app).await;
    let (id, secret) = portal_subscribe(&app, &mut visitor, &receiver.url).await;
    let base = format!("/portal/webhooks/{id}");
    let csrf = visitor.csrf().await;

    let tested = visitor
        .post_form(&format!("{base}/test"), &[("csrf", &csrf)])
        .await
        .assert_ok();
    tested.assert_contains("The test event succeeded");
    tested.assert_contains("answered <strong>200</strong>");
    let sent = receiver.received()[0].json();
    assert_eq!(sent["payload"]["webhook_event_type"], "meter.created");
    assert_eq!(sent["payload"]["partner_reference"], "portal-test");
    receiver.then(&[Reply::Status(500)]);
    let failed = visitor
        .post_form(&format!("{base}/test"), &[("csrf", &csrf)])
        .await;
    failed.assert_contains("The test event failed");
    failed.assert_contains("answered <strong>500</strong>");

    let fields = vec![("csrf".to_owned(), csrf.clone())];
    let (status, cache, text) =
        post_for_headers(&app, &visitor, &format!("{base}/rotate-secret"), &fields).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert!(text.contains("whsec_") && !text.contains(&secret), "{text}");
    assert!(
        text.contains("keeps signing beside it for 24 hours"),
        "{text}"
    );

    app.import(vec![asset("ref-a")]).await;
    assert_eq!(dispatch(&app).await, 1);
    let page = visitor.get(&base).await;
    page.assert_contains(">SUCCEEDED<");
    let event = page.after("/events/", '/');
    let again = visitor
        .post_form(
            &format!("{base}/events/{event}/redeliver"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text);
    let back = again.location.unwrap();
    assert!(back.starts_with(&base), "{back}");
    visitor
        .get(&back)
        .await
        .assert_contains("will be sent again shortly");
    assert_eq!(dispatch(&app).await, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].header("webhook-id"), event);

    for unknown in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_owned()] {
        let page = visitor
            .post_form(
                &format!("{base}/events/{unknown}/redeliver"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{unknown}");
    }
}

async fn a_failing_webhook_is_enabled_again_and_changed_and_deleted_from_its_page(
    backend: Backend,
) {
    let webhooks = WebhookConfig {
        disable_after: std::time::Duration::from_secs(3600),
        ..WebhookConfig::default()
    };
    let clock = TestClock::new();
    let app = webhook_app(backend, webhooks)
        .await
        .with_clock(clock.clone());
    let receiver = Receiver::start().await;
    receiver.always(Reply::Status(500));
    let mut visitor = admin(&app).await;
    let (id, _) = portal_subscribe(&app, &mut visitor, &receiver.url).await;
    let base = format!("/portal/webhooks/{id}");
    app.import(vec![asset("ref-a")]).await;
    dispatch(&app).await;
    let retrying = visitor.get(&base).await;
    retrying.assert_contains(">RETRYING<");
    retrying.assert_contains("failing since");
    retrying.assert_contains(r#"<td class="num">500</td>"#);
    for _ in 0..4 {
        clock.advance(std::time::Duration::from_secs(30 * 60));
        dispatch(&app).await;
    }
    let disabled = visitor.get(&base).await;
    disabled.assert_contains(">DISABLED<");
    disabled.assert_contains(">FAILED<");
    disabled.assert_contains(&format!(r#"action="{base}/enable""#));
    let csrf = disabled.csrf();
    let enabled = visitor
        .post_form(&format!("{base}/enable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER, "{}", enabled.text);
    let page = visitor.get(&enabled.location.unwrap()).await;
    page.assert_contains(">ENABLED<");
    assert!(!page.text.contains(&format!(r#"action="{base}/enable""#)));

    let refused = webhook_fields(&csrf, "nowhere", &["meter.created"], &[]);
    let page = visitor.post_form(&base, &borrowed(&refused)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("<code>receiver_url</code>: ");
    page.assert_contains(r#"value="nowhere""#);
    let change = webhook_fields(
        &csrf,
        &receiver.url,
        &["meter.created", "job.completed"],
        &[("x-other", "2")],
    );
    let saved = visitor.post_form(&base, &borrowed(&change)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let page = visitor.get(&saved.location.unwrap()).await;
    page.assert_contains("Saved.");
    page.assert_contains(r#"value="job.completed" checked"#);
    page.assert_contains(r#"value="x-other""#);
    assert!(
        !page.text.contains("receiver-key"),
        "every setting is replaced"
    );

    let deleted = visitor
        .post_form(&format!("{base}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.location.as_deref(), Some("/portal/webhooks"));
    visitor
        .get("/portal/webhooks")
        .await
        .assert_contains("No subscriptions yet.");
    assert_eq!(visitor.get(&base).await.status, StatusCode::NOT_FOUND);
}

/// A subscription of the harness's partner made through the API: its id.
async fn api_subscription(app: &TestApp) -> String {
    let made = app
        .post_json(
            "/v1.1/webhooks",
            &serde_json::json!({"receiver_url": "http://127.0.0.1:9/private-hook",
                                "event_types": ["meter.created"]}),
        )
        .await
        .assert_ok();
    made.body["webhook_id"].as_str().unwrap().to_owned()
}

const WEBHOOK_ACTIONS: [&str; 5] = ["", "/test", "/rotate-secret", "/enable", "/delete"];

async fn a_member_cannot_reach_the_webhooks_page(backend: Backend) {
    let app = webhook_app(backend, WebhookConfig::default()).await;
    let id = api_subscription(&app).await;
    add_user(&app, app.partner, "member@example.com", Role::Member).await;
    let mut member = Visitor::new(&app);
    member.sign_in("member@example.com", PASSWORD).await;
    let dashboard = member.get("/portal").await;
    assert!(!dashboard.text.contains(r#"href="/portal/webhooks""#));
    for uri in [
        "/portal/webhooks".to_owned(),
        format!("/portal/webhooks/{id}"),
    ] {
        let page = member.get(&uri).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{uri}");
        page.assert_contains("Only an admin of your organisation can do this.");
    }
    let csrf = dashboard.csrf();
    let fields = webhook_fields(
        &csrf,
        "https://receiver.example/in",
        &["meter.created"],
        &[],
    );
    let page = member
        .post_form("/portal/webhooks", &borrowed(&fields))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    for action in WEBHOOK_ACTIONS {
        let uri = format!("/portal/webhooks/{id}{action}");
        let page = member.post_form(&uri, &[("csrf", &csrf)]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{uri}");
    }
    assert_eq!(
        app.get(&format!("/v1.1/webhooks/{id}")).await.status,
        StatusCode::OK
    );
}

async fn another_partners_webhook_is_not_found_in_the_portal(backend: Backend) {
    let app = webhook_app(backend, WebhookConfig::default()).await;
    let id = api_subscription(&app).await;
    let (other, _) = app.other_partner().await;
    add_user(&app, other, "intruder@example.com", Role::Admin).await;
    let mut intruder = Visitor::new(&app);
    intruder.sign_in("intruder@example.com", PASSWORD).await;
    let list = intruder.get("/portal/webhooks").await.assert_ok();
    assert!(!list.text.contains("private-hook"));
    for uri in [
        format!("/portal/webhooks/{id}"),
        "/portal/webhooks/not-an-id".to_owned(),
    ] {
        let page = intruder.get(&uri).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(page.content_type.starts_with("text/html"));
    }
    let csrf = list.csrf();
    for action in WEBHOOK_ACTIONS {
        let uri = format!("/portal/webhooks/{id}{action}");
        let page = intruder.post_form(&uri, &[("csrf", &csrf)]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!page.text.contains("private-hook"), "{uri}");
    }
    let event = uuid::Uuid::now_v7();
    let page = intruder
        .post_form(
            &format!("/portal/webhooks/{id}/events/{event}/redeliver"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/v1.1/webhooks/{id}")).await.status,
        StatusCode::OK,
        "the owner's subscription is untouched"
    );
}

gridroll_testkit::backend_tests!(
    signing_in_opens_the_dashboard_and_signing_out_ends_the_session,
    a_stolen_cookie_stops_working_once_its_session_is_signed_out,
    a_wrong_password_or_unknown_email_is_refused_alike,
    repeated_failed_sign_ins_lock_out_their_source_and_never_the_user,
    an_invitation_cannot_be_accepted_from_another_site,
    inviting_an_address_registered_elsewhere_tells_nothing_and_makes_a_user_here,
    a_lapsed_lock_lets_the_source_in_and_starts_its_count_again,
    forms_without_the_sessions_csrf_token_are_refused,
    a_broken_file_lists_its_problems_by_row_and_column_and_stores_nothing,
    a_good_file_becomes_a_job_whose_failed_rows_download_in_the_upload_layout,
    update_existing_from_the_form_replaces_meters,
    meters_are_found_by_reference_and_status_and_open_with_their_fields,
    the_meter_list_pages_through_every_meter,
    the_dashboard_counts_meters_by_status_and_region,
    a_key_made_in_the_portal_is_shown_once_and_works_until_revoked,
    a_key_without_any_scope_is_refused_and_not_made,
    another_partners_jobs_meters_and_keys_are_not_found_by_changing_the_id,
    members_cannot_manage_keys_or_users,
    an_invitation_link_makes_a_signed_in_user_once,
    a_programs_template_uploads_as_a_meter_ready_for_it,
    files_beyond_two_megabytes_upload_and_beyond_the_limit_are_refused,
    unknown_portal_pages_are_an_html_not_found,
    an_admin_creates_a_webhook_in_the_portal_and_sees_its_secret_once,
    a_refused_webhook_form_names_each_problem_and_keeps_what_was_typed,
    the_webhook_page_tests_rotates_and_redelivers_from_its_log,
    a_failing_webhook_is_enabled_again_and_changed_and_deleted_from_its_page,
    a_member_cannot_reach_the_webhooks_page,
    another_partners_webhook_is_not_found_in_the_portal,
);
