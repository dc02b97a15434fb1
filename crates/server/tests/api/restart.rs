//! Accepted work survives a stopped server: a restarted server finishes every job without
//! creating a meter twice, and uploads that never completed leave nothing behind.

use gridroll_testkit::{Backend, TestDatabase};

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::{CSV_HEADER, TestApp, asset, csv_row, meter_ids, text_literal, uuid_literal};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use gridroll_domain::MeterData;
use gridroll_domain::compact::CompactAsset;
use gridroll_domain::{JobId, PartnerId};
use gridroll_server::Config;
use gridroll_server::worker::Worker;
use gridroll_store::AssetBatch;
use serde_json::json;
use uuid::Uuid;

/// Small chunks, and leases short enough that a test can outlive a dead worker's. On
/// SQLite a restart releases every lease at once; on PostgreSQL, where other processes
/// may still be working, a dead worker's lease has to lapse.
fn small_chunks() -> Config {
    Config {
        chunk_size: 3,
        lease: Duration::from_millis(300),
        ..Config::default()
    }
}

/// Steps a worker until it has claimed work, waiting out other workers' leases.
async fn step_until_claimed(worker: &mut Worker) {
    let started = Instant::now();
    while !worker.step().await.unwrap() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no job became free"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn a_job_interrupted_by_a_restart_completes_with_one_meter_per_reference(backend: Backend) {
    let app = TestApp::with_config(backend, small_chunks()).await;
    let assets: Vec<_> = (0..10).map(|n| asset(&format!("ref-{n}"))).collect();
    let job_id = app.submit("/v1.1/jobs/meters", assets).await;

    // One worker takes the job and gets through one chunk, then the process stops.
    let mut worker = app.worker("doomed");
    assert!(worker.step().await.unwrap());
    assert!(worker.step().await.unwrap());
    let partway = app.job(&job_id).await;
    assert_eq!(partway["status"], "PROCESSING");
    assert_eq!(partway["assets_created_count"], 6);
    drop(worker);

    let app = app.restart().await;
    let job = app.finish(&job_id).await;
    assert_eq!(job["status"], "COMPLETED");
    assert_eq!(job["assets_created_count"], 10);
    let distinct: HashSet<String> = meter_ids(&job).into_iter().collect();
    assert_eq!(distinct.len(), 10);
    assert_eq!(app.count("SELECT count(*) FROM meters").await, 10);
    assert_eq!(
        app.count("SELECT count(DISTINCT partner_reference) FROM meters")
            .await,
        10
    );
}

async fn a_worker_that_lost_its_lease_cannot_write_to_the_job(backend: Backend) {
    let app = TestApp::with_config(backend, small_chunks()).await;
    let job_id = app
        .submit(
            "/v1.1/jobs/meters",
            (0..9).map(|n| asset(&format!("r-{n}"))).collect(),
        )
        .await;
    let mut first = app.worker("first");
    assert!(first.step().await.unwrap());

    // The first worker's process stops; a new worker takes the job over.
    let app = app.restart().await;
    let mut second = app.worker("second");
    step_until_claimed(&mut second).await;

    let id: JobId = job_id.parse().unwrap();
    let stale = app
        .jobs
        .process_chunk(
            id,
            "first",
            3,
            std::time::Duration::from_secs(30),
            false,
            gridroll_domain::timestamp::now_millis(),
        )
        .await;
    assert!(matches!(stale, Err(gridroll_store::StoreError::LeaseLost)));
    second.drain().await.unwrap();
    let job = app.job(&job_id).await;
    assert_eq!(job["status"], "COMPLETED");
    assert_eq!(app.count("SELECT count(*) FROM meters").await, 9);
}

async fn an_upload_cut_off_by_a_crash_is_removed_at_the_next_start(backend: Backend) {
    let app = TestApp::new(backend).await;
    // What a crash mid-upload leaves: a job being received with some assets stored,
    // whose receiving lease then lapses.
    let id = app.receiving(&["ref-1"]).await;
    assert_eq!(
        app.get(&format!("/v1.1/jobs/meters/{id}")).await.status,
        StatusCode::NOT_FOUND,
        "a job being received is invisible"
    );

    app.db
        .execute("UPDATE jobs SET lease_expires_at = 0 WHERE status = 'RECEIVING'")
        .await;
    let app = app.restart().await;
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM job_segments").await, 0);
    app.drain().await;
    assert_eq!(app.count("SELECT count(*) FROM meters").await, 0);
}

