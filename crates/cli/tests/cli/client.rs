//! The partner's client (`gridroll upload`, `jobs`, `login`, ...) as the built binary,
//! against a real server on each backend: exit statuses, JSON on standard output, the
//! failed rows downloaded and uploaded again, profiles, and the one-line errors of bad
//! input.

use std::path::Path;
use std::process::{Command, Output};

use gridroll_testkit::{Backend, TestDatabase};
use serde_json::Value;

use super::{BIN, Server, create_partner};

pub(super) const HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,postal_code,city,state_or_province_code,country_code,utility_name";

pub(super) fn row(reference: &str) -> String {
    format!("{reference},NYISO,RESIDENTIAL,HVAC,DEVICE,9 Elm St,10010,New York,NY,US,CECONY\n")
}

fn csv_of(references: &[&str]) -> String {
    let mut csv = format!("{HEADER}\n");
    for reference in references {
        csv.push_str(&row(reference));
    }
    csv
}

/// `gridroll` as a partner runs it: the server and key in the environment, a config
/// directory of its own, and nothing else of the caller's environment that it reads.
pub(super) fn client(dir: &Path, server: Option<&Server>, key: Option<&str>) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_remove("GRIDROLL_URL")
        .env_remove("GRIDROLL_KEY")
        .env_remove("GRIDROLL_PROFILE")
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("GRIDROLL_LOG", "warn");
    if let Some(server) = server {
        command.env("GRIDROLL_URL", &server.base);
    }
    if let Some(key) = key {
        command.env("GRIDROLL_KEY", key);
    }
    command
}

fn run(command: &mut Command, args: &[&str]) -> Output {
    command.args(args).output().expect("run gridroll")
}

pub(super) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(super) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON lines of standard output.
fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// An error of bad input: a non-zero status and one line on stderr, never a backtrace.
fn assert_one_line_error(out: &Output, expected: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let text = stderr(out);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.starts_with("error: "), "{text}");
    assert!(text.contains(expected), "{expected:?} in {text}");
    assert!(
        !text.contains("panicked") && !text.contains("backtrace"),
        "{text}"
    );
}

async fn upload_wait_reports_the_counts_and_the_failed_rows_upload_again_once_fixed(
    backend: Backend,
) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (_, key) = create_partner(&db);
    let server = Server::start(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("first.csv"), csv_of(&["t-1", "t-2"])).unwrap();
    std::fs::write(dir.path().join("mixed.csv"), csv_of(&["t-1", "t-3", "t-2"])).unwrap();

    let first = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["upload", "first.csv", "--wait"],
    );
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(stdout(&first).contains("COMPLETED"), "{}", stdout(&first));

    let mixed = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &[
            "upload",
            "mixed.csv",
            "--wait",
            "--output",
            "json",
            "--failed-rows",
            "failed.csv",
        ],
    );
    assert_eq!(mixed.status.code(), Some(3), "{}", stderr(&mixed));
    let [job] = json_lines(&mixed)
        .try_into()
        .expect("one JSON line per file");
    assert_eq!(job["status"], "COMPLETED_WITH_ERRORS");
    assert_eq!(job["assets_count"], 3);
    assert_eq!(job["assets_created_count"], 1);
    assert_eq!(job["assets_failed_count"], 2);
    assert_eq!(job["file"], "mixed.csv");
    assert!(stderr(&mixed).contains("2 failed rows written to failed.csv"));

    // The failed rows, fixed (new references), upload again as they are.
    let failed = std::fs::read_to_string(dir.path().join("failed.csv")).unwrap();
    assert_eq!(failed.lines().count(), 3, "{failed}");
    assert!(failed.contains("DUPLICATE"), "{failed}");
    let fixed = failed.replace("\nt-", "\nfixed-");
    std::fs::write(dir.path().join("fixed.csv"), fixed).unwrap();
    let again = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["upload", "fixed.csv", "--wait", "--output", "json"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(json_lines(&again)[0]["assets_created_count"], 2);

    // The same rows from jobs show, and the job's counts as JSON.
    let job_id = job["job_id"].as_str().unwrap();
    let show = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &[
            "jobs",
            "show",
            job_id,
            "--failed-rows",
            "again.csv",
            "--output",
            "json",
        ],
    );
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    assert_eq!(json_lines(&show)[0]["status"], "COMPLETED_WITH_ERRORS");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.csv")).unwrap(),
        failed
    );
    let meters = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["meters", "search", "--output", "json"],
    );
    let references: Vec<Value> = json_lines(&meters)
        .iter()
        .map(|m| m["partner_reference"].clone())
        .collect();
    assert_eq!(
        references,
        ["t-1", "t-2", "t-3", "fixed-1", "fixed-2"].map(Value::from)
    );

    // A program's template, written by the client, passes the dry run.
    let template = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["programs", "--template", "CEC-DSGS"],
    );
    assert_eq!(template.status.code(), Some(0), "{}", stderr(&template));
    std::fs::write(dir.path().join("template.csv"), &template.stdout).unwrap();
    let dry_run = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["validate", "template.csv"],
    );
    assert_eq!(dry_run.status.code(), Some(0), "{}", stderr(&dry_run));
    assert!(
        stdout(&dry_run).contains("CEC-DSGS"),
        "{}",
        stdout(&dry_run)
    );
}

