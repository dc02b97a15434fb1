use super::*;
use proptest::prelude::*;

const RECEIVER: &str = "https://hooks.example.com/leap";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The (field, message) of every problem of a request with these headers.
fn header_problems(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let events = strings(&["meter.created"]);
    match SubscriptionRequest::parse(RECEIVER, &events, &pairs(headers), false) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .iter()
            .map(|p| (p.field().to_owned(), p.to_string()))
            .collect(),
    }
}

#[test]
fn a_valid_request_becomes_a_subscription() {
    let events = strings(&["meter.created", "job.completed"]);
    let headers = pairs(&[("Authorization", "Bearer abc"), ("X-Tenant", "a\tb c")]);
    let subscription = SubscriptionRequest::parse(RECEIVER, &events, &headers, false)
        .expect("a valid subscription");
    assert_eq!(subscription.receiver_url().as_str(), RECEIVER);
    assert_eq!(
        subscription.event_types(),
        [EventType::MeterCreated, EventType::JobCompleted]
    );
    assert_eq!(subscription.headers()[0].name(), "Authorization");
    assert_eq!(subscription.headers()[0].value(), "Bearer abc");
    assert_eq!(subscription.headers()[1].value(), "a\tb c");
    assert!(subscription.wants(EventType::JobCompleted));
    assert!(!subscription.wants(EventType::MeterUpdated));
}

#[test]
fn a_request_struct_parses_like_its_fields() {
    let request = SubscriptionRequest {
        receiver_url: RECEIVER.to_owned(),
        event_types: strings(&["meter.updated"]),
        headers: Vec::new(),
    };
    assert_eq!(
        request.to_subscription(false),
        SubscriptionRequest::parse(RECEIVER, &request.event_types, &[], false)
    );
}

#[test]
fn every_problem_of_a_request_is_reported_at_once() {
    let events = strings(&["meter.created", "meter.exploded", "meter.created"]);
    let headers = pairs(&[("Host", "evil"), ("bad name", "x"), ("X-A", " padded")]);
    let problems = SubscriptionRequest::parse("http://example.com/", &events, &headers, false)
        .expect_err("many problems");
    let fields: Vec<&str> = problems.iter().map(SubscriptionProblem::field).collect();
    assert_eq!(
        fields,
        [
            "receiver_url",
            "event_types[1]",
            "event_types[2]",
            "headers[0].name",
            "headers[1].name",
            "headers[2].value",
        ]
    );
}

#[test]
fn event_types_must_be_known_non_empty_and_unique() {
    let problems = SubscriptionRequest::parse(RECEIVER, &[], &[], false).expect_err("empty");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field(), "event_types");
    assert!(problems[0].message().contains("at least one"));

    let events = strings(&["job.completed", "Meter.Created", "job.completed"]);
    let problems = SubscriptionRequest::parse(RECEIVER, &events, &[], false).expect_err("bad");
    assert_eq!(problems[0].field(), "event_types[1]");
    assert!(
        problems[0]
            .message()
            .starts_with("\"Meter.Created\" is not an event type")
    );
    for name in EventType::ALL.map(EventType::as_str) {
        assert!(problems[0].message().contains(name), "lists {name}");
    }
    assert_eq!(problems[1].field(), "event_types[2]");
    assert_eq!(
        problems[1].message(),
        "repeats event_types[0] (`job.completed`)"
    );
}

#[test]
fn an_unknown_event_type_is_echoed_short_and_escaped() {
    let long = format!("x\n{}", "y".repeat(1000));
    let events = vec![long];
    let problems = SubscriptionRequest::parse(RECEIVER, &events, &[], false).expect_err("bad");
    let message = problems[0].message();
    assert!(message.starts_with("\"x\\nyyy"), "{message}");
    assert!(
        message.contains("yyy\"... is not an event type"),
        "{message}"
    );
    assert!(message.len() < 600, "{message}");
}

#[test]
fn header_names_must_be_http_tokens_of_a_bounded_length() {
    let long = "X".repeat(MAX_NAME_LEN + 1);
    let fits = "X".repeat(MAX_NAME_LEN);
    let cases: &[(&str, Option<&str>)] = &[
        ("X-Api-Key", None),
        ("x!#$%&'*+-.^_`|~9", None),
        (&fits, None),
        ("", Some("1 to 256 bytes")),
        (&long, Some("1 to 256 bytes")),
        ("X Api", Some("(found U+0020)")),
        ("X:Api", Some("(found `:`)")),
        ("X\nApi", Some("(found U+000A)")),
        ("Clé", Some("(found U+00E9)")),
        ("(x)", Some("(found `(`)")),
    ];
    for (name, expected) in cases {
        let problems = header_problems(&[(name, "v")]);
        match expected {
            None => assert!(problems.is_empty(), "{name:?}: {problems:?}"),
            Some(text) => {
                assert_eq!(problems.len(), 1, "{name:?}");
                assert_eq!(problems[0].0, "headers[0].name");
                assert!(problems[0].1.contains(text), "{name:?}: {}", problems[0].1);
            }
        }
    }
}

