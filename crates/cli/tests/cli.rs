//! The `gridroll` command as an operator uses it, and the server as a real process.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_gridroll");

fn gridroll(db: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("GRIDROLL_LOG", "warn")
        .output()
        .expect("run gridroll")
}

fn create_partner(db: &Path) -> (String, String) {
    let out = gridroll(db, &["partners", "create", "--name", "Acme Energy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    (
        printed["partner_id"].as_str().unwrap().to_owned(),
        printed["api_key"].as_str().unwrap().to_owned(),
    )
}

fn asset(reference: &str) -> Value {
    json!({
        "partner_reference": reference,
        "transmission_region": "NYISO",
        "customer_classification": "COMMERCIAL",
        "load_types": ["HVAC"],
        "meter_type": "UTILITY_METER",
        "customer": {"street_1": "4 Broad St", "postal_code": "10004", "city": "New York",
                     "state_or_province_code": "NY", "country_code": "US"}
    })
}

#[test]
fn partners_create_prints_only_the_partner_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let out = gridroll(&db, &["partners", "create", "--name", "Acme Energy"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    let keys: Vec<&String> = printed.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["api_key", "partner_id"]);
    assert!(printed["api_key"].as_str().unwrap().starts_with("grk_"));
}

#[test]
fn keys_and_imports_refuse_an_unknown_partner() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let stranger = "01900000-0000-7000-8000-000000000000";
    let out = gridroll(&db, &["keys", "create", "--partner", stranger]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no partner"));
    let bad = gridroll(&db, &["keys", "create", "--partner", "acme"]);
    assert!(!bad.status.success());
}

#[test]
fn the_operator_import_stores_meters_that_share_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (partner, _) = create_partner(&db);
    let file = dir.path().join("utility.json");
    std::fs::write(
        &file,
        json!({"assets": [asset("acct-7"), asset("acct-7")]}).to_string(),
    )
    .unwrap();
    let out = gridroll(
        &db,
        &[
            "meters",
            "import",
            "--partner",
            &partner,
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["imported"], 2);

    let invalid = dir.path().join("invalid.json");
    std::fs::write(
        &invalid,
        json!({"assets": [{"partner_reference": "x"}]}).to_string(),
    )
    .unwrap();
    let out = gridroll(
        &db,
        &[
            "meters",
            "import",
            "--partner",
            &partner,
            "--file",
            invalid.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was imported"));
}

/// A `gridroll serve` process on a free port, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &Path, extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", &addr])
            .args(extra)
            .env("DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("GRIDROLL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gridroll serve");
        let base = format!("http://{addr}");
        let started = Instant::now();
        while ureq::get(format!("{base}/healthz")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the server did not start"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the server exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, base }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn get(&self, path: &str, key: &str) -> Value {
        let mut response = ureq::get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {key}"))
            .call()
            .expect("GET");
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_demo_prints_a_key_that_works_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let mut server = Server::start(&db, &["--demo"]);
    let stdout = server.child.stdout.take().unwrap();
    let key = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split("GRIDROLL_KEY=").nth(1).map(str::to_owned))
        .expect("the key is printed");
    let jobs = server.get("/v1.1/jobs/meters", &key);
    assert_eq!(jobs["jobs"], json!([]));
}

#[test]
fn a_server_killed_mid_job_finishes_it_after_a_restart_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (_, key) = create_partner(&db);
    const ROWS: usize = 5000;
    let mut csv = String::from(
        "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,postal_code,city,state_or_province_code,country_code\n",
    );
    for n in 0..ROWS {
        csv.push_str(&format!(
            "kill-{n},NYISO,COMMERCIAL,HVAC,DEVICE,4 Broad St,10004,New York,NY,US\n"
        ));
    }

    let server = Server::start(&db, &["--chunk-size", "10"]);
    let mut response = ureq::post(format!("{}/v1.1/jobs/meters", server.base))
        .header("Authorization", format!("Bearer {key}"))
        .content_type("text/csv")
        .send(&csv)
        .expect("upload");
    let created: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    let job_path = format!("/v1.1/jobs/meters/{}", created["job_id"].as_str().unwrap());

    // Kill the process once the job is under way but not done.
    let started = Instant::now();
    loop {
        let job = server.get(&job_path, &key);
        let done = job["assets_created_count"].as_u64().unwrap();
        if done > 0 {
            assert!(
                done < ROWS as u64,
                "the job finished before the kill; use more rows"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();

    let server = Server::start(&db, &[]);
    let started = Instant::now();
    let job = loop {
        let job = server.get(&job_path, &key);
        if job["status"] != "PROCESSING" {
            break job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(job["status"], "COMPLETED");
    assert_eq!(job["assets_created_count"], ROWS);
    assert_eq!(job["assets_failed_count"], 0);
    let mut meters: Vec<&str> = job["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["meter_id"].as_str().unwrap())
        .collect();
    meters.sort_unstable();
    meters.dedup();
    assert_eq!(meters.len(), ROWS, "one meter per reference");
}
