//! The README runs as written. Every fenced block tagged `sh` from the heading "Your first
//! upload from the command line" up to the heading "Endpoints" (the first upload, the
//! walk through the API, and the portal's first user) is run, in order, by one `bash`
//! with `set -euo pipefail`, in an empty directory, against a fresh `gridroll serve
//! --demo` of the built binary (on each backend), as a reader would run them:
//!
//! - A block tagged `sh no-run` is shown only: starting the server (which the test does
//!   itself, with the flags those blocks give), or what needs the outside world.
//! - A line `#> TEXT` under a command is part of what the command prints on standard
//!   output: the lines of a group must each match a line of the output, in order (other
//!   lines may come between), where `...` matches any text. A command without such lines
//!   is only run; any failure stops the run and fails the test.
//! - The server's address `127.0.0.1:8080` is replaced by the test server's; `gridroll`
//!   is the built binary, first on the `PATH`; `GRIDROLL_KEY` is the key the demo
//!   printed; `DATABASE_URL` is the test database, and the configuration directory and
//!   home are the test's own.

use std::path::Path;
use std::process::{Command, Stdio};

use gridroll_testkit::{Backend, TestDatabase};

use super::{BIN, Server};

const FIRST: &str = "## Your first upload from the command line";
const LAST: &str = "## Endpoints";
/// The operator token the walk-through's server is started with.
const OPERATOR_TOKEN: &str = "walk-through-operator-token";

/// One command of a block and what it must print.
#[derive(Debug)]
struct Step {
    /// The README's line of the command's first line, for messages.
    line: usize,
    script: String,
    expected: Vec<String>,
}

/// The runnable steps of the README's walk-through.
fn steps(readme: &str) -> Vec<Step> {
    let start = readme.find(FIRST).expect("the README has its first upload");
    let end = start
        + readme[start..]
            .find(LAST)
            .expect("the README has its endpoints");
    let first_line = readme[..start].lines().count();
    let mut steps = Vec::new();
    let mut in_block = false;
    let mut runs = false;
    let mut current: Option<Step> = None;
    for (n, line) in readme[start..end].lines().enumerate() {
        let number = first_line + n + 1;
        if let Some(info) = line.strip_prefix("```") {
            if in_block {
                steps.extend(current.take());
                in_block = false;
            } else {
                in_block = true;
                let mut words = info.split_whitespace();
                runs = words.next() == Some("sh") && words.next().is_none();
            }
            continue;
        }
        if !in_block || !runs {
            continue;
        }
        if let Some(expected) = line.strip_prefix("#>") {
            let step = current.as_mut().unwrap_or_else(|| {
                panic!("README line {number}: an expected answer with no command above it")
            });
            step.expected.push(expected.trim().to_owned());
            continue;
        }
        // A command after an answer starts the next step.
        if current.as_ref().is_some_and(|s| !s.expected.is_empty()) {
            steps.extend(current.take());
        }
        let step = current.get_or_insert_with(|| Step {
            line: number,
            script: String::new(),
            expected: Vec::new(),
        });
        step.script.push_str(line);
        step.script.push('\n');
    }
    steps
}

/// Whether `line` matches `pattern`, where `...` matches any text.
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return line == pattern;
    };
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The lines of `output` that `expected` match, in order; the first that none matches.
fn unmatched<'a>(expected: &'a [String], output: &str) -> Option<&'a str> {
    let mut lines = output.lines().map(str::trim_end);
    expected
        .iter()
        .find(|pattern| !lines.any(|line| matches(pattern, line)))
        .map(String::as_str)
}

/// The bash script of the steps: each step's output kept in a file of its own.
fn script(steps: &[Step], address: &str, outputs: &Path) -> String {
    let mut script = String::from("set -euo pipefail\n");
    for (i, step) in steps.iter().enumerate() {
        let command = step.script.replace("127.0.0.1:8080", address);
        script.push_str(&format!(
            "echo '--- README line {}' >&2\n{{\n{command}}} > {}\n",
            step.line,
            outputs.join(format!("{i}.out")).display()
        ));
    }
    script
}

async fn the_readme_walk_through_runs_as_written(backend: Backend) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("read README.md");
    let steps = steps(&readme);
    assert!(steps.len() > 20, "only {} steps found", steps.len());

    let db = TestDatabase::new(backend).await.unwrap();
    let mut server = Server::start(&db, &["--demo", "--operator-token", OPERATOR_TOKEN]);
    let key = server.demo_key();
    let address = server.base.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let outputs = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = Command::new("bash")
        .arg("-c")
        .arg(script(&steps, &address, outputs.path()))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("DATABASE_URL", db.url())
        .env("GRIDROLL_KEY", &key)
        .env("GRIDROLL_LOG", "warn")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the README's commands stopped ({}); the last step began at:\n{}",
        run.status,
        stderr
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (i, step) in steps
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.expected.is_empty())
    {
        let output = std::fs::read_to_string(outputs.path().join(format!("{i}.out"))).unwrap();
        if let Some(pattern) = unmatched(&step.expected, &output) {
            panic!(
                "README line {}: the documented answer\n  {pattern}\nis not in what the command printed:\n{output}",
                step.line
            );
        }
    }
}

gridroll_testkit::backend_tests!(the_readme_walk_through_runs_as_written);

#[test]
fn documented_answers_match_with_wildcards_and_in_order() {
    assert!(matches("{\"job_id\":\"...\"}", "{\"job_id\":\"0193-ab\"}"));
    assert!(matches("a ... c", "a b c"));
    assert!(!matches("a ... c", "a b d"));
    assert!(!matches("exit status 4", "exit status 40"));
    assert!(matches("...", "anything"));
    let expected = ["one".to_owned(), "three".to_owned()];
    assert_eq!(unmatched(&expected, "one\ntwo\nthree\n"), None);
    assert_eq!(unmatched(&expected, "three\none\n"), Some("three"));
}

#[test]
fn steps_are_split_at_their_answers_and_no_run_blocks_are_left_out() {
    let readme = format!(
        "intro\n{FIRST}\n```sh no-run\nserve\n```\n```sh\nA=1\necho $A\n#> 1\necho 2\n```\n```json\n{{}}\n```\n{LAST}\n```sh\nlater\n```\n"
    );
    let steps = steps(&readme);
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0].script, "A=1\necho $A\n");
    assert_eq!(steps[0].expected, ["1"]);
    assert_eq!(steps[1].script, "echo 2\n");
    assert!(steps[1].expected.is_empty());
}
