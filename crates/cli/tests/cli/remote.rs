//! The partner's client against servers that are not Gridroll or do not behave: a server
//! that never answers, one that takes an upload slowly, a proxy's HTML page, an empty
//! answer, a server other than the one a profile's key was saved for, and one that is
//! not Gridroll at `gridroll login`. Each is a listener in the test that answers as it is
//! told and keeps the head of every request. Last, Ctrl-C in the middle of an upload to
//! a real server, through a relay that holds the upload there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{client, stderr, stdout};

/// How a fake server answers one request: its head (request line and headers) and the
/// connection, the rest of the request unread.
type Answer = dyn Fn(&str, &mut BufReader<TcpStream>) + Send + Sync;

/// A server on a free port that answers every request as `answer` says.
pub struct Fake {
    pub base: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    pub fn start(answer: impl Fn(&str, &mut BufReader<TcpStream>) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let kept = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (answer, kept) = (answer.clone(), kept.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    let head = read_head(&mut reader);
                    kept.lock().unwrap().push(head.clone());
                    answer(&head, &mut reader);
                });
            }
        });
        Self { base, heads }
    }

    /// A server answering every request with `status`, `content_type` and `body`.
    pub fn answering(status: &'static str, content_type: &'static str, body: &'static str) -> Self {
        Self::start(move |head, connection| {
            read_body(head, connection, None);
            respond(connection, status, content_type, body);
        })
    }

    /// The heads of the requests it was sent.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}

/// How slowly a fake server reads a body: `step` bytes, then a `pause`, until it has
/// read `slow_until` bytes; the rest at once.
#[derive(Clone, Copy)]
pub struct Pace {
    pub step: usize,
    pub pause: Duration,
    pub slow_until: usize,
}

/// Reads the request's body (by its `Content-Length`), at `pace` when given; answers how
/// many bytes it read.
pub fn read_body(head: &str, connection: &mut BufReader<TcpStream>, pace: Option<Pace>) -> usize {
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let pace = pace.unwrap_or(Pace {
        step: length,
        pause: Duration::ZERO,
        slow_until: 0,
    });
    let mut buffer = vec![0; 64 * 1024];
    let mut read = 0;
    while read < length {
        let step = if read < pace.slow_until {
            pace.step
        } else {
            length - read
        };
        let mut taken = 0;
        while taken < step && read < length {
            let want = buffer.len().min(length - read).min(step - taken);
            match connection.read(&mut buffer[..want]) {
                Ok(0) | Err(_) => return read,
                Ok(n) => {
                    read += n;
                    taken += n;
                }
            }
        }
        if read < pace.slow_until {
            std::thread::sleep(pace.pause);
        }
    }
    read
}