async fn an_accepted_upload_is_durable_before_the_answer(backend: Backend) {
    let app = TestApp::new(backend).await;
    let csv = format!("{CSV_HEADER}\n{}\n{}\n", csv_row("a-1"), csv_row("a-2"));
    let answer = app.post_csv("/v1.1/jobs/meters", csv).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let job_id = answer.body["job_id"].as_str().unwrap().to_owned();

    // Nothing processed it before the stop; the restarted server finds it whole.
    let app = app.restart().await;
    assert_eq!(app.job(&job_id).await["assets_count"], 2);
    app.drain().await;
    assert_eq!(app.job(&job_id).await["status"], "COMPLETED");
}

/// The schema of the release before asset outcomes moved into a table of their own.
fn schema_before_outcomes_moved(backend: Backend) -> String {
    let (files, version) = match backend {
        Backend::Sqlite => (
            [
                include_str!("../../../store/migrations/sqlite/0001_create_meters.sql"),
                include_str!("../../../store/migrations/sqlite/0002_inventory.sql"),
                include_str!("../../../store/migrations/sqlite/0003_programs.sql"),
                include_str!("../../../store/migrations/sqlite/0004_job_progress.sql"),
                include_str!("../../../store/migrations/sqlite/0005_portal.sql"),
            ],
            "PRAGMA user_version = 5;",
        ),
        Backend::Postgres => (
            [
                include_str!("../../../store/migrations/postgres/0001_create_meters.sql"),
                include_str!("../../../store/migrations/postgres/0002_inventory.sql"),
                include_str!("../../../store/migrations/postgres/0003_programs.sql"),
                include_str!("../../../store/migrations/postgres/0004_job_progress.sql"),
                include_str!("../../../store/migrations/postgres/0005_portal.sql"),
            ],
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0);",
        ),
    };
    format!("{}\n{version}", files.join("\n"))
}

