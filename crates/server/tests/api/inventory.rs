//! The read side: meter search and sync, provisional assets and their CSV export, job
//! filters. Results are checked against an independent computation over seeded data.

use gridroll_testkit::Backend;

use std::collections::{BTreeSet, HashMap};

use crate::common::{CSV_HEADER, TestApp, asset, csv_row};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

const REGIONS: [&str; 8] = [
    "CAISO", "ERCOT", "NYISO", "ISONE", "PJM", "SERC", "WECC_SW", "WECC_PC",
];
const CLASSES: [&str; 2] = ["RESIDENTIAL", "COMMERCIAL"];
const METER_TYPES: [&str; 3] = ["UTILITY_METER", "SUBMETER", "DEVICE"];
const LOAD_TYPES: [&str; 11] = [
    "HVAC",
    "EV_CHARGING",
    "BATTERY_STORAGE",
    "COLD_STORAGE",
    "PUMPING",
    "WATER_HEATING",
    "BUILDING_AUTOMATION",
    "GENERATION",
    "MANUFACTURING",
    "LIGHTING",
    "OTHER",
];
const GROUPS: [Option<&str>; 4] = [None, Some("north"), Some("south"), Some("east")];

/// A small deterministic generator, so every run seeds the same variety.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

fn varied_asset(reference: &str, rng: &mut Seeded) -> Value {
    let mut a = asset(reference);
    a["transmission_region"] = json!(REGIONS[rng.next(REGIONS.len())]);
    a["customer_classification"] = json!(CLASSES[rng.next(CLASSES.len())]);
    a["meter_type"] = json!(METER_TYPES[rng.next(METER_TYPES.len())]);
    let mut loads = BTreeSet::new();
    for _ in 0..=rng.next(3) {
        loads.insert(LOAD_TYPES[rng.next(LOAD_TYPES.len())]);
    }
    a["load_types"] = json!(loads.into_iter().collect::<Vec<_>>());
    if let Some(group) = GROUPS[rng.next(GROUPS.len())] {
        a["customer_group"] = json!(group);
    }
    if rng.next(2) == 0 {
        a["device"] = json!({"device_serial_number": format!("SN-{reference}")});
    }
    a
}