pub fn respond(
    connection: &mut BufReader<TcpStream>,
    status: &str,
    content_type: &str,
    body: &str,
) {
    let _ = write!(
        connection.get_mut(),
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Runs a command, failing the test (and killing the command) if it has not ended
/// within `limit`.
pub fn run_within(command: &mut Command, args: &[&str], limit: Duration) -> Output {
    let mut child = start(command.args(args));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "gridroll {args:?} was still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// One line on stderr, exit status 1, and no trace of a panic or of serde's wording.
fn assert_one_line(out: &Output, expected: &[&str]) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    for part in expected {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    for leak in [
        "panicked",
        "line 1 column",
        "EOF while parsing",
        "expected value",
    ] {
        assert!(!text.contains(leak), "{leak:?} in {text}");
    }
}

fn save_profile(dir: &Path, url: &str, key: &str) {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("config/gridroll/profiles.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        format!("[default]\nurl = \"{url}\"\nkey = \"{key}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn keys_sent(fake: &Fake) -> Vec<String> {
    fake.heads()
        .iter()
        .flat_map(|head| head.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| line.to_ascii_lowercase().starts_with("authorization"))
        .collect()
}

const NO_JOBS: &str = r#"{"jobs":[]}"#;
const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_profiles_key_is_sent_only_to_the_server_it_was_saved_for() {
    let saved_for = Fake::answering("200 OK", "application/json", NO_JOBS);
    let other = Fake::answering("200 OK", "application/json", NO_JOBS);
    let dir = tempfile::tempdir().unwrap();
    save_profile(dir.path(), &saved_for.base, "grk_saved");

    let by_flag = run_within(
        &mut client(dir.path(), None, None),
        &["jobs", "list", "--url", &other.base],
        LIMIT,
    );
    assert_one_line(&by_flag, &["--key", &other.base]);
    let mut by_env = client(dir.path(), None, None);
    by_env.env("GRIDROLL_URL", format!("{}/", other.base));
    let by_env = run_within(&mut by_env, &["jobs", "list"], LIMIT);
    assert_one_line(&by_env, &["--key"]);
    assert!(other.heads().is_empty(), "{:?}", other.heads());

    // A key given for the other server goes to it; the profile's goes to its own server,
    // named or not.
    let given = run_within(
        &mut client(dir.path(), None, Some("grk_given")),
        &["jobs", "list", "--url", &other.base],
        LIMIT,
    );
    assert_eq!(given.status.code(), Some(0), "{}", stderr(&given));
    assert_eq!(keys_sent(&other), ["authorization: Bearer grk_given"]);
    for args in [
        &["jobs", "list"][..],
        &["jobs", "list", "--url", &format!("{}/", saved_for.base)],
    ] {
        let own = run_within(&mut client(dir.path(), None, None), args, LIMIT);
        assert_eq!(own.status.code(), Some(0), "{}", stderr(&own));
    }
    assert_eq!(
        keys_sent(&saved_for),
        ["authorization: Bearer grk_saved"; 2]
    );
}

#[test]
fn a_server_that_never_answers_is_one_line_after_the_timeout_not_a_hang() {
    let silent = Fake::start(|head, connection| {
        read_body(head, connection, None);
        std::thread::sleep(Duration::from_secs(60));
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.csv"),
        "partner_reference,transmission_region\nx,NYISO\n",
    )
    .unwrap();
    for args in [
        &["jobs", "list"][..],
        &["upload", "m.csv"],
        &["validate", "m.csv"],
    ] {
        let mut command = client(dir.path(), None, Some("grk_any"));
        command
            .env("GRIDROLL_URL", &silent.base)
            .env("GRIDROLL_TIMEOUT", "1");
        let started = Instant::now();
        let out = run_within(&mut command, args, LIMIT);
        assert_one_line(&out, &[&silent.base, "1 s"]);
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    }
}

/// Sends Ctrl-C's signal to a running client; its output once it has ended, with the
/// exit status of an interrupted command.
/// Starts a command with nothing on its standard input and its output kept.
fn start(command: &mut Command) -> std::process::Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gridroll")
}

fn interrupt(child: std::process::Child) -> Output {
    let signal = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signal.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    out
}

#[test]
fn files_sent_before_one_that_fails_are_still_reported_with_their_jobs() {
    let uploads = std::sync::atomic::AtomicUsize::new(0);
    let server = Fake::start(move |head, connection| {
        read_body(head, connection, None);
        match uploads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => respond(
                connection,
                "201 Created",
                "application/json",
                r#"{"job_id":"0190b8c2-4a61-7d3e-9f00-000000000001"}"#,
            ),
            _ => respond(
                connection,
                "502 Bad Gateway",
                "text/html",
                "<html><body>Bad gateway</body></html>",
            ),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    for name in ["first.csv", "second.csv"] {
        std::fs::write(
            dir.path().join(name),
            "partner_reference,transmission_region\nx,NYISO\n",
        )
        .unwrap();
    }
    let mut command = client(dir.path(), None, Some("grk_any"));
    command.env("GRIDROLL_URL", &server.base);
    let out = run_within(
        &mut command,
        &["upload", "first.csv", "second.csv", "--output", "json"],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let reported: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(reported.len(), 1, "{}", stdout(&out));
    assert_eq!(reported[0]["file"], "first.csv");
    assert_eq!(
        reported[0]["job_id"],
        "0190b8c2-4a61-7d3e-9f00-000000000001"
    );
    assert!(stderr(&out).contains("502"), "{}", stderr(&out));
}

#[test]
fn ctrl_c_while_the_client_reads_says_interrupted_and_nothing_of_uploads() {
    let (asked, request) = std::sync::mpsc::channel();
    let silent = Fake::start(move |head, connection| {
        read_body(head, connection, None);
        let _ = asked.send(());
        std::thread::sleep(Duration::from_secs(60));
    });
    let dir = tempfile::tempdir().unwrap();
    let child = start(
        client(dir.path(), None, Some("grk_any"))
            .env("GRIDROLL_URL", &silent.base)
            .args(["jobs", "list"]),
    );
    request
        .recv_timeout(LIMIT)
        .expect("the client asked the server");
    let out = interrupt(child);
    assert_eq!(stderr(&out).trim(), "interrupted");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn an_upload_that_keeps_moving_is_not_cut_off_by_the_timeout() {
    // 64 MB: the server takes the first 24 MB 4 MB at a time, 500 ms apart (longer in
    // all than the timeout), then the rest at once. The client's bytes move at every
    // step: what it has not sent yet is more than the sockets on the way can hold.
    let slow = Fake::start(|head, connection| {
        let pace = Pace {
            step: 4 << 20,
            pause: Duration::from_millis(500),
            slow_until: 24 << 20,
        };
        let read = read_body(head, connection, Some(pace));
        assert!(read > 63 << 20, "read {read} bytes");
        respond(
            connection,
            "202 Accepted",
            "application/json",
            r#"{"job_id":"01936f7e-0000-7000-8000-000000000001"}"#,
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("big.csv")).unwrap());
    writeln!(file, "partner_reference,transmission_region").unwrap();
    let row = format!("{},NYISO\n", "x".repeat(90));
    for _ in 0..(64 << 20) / row.len() + 1 {
        file.write_all(row.as_bytes()).unwrap();
    }
    drop(file);

    let mut command = client(dir.path(), None, Some("grk_any"));
    command
        .env("GRIDROLL_URL", &slow.base)
        .env("GRIDROLL_TIMEOUT", "2");
    let started = Instant::now();
    let out = run_within(
        &mut command,
        &["upload", "big.csv", "--output", "json"],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("01936f7e-0000-7000-8000-000000000001"));
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "the upload was not slow"
    );
}

#[test]
fn answers_that_are_not_json_are_one_line_naming_the_status() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.csv"),
        "partner_reference,transmission_region\nx,NYISO\n",
    )
    .unwrap();
    let portal = "<html><body>Sign in to the hotel's Wi-Fi</body></html>";
    let cases = [
        (
            Fake::answering("200 OK", "text/html", portal),
            &["jobs", "list"][..],
            "200",
        ),
        (
            Fake::answering("502 Bad Gateway", "text/html", portal),
            &["jobs", "list"],
            "502",
        ),
        (
            Fake::answering("500 Internal Server Error", "text/plain", ""),
            &["meters", "get", "x"],
            "500",
        ),
        (
            Fake::answering("202 Accepted", "application/json", ""),
            &["upload", "m.csv"],
            "202",
        ),
        (
            Fake::answering("200 OK", "text/html", portal),
            &["validate", "m.csv"],
            "200",
        ),
    ];
    for (fake, args, status) in cases {
        let mut command = client(dir.path(), None, Some("grk_any"));
        command.env("GRIDROLL_URL", &fake.base);
        let out = run_within(&mut command, args, LIMIT);
        assert_one_line(&out, &[status]);
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        assert_eq!(fake.heads().len(), 1, "{args:?}: one request, not retried");
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn login_saves_a_key_a_gridroll_server_took_in_a_file_only_its_owner_reads() {
    let gridroll = Fake::answering("200 OK", "application/json", NO_JOBS);
    let not_gridroll = Fake::answering("200 OK", "text/html", "<html>It works!</html>");
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("config/gridroll/profiles.toml");
    let login = |url: &str| {
        super::with_input(
            client(dir.path(), None, None).args(["login", "--url", url]),
            "grk_key\n",
        )
    };

    let refused = login(&not_gridroll.base);
    assert_one_line(&refused, &["nothing was saved", &not_gridroll.base]);
    assert!(!profile.exists());

    // A directory another tool left open to others is closed to them.
    std::fs::create_dir_all(profile.parent().unwrap()).unwrap();
    set_mode(profile.parent().unwrap(), 0o755);
    let saved = login(&gridroll.base);
    assert_eq!(saved.status.code(), Some(0), "{}", stderr(&saved));
    assert_eq!(keys_sent(&gridroll), ["authorization: Bearer grk_key"]);
    assert_eq!(mode(&profile), 0o600);
    assert_eq!(mode(profile.parent().unwrap()), 0o700);

    // A profile file others can read is neither read nor written.
    set_mode(&profile, 0o644);
    let before = std::fs::read_to_string(&profile).unwrap();
    let loose = login(&gridroll.base);
    assert_one_line(&loose, &["can be read by others", "chmod 600"]);
    assert_eq!(std::fs::read_to_string(&profile).unwrap(), before);
    let used = run_within(
        &mut client(dir.path(), None, None),
        &["jobs", "list"],
        LIMIT,
    );
    assert_one_line(&used, &["can be read by others"]);
}

/// A relay between the client and a server: it passes the first `hold_after` bytes the
/// client sends, says so, and holds the rest until told to go on; then it passes
/// everything, and ends once the server has closed the connection.
struct Relay {
    base: String,
    holding: std::sync::mpsc::Receiver<()>,
    go_on: std::sync::mpsc::Sender<()>,
    done: std::thread::JoinHandle<()>,
}

impl Relay {
    fn start(server: &str, hold_after: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let target = server.trim_start_matches("http://").to_owned();
        let (held, holding) = std::sync::mpsc::channel();
        let (go_on, resume) = std::sync::mpsc::channel::<()>();
        let done = std::thread::spawn(move || {
            let (mut from_client, _) = listener.accept().unwrap();
            let mut to_server = TcpStream::connect(target).unwrap();
            let mut from_server = to_server.try_clone().unwrap();
            from_server
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut to_client = from_client.try_clone().unwrap();
            // The server's answer goes back while the client is there to take it; the
            // relay reads until the server closes, which it does once it is done with
            // the request.
            let back = std::thread::spawn(move || {
                let mut buffer = [0; 16 * 1024];
                while let Ok(n @ 1..) = from_server.read(&mut buffer) {
                    let _ = to_client.write_all(&buffer[..n]);
                }
            });
            let mut buffer = vec![0; 64 * 1024];
            let mut passed = 0;
            let mut held_yet = false;
            loop {
                if !held_yet && passed >= hold_after {
                    held_yet = true;
                    held.send(()).unwrap();
                    let _ = resume.recv();
                }
                let n = match from_client.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if to_server.write_all(&buffer[..n]).is_err() {
                    break;
                }
                passed += n;
            }
            let _ = to_server.shutdown(std::net::Shutdown::Write);
            back.join().unwrap();
        });
        Self {
            base,
            holding,
            go_on,
            done,
        }
    }
}

async fn ctrl_c_during_an_upload_exits_130_and_the_server_keeps_nothing_of_it(
    backend: gridroll_testkit::Backend,
) {
    let db = gridroll_testkit::TestDatabase::new(backend).await.unwrap();
    let (_, key) = super::create_partner(&db);
    let server = super::Server::start(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    // 64 MB of good rows: more than the sockets on the way can hold once the relay stops
    // (a receive buffer may grow to 32 MB here), so the upload is cut off whatever they do.
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("big.csv")).unwrap());
    writeln!(file, "{}", super::client::HEADER).unwrap();
    let mut written = 0;
    for i in 0.. {
        let row = super::client::row(&format!("interrupted-{i}"));
        file.write_all(row.as_bytes()).unwrap();
        written += row.len();
        if written > 64 << 20 {
            break;
        }
    }
    drop(file);

    let relay = Relay::start(&server.base, 1 << 20);
    let child = start(
        client(dir.path(), None, Some(&key))
            .env("GRIDROLL_URL", &relay.base)
            .args(["upload", "big.csv", "--wait"]),
    );
    relay
        .holding
        .recv_timeout(LIMIT)
        .expect("the upload reached the server");
    let out = interrupt(child);
    assert!(
        stderr(&out).contains("interrupted: an upload cut off is discarded whole"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // What the client had sent reaches the server, cut off; the server closes the
    // connection once it has dropped the upload.
    relay.go_on.send(()).unwrap();
    relay.done.join().unwrap();
    for table in ["jobs", "job_segments", "meters"] {
        assert_eq!(
            db.count(&format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
}

gridroll_testkit::backend_tests!(
    ctrl_c_during_an_upload_exits_130_and_the_server_keeps_nothing_of_it
);