async fn outcomes_recorded_before_an_upgrade_are_reported_and_the_job_finishes_after_it(
    backend: Backend,
) {
    let db = TestDatabase::new(backend)
        .await
        .expect("the backend is available");
    db.execute(&schema_before_outcomes_moved(backend)).await;

    // A job of four assets stopped after its first chunk: `ref-a` created a meter, its
    // repeat was a duplicate of that meter, `ref-b` and `ref-c` wait.
    let partner = Uuid::now_v7();
    let job = Uuid::now_v7();
    let meter = Uuid::now_v7();
    let (p, j, m) = (
        uuid_literal(backend, &partner),
        uuid_literal(backend, &job),
        uuid_literal(backend, &meter),
    );
    let slot = match backend {
        Backend::Sqlite => "X''",
        Backend::Postgres => "''::bytea",
    };
    let duplicate = format!(
        "Partner reference ID found on meter ID {meter}. A unique reference ID is required, or upload with update_existing=true to update that meter."
    );
    let mut sql = format!(
        "INSERT INTO partners (id, name, created_at) VALUES ({p}, 'Old Partner', 0);
         INSERT INTO jobs (id, partner_id, status, file_name, update_existing, assets_count,
             created_count, failed_count, transmission_regions, created_at, updated_at,
             next_seq)
         VALUES ({j}, {p}, 'PROCESSING', 'old.csv', false, 4, 1, 1, 'CAISO', 0, 0, 2);"
    );
    let outcomes = [
        (
            "ref-a",
            "'COMPLETED'",
            "'METER_CREATED'".to_owned(),
            text_literal("A new meter was created."),
            m.clone(),
        ),
        (
            "ref-a",
            "'DUPLICATE'",
            "'DUPLICATE_REF_ID'".to_owned(),
            text_literal(&duplicate),
            "NULL".to_owned(),
        ),
        (
            "ref-b",
            "'PROCESSING'",
            "NULL".to_owned(),
            "NULL".to_owned(),
            "NULL".to_owned(),
        ),
        (
            "ref-c",
            "'PROCESSING'",
            "NULL".to_owned(),
            "NULL".to_owned(),
            "NULL".to_owned(),
        ),
    ];
    for (seq, (reference, status, name, description, meter_id)) in outcomes.iter().enumerate() {
        let data = MeterData::parse(asset(reference)).unwrap();
        let row = CompactAsset::of(&data);
        // Meters and job inputs alike stored the data as a JSON object then.
        let object = serde_json::to_string(data.as_map()).unwrap();
        if seq == 0 {
            sql.push_str(&format!(
                "INSERT INTO meters (id, partner_id, partner_reference, reference_slot,
                     created_by, transmission_region, customer_classification, meter_type,
                     load_types, data, created_at, updated_at)
                 VALUES ({m}, {p}, 'ref-a', {slot}, 'PARTNER', {}, {}, {}, {}, {}, 0, 0);",
                text_literal(row.transmission_region.as_ref()),
                text_literal(row.customer_classification.as_ref()),
                text_literal(row.meter_type.as_ref()),
                text_literal(&row.load_types),
                text_literal(&object),
            ));
        }
        sql.push_str(&format!(
            "INSERT INTO provisional_assets (job_id, seq, partner_id, partner_reference,
                 transmission_region, customer_classification, meter_type, load_types,
                 status, status_name, status_description, meter_id, data, created_at,
                 updated_at)
             VALUES ({j}, {seq}, {p}, '{reference}', {}, {}, {}, {}, {status}, {name},
                 {description}, {meter_id}, {}, 0, 0);",
            text_literal(row.transmission_region.as_ref()),
            text_literal(row.customer_classification.as_ref()),
            text_literal(row.meter_type.as_ref()),
            text_literal(&row.load_types),
            text_literal(&object),
        ));
    }
    db.execute(&sql).await;

    let app = TestApp::for_partner(db, PartnerId::from_uuid(partner)).await;
    if backend == Backend::Sqlite {
        // Made with SQLite's default pages, the database keeps them.
        assert_eq!(app.count("PRAGMA page_size").await, 4096);
    }
    let job_id = job.to_string();
    let before = app.job(&job_id).await;
    let statuses = |job: &serde_json::Value| -> Vec<String> {
        job["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        statuses(&before),
        ["COMPLETED", "DUPLICATE", "PROCESSING", "PROCESSING"]
    );
    assert_eq!(before["assets"][0]["meter_id"], meter.to_string());
    assert_eq!(
        before["assets"][1]["status_detail"]["name"],
        "DUPLICATE_REF_ID"
    );
    assert_eq!(
        before["assets"][1]["status_detail"]["description"],
        duplicate
    );
    // The job input was rewritten in its compact form: its fields are still found.
    let found = app
        .get("/v1.1/provisional-assets?search_query=francisco&search_fields=city")
        .await
        .assert_ok();
    assert_eq!(
        found.body["provisional_assets"].as_array().unwrap().len(),
        4
    );
    assert_eq!(
        found.body["provisional_assets"][2]["data"]["customer"]["city"],
        "San Francisco"
    );

    let after = app.finish(&job_id).await;
    assert_eq!(after["status"], "COMPLETED_WITH_ERRORS");
    assert_eq!(after["assets_created_count"], 3);
    assert_eq!(
        statuses(&after),
        ["COMPLETED", "DUPLICATE", "COMPLETED", "COMPLETED"]
    );
    assert_eq!(after["assets"][0]["meter_id"], meter.to_string());
    assert_eq!(app.count("SELECT count(*) FROM meters").await, 3);
    // The outcomes recorded before stay rows of their own; the chunk after the upgrade
    // keeps its two meters in one row, and the job's answer reads both forms.
    assert_eq!(
        app.count("SELECT count(*) FROM asset_outcomes").await,
        2,
        "the created meter and the duplicate of before"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM chunk_outcomes WHERE first_seq = 2 AND kinds = 'CC'")
            .await,
        1
    );

    // The meter written before keeps its data as an object, the new ones are compact;
    // each reads as the data it was given, alone and in a search.
    assert_eq!(
        app.count("SELECT count(*) FROM meters WHERE data LIKE '{%'")
            .await,
        1
    );
    for (at, reference) in [(0, "ref-a"), (2, "ref-b"), (3, "ref-c")] {
        let id = after["assets"][at]["meter_id"].as_str().unwrap();
        let details = app.get(&format!("/v2/meters/{id}")).await.assert_ok();
        for (key, value) in asset(reference).as_object().unwrap() {
            assert_eq!(&details.body[key], value, "{reference} {key}");
        }
    }
    let searched = app.post_json("/v2/meters/search", &json!({})).await;
    let mut references: Vec<_> = searched.body["meters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["customer"]["city"].to_string() + m["partner_reference"].as_str().unwrap())
        .collect();
    references.sort();
    assert_eq!(
        references,
        [
            r#""San Francisco"ref-a"#,
            r#""San Francisco"ref-b"#,
            r#""San Francisco"ref-c"#
        ]
    );

    // Meters are keyed by partner and id since the upgrade: the meter written before it
    // is replaced in place, and the index that paged a partner's meters is gone.
    let mut moved = asset("ref-a");
    moved["transmission_region"] = json!("ERCOT");
    moved["customer"]["city"] = json!("Austin");
    let replaced = app
        .post_json(
            "/v1.1/meters?update_existing=true",
            &json!({"provisional_asset": moved}),
        )
        .await;
    assert_eq!(replaced.body["status_detail"]["name"], "METER_UPDATED");
    assert_eq!(replaced.body["meter_id"], meter.to_string());
    let details = app.get(&format!("/v2/meters/{meter}")).await;
    assert_eq!(details.body["transmission_region"], "ERCOT");
    assert_eq!(details.body["customer"]["city"], "Austin");
    assert_eq!(app.count("SELECT count(*) FROM meters").await, 3);
    let paging_index = match backend {
        Backend::Sqlite => {
            "SELECT count(*) FROM pragma_index_list('meters') WHERE name = 'meters_by_partner'"
        }
        Backend::Postgres => {
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'meters_by_partner'"
        }
    };
    assert_eq!(app.count(paging_index).await, 0);
}

#[tokio::test]
async fn a_new_sqlite_database_is_created_with_16_kib_pages() {
    let app = TestApp::new(Backend::Sqlite).await;
    assert_eq!(app.count("PRAGMA page_size").await, 16384);
}

/// A trigger that refuses the meter of `reference`, as a statement that keeps failing
/// the same way would, on either backend.
async fn refuse_meter(app: &TestApp, reference: &str) {
    let sql = match app.db.backend() {
        Backend::Sqlite => format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON meters WHEN NEW.partner_reference = '{reference}'
             BEGIN SELECT RAISE(ABORT, 'the test refuses {reference}'); END;"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'the test refuses {reference}'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON meters FOR EACH ROW
                 WHEN (NEW.partner_reference = '{reference}') EXECUTE FUNCTION refuse();"
        ),
    };
    app.db.execute(&sql).await;
}

