//! The portal in a real browser: headless Chromium, driven through chromedriver, against
//! a running server with its own job workers. One journey covers what a partner's
//! operations staff do: sign in, upload a file with good and bad rows, fix a broken file,
//! watch the job finish, download the failed rows, fix and upload them again, find and
//! open a meter, make and revoke an API key, subscribe a webhook receiver, test it and
//! read its delivery log, and sign out. Screenshots of the main pages
//! are saved under `target/portal-screenshots/` for review.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium chromium-driver`). Without them
//! the test says so and passes, unless `GRIDROLL_REQUIRE_BROWSER=1` (as CI sets) makes it
//! fail.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gridroll_domain::timestamp::now_millis;
use gridroll_server::portal::password;
use gridroll_server::{AppState, Config};
use gridroll_store::{Role, StoreOptions, Stores};
use gridroll_testkit::{Backend, TestDatabase};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::common::receiver::Receiver;

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "browser test passphrase";
const HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,postal_code,city,state_or_province_code,country_code";

fn row(reference: &str, region: &str) -> String {
    format!(
        "{reference},{region},RESIDENTIAL,HVAC,DEVICE,\"1 Main St, Unit 2\",94105,San Francisco,CA,US"
    )
}

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver, or explains why the test cannot run.
fn start_driver() -> Option<(Driver, PathBuf)> {
    let driver = find_program(&["chromedriver"]);
    let browser = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let (Some(driver), Some(browser)) = (driver, browser) else {
        let required = std::env::var("GRIDROLL_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "GRIDROLL_REQUIRE_BROWSER=1 but chromium or chromedriver is not installed \
             (apt-get install -y chromium chromium-driver)"
        );
        eprintln!("skipping the browser test: install chromium and chromium-driver to run it");
        return None;
    };
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Driver { child, port }, browser))
}

async fn browser(driver: &Driver, binary: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-extensions", "--no-first-run",
                "--window-size=1200,860", "--hide-scrollbars", "--force-device-scale-factor=1",
            ],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a browser session starts")
}