/// Creates meters in jobs of `per_job`, each job processed before the next is sent, so
/// that creation times differ between jobs.
async fn seed(
    app: &TestApp,
    key: &str,
    prefix: &str,
    count: usize,
    per_job: usize,
    rng: &mut Seeded,
) {
    let mut n = 0;
    while n < count {
        let assets: Vec<Value> = (n..(n + per_job).min(count))
            .map(|i| varied_asset(&format!("{prefix}-{i:05}"), rng))
            .collect();
        n += assets.len();
        let answer = app
            .send(
                Method::POST,
                "/v1.1/jobs/meters",
                Some(key),
                Some("application/json"),
                json!({ "assets": assets }).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        app.drain().await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
}

async fn search_page(app: &TestApp, key: &str, body: &Value) -> Value {
    let answer = app
        .send(
            Method::POST,
            "/v2/meters/search",
            Some(key),
            Some("application/json"),
            body.to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{body}: {}", answer.body);
    answer.body
}

/// Every meter a search finds, following next_page_token to the end.
async fn search_all(app: &TestApp, key: &str, filter: &Value, page_size: usize) -> Vec<Value> {
    let mut found = Vec::new();
    let mut body = filter.clone();
    body["page_size"] = json!(page_size);
    loop {
        let page = search_page(app, key, &body).await;
        let meters = page["meters"].as_array().unwrap();
        assert!(meters.len() <= page_size);
        found.extend(meters.iter().cloned());
        match page.get("next_page_token") {
            Some(token) => body["page_token"] = token.clone(),
            None => return found,
        }
    }
}

fn ids(meters: &[Value]) -> Vec<String> {
    meters
        .iter()
        .map(|m| m["meter_id"].as_str().unwrap().to_owned())
        .collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

async fn every_search_filter_matches_an_independent_computation(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut rng = Seeded(0x5eed_1234_abcd_0001);
    seed(&app, &app.key, "a", 1200, 400, &mut rng).await;
    let (_, other_key) = app.other_partner().await;
    seed(&app, &other_key, "b", 300, 300, &mut rng).await;

    let everything = search_all(&app, &app.key, &json!({}), 500).await;
    assert_eq!(
        everything.len(),
        1200,
        "the other partner's meters never appear"
    );
    assert!(
        everything
            .iter()
            .all(|m| m["partner_reference"].as_str().unwrap().starts_with("a-"))
    );
    let sorted = {
        let mut s = ids(&everything);
        s.sort();
        s
    };
    assert_eq!(ids(&everything), sorted, "meters come in creation order");

    let created: Vec<&str> = everything
        .iter()
        .map(|m| m["audit"]["created_at"].as_str().unwrap())
        .collect();
    let mut instants: Vec<&str> = created.clone();
    instants.sort();
    instants.dedup();
    assert!(
        instants.len() >= 3,
        "the seeding jobs have distinct creation times"
    );
    let middle = instants[instants.len() / 2].to_owned();

    let pick = |i: usize| everything[i * 37 % everything.len()].clone();
    let some_ids: Vec<String> = (0..25)
        .map(|i| pick(i)["meter_id"].as_str().unwrap().to_owned())
        .collect();
    let some_refs: Vec<String> = (0..25)
        .map(|i| {
            pick(i + 7)["partner_reference"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();

    // Which meters need something from the partner, as the enrollment view shows them.
    let mut acting: BTreeSet<String> = BTreeSet::new();
    let mut body = json!({"page_size": 500});
    loop {
        let answer = app
            .send(
                Method::POST,
                "/v2/meters/enrollments/search",
                Some(&app.key),
                Some("application/json"),
                body.to_string(),
            )
            .await
            .assert_ok();
        for m in answer.body["meters"].as_array().unwrap() {
            if !m["required_actions"]["partner"]
                .as_array()
                .unwrap()
                .is_empty()
            {
                acting.insert(m["meter_id"].as_str().unwrap().to_owned());
            }
        }
        match answer.body.get("next_page_token") {
            Some(token) => body["page_token"] = token.clone(),
            None => break,
        }
    }
    assert!(
        !acting.is_empty() && acting.len() < everything.len(),
        "the seed has meters with and without actions"
    );
    let statuses: BTreeSet<&str> = everything
        .iter()
        .map(|m| m["global_enrollment_status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.len() >= 2,
        "the seed has meters of several statuses: {statuses:?}"
    );

    type Predicate = Box<dyn Fn(&Value) -> bool>;
    let region_is =
        |r: &'static str| -> Predicate { Box::new(move |m| m["transmission_region"] == r) };
    let cases: Vec<(Value, Predicate)> = vec![
        (json!({"meter_ids": some_ids}), {
            let set: BTreeSet<String> = some_ids.iter().cloned().collect();
            Box::new(move |m| set.contains(m["meter_id"].as_str().unwrap()))
        }),
        (json!({"partner_references": some_refs}), {
            let set: BTreeSet<String> = some_refs.iter().cloned().collect();
            Box::new(move |m| set.contains(m["partner_reference"].as_str().unwrap()))
        }),
        (json!({"transmission_region": "NYISO"}), region_is("NYISO")),
        (
            json!({"customer_classification": "COMMERCIAL"}),
            Box::new(|m| m["customer_classification"] == "COMMERCIAL"),
        ),
        (
            json!({"meter_types": ["SUBMETER", "DEVICE"]}),
            Box::new(|m| m["meter_type"] != "UTILITY_METER"),
        ),
        (
            json!({"load_types": ["HVAC", "LIGHTING"]}),
            Box::new(|m| {
                strings(&m["load_types"])
                    .iter()
                    .any(|l| *l == "HVAC" || *l == "LIGHTING")
            }),
        ),
        (
            json!({"customer_groups": ["north", "east"]}),
            Box::new(|m| m["customer_group"] == "north" || m["customer_group"] == "east"),
        ),
        (json!({"tags": ["anything"]}), Box::new(|_| false)),
        (
            json!({"connection_reference_ids": ["conn-1"]}),
            Box::new(|_| false),
        ),
        (json!({"created_after_date_time": middle}), {
            let middle = middle.clone();
            Box::new(move |m| m["audit"]["created_at"].as_str().unwrap() >= middle.as_str())
        }),
        (json!({"created_before_date_time": middle}), {
            let middle = middle.clone();
            Box::new(move |m| m["audit"]["created_at"].as_str().unwrap() < middle.as_str())
        }),
        (json!({"last_modified_date_time": middle}), {
            let middle = middle.clone();
            Box::new(move |m| m["audit"]["updated_at"].as_str().unwrap() >= middle.as_str())
        }),
        (
            json!({"exclude_archived": true}),
            Box::new(|m| m["is_archived"] == false),
        ),
        (
            json!({"global_enrollment_statuses": ["INELIGIBLE"]}),
            Box::new(|m| m["global_enrollment_status"] == "INELIGIBLE"),
        ),
        (
            json!({"global_enrollment_statuses": ["ELIGIBLE", "PENDING"]}),
            Box::new(|m| {
                m["global_enrollment_status"] == "ELIGIBLE"
                    || m["global_enrollment_status"] == "PENDING"
            }),
        ),
        (
            json!({"global_enrollment_statuses": ["ACTIVE"]}),
            Box::new(|_| false),
        ),
        (json!({"partner_action_required": true}), {
            let acting = acting.clone();
            Box::new(move |m| acting.contains(m["meter_id"].as_str().unwrap()))
        }),
        (
            json!({"partner_action_required": false}),
            Box::new(|_| true),
        ),
        (json!({"action_type": ["NO_MISSING_FIELDS"]}), {
            let acting = acting.clone();
            Box::new(move |m| acting.contains(m["meter_id"].as_str().unwrap()))
        }),
        (
            json!({"action_type": ["IS_AUTHORIZED"]}),
            Box::new(|_| false),
        ),
        (
            json!({"transmission_region": "CAISO", "customer_classification": "RESIDENTIAL", "load_types": ["EV_CHARGING", "HVAC"]}),
            Box::new(|m| {
                m["transmission_region"] == "CAISO"
                    && m["customer_classification"] == "RESIDENTIAL"
                    && strings(&m["load_types"])
                        .iter()
                        .any(|l| *l == "HVAC" || *l == "EV_CHARGING")
            }),
        ),
        (
            json!({"meter_types": ["UTILITY_METER"], "customer_groups": ["south"], "created_after_date_time": middle}),
            {
                let middle = middle.clone();
                Box::new(move |m| {
                    m["meter_type"] == "UTILITY_METER"
                        && m["customer_group"] == "south"
                        && m["audit"]["created_at"].as_str().unwrap() >= middle.as_str()
                })
            },
        ),
    ];
    for (filter, predicate) in cases {
        let expected: Vec<String> = ids(&everything
            .iter()
            .filter(|m| predicate(m))
            .cloned()
            .collect::<Vec<_>>());
        let found = ids(&search_all(&app, &app.key, &filter, 500).await);
        assert_eq!(found, expected, "filter {filter}");
    }
}

async fn paging_sees_every_meter_that_existed_exactly_once_despite_inserts(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut rng = Seeded(77);
    seed(&app, &app.key, "p", 600, 600, &mut rng).await;
    let before: Vec<String> = ids(&search_all(&app, &app.key, &json!({}), 500).await);
    assert_eq!(before.len(), 600);

    let mut inserted = 0;
    for page_size in [1usize, 7, 500] {
        let mut seen: Vec<String> = Vec::new();
        let mut body = json!({"page_size": page_size});
        let mut pages = 0;
        loop {
            let page = search_page(&app, &app.key, &body).await;
            seen.extend(ids(page["meters"].as_array().unwrap()));
            pages += 1;
            // Other uploads land while the partner pages through.
            if pages % 97 == 1 {
                inserted += 1;
                let created = app
                    .post_json(
                        "/v1.1/meters",
                        &json!({"provisional_asset": asset(&format!("late-{inserted}"))}),
                    )
                    .await;
                assert_eq!(created.body["status"], "COMPLETED");
            }
            match page.get("next_page_token") {
                Some(token) => body["page_token"] = token.clone(),
                None => break,
            }
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "page size {page_size}: a meter was repeated"
        );
        for id in &before {
            assert!(
                unique.contains(id),
                "page size {page_size}: meter {id} was missed"
            );
        }
    }
    assert!(inserted >= 3);
}

async fn delta_sync_returns_what_changed_since_an_instant(backend: Backend) {
    let app = TestApp::new(backend).await;
    let first = app
        .submit(
            "/v1.1/jobs/meters",
            (0..20).map(|n| asset(&format!("sync-{n}"))).collect(),
        )
        .await;
    app.drain().await;
    let created = app.job(&first).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let checkpoint =
        gridroll_domain::timestamp::format_millis(gridroll_domain::timestamp::now_millis());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let mut changed = asset("sync-3");
    changed["meter_type"] = json!("SUBMETER");
    app.submit(
        "/v1.1/jobs/meters?update_existing=true",
        vec![changed, asset("sync-new")],
    )
    .await;
    app.drain().await;

    let delta = search_all(
        &app,
        &app.key,
        &json!({"last_modified_date_time": checkpoint}),
        500,
    )
    .await;
    let mut references: Vec<&str> = delta
        .iter()
        .map(|m| m["partner_reference"].as_str().unwrap())
        .collect();
    references.sort();
    assert_eq!(references, ["sync-3", "sync-new"]);
    let updated = delta
        .iter()
        .find(|m| m["partner_reference"] == "sync-3")
        .unwrap();
    assert!(
        updated["audit"]["updated_at"].as_str().unwrap()
            > updated["audit"]["created_at"].as_str().unwrap()
    );
    assert_eq!(updated["meter_id"], created["assets"][3]["meter_id"]);
}

async fn invalid_search_requests_are_refused_naming_the_problem(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token_of_other = {
        let (_, other_key) = app.other_partner().await;
        seed(&app, &other_key, "o", 3, 3, &mut Seeded(5)).await;
        search_page(&app, &other_key, &json!({"page_size": 1})).await["next_page_token"].clone()
    };
    let cases = [
        (json!({"page_size": 0}), "page_size"),
        (json!({"page_size": 501}), "page_size"),
        (json!({"transmission_region": "MARS"}), "unknown variant"),
        (json!({"load_types": ["HVAC", "SOLAR"]}), "unknown variant"),
        (json!({"meter_ids": ["not-a-uuid"]}), "not a UUID"),
        (json!({"last_modified_date_time": "yesterday"}), "RFC 3339"),
        (
            json!({"created_after_date_time": "2024-13-01T00:00:00Z"}),
            "RFC 3339",
        ),
        (json!({"partner_references": []}), "from 1 to 1000"),
        (json!({"colour": "red"}), "unknown field"),
        (json!({"page_token": "garbage"}), "page token"),
        (json!({"page_token": token_of_other}), "page token"),
    ];
    for (body, expected) in cases {
        let answer = app
            .send(
                Method::POST,
                "/v2/meters/search",
                Some(&app.key),
                Some("application/json"),
                body.to_string(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
        assert!(
            answer.body.to_string().contains(expected),
            "{body}: {}",
            answer.body
        );
    }
    let empty = app
        .send(
            Method::POST,
            "/v2/meters/search",
            Some(&app.key),
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(
        empty.status,
        StatusCode::OK,
        "an empty body searches everything"
    );
}

async fn provisional_assets_are_listed_filtered_searched_and_paged(backend: Backend) {
    let app = TestApp::new(backend).await;
    let first = app
        .submit("/v1.1/jobs/meters", vec![asset("pa-1"), asset("pa-2")])
        .await;
    app.drain().await;
    let mut with_serial = asset("pa-3");
    with_serial["device"] = json!({"device_serial_number": "SERIAL-XYZ-9"});
    let second = app
        .submit(
            "/v1.1/jobs/meters",
            vec![asset("pa-1"), with_serial, asset("pa-4")],
        )
        .await;
    app.drain().await;
    let (_, other_key) = app.other_partner().await;
    seed(&app, &other_key, "pa", 3, 3, &mut Seeded(9)).await;

    let all = app.get("/v1.1/provisional-assets").await.assert_ok();
    let listed: Vec<(String, String)> = all.body["provisional_assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["job_id"].as_str().unwrap().to_owned(),
                a["partner_reference"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (second.clone(), "pa-1".to_owned()),
            (second.clone(), "pa-3".to_owned()),
            (second.clone(), "pa-4".to_owned()),
            (first.clone(), "pa-1".to_owned()),
            (first.clone(), "pa-2".to_owned()),
        ],
        "newest job first, in upload order, only this partner's"
    );
    assert_eq!(
        all.body["provisional_assets"][1]["data"]["device"]["device_serial_number"],
        "SERIAL-XYZ-9"
    );

    let duplicates = app
        .get("/v1.1/provisional-assets?filter=status:DUPLICATE")
        .await;
    let found = duplicates.body["provisional_assets"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["status_detail"]["name"], "DUPLICATE_REF_ID");

    let of_first = app
        .get(&format!(
            "/v1.1/provisional-assets?filter=job_id:{first}&filter=status:COMPLETED,DUPLICATE"
        ))
        .await;
    assert_eq!(
        of_first.body["provisional_assets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let searched = app
        .get("/v1.1/provisional-assets?search_query=xyz-9,PA-2&search_fields=device_serial_number,partner_reference")
        .await;
    let references: Vec<&str> = searched.body["provisional_assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["partner_reference"].as_str().unwrap())
        .collect();
    assert_eq!(references, ["pa-3", "pa-2"]);

    let mut paged = Vec::new();
    let mut uri = "/v1.1/provisional-assets?page_size=2".to_owned();
    loop {
        let page = app.get(&uri).await.assert_ok();
        paged.extend(
            page.body["provisional_assets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["partner_reference"].clone()),
        );
        match page.body.get("next_page_token").and_then(Value::as_str) {
            Some(token) => uri = format!("/v1.1/provisional-assets?page_size=2&page_token={token}"),
            None => break,
        }
    }
    assert_eq!(paged, ["pa-1", "pa-3", "pa-4", "pa-1", "pa-2"]);

    let filters = app.get("/v1.1/provisional-assets-filters").await;
    let options: HashMap<&str, Vec<&str>> = filters.body["filter_options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["key"].as_str().unwrap(), strings(&o["values"])))
        .collect();
    assert_eq!(options["status"], ["COMPLETED", "DUPLICATE"]);
    assert_eq!(options["transmission_region"], ["CAISO"]);
}

async fn invalid_list_queries_are_refused_naming_the_problem(backend: Backend) {
    let app = TestApp::new(backend).await;
    for uri in [
        "/v1.1/provisional-assets?filter=status:DONE",
        "/v1.1/provisional-assets?filter=colour:red",
        "/v1.1/provisional-assets?filter=status",
        "/v1.1/provisional-assets?filter=job_id:nope",
        "/v1.1/provisional-assets?page_size=0",
        "/v1.1/provisional-assets?page_size=501",
        "/v1.1/provisional-assets?search_query=x",
        "/v1.1/provisional-assets?search_query=x&search_fields=colour",
        "/v1.1/provisional-assets?page_token=abc",
        "/v1.1/provisional-assets?sort=asc",
        "/v1.1/jobs/meters?filter=status:DONE",
        "/v1.1/jobs/meters?filter=transmission_region:MARS",
        "/v1.1/jobs/meters?search_query=x&search_fields=meter_type",
    ] {
        let answer = app.get(uri).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            answer.body
        );
        assert_eq!(answer.body["status"], 400);
    }
}

async fn jobs_are_filtered_and_searched(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut nyiso = asset("job-ny");
    nyiso["transmission_region"] = json!("NYISO");
    let first = app
        .submit(
            "/v1.1/jobs/meters?file_name=north-east.json",
            vec![nyiso, asset("job-ca")],
        )
        .await;
    app.drain().await;
    let second = app
        .submit(
            "/v1.1/jobs/meters?file_name=west.json",
            vec![asset("job-ca")],
        )
        .await;
    app.drain().await;

    let job_ids = |answer: &crate::common::Answer| -> Vec<String> {
        answer.body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        job_ids(&app.get("/v1.1/jobs/meters?filter=status:FAILED").await),
        vec![second.clone()]
    );
    assert_eq!(
        job_ids(
            &app.get("/v1.1/jobs/meters?filter=transmission_region:NYISO")
                .await
        ),
        vec![first.clone()]
    );
    assert_eq!(
        job_ids(
            &app.get("/v1.1/jobs/meters?filter=file_name:west.json")
                .await
        ),
        vec![second.clone()]
    );
    assert_eq!(
        job_ids(
            &app.get("/v1.1/jobs/meters?search_query=NORTH&search_fields=file_name")
                .await
        ),
        vec![first.clone()]
    );
    assert_eq!(
        job_ids(
            &app.get("/v1.1/jobs/meters?search_query=job-ca&search_fields=partner_reference")
                .await
        ),
        [second.clone(), first.clone()]
    );
    let filters = app.get("/v1.1/jobs/meter-job-filters").await;
    let options: HashMap<&str, Vec<&str>> = filters.body["filter_options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["key"].as_str().unwrap(), strings(&o["values"])))
        .collect();
    assert_eq!(options["status"], ["COMPLETED", "FAILED"]);
    assert_eq!(options["transmission_region"], ["CAISO", "NYISO"]);
}

async fn exported_failed_rows_once_fixed_create_exactly_the_missing_meters(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.submit(
        "/v1.1/jobs/meters",
        vec![asset("taken-1"), asset("taken-2")],
    )
    .await;
    app.drain().await;

    // A spreadsheet with two references that are already taken among good rows.
    let mut csv = format!(
        "{CSV_HEADER},device_serial_number,site.site_devices.0.device_type,site.site_devices.0.installer\n"
    );
    for reference in ["good-1", "taken-1", "good-2", "taken-2"] {
        csv.push_str(&format!(
            "{},SN-{reference},BATTERY,\"Volt, Ampère & Co\"\n",
            csv_row(reference)
        ));
    }
    let answer = app
        .post_csv("/v1.1/jobs/meters?file_name=batch.csv", csv)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let job_id = answer.body["job_id"].as_str().unwrap().to_owned();
    app.drain().await;
    assert_eq!(app.job(&job_id).await["status"], "COMPLETED_WITH_ERRORS");
    let meters_before = app.count("SELECT count(*) FROM meters").await;

    let request = axum::http::Request::builder()
        .uri(format!(
            "/v1.1/provisional-assets?filter=job_id:{job_id}&filter=status:DUPLICATE"
        ))
        .header("authorization", format!("Bearer {}", app.key))
        .header("accept", "text/csv")
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let exported = String::from_utf8(bytes.to_vec()).unwrap();
    let rows: Vec<&str> = exported.trim_end().split("\r\n").collect();
    assert_eq!(
        rows.len(),
        3,
        "a header and the two failed rows:\n{exported}"
    );
    assert!(rows[1].contains("taken-1") && rows[1].contains("DUPLICATE"));
    assert!(rows[2].contains("taken-2"));

    // The fix: new references; everything else, status columns included, goes back as is.
    let fixed = exported
        .replace("\r\ntaken-1,", "\r\nfixed-1,")
        .replace("\r\ntaken-2,", "\r\nfixed-2,");
    let again = app
        .post_csv("/v1.1/jobs/meters?file_name=batch-fixed.csv", fixed)
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    app.drain().await;
    let job = app.job(again.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "COMPLETED");
    assert_eq!(job["assets_created_count"], 2);
    assert_eq!(
        app.count("SELECT count(*) FROM meters").await,
        meters_before + 2
    );

    let meter = app
        .meter(job["assets"][0]["meter_id"].as_str().unwrap())
        .await;
    assert_eq!(meter["partner_reference"], "fixed-1");
    assert_eq!(meter["device"]["device_serial_number"], "SN-taken-1");
    assert_eq!(
        meter["site"]["site_devices"][0]["installer"],
        "Volt, Ampère & Co"
    );
    assert_eq!(meter["customer"]["city"], "San Francisco");
}

/// The partner references of the provisional assets whose `field` holds `value`.
async fn searched(app: &TestApp, field: &str, value: &str) -> Vec<String> {
    let uri = format!(
        "/v1.1/provisional-assets?search_query={}&search_fields={field}",
        value.replace(' ', "%20")
    );
    let answer = app.get(&uri).await;
    assert_eq!(answer.status, StatusCode::OK, "{field}: {}", answer.body);
    answer.body["provisional_assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["partner_reference"].as_str().unwrap().to_owned())
        .collect()
}

/// Each field the search looks in is read where the job keeps it: an asset whose every
/// searchable field holds a value of its own is found by each value in its own field,
/// and by none of them in another.
async fn each_provisional_asset_search_field_finds_its_own_value(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut full = asset("ref-everything");
    full["customer"] = json!({
        "street_1": "11 Street One", "postal_code": "22222", "city": "Cityville",
        "state_or_province_code": "CA", "country_code": "US",
        "end_customer_name": "Nora Name"
    });
    full["device"] = json!({"device_serial_number": "DSN-33"});
    full["utility"] = json!({
        "utility_name": "PGE", "utility_meter_serial_number": "UMS-44",
        "electric_service_account_number": "ESA-55"
    });
    full["customer_group"] = json!("group-66");
    app.submit("/v1.1/jobs/meters", vec![full, asset("ref-plain")])
        .await;
    app.drain().await;

    let values = [
        ("partner_reference", "ref-everything"),
        ("device_serial_number", "DSN-33"),
        ("utility_meter_serial_number", "UMS-44"),
        ("electric_service_account_number", "ESA-55"),
        ("street_1", "11 Street One"),
        ("city", "Cityville"),
        ("postal_code", "22222"),
        ("end_customer_name", "Nora Name"),
        ("customer_group", "group-66"),
    ];
    for (field, value) in values {
        assert_eq!(
            searched(&app, field, value).await,
            ["ref-everything"],
            "{field}"
        );
        for (other, _) in values.iter().filter(|(other, _)| *other != field) {
            assert!(
                searched(&app, other, value).await.is_empty(),
                "{value} is found in {other}"
            );
        }
    }
}

/// `Accept` is weighed by its q-values: CSV only when it is preferred to JSON.
async fn provisional_assets_are_csv_only_when_accept_prefers_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.submit("/v1.1/jobs/meters", vec![asset("q-1")]).await;
    app.drain().await;
    for (accept, csv) in [
        ("text/csv", true),
        ("application/json;q=0.5, text/csv", true),
        ("text/csv;q=0", false),
        ("text/csv;q=0.4, application/json;q=0.8", false),
        ("*/*", false),
    ] {
        let request = axum::http::Request::get("/v1.1/provisional-assets")
            .header("authorization", format!("Bearer {}", app.key))
            .header("accept", accept)
            .body(Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(app.router.clone(), request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let is_csv = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv");
        assert_eq!(is_csv, csv, "{accept}");
    }
}

/// A search answers each meter's details as its own read does, whatever the meter holds:
/// tags or none, archived or not, a device or none, a group or none.
async fn a_search_answers_each_meter_as_its_own_read_does(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut rng = Seeded(0x5eed_1234_abcd_0002);
    seed(&app, &app.key, "d", 40, 40, &mut rng).await;
    let everything = search_all(&app, &app.key, &json!({}), 500).await;
    let ids = ids(&everything);
    app.send_json(
        Method::POST,
        "/v1.1/meters/tags",
        &json!({"meter_ids": &ids[..5], "tags": ["north fleet", "Zoë’s \"#2\""]}),
    )
    .await
    .assert_ok();
    app.archive(json!(&ids[3..7])).await.assert_ok();

    let found = search_all(&app, &app.key, &json!({}), 7).await;
    assert_eq!(found.len(), 40);
    for meter in &found {
        let id = meter["meter_id"].as_str().unwrap();
        let read = app.get(&format!("/v2/meters/{id}")).await.assert_ok();
        assert_eq!(
            meter, &read.body,
            "the search's entry for {id} and its read differ"
        );
    }
    let tags = |m: &Value| m["tags"].as_array().unwrap().len();
    assert_eq!(found.iter().filter(|m| tags(m) == 2).count(), 5);
    assert_eq!(found.iter().filter(|m| m["is_archived"] == true).count(), 4);
    assert!(found.iter().all(|m| m["audit"]["created_at"].is_string()));
}

gridroll_testkit::backend_tests!(
    a_search_answers_each_meter_as_its_own_read_does,
    provisional_assets_are_csv_only_when_accept_prefers_it,
    every_search_filter_matches_an_independent_computation,
    paging_sees_every_meter_that_existed_exactly_once_despite_inserts,
    delta_sync_returns_what_changed_since_an_instant,
    invalid_search_requests_are_refused_naming_the_problem,
    provisional_assets_are_listed_filtered_searched_and_paged,
    invalid_list_queries_are_refused_naming_the_problem,
    jobs_are_filtered_and_searched,
    exported_failed_rows_once_fixed_create_exactly_the_missing_meters,
    each_provisional_asset_search_field_finds_its_own_value,
);
