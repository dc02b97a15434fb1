//! The `gridroll` command as an operator uses it, and the server as real processes: killed
//! mid-job, restarted, and (on PostgreSQL) several at once on one database.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridroll_testkit::{Backend, TestDatabase};
use serde_json::{Value, json};

// The partner's client and the operator's account commands, in files of their own.
#[path = "cli/client.rs"]
mod client;
#[path = "cli/operator.rs"]
mod operator;
#[path = "cli/readme.rs"]
mod readme;
#[path = "cli/remote.rs"]
mod remote;

const BIN: &str = env!("CARGO_BIN_EXE_gridroll");

const CSV_HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,postal_code,city,state_or_province_code,country_code";

fn gridroll(db: &TestDatabase, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", db.url())
        .env("GRIDROLL_LOG", "warn")
        .output()
        .expect("run gridroll")
}

fn create_partner(db: &TestDatabase) -> (String, String) {
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

fn csv(references: impl IntoIterator<Item = String>) -> String {
    let mut csv = format!("{CSV_HEADER}\n");
    for reference in references {
        csv.push_str(&format!(
            "{reference},NYISO,COMMERCIAL,HVAC,DEVICE,4 Broad St,10004,New York,NY,US\n"
        ));
    }
    csv
}

/// A `gridroll serve` process on a free port, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &TestDatabase, extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", &addr])
            .args(extra)
            .env("DATABASE_URL", db.url())
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

    /// The API key a server started with `--demo` printed.
    fn demo_key(&mut self) -> String {
        let stdout = self.child.stdout.take().expect("the server's output");
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.split("GRIDROLL_KEY=").nth(1).map(str::to_owned))
            .expect("the key is printed")
    }

    /// SIGKILL: the process gets no chance to release anything.
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

    /// Uploads a CSV and returns the job's path.
    fn upload(&self, key: &str, body: &str) -> String {
        let mut response = ureq::post(format!("{}/v1.1/jobs/meters", self.base))
            .header("Authorization", format!("Bearer {key}"))
            .content_type("text/csv")
            .send(body)
            .expect("upload");
        let created: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        format!("/v1.1/jobs/meters/{}", created["job_id"].as_str().unwrap())
    }

    /// Polls a job until it is final.
    fn finished(&self, job_path: &str, key: &str) -> Value {
        let started = Instant::now();
        loop {
            let job = self.get(job_path, key);
            if job["status"] != "PROCESSING" {
                return job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "the job never finished: {job}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls a job until some but not all of its assets are done.
    fn wait_until_under_way(&self, job_path: &str, key: &str, total: u64) {
        let started = Instant::now();
        loop {
            let job = self.get(job_path, key);
            let done = job["assets_created_count"].as_u64().unwrap();
            if done > 0 {
                assert!(
                    done < total,
                    "the job finished too soon for the test; use more rows"
                );
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the job never started"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_one_meter_per_reference(job: &Value, rows: usize) {
    assert_eq!(job["status"], "COMPLETED", "{job}");
    assert_eq!(job["assets_created_count"], rows);
    assert_eq!(job["assets_failed_count"], 0);
    let mut meters: Vec<&str> = job["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["meter_id"].as_str().unwrap())
        .collect();
    meters.sort_unstable();
    meters.dedup();
    assert_eq!(meters.len(), rows, "one meter per reference");
}

async fn partners_create_prints_only_the_partner_and_its_key(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let out = gridroll(&db, &["partners", "create", "--name", "Acme Energy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    let keys: Vec<&String> = printed.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["api_key", "partner_id"]);
    assert!(printed["api_key"].as_str().unwrap().starts_with("grk_"));
}

async fn keys_and_imports_refuse_an_unknown_partner(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let stranger = "01900000-0000-7000-8000-000000000000";
    let out = gridroll(&db, &["keys", "create", "--partner", stranger]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no partner"));
    let bad = gridroll(&db, &["keys", "create", "--partner", "acme"]);
    assert!(!bad.status.success());
}

/// A key made with chosen scopes prints them; an unknown scope or a rate limit of zero is
/// one clear line naming it, and nothing is made.
async fn keys_take_scopes_and_bad_settings_are_named(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    let args = ["keys", "create", "--partner", &partner, "--scope"];
    let made = gridroll(&db, &[&args[..], &["meters:read,events:read"]].concat());
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let printed: Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(
        printed["scopes"],
        serde_json::json!(["meters:read", "events:read"])
    );

    let unknown = gridroll(&db, &[&args[..], &["meters:delete"]].concat());
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("meters:delete"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let zero = gridroll(&db, &["serve", "--rate-limit", "0"]);
    assert!(!zero.status.success());
    let stderr = String::from_utf8_lossy(&zero.stderr);
    assert!(stderr.contains("--rate-limit"), "{stderr}");
}

async fn the_operator_import_stores_meters_that_share_a_reference(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    let dir = tempfile::tempdir().unwrap();
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
    assert_eq!(
        db.count("SELECT count(*) FROM meters WHERE partner_reference = 'acct-7'")
            .await,
        2
    );

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
    assert_eq!(db.count("SELECT count(*) FROM meters").await, 2);
}

async fn operators_manage_programs_and_activate_enrollments_from_the_command_line(
    backend: Backend,
) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    let empty = gridroll(&db, &["programs", "list"]);
    assert!(
        empty.stdout.is_empty(),
        "the catalog is filled by serve or migrate"
    );
    let migrated = gridroll(&db, &["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let listed = gridroll(&db, &["programs", "list"]);
    assert!(listed.status.success());
    let programs: Vec<Value> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        programs
            .iter()
            .any(|p| p["program_identifier"] == "CONED-CSRP")
    );

    let enabled = gridroll(
        &db,
        &[
            "programs",
            "enable",
            "--partner",
            &partner,
            "--programs",
            "CONED-CSRP,CONED-DLRP",
        ],
    );
    assert!(
        enabled.status.success(),
        "{}",
        String::from_utf8_lossy(&enabled.stderr)
    );
    let printed: Value = serde_json::from_slice(&enabled.stdout).unwrap();
    assert_eq!(printed["programs"], json!(["CONED-CSRP", "CONED-DLRP"]));
    let unknown = gridroll(
        &db,
        &[
            "programs",
            "enable",
            "--partner",
            &partner,
            "--programs",
            "NOPE",
        ],
    );
    assert!(!unknown.status.success());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meters.json");
    let mut office = asset("office-9");
    office["utility"] =
        json!({"utility_name": "CECONY", "electric_service_account_number": "CE-9"});
    office["nyiso"] = json!({"cbl_method": "AVERAGE_DAY"});
    std::fs::write(&file, json!({"assets": [office]}).to_string()).unwrap();
    let imported = gridroll(
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
    assert!(imported.status.success());

    let activated = gridroll(
        &db,
        &[
            "enrollments",
            "activate",
            "--partner",
            &partner,
            "--program",
            "CONED-DLRP",
        ],
    );
    assert!(
        activated.status.success(),
        "{}",
        String::from_utf8_lossy(&activated.stderr)
    );
    let printed: Value = serde_json::from_slice(&activated.stdout).unwrap();
    assert_eq!(printed["activated"], 1);
    assert_eq!(
        db.count("SELECT count(*) FROM meters WHERE global_enrollment_status = 'ACTIVE'")
            .await,
        1
    );
}

async fn serve_demo_prints_a_key_and_a_portal_password_that_work_at_once(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let mut server = Server::start(&db, &["--demo"]);
    let stdout = server.child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let key = lines
        .by_ref()
        .find_map(|line| line.split("GRIDROLL_KEY=").nth(1).map(str::to_owned))
        .expect("the key is printed");
    let password = lines
        .skip_while(|line| !line.contains("sign in as demo@example.com"))
        .map(|line| line.trim().to_owned())
        .find(|line| !line.is_empty() && !line.contains("sign in as"))
        .expect("the portal password is printed");
    let jobs = server.get("/v1.1/jobs/meters", &key);
    assert_eq!(jobs["jobs"], json!([]));
    assert_eq!(sign_in(&server.base, "demo@example.com", &password), 303);
    assert_eq!(
        sign_in(&server.base, "demo@example.com", "wrong password!"),
        401
    );
}

/// Signs in to the portal as a browser would; the status of the answer.
fn sign_in(base: &str, email: &str, password: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let mut form = agent
        .get(format!("{base}/portal/sign-in"))
        .call()
        .expect("the sign-in page");
    let cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a sign-in cookie")
        .to_owned();
    let page = form.body_mut().read_to_string().unwrap();
    let at = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = &page[at..at + page[at..].find('"').unwrap()];
    agent
        .post(format!("{base}/portal/sign-in"))
        .header("Cookie", &cookie)
        .send_form([("csrf", csrf), ("email", email), ("password", password)])
        .expect("the sign-in answer")
        .status()
        .as_u16()
}

/// Runs `gridroll` with `input` on standard input.
fn gridroll_with_input(db: &TestDatabase, args: &[&str], input: &str) -> std::process::Output {
    with_input(
        Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", db.url())
            .env("GRIDROLL_LOG", "warn"),
        input,
    )
}

/// Runs a command with `input` on standard input.
fn with_input(command: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gridroll");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn users_create_takes_the_password_from_stdin_and_the_user_can_sign_in(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    let create = [
        "users",
        "create",
        "--partner",
        &partner,
        "--email",
        "Ops@Acme.example",
    ];
    let out = gridroll_with_input(&db, &create, "a long enough passphrase\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["email"], "ops@acme.example");
    assert_eq!(printed["role"], "admin");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("passphrase"));

    let again = gridroll_with_input(&db, &create, "another long passphrase\n");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already"));
    let short = [
        "users",
        "create",
        "--partner",
        &partner,
        "--email",
        "b@acme.example",
    ];
    let out = gridroll_with_input(&db, &short, "short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));

    let server = Server::start(&db, &[]);
    assert_eq!(
        sign_in(&server.base, "ops@acme.example", "a long enough passphrase"),
        303
    );
    let reset = ["users", "set-password", "--email", "ops@acme.example"];
    let out = gridroll_with_input(&db, &reset, "a brand new passphrase\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sign_in(&server.base, "ops@acme.example", "a long enough passphrase"),
        401
    );
    assert_eq!(
        sign_in(&server.base, "ops@acme.example", "a brand new passphrase"),
        303
    );
    let unknown = ["users", "set-password", "--email", "nobody@acme.example"];
    assert!(
        !gridroll_with_input(&db, &unknown, "a brand new passphrase\n")
            .status
            .success()
    );
}

async fn a_server_killed_mid_job_finishes_it_after_a_restart_without_duplicates(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (_, key) = create_partner(&db);
    const ROWS: usize = 5000;
    let body = csv((0..ROWS).map(|n| format!("kill-{n}")));
    let flags = ["--chunk-size", "10", "--lease-seconds", "1"];

    let server = Server::start(&db, &flags);
    let job_path = server.upload(&key, &body);
    server.wait_until_under_way(&job_path, &key, ROWS as u64);
    server.kill();

    let server = Server::start(&db, &flags);
    let job = server.finished(&job_path, &key);
    assert_one_meter_per_reference(&job, ROWS);
    assert_eq!(db.count("SELECT count(*) FROM meters").await, ROWS as i64);
    assert_each_meters_event_once(&db, ROWS).await;
}

/// The feed holds one `meter.created` per meter and the job's end, numbered without a
/// gap: a chunk cut off by a kill left no event, and its redo wrote each once. (A row of
/// `events` holds a run of `span` of them.)
async fn assert_each_meters_event_once(db: &TestDatabase, rows: usize) {
    let count = |sql: &'static str| db.count(sql);
    assert_eq!(
        count("SELECT CAST(sum(span) AS BIGINT) FROM events WHERE event_type = 'meter.created'")
            .await,
        rows as i64
    );
    assert_eq!(
        count("SELECT CAST(sum(span) AS BIGINT) FROM events WHERE event_type = 'job.completed'")
            .await,
        1
    );
    assert_eq!(
        count("SELECT CAST(sum(span) AS BIGINT) FROM events").await,
        rows as i64 + 1
    );
    assert_eq!(count("SELECT max(seq) FROM events").await, rows as i64 + 1);
}

gridroll_testkit::backend_tests!(
    operators_manage_programs_and_activate_enrollments_from_the_command_line,
    partners_create_prints_only_the_partner_and_its_key,
    keys_and_imports_refuse_an_unknown_partner,
    keys_take_scopes_and_bad_settings_are_named,
    the_operator_import_stores_meters_that_share_a_reference,
    serve_demo_prints_a_key_and_a_portal_password_that_work_at_once,
    users_create_takes_the_password_from_stdin_and_the_user_can_sign_in,
    a_server_killed_mid_job_finishes_it_after_a_restart_without_duplicates,
);

/// Two processes on one PostgreSQL database: the one that took a job is killed part-way,
/// and the other finishes the job once the dead one's lease lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_process_is_finished_by_another_process() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let (_, key) = create_partner(&db);
    const ROWS: usize = 8000;
    let flags = ["--chunk-size", "20", "--lease-seconds", "1"];

    let first = Server::start(&db, &flags);
    let job_path = first.upload(&key, &csv((0..ROWS).map(|n| format!("multi-{n}"))));
    first.wait_until_under_way(&job_path, &key, ROWS as u64);
    let second = Server::start(&db, &flags);
    first.kill();

    let job = second.finished(&job_path, &key);
    assert_one_meter_per_reference(&job, ROWS);
    assert_eq!(db.count("SELECT count(*) FROM meters").await, ROWS as i64);
    assert_eq!(
        db.count("SELECT count(DISTINCT partner_reference) FROM meters")
            .await,
        ROWS as i64
    );
    assert_each_meters_event_once(&db, ROWS).await;
}

/// Concurrent jobs through two processes create overlapping references: each reference
/// ends with exactly one meter, and every other asset that carries it is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_through_two_processes_create_each_reference_once() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let (_, key) = create_partner(&db);
    let flags = ["--chunk-size", "25", "--workers", "3"];
    let servers = [Server::start(&db, &flags), Server::start(&db, &flags)];

    const SHARED: usize = 400;
    const JOBS: usize = 6;
    // Every job carries all shared references, in its own order, plus a few of its own.
    let bodies: Vec<String> = (0..JOBS)
        .map(|j| {
            let mut references: Vec<String> = (0..SHARED).map(|n| format!("shared-{n}")).collect();
            references.rotate_left(j * SHARED / JOBS);
            if j % 2 == 1 {
                references.reverse();
            }
            references.extend((0..10).map(|n| format!("own-{j}-{n}")));
            csv(references)
        })
        .collect();
    let job_paths: Vec<String> = std::thread::scope(|scope| {
        let uploads: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(j, body)| {
                let server = &servers[j % 2];
                let key = &key;
                scope.spawn(move || server.upload(key, body))
            })
            .collect();
        uploads.into_iter().map(|u| u.join().unwrap()).collect()
    });

    let mut created = 0;
    let mut duplicates = 0;
    for (j, path) in job_paths.iter().enumerate() {
        let job = servers[j % 2].finished(path, &key);
        for asset in job["assets"].as_array().unwrap() {
            match asset["status"].as_str().unwrap() {
                "COMPLETED" => created += 1,
                "DUPLICATE" => duplicates += 1,
                other => panic!("unexpected status {other}: {asset}"),
            }
        }
        assert_eq!(
            job["assets_created_count"].as_u64().unwrap()
                + job["assets_failed_count"].as_u64().unwrap(),
            (SHARED + 10) as u64
        );
    }
    let distinct = SHARED + JOBS * 10;
    assert_eq!(created, distinct);
    assert_eq!(duplicates, JOBS * (SHARED + 10) - distinct);
    assert_eq!(
        db.count("SELECT count(*) FROM meters").await,
        distinct as i64
    );
    assert_eq!(
        db.count("SELECT count(*) FROM (SELECT partner_reference FROM meters GROUP BY partner_reference HAVING count(*) > 1) AS twice").await,
        0
    );
}

/// Sends a request over a raw connection: `head`, then `fill` repeated `fill_len` times,
/// then `tail`, written as it goes (the client holds none of it), and answers the status
/// and the body of the response.
fn raw_post(
    base: &str,
    key: &str,
    content_type: &str,
    [head, tail]: [&[u8]; 2],
    fill: u8,
    fill_len: usize,
) -> (u16, Value) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let length = head.len() + fill_len + tail.len();
    write!(
        stream,
        "POST /v1.1/jobs/meters HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream.write_all(head).unwrap();
    let block = vec![fill; 64 * 1024];
    let mut left = fill_len;
    while left > 0 {
        let n = left.min(block.len());
        stream.write_all(&block[..n]).unwrap();
        left -= n;
    }
    stream.write_all(tail).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The most memory the process has held at once, from the kernel's count.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Before the limits, a 200 MiB header line raised the server's peak memory by 976 MiB, a
/// 200 MiB cell by 264 MiB and a 200 MiB JSON string by 409 MiB: now each is refused
/// after its first MiB, and the server's peak stays where small uploads left it.
#[test]
fn long_lines_cells_and_strings_leave_the_servers_memory_flat() {
    let db = TestDatabase::sqlite();
    let (_, key) = create_partner(&db);
    let server = Server::start(&db, &[]);
    let job = server.upload(&key, &csv((0..2000).map(|n| format!("warm-{n}"))));
    server.finished(&job, &key);
    let baseline = peak_rss_kib(server.child.id());

    const LONG: usize = 200 << 20;
    let header_line = [&b"partner_reference,"[..], b"\n"];
    let cell_head = format!("{CSV_HEADER}\nref-1,NYISO,COMMERCIAL,HVAC,DEVICE,");
    let cell = [cell_head.as_bytes(), b",10004,New York,NY,US\n"];
    let string = [&br#"{"assets": [{"partner_reference": ""#[..], br#""}]}"#];
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let sends = [
            ("text/csv", header_line, b'h'),
            ("text/csv", header_line, b'i'),
            ("text/csv", cell, b'c'),
            ("application/json", string, b's'),
        ]
        .map(|(content_type, parts, fill)| {
            let (base, key) = (&server.base, &key);
            scope.spawn(move || raw_post(base, key, content_type, parts, fill, LONG))
        });
        sends.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let grown = peak_rss_kib(server.child.id()).saturating_sub(baseline);
    assert!(
        grown < 64 * 1024,
        "the server's peak memory grew by {grown} KiB from {baseline} KiB"
    );
    for (status, body) in &answers {
        assert_eq!(*status, 400, "{body}");
        let message = body["details"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("longer than 1048576 bytes"), "{body}");
    }
}

/// jemalloc reads the binary's allocator options when the process starts and names any
/// it cannot take on stderr, then runs without them: a misspelt option would quietly
/// undo what it was set for.
#[test]
fn the_allocator_takes_every_option_the_binary_gives_it() {
    let out = Command::new(BIN)
        .arg("--version")
        .env_remove("_RJEM_MALLOC_CONF")
        .output()
        .expect("run gridroll");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// A second server on a SQLite file would, starting, remove the first one's upload in
/// progress; it is refused instead, as is a migration, while the commands made to run
/// beside a server work.
#[test]
fn a_second_server_on_a_sqlite_file_is_refused_and_commands_beside_the_first_still_work() {
    use std::io::{Read, Write};
    let db = TestDatabase::sqlite();
    let (_, key) = create_partner(&db);
    let server = Server::start(&db, &[]);

    // An upload in progress on the first server: its body is half sent.
    let body = csv((0..100).map(|n| format!("half-{n}")));
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut upload = std::net::TcpStream::connect(&address).unwrap();
    write!(
        upload,
        "POST /v1.1/jobs/meters HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    upload.write_all(first.as_bytes()).unwrap();

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // It must stop by itself: a second server that started would serve for ever.
    let mut second = Command::new(BIN)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db.url())
        .env("GRIDROLL_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while second.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            second.kill().unwrap();
            panic!("a second server started on the same SQLite file");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = second.wait_with_output().unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("is in use by another gridroll process") && said.contains("pid "),
        "{said}"
    );
    let migrate = gridroll(&db, &["migrate"]);
    assert!(!migrate.status.success());
    assert!(
        String::from_utf8_lossy(&migrate.stderr).contains("in use by another gridroll process")
    );
    let beside = gridroll(&db, &["partners", "create", "--name", "Beside"]);
    assert!(
        beside.status.success(),
        "{}",
        String::from_utf8_lossy(&beside.stderr)
    );

    upload.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    upload.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    // Once the first server is gone, another may serve the file.
    server.kill();
    let _next = Server::start(&db, &[]);
}

/// A client that declares a longer body than it sends (or stops sending) is answered
/// `408` once the body timeout passes, and its upload place is free again.
#[test]
fn a_body_shorter_than_its_content_length_times_out() {
    use std::io::{Read, Write};
    let db = TestDatabase::sqlite();
    let (_, key) = create_partner(&db);
    let server = Server::start(
        &db,
        &["--body-timeout", "1", "--max-concurrent-uploads", "1"],
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /v1.1/jobs/meters HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\n{CSV_HEADER}\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    let job = server.upload(&key, &csv(["after-1".to_owned()]));
    assert_eq!(server.finished(&job, &key)["status"], "COMPLETED");
}