async fn a_job_whose_chunk_keeps_failing_is_tried_later_each_time_and_then_given_up(
    backend: Backend,
) {
    let app = TestApp::with_config(
        backend,
        Config {
            chunk_size: 3,
            ..Config::default()
        },
    )
    .await;
    refuse_meter(&app, "ref-4").await;
    let assets: Vec<_> = (0..9).map(|n| asset(&format!("ref-{n}"))).collect();
    let job_id = app.submit("/v1.1/jobs/meters", assets).await;
    let clock = crate::common::TestClock::new();
    let mut worker = app.worker("unlucky").with_clock(clock.clone());

    assert!(worker.step().await.unwrap(), "the first chunk succeeds");
    let mut failures = 0;
    for delay in [1, 5, 30, 120, 600] {
        assert!(worker.step().await.is_err(), "the second chunk fails");
        failures += 1;
        assert_eq!(app.job(&job_id).await["status"], "PROCESSING");
        // Held back: no worker takes the job until its delay has passed.
        clock.advance(Duration::from_secs(delay - 1));
        assert!(
            !worker.step().await.unwrap(),
            "retried too early after {failures}"
        );
        clock.advance(Duration::from_secs(2));
    }
    assert!(worker.step().await.is_err(), "the sixth failure");
    assert!(!worker.step().await.unwrap(), "nothing is left to do");

    let job = app.job(&job_id).await;
    assert_eq!(job["status"], "COMPLETED_WITH_ERRORS", "{job}");
    assert_eq!(job["assets_created_count"], 3);
    assert_eq!(job["assets_failed_count"], 6);
    for asset in &job["assets"].as_array().unwrap()[3..] {
        assert_eq!(asset["status"], "FAILED", "{asset}");
        assert_eq!(asset["status_detail"]["name"], "PROCESSING_ERROR");
        assert!(
            asset["status_detail"]["description"]
                .as_str()
                .unwrap()
                .contains("failed 6 times in a row"),
            "{asset}"
        );
    }
    // What the database said is kept for the operator, with PostgreSQL's code.
    let kept = match backend {
        Backend::Sqlite => "%the test refuses ref-4%",
        Backend::Postgres => "%P0001: the test refuses ref-4%",
    };
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM jobs WHERE last_error LIKE '{kept}' AND failed_attempts = 6"
        ))
        .await,
        1
    );
}