#[test]
fn header_values_must_be_visible_ascii_without_surrounding_whitespace() {
    let long = "v".repeat(MAX_VALUE_LEN + 1);
    let fits = "v".repeat(MAX_VALUE_LEN);
    let cases: &[(&str, Option<&str>)] = &[
        ("", None),
        ("Bearer abc.def", None),
        ("a \t b", None),
        ("!~", None),
        (&fits, None),
        (&long, Some("at most 4096 bytes")),
        ("a\r\nX-Injected: 1", Some("(found U+000D)")),
        ("a\nb", Some("(found U+000A)")),
        ("nul\u{0}", Some("(found U+0000)")),
        ("del\u{7f}", Some("(found U+007F)")),
        ("café", Some("(found U+00E9)")),
        (" lead", Some("begin or end")),
        ("trail ", Some("begin or end")),
        ("\ttab", Some("begin or end")),
        (" ", Some("begin or end")),
    ];
    for (value, expected) in cases {
        let problems = header_problems(&[("X-Key", value)]);
        match expected {
            None => assert!(problems.is_empty(), "{value:?}: {problems:?}"),
            Some(text) => {
                assert_eq!(problems.len(), 1, "{value:?}");
                assert_eq!(problems[0].0, "headers[0].value");
                assert!(problems[0].1.contains(text), "{value:?}: {}", problems[0].1);
            }
        }
    }
}

#[test]
fn reserved_header_names_are_refused_in_any_case() {
    for name in RESERVED {
        for spelled in [name.to_owned(), name.to_ascii_uppercase()] {
            let problems = header_problems(&[(&spelled, "x")]);
            assert_eq!(problems.len(), 1, "{spelled}");
            assert_eq!(problems[0].0, "headers[0].name");
            assert!(problems[0].1.contains("cannot be set"), "{spelled}");
        }
    }
    assert!(header_problems(&[("Authorization", "x"), ("X-Host", "y")]).is_empty());
}

#[test]
fn header_names_repeated_in_another_case_are_refused() {
    let problems = header_problems(&[("X-Key", "a"), ("x-other", "b"), ("x-KEY", "c")]);
    assert_eq!(
        problems,
        [(
            "headers[2].name".to_owned(),
            "repeats headers[0].name (header names are compared without regard to case)".to_owned()
        )]
    );
}

#[test]
fn a_subscription_holds_at_most_twenty_headers() {
    let names: Vec<String> = (0..=MAX_HEADERS).map(|i| format!("X-H{i}")).collect();
    let all: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    assert!(header_problems(&all[..MAX_HEADERS]).is_empty());
    let problems = header_problems(&all);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, "headers");
    assert!(problems[0].1.contains("at most 20"));
}

#[test]
fn a_header_prints_its_name_but_never_its_value() {
    let headers = pairs(&[("Authorization", "Bearer s3cr3t")]);
    let events = strings(&["meter.created"]);
    let subscription =
        SubscriptionRequest::parse(RECEIVER, &events, &headers, false).expect("valid");
    let printed = format!("{subscription:?}");
    assert!(printed.contains("Authorization"), "{printed}");
    assert!(!printed.contains("s3cr3t"), "{printed}");
}

proptest! {
    #[test]
    fn parsing_arbitrary_requests_never_panics(
        url in ".{0,40}",
        events in proptest::collection::vec(".{0,40}", 0..4),
        headers in proptest::collection::vec((".{0,20}", ".{0,20}"), 0..4),
        allow in any::<bool>(),
    ) {
        let _ = SubscriptionRequest::parse(&url, &events, &headers, allow);
    }

    #[test]
    fn every_token_name_and_visible_value_is_accepted(
        name in "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}",
        value in "([!-~]([ \t!-~]{0,40}[!-~])?)?",
    ) {
        prop_assume!(!RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&name)));
        prop_assert_eq!(header_problems(&[(&name, &value)]), Vec::new());
    }

    #[test]
    fn a_value_with_a_control_character_is_refused(
        before in "[ -~]{0,10}",
        control in "[\u{0}-\u{8}\u{a}-\u{1f}\u{7f}]",
        after in "[ -~]{0,10}",
    ) {
        let value = format!("{before}{control}{after}");
        let problems = header_problems(&[("X-Key", &value)]);
        prop_assert!(problems.iter().any(|(field, _)| field == "headers[0].value"));
    }
}