/// A server on a free port with its workers, stopped when the sender is dropped.
async fn start_server(store: Stores) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut config = Config::default();
    // The journey's webhook receiver listens on 127.0.0.1.
    config.webhooks.allow_private = true;
    let state = AppState::new(store, config);
    tokio::spawn(async move {
        gridroll_server::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop)
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/portal-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One step of the journey, with the browser and the server's address.
struct Journey {
    client: Client,
    base: String,
    shots: PathBuf,
    files: tempfile::TempDir,
}

impl Journey {
    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// The text of an element, once there is one (retrying while a page loads).
    async fn text(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no {css} on the page"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the page whose heading is `heading` (after a click that navigates).
    async fn wait_heading(&self, heading: &str) {
        let started = Instant::now();
        loop {
            let seen = self.text("h1").await;
            if seen == heading {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the page is {seen:?}, not {heading:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Waits until the page's main text contains `text`.
    async fn wait_for(&self, text: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            // The page may be reloading: a vanished element reads as nothing yet.
            let seen = match self.client.find(Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if seen.contains(text) {
                return seen;
            }
            assert!(
                started.elapsed() < within,
                "{text:?} never appeared; the page says:\n{seen}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reloads the page until its main text contains `text`: for what a worker does
    /// behind a page that does not refresh itself.
    async fn reload_until(&self, text: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            self.client.refresh().await.unwrap();
            let seen = self.text("main").await;
            if seen.contains(text) {
                return seen;
            }
            assert!(
                started.elapsed() < within,
                "{text:?} never appeared; the page says:\n{seen}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Uploads a file through the form.
    async fn upload(&self, name: &str, contents: &str) {
        let path = self.files.path().join(name);
        std::fs::write(&path, contents).unwrap();
        self.go("/portal/upload").await;
        let input = self.client.find(Locator::Css("#file")).await.unwrap();
        input.send_keys(path.to_str().unwrap()).await.unwrap();
        self.click("form.upload button[type=submit]").await;
    }

    /// Runs a script in the page and returns what its promise resolves to.
    async fn fetch(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_uploads_fixes_and_finds_meters_in_a_real_browser() {
    let Some((driver, binary)) = start_driver() else {
        return;
    };
    let db = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let store = gridroll_store::open(db.url(), &StoreOptions::default())
        .await
        .unwrap();
    let partner = store
        .accounts
        .create_partner("Sunny Batteries", now_millis())
        .await
        .unwrap();
    let hash = password::hash(PASSWORD.to_owned()).await.unwrap();
    store
        .accounts
        .add_user(partner.id, EMAIL, Role::Admin, &hash, now_millis())
        .await
        .unwrap();
    let (addr, _stop) = start_server(store.clone()).await;
    let journey = Journey {
        client: browser(&driver, &binary).await,
        base: format!("http://{addr}"),
        shots: screenshots(),
        files: tempfile::tempdir().unwrap(),
    };

    // Signing in: a page asked for first comes back after.
    journey.go("/portal/meters").await;
    journey.wait_heading("Sign in to Gridroll").await;
    journey.shot("sign-in").await;
    journey.fill("#email", EMAIL).await;
    journey.fill("#password", PASSWORD).await;
    journey.click("form button[type=submit]").await;
    journey.wait_heading("Meters").await;

    // A broken file: the problems are listed and nothing is stored.
    let broken = format!(
        "{HEADER}\n{}\nbroken-2,NOWHERE,RESIDENTIAL,HVAC,DEVICE,1 Main St,94105,San Francisco,CA,US\n",
        row("fine-1", "CAISO")
    );
    journey.upload("broken.csv", &broken).await;
    journey
        .wait_for("nothing was stored", Duration::from_secs(10))
        .await;
    let problems = journey.text("section.problems").await;
    assert!(
        problems.contains("The file has 1 problem; nothing was stored"),
        "{problems}"
    );
    assert!(problems.contains("transmission_region"), "{problems}");
    journey.shot("upload-problems").await;
    assert_eq!(
        store
            .jobs
            .list_jobs(
                partner.id,
                &Default::default(),
                &gridroll_store::JobPage {
                    before: None,
                    limit: 5
                }
            )
            .await
            .unwrap()
            .len(),
        0
    );

    // A good file with rows that fail: references repeated within the file.
    let mut file = format!("{HEADER}\n");
    for i in 0..1500 {
        let region = ["CAISO", "ERCOT", "PJM", "NYISO"][i % 4];
        file.push_str(&row(&format!("home-{i:04}"), region));
        file.push('\n');
    }
    for i in 0..3 {
        file.push_str(&row(&format!("home-{i:04}"), "CAISO"));
        file.push('\n');
    }
    journey.go("/portal/upload").await;
    journey.shot("upload").await;
    journey.upload("spring-installs.csv", &file).await;
    journey.wait_heading("spring-installs.csv").await;
    let done = journey
        .wait_for("COMPLETED WITH ERRORS", Duration::from_secs(60))
        .await;
    assert!(
        done.contains("1,503 of 1,503 rows processed: 1,500 created, 0 updated, 3 failed"),
        "{done}"
    );
    journey.shot("job").await;

    // The failed rows download in the upload layout, are fixed, and upload again.
    let href = journey
        .client
        .find(Locator::Css("a[href$='/failed.csv']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let failed = journey
        .fetch(
            "return fetch(arguments[0]).then(r => r.text());",
            vec![json!(href)],
        )
        .await;
    let failed = failed
        .as_str()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .to_owned();
    let lines: Vec<&str> = failed.lines().collect();
    assert_eq!(lines.len(), 4, "{failed}");
    assert!(
        lines[0].starts_with("partner_reference,transmission_region,"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("home-0000,CAISO"), "{}", lines[1]);
    let fixed = failed.replace("home-000", "home-fixed-000");
    journey.upload("spring-installs-fixed.csv", &fixed).await;
    let done = journey
        .wait_for("Status: COMPLETED", Duration::from_secs(30))
        .await;
    assert!(done.contains("3 of 3 rows processed: 3 created"), "{done}");

    // Finding and opening a meter.
    journey.go("/portal/meters").await;
    journey.fill("#q", "fixed").await;
    journey.click("form.filters button[type=submit]").await;
    let list = journey
        .wait_for("home-fixed-0002", Duration::from_secs(5))
        .await;
    assert!(!list.contains("home-0100"), "{list}");
    journey.shot("meters").await;
    journey.click("table a[href^='/portal/meters/']").await;
    let meter = journey
        .wait_for("What this meter needs from you", Duration::from_secs(5))
        .await;
    assert!(meter.contains("1 Main St, Unit 2"), "{meter}");
    journey.shot("meter").await;
    meter_actions(&journey).await;

    // The dashboard, at a laptop's and a phone's width.
    journey.go("/portal").await;
    let dashboard = journey
        .wait_for("Meters by region", Duration::from_secs(5))
        .await;
    assert!(dashboard.contains("1,503"), "{dashboard}");
    journey.shot("dashboard").await;
    journey.client.set_window_size(390, 844).await.unwrap();
    journey.go("/portal").await;
    journey.shot("dashboard-phone").await;
    journey.client.set_window_size(1200, 860).await.unwrap();

    journey.go("/portal/programs").await;
    journey
        .wait_for("Download the CSV template", Duration::from_secs(5))
        .await;
    journey.shot("programs").await;

    // An API key: shown once, works, and stops working when revoked.
    journey.go("/portal/keys").await;
    journey.fill("#name", "billing sync").await;
    journey.click("form.inline button[type=submit]").await;
    journey
        .wait_for("shown only once", Duration::from_secs(5))
        .await;
    let key = journey.text("code.secret").await;
    assert!(key.starts_with("grk_"), "{key}");
    journey.shot("keys").await;
    let status_of = "return fetch('/v1.1/programs', {headers: {Authorization: 'Bearer ' + arguments[0]}}).then(r => r.status);";
    assert_eq!(journey.fetch(status_of, vec![json!(key)]).await, json!(200));
    journey
        .click("button[aria-label='Revoke billing sync']")
        .await;
    journey.client.accept_alert().await.unwrap();
    journey.wait_for("Revoked", Duration::from_secs(5)).await;
    assert_eq!(journey.fetch(status_of, vec![json!(key)]).await, json!(401));

    webhooks(&journey).await;

    // Signing out.
    journey.click("form.sign-out button").await;
    journey.wait_heading("Sign in to Gridroll").await;
    journey.go("/portal").await;
    journey.wait_heading("Sign in to Gridroll").await;

    journey.client.close().await.unwrap();
}

/// On a meter's page: a tag added, an idle period set, the meter's row downloaded,
/// changed and uploaded again with "Update existing meters", and the meter archived.
async fn meter_actions(journey: &Journey) {
    let page = journey.client.current_url().await.unwrap().to_string();
    journey.fill("#tags", "north fleet").await;
    journey
        .click("form[action$='/tag'] button[type=submit]")
        .await;
    journey
        .wait_for("The tags were added.", Duration::from_secs(5))
        .await;
    assert!(journey.text("ul.tags").await.contains("north fleet"));

    // Date inputs take their value as the page sets it, whatever the browser's locale.
    journey
        .fetch(
            "document.querySelector('#idle_start').value = '2027-06-01';
             document.querySelector('#idle_end').value = '2027-06-30';",
            vec![],
        )
        .await;
    journey.fill("#idle_reason", "Roof work").await;
    journey
        .click("form[action$='/idle'] button[type=submit]")
        .await;
    let idle = journey
        .wait_for("The idle period was set.", Duration::from_secs(5))
        .await;
    assert!(
        idle.contains("Idle 2027-06-01 to 2027-06-30 (Roof work)"),
        "{idle}"
    );
    journey.shot("meter-actions").await;

    let href = journey
        .client
        .find(Locator::Css("a[href$='/meter.csv']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let row = journey
        .fetch(
            "return fetch(arguments[0]).then(r => r.text());",
            vec![json!(href)],
        )
        .await;
    let row = row.as_str().unwrap().to_owned();
    assert_eq!(row.lines().count(), 2, "{row}");
    assert!(row.contains("north fleet"), "{row}");
    let changed = row.replace("1 Main St, Unit 2", "7 Harbor Rd");
    let path = journey.files.path().join("meter-row.csv");
    std::fs::write(&path, changed).unwrap();
    journey.go("/portal/upload").await;
    journey.click("#update_existing").await;
    let input = journey.client.find(Locator::Css("#file")).await.unwrap();
    input.send_keys(path.to_str().unwrap()).await.unwrap();
    journey.click("form.upload button[type=submit]").await;
    let done = journey
        .wait_for("Status: COMPLETED", Duration::from_secs(30))
        .await;
    assert!(
        done.contains("1 of 1 rows processed: 0 created, 1 updated"),
        "{done}"
    );

    journey.client.goto(&page).await.unwrap();
    let updated = journey
        .wait_for("7 Harbor Rd", Duration::from_secs(5))
        .await;
    assert!(updated.contains("north fleet"), "{updated}");
    journey
        .click("form[action$='/archive'] button[type=submit]")
        .await;
    let archived = journey
        .wait_for("The meter was archived", Duration::from_secs(5))
        .await;
    assert!(archived.contains("Bring the meter back"), "{archived}");
}

/// A webhook: subscribed to a receiver, its secret shown once, a test event sent, and a
/// meter made meanwhile in the delivery log.
async fn webhooks(journey: &Journey) {
    let receiver = Receiver::start().await;
    journey.go("/portal/webhooks").await;
    journey.wait_heading("Webhooks").await;
    journey.fill("#receiver_url", &receiver.url).await;
    journey.click("input[value='meter.created']").await;
    journey.fill("input[name=header_name_0]", "x-api-key").await;
    journey
        .fill("input[name=header_value_0]", "receiver-key")
        .await;
    journey.click("form.stack button[type=submit]").await;
    journey
        .wait_for("shown only once", Duration::from_secs(5))
        .await;
    let secret = journey.text("code.secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    journey.shot("webhook-created").await;

    journey
        .click("section.created a[href^='/portal/webhooks/']")
        .await;
    journey.wait_heading("Webhook subscription").await;
    // The test's answer is the page of its form's address; this is the page's own.
    let page = journey.client.current_url().await.unwrap();
    journey.click("form[action$='/test'] button").await;
    journey
        .wait_for("The test event succeeded", Duration::from_secs(10))
        .await;
    let tested = receiver.received();
    assert_eq!(tested.len(), 1);
    assert_eq!(
        tested[0].json()["payload"]["partner_reference"],
        "portal-test"
    );
    assert_eq!(tested[0].header("x-api-key"), "receiver-key");

    // A meter made now is delivered by the server's dispatcher and logged.
    journey
        .upload(
            "hooked.csv",
            &format!("{HEADER}\n{}\n", row("hooked-1", "PJM")),
        )
        .await;
    journey
        .wait_for("Status: COMPLETED", Duration::from_secs(30))
        .await;
    journey.client.goto(page.as_str()).await.unwrap();
    journey.wait_heading("Webhook subscription").await;
    let log = journey
        .reload_until("SUCCEEDED", Duration::from_secs(30))
        .await;
    assert!(log.contains("meter.created"), "{log}");
    let delivered = receiver.received();
    assert!(
        delivered
            .iter()
            .any(|d| d.json()["payload"]["partner_reference"] == "hooked-1"),
        "the meter's event arrived"
    );
    // The log is below the settings: the screenshot shows it with the actions above.
    journey
        .fetch(
            "document.getElementById('actions').scrollIntoView(); return null;",
            vec![],
        )
        .await;
    journey.shot("webhooks").await;
}