async fn a_chunk_that_succeeds_starts_the_count_of_failures_again(backend: Backend) {
    let app = TestApp::with_config(
        backend,
        Config {
            chunk_size: 3,
            ..Config::default()
        },
    )
    .await;
    refuse_meter(&app, "ref-4").await;
    let job_id = app
        .submit(
            "/v1.1/jobs/meters",
            (0..6).map(|n| asset(&format!("ref-{n}"))).collect(),
        )
        .await;
    let clock = crate::common::TestClock::new();
    let mut worker = app.worker("patient").with_clock(clock.clone());
    assert!(worker.step().await.unwrap());
    for _ in 0..5 {
        assert!(worker.step().await.is_err());
        clock.advance(Duration::from_secs(601));
    }
    // The cause goes away before the sixth attempt.
    app.db
        .execute(match backend {
            Backend::Sqlite => "DROP TRIGGER refuse",
            Backend::Postgres => "DROP TRIGGER refuse ON meters",
        })
        .await;
    assert!(worker.step().await.unwrap());
    let job = app.job(&job_id).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE failed_attempts = 0")
            .await,
        1
    );
}

async fn an_upload_abandoned_by_a_dead_process_is_swept_while_others_keep_running(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let abandoned = app.receiving(&["ref-1"]).await;
    let live = app.receiving(&[]).await;
    let data = MeterData::parse(asset("ref-2")).unwrap();
    // Ten minutes on, the live upload has just written a batch; the other has not.
    app.db
        .execute(&format!(
            "UPDATE jobs SET lease_expires_at = lease_expires_at - 700000 WHERE id = {}",
            sql_id(backend, abandoned)
        ))
        .await;
    let now = gridroll_domain::timestamp::now_millis();
    assert_eq!(app.jobs.remove_abandoned_uploads(now).await.unwrap(), 1);
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM job_segments").await, 0);
    app.jobs
        .append_assets(
            live,
            AssetBatch::of_meters(0, [&data]),
            gridroll_domain::timestamp::now_millis(),
        )
        .await
        .unwrap();
}

/// A job id as a literal of the backend's SQL.
fn sql_id(backend: Backend, id: JobId) -> String {
    match backend {
        Backend::Sqlite => format!("X'{}'", id.as_uuid().simple()),
        Backend::Postgres => format!("'{}'", id.as_uuid()),
    }
}