async fn a_refused_file_prints_its_problems_and_stores_nothing(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (_, key) = create_partner(&db);
    let server = Server::start(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    let bad = csv_of(&["good-1"]) + &row("bad-2").replace("10010", "9410");
    std::fs::write(dir.path().join("bad.csv"), bad).unwrap();

    let out = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["upload", "bad.csv", "--wait"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("REFUSED"), "{table}");
    let problem = table
        .lines()
        .find(|line| line.starts_with("row 3"))
        .unwrap_or_else(|| panic!("a problem at row 3: {table}"));
    assert!(
        problem.contains("postal_code") && problem.contains("9410"),
        "{problem}"
    );
    assert!(stderr(&out).contains("nothing was stored"));

    let json = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["upload", "bad.csv", "--output", "json"],
    );
    assert_eq!(json.status.code(), Some(4));
    let [refusal] = json_lines(&json).try_into().unwrap();
    assert_eq!(refusal["refused"], true);
    assert_eq!(refusal["problems"][0]["csv_row"], 3);
    assert_eq!(refusal["problems"][0]["problem_field"], "postal_code");

    let jobs = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["jobs", "list", "--output", "json"],
    );
    assert_eq!(jobs.status.code(), Some(0), "{}", stderr(&jobs));
    assert!(json_lines(&jobs).is_empty(), "no job: {}", stdout(&jobs));
    assert_eq!(db.count("SELECT count(*) FROM jobs").await, 0);

    let validate = run(
        &mut client(dir.path(), Some(&server), Some(&key)),
        &["validate", "bad.csv", "--output", "json"],
    );
    assert_eq!(validate.status.code(), Some(4), "{}", stderr(&validate));
    let [verdict] = json_lines(&validate).try_into().unwrap();
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["problems_count"], 1);
}

async fn bad_input_is_one_line_on_stderr_and_a_failure(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (_, key) = create_partner(&db);
    let server = Server::start(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    let ok = |server: Option<&Server>, key: Option<&str>| client(dir.path(), server, key);

    let missing = run(
        &mut ok(Some(&server), Some(&key)),
        &["upload", "nowhere.csv"],
    );
    assert_one_line_error(&missing, "cannot open nowhere.csv");

    std::fs::write(dir.path().join("picture.dat"), b"\x89PNG\r\n\x1a\n\0\0").unwrap();
    let unknown = run(
        &mut ok(Some(&server), Some(&key)),
        &["upload", "picture.dat"],
    );
    assert_one_line_error(&unknown, "cannot tell whether picture.dat is CSV or JSON");

    std::fs::write(dir.path().join("m.csv"), csv_of(&["x-1"])).unwrap();
    let wrong_key = run(
        &mut ok(Some(&server), Some("grk_wrong")),
        &["upload", "m.csv"],
    );
    assert_one_line_error(&wrong_key, "refused the API key");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = run(
        &mut ok(None, Some(&key)),
        &["jobs", "list", "--url", &format!("http://127.0.0.1:{port}")],
    );
    assert_one_line_error(&unreachable, "cannot reach the server");

    let no_server = run(&mut ok(None, None), &["jobs", "list"]);
    assert_one_line_error(&no_server, "gridroll login");

    // A profile that others can read is refused, not used.
    let profile = dir.path().join("config/gridroll/profiles.toml");
    std::fs::create_dir_all(profile.parent().unwrap()).unwrap();
    std::fs::write(
        &profile,
        format!("[default]\nurl = \"{}\"\nkey = \"{key}\"\n", server.base),
    )
    .unwrap();
    set_mode(&profile, 0o644);
    let loose = run(&mut ok(None, None), &["jobs", "list"]);
    assert_one_line_error(&loose, "can be read by others");
    set_mode(&profile, 0o600);
    let tight = run(&mut ok(None, None), &["jobs", "list"]);
    assert_eq!(tight.status.code(), Some(0), "{}", stderr(&tight));

    assert_eq!(db.count("SELECT count(*) FROM jobs").await, 0);
    let usage = run(
        &mut ok(None, None),
        &["upload", "a.csv", "b.csv", "--name", "x"],
    );
    assert_eq!(usage.status.code(), Some(2));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn login_reads_the_key_from_stdin_or_a_terminal_without_echo(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (_, key) = create_partner(&db);
    let server = Server::start(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("config/gridroll/profiles.toml");

    // A wrong key saves nothing.
    let wrong = super::with_input(
        client(dir.path(), None, None).args(["login", "--url", &server.base]),
        "grk_wrong\n",
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("nothing was saved"),
        "{}",
        stderr(&wrong)
    );
    assert!(!profile.exists());

    // From standard input, as a script pipes it.
    let piped = super::with_input(
        client(dir.path(), None, None).args(["login", "--url", &server.base, "--profile", "ci"]),
        &format!("{key}\n"),
    );
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    assert_eq!(mode(&profile), 0o600);
    assert!(!stdout(&piped).contains(&key));
    let listed = run(
        &mut client(dir.path(), None, None),
        &["jobs", "list", "--profile", "ci", "--output", "json"],
    );
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));

    // Typed at a terminal: prompted for, not echoed.
    let mut command = client(dir.path(), None, None);
    command.args(["login", "--url", &server.base]);
    let mut terminal = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    terminal.exp_string("API key").unwrap();
    terminal.send_line(&key).unwrap();
    let rest = terminal.exp_eof().unwrap();
    assert!(!rest.contains(&key), "the key was echoed: {rest}");
    assert!(rest.contains("saved the profile"), "{rest}");
    let status = terminal.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
    let saved = std::fs::read_to_string(&profile).unwrap();
    assert!(
        saved.contains("[ci]") && saved.contains("[default]"),
        "{saved}"
    );
    let uses_default = run(&mut client(dir.path(), None, None), &["jobs", "list"]);
    assert_eq!(
        uses_default.status.code(),
        Some(0),
        "{}",
        stderr(&uses_default)
    );
}

async fn passwords_are_prompted_for_without_echo_at_a_terminal(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    let mut command = Command::new(BIN);
    command
        .args([
            "users",
            "create",
            "--partner",
            &partner,
            "--email",
            "ops@acme.example",
        ])
        .env("DATABASE_URL", db.url())
        .env("GRIDROLL_LOG", "warn");
    let mut terminal = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    terminal
        .exp_string("New password for ops@acme.example")
        .unwrap();
    terminal.send_line("a long enough passphrase").unwrap();
    terminal.exp_string("The same password again").unwrap();
    terminal.send_line("a long enough passphrase").unwrap();
    let rest = terminal.exp_eof().unwrap();
    assert!(
        !rest.contains("passphrase"),
        "the password was echoed: {rest}"
    );
    assert!(rest.contains("\"role\":\"admin\""), "{rest}");

    // Two different passwords change nothing.
    let mut command = Command::new(BIN);
    command
        .args(["users", "set-password", "--email", "ops@acme.example"])
        .env("DATABASE_URL", db.url())
        .env("GRIDROLL_LOG", "warn");
    let mut terminal = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    terminal.exp_string("New password").unwrap();
    terminal.send_line("a long enough passphrase 2").unwrap();
    terminal.exp_string("The same password again").unwrap();
    terminal.send_line("a different passphrase").unwrap();
    let rest = terminal.exp_eof().unwrap();
    assert!(rest.contains("the two passwords differ"), "{rest}");
    let status = terminal.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 1)),
        "{status:?}"
    );
}