/// Users, their sessions and invitations made before emails became unique per partner
/// come through the migration that rebuilds the users table (SQLite rebuilds it with
/// foreign keys off, then checks them): the session still opens, the password still signs
/// in, and another partner may now have a user of the same email.
async fn users_and_sessions_made_before_the_upgrade_still_work_after_it(backend: Backend) {
    let db = TestDatabase::new(backend)
        .await
        .expect("the backend is available");
    db.execute(&schema_before_outcomes_moved(backend)).await;
    let (partner, user) = (Uuid::now_v7(), Uuid::now_v7());
    let (p, u) = (
        uuid_literal(backend, &partner),
        uuid_literal(backend, &user),
    );
    let hash = gridroll_server::portal::password::hash("an old long passphrase".to_owned())
        .await
        .unwrap();
    let session = gridroll_server::portal::session::hash_token("old-session-token");
    let token = match backend {
        Backend::Sqlite => format!("X'{}'", hex(&session.0)),
        Backend::Postgres => format!("'\\x{}'::bytea", hex(&session.0)),
    };
    let far = i64::MAX / 2;
    db.execute(&format!(
        "INSERT INTO partners (id, name, created_at) VALUES ({p}, 'Old Partner', 0);
         INSERT INTO users (id, partner_id, email, role, password_hash, created_at)
             VALUES ({u}, {p}, 'old@example.com', 'admin', {}, 0);
         INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ({token}, {u}, 'csrf', 0, {far});",
        text_literal(&hash)
    ))
    .await;

    let app = TestApp::for_partner(db, PartnerId::from_uuid(partner)).await;
    let now = gridroll_domain::timestamp::now_millis();
    let open = app.accounts.session(&session, now).await.unwrap();
    assert_eq!(
        open.map(|s| s.user.email).as_deref(),
        Some("old@example.com")
    );
    let found = app
        .accounts
        .user_credentials("old@example.com")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        gridroll_server::portal::password::verify(
            "an old long passphrase".to_owned(),
            Some(found[0].password_hash.clone())
        )
        .await
        .unwrap()
    );
    let (other, _) = app.other_partner().await;
    app.accounts
        .add_user(
            other,
            "old@example.com",
            gridroll_store::Role::Member,
            &hash,
            gridroll_domain::timestamp::now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(
        app.accounts
            .user_credentials("old@example.com")
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Keys made when a key was read-write or read-only keep what they could do: the first
/// every scope, the second every read.
async fn keys_made_before_scopes_keep_what_they_could_do(backend: Backend) {
    let db = TestDatabase::new(backend)
        .await
        .expect("the backend is available");
    db.execute(&schema_before_outcomes_moved(backend)).await;
    let partner = Uuid::now_v7();
    let p = uuid_literal(backend, &partner);
    let mut keys = Vec::new();
    for (name, permission) in [("writer", "read_write"), ("reader", "read_only")] {
        let hash = gridroll_server::auth::hash_key(&format!("grk_old-{name}"));
        let literal = match backend {
            Backend::Sqlite => format!("X'{}'", hex(&hash.0)),
            Backend::Postgres => format!("'\\x{}'::bytea", hex(&hash.0)),
        };
        keys.push(format!(
            "INSERT INTO api_keys (id, partner_id, name, key_hash, permission, created_at)
                 VALUES ({}, {p}, '{name}', {literal}, '{permission}', 0);",
            uuid_literal(backend, &Uuid::now_v7())
        ));
    }
    db.execute(&format!(
        "INSERT INTO partners (id, name, created_at) VALUES ({p}, 'Old Partner', 0);\n{}",
        keys.join("\n")
    ))
    .await;

    let app = TestApp::for_partner(db, PartnerId::from_uuid(partner)).await;
    let now = gridroll_domain::timestamp::now_millis();
    for (name, scopes) in [
        ("writer", gridroll_domain::scope::Scopes::ALL),
        ("reader", gridroll_domain::scope::Scopes::READ_ONLY),
    ] {
        let hash = gridroll_server::auth::hash_key(&format!("grk_old-{name}"));
        let grant = app.accounts.use_api_key(&hash, now).await.unwrap();
        assert_eq!(grant.map(|g| g.scopes), Some(scopes), "{name}");
    }
    let refused = app
        .send(
            Method::POST,
            "/v1.1/meters",
            Some("grk_old-reader"),
            Some("application/json"),
            Body::from("{}"),
        )
        .await;
    assert_eq!(refused.body["details"]["scope"], "meters:write");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

gridroll_testkit::backend_tests!(
    a_job_interrupted_by_a_restart_completes_with_one_meter_per_reference,
    a_worker_that_lost_its_lease_cannot_write_to_the_job,
    an_upload_cut_off_by_a_crash_is_removed_at_the_next_start,
    an_accepted_upload_is_durable_before_the_answer,
    outcomes_recorded_before_an_upgrade_are_reported_and_the_job_finishes_after_it,
    a_job_whose_chunk_keeps_failing_is_tried_later_each_time_and_then_given_up,
    a_chunk_that_succeeds_starts_the_count_of_failures_again,
    an_upload_abandoned_by_a_dead_process_is_swept_while_others_keep_running,
    users_and_sessions_made_before_the_upgrade_still_work_after_it,
    keys_made_before_scopes_keep_what_they_could_do,
);