async fn ctrl_c_at_a_password_prompt_leaves_the_terminal_as_it_was(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    // The shell outlives the command (its own Ctrl-C is caught) and prints the terminal's
    // settings before and after it.
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            &format!(
                "trap : INT; echo \"before $(stty -g)\"; \
                 {BIN} users create --partner {partner} --email ops@acme.example; \
                 echo \"exit $?\"; echo \"after $(stty -g)\""
            ),
        ])
        .env("DATABASE_URL", db.url())
        .env("GRIDROLL_LOG", "warn");
    let mut terminal = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    let shown = terminal
        .exp_string("New password for ops@acme.example")
        .unwrap();
    terminal.send("half a pass").unwrap();
    terminal.send_control('c').unwrap();
    let rest = shown + &terminal.exp_eof().unwrap();
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(rest.contains("exit 130"), "{rest}");
    let settings = |when: &str| -> String {
        rest.lines()
            .find_map(|line| line.trim().strip_prefix(when))
            .unwrap_or_else(|| panic!("no line starts with {when:?}: {rest}"))
            .to_owned()
    };
    assert_eq!(settings("after "), settings("before "), "{rest}");
    assert_eq!(db.count("SELECT count(*) FROM users").await, 0);
}

/// The rows of a CSV standard output, its header first; fails on anything else.
fn csv_rows(out: &Output) -> Vec<Vec<String>> {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(out.stdout.as_slice())
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}: {}", stdout(out))))
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect()
}

async fn output_csv_is_csv_on_stdout_with_notes_on_stderr(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (_, key) = create_partner(&db);
    let server = Server::start(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.csv"), csv_of(&["c-1"])).unwrap();
    let ok = || client(dir.path(), Some(&server), Some(&key));

    let uploaded = csv_rows(&run(&mut ok(), &["upload", "m.csv", "--wait", "-o", "csv"]));
    assert_eq!(uploaded[0][..3], ["FILE", "JOB", "STATUS"]);
    assert_eq!(uploaded[1][2], "COMPLETED");
    assert_eq!(uploaded.len(), 2);

    let checked = csv_rows(&run(&mut ok(), &["validate", "m.csv", "-o", "csv"]));
    assert_eq!(checked[0][..3], ["WHERE", "REFERENCE", "PROGRAM"]);
    assert!(
        checked[1..].iter().all(|row| row[1] == "c-1"),
        "{checked:?}"
    );

    let meters = run(&mut ok(), &["meters", "search", "--output", "json"]);
    let meter = json_lines(&meters)[0]["meter_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = run(&mut ok(), &["enrollments", "show", &meter, "-o", "csv"]);
    let enrollments = csv_rows(&shown);
    assert_eq!(enrollments[0][..2], ["PROGRAM", "STATUS"]);
    assert!(enrollments.len() > 1, "{enrollments:?}");
    assert!(stderr(&shown).contains("Global enrollment status"));

    std::fs::write(
        dir.path().join("bad.csv"),
        csv_of(&["c-2"]).replace("10010", "1"),
    )
    .unwrap();
    let refused = run(&mut ok(), &["upload", "bad.csv", "-o", "csv"]);
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(refused.stdout.as_slice())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows[0][..3], ["bad.csv", "-", "REFUSED"]);
    assert!(
        stderr(&refused).contains("postal_code"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let bash = run(
        &mut client(dir.path(), None, None),
        &["completions", "bash"],
    );
    assert_eq!(bash.status.code(), Some(0), "{}", stderr(&bash));
    let script = stdout(&bash);
    assert!(script.contains("_gridroll()"), "{script}");
    assert!(script.contains("--failed-rows") && script.contains("set-role"));
    let man = run(&mut client(dir.path(), None, None), &["man"]);
    assert_eq!(man.status.code(), Some(0), "{}", stderr(&man));
    let page = stdout(&man);
    assert!(
        page.starts_with(".ie") || page.contains(".TH gridroll 1"),
        "{page}"
    );
    for section in [
        "GRIDROLL UPLOAD",
        "GRIDROLL JOBS SHOW",
        "GRIDROLL USERS REMOVE",
    ] {
        assert!(page.contains(&format!(".SH \"{section}\"")), "{section}");
    }
    assert!(
        page.contains("gridroll upload meters.csv \\-\\-wait"),
        "examples are in it"
    );
    let unknown = run(&mut client(dir.path(), None, None), &["completions", "cmd"]);
    assert_eq!(unknown.status.code(), Some(2));
}

gridroll_testkit::backend_tests!(
    upload_wait_reports_the_counts_and_the_failed_rows_upload_again_once_fixed,
    a_refused_file_prints_its_problems_and_stores_nothing,
    bad_input_is_one_line_on_stderr_and_a_failure,
    login_reads_the_key_from_stdin_or_a_terminal_without_echo,
    passwords_are_prompted_for_without_echo_at_a_terminal,
    ctrl_c_at_a_password_prompt_leaves_the_terminal_as_it_was,
    output_csv_is_csv_on_stdout_with_notes_on_stderr,
);
