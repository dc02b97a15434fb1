//! A webhook subscription as a partner asks for it, and the rules it must follow.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use super::event::EventType;
use super::receiver::ReceiverUrl;

/// The most custom headers a subscription may carry.
const MAX_HEADERS: usize = 20;
const MAX_NAME_LEN: usize = 256;
const MAX_VALUE_LEN: usize = 4096;
/// How much of an unknown value a message repeats, so that a huge input is not echoed back.
const ECHO_CHARS: usize = 64;

/// Header names a subscription may not set, compared without regard to case: Gridroll sets
/// the first six itself (the signature, the body's framing), and the rest are hop-by-hop or
/// connection-level headers that would break or smuggle the request.
const RESERVED: [&str; 16] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "host",
    "connection",
    "user-agent",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
];

/// One thing wrong with a subscription request: the field it is about, in the request's
/// own terms (`receiver_url`, `event_types[2]`, `headers[1].name`), and what is wrong with
/// it, for a person to read (`Display`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SubscriptionProblem {
    field: String,
    message: String,
}

impl SubscriptionProblem {
    /// A problem with `field`, for callers that find one of their own (a missing field of
    /// the request body, say) and answer it in the same shape.
    pub fn new(field: String, message: String) -> Self {
        Self { field, message }
    }

    /// The field the problem is about, such as `headers[1].name`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong, for a person to read; the same text as `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A custom header sent with every delivery of a subscription, typically the receiver's
/// credentials. Built only by [`SubscriptionRequest::parse`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Header {
    name: String,
    value: String,
}

impl Header {
    /// The name, as the partner wrote it (HTTP compares names without regard to case).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value: visible ASCII, spaces and tabs, trimmed.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A valid subscription: where to send, which events, and which extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    receiver_url: ReceiverUrl,
    event_types: Vec<EventType>,
    headers: Vec<Header>,
}

impl Subscription {
    /// Where deliveries are sent.
    pub fn receiver_url(&self) -> &ReceiverUrl {
        &self.receiver_url
    }

    /// The events subscribed to, in the order asked for, at least one and each once.
    pub fn event_types(&self) -> &[EventType] {
        &self.event_types
    }

    /// The extra headers, in the order given, names unique without regard to case.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Whether an event of this type is delivered to this subscription.
    pub fn wants(&self, event: EventType) -> bool {
        self.event_types.contains(&event)
    }
}

/// A subscription as the partner sent it, before any rule is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub receiver_url: String,
    pub event_types: Vec<String>,
    pub headers: Vec<(String, String)>,
}

impl SubscriptionRequest {
    /// Checks every rule of a subscription and answers either the subscription or every
    /// problem found, so one 400 can name all of them. `allow_private` is passed on to
    /// [`ReceiverUrl::parse`].
    pub fn parse(
        receiver_url: &str,
        event_types: &[String],
        headers: &[(String, String)],
        allow_private: bool,
    ) -> Result<Subscription, Vec<SubscriptionProblem>> {
        let mut problems = Vec::new();
        let receiver_url = ReceiverUrl::parse(receiver_url, allow_private)
            .map_err(|p| problems.push(p))
            .ok();
        let event_types = parse_event_types(event_types, &mut problems);
        let headers = parse_headers(headers, &mut problems);
        match receiver_url {
            Some(receiver_url) if problems.is_empty() => Ok(Subscription {
                receiver_url,
                event_types,
                headers,
            }),
            _ => Err(problems),
        }
    }

    /// [`SubscriptionRequest::parse`] of this request.
    pub fn to_subscription(
        &self,
        allow_private: bool,
    ) -> Result<Subscription, Vec<SubscriptionProblem>> {
        Self::parse(
            &self.receiver_url,
            &self.event_types,
            &self.headers,
            allow_private,
        )
    }
}

fn parse_event_types(names: &[String], problems: &mut Vec<SubscriptionProblem>) -> Vec<EventType> {
    if names.is_empty() {
        problems.push(SubscriptionProblem::new(
            "event_types".to_owned(),
            format!(
                "must name at least one event type; known: {}",
                EventType::known_names()
            ),
        ));
    }
    let mut events = Vec::with_capacity(names.len());
    let mut first_at = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let field = format!("event_types[{i}]");
        let Ok(event) = name.parse::<EventType>() else {
            let message = format!(
                "{} is not an event type; known: {}",
                echo(name),
                EventType::known_names()
            );
            problems.push(SubscriptionProblem::new(field, message));
            continue;
        };
        match first_at.entry(event) {
            Entry::Occupied(first) => {
                let message = format!("repeats event_types[{}] (`{event}`)", first.get());
                problems.push(SubscriptionProblem::new(field, message));
            }
            Entry::Vacant(slot) => {
                slot.insert(i);
                events.push(event);
            }
        }
    }
    events
}

fn parse_headers(
    pairs: &[(String, String)],
    problems: &mut Vec<SubscriptionProblem>,
) -> Vec<Header> {
    if pairs.len() > MAX_HEADERS {
        problems.push(SubscriptionProblem::new(
            "headers".to_owned(),
            format!(
                "must hold at most {MAX_HEADERS} headers, not {}",
                pairs.len()
            ),
        ));
    }
    let mut headers = Vec::with_capacity(pairs.len());
    let mut first_at: HashMap<String, usize> = HashMap::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if let Some(message) = name_problem(name) {
            problems.push(SubscriptionProblem::new(
                format!("headers[{i}].name"),
                message,
            ));
        } else if let Some(&first) = first_at.get(&name.to_ascii_lowercase()) {
            let message = format!(
                "repeats headers[{first}].name (header names are compared without regard to case)"
            );
            problems.push(SubscriptionProblem::new(
                format!("headers[{i}].name"),
                message,
            ));
        } else {
            first_at.insert(name.to_ascii_lowercase(), i);
        }
        if let Some(message) = value_problem(value) {
            problems.push(SubscriptionProblem::new(
                format!("headers[{i}].value"),
                message,
            ));
        }
        // Kept even when wrong: the headers are returned only if nothing was.
        headers.push(Header {
            name: name.clone(),
            value: value.clone(),
        });
    }
    headers
}

/// What is wrong with a header name, if anything.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Some(format!("must be 1 to {MAX_NAME_LEN} bytes long"));
    }
    if let Some(c) = name.chars().find(|&c| !is_tchar(c)) {
        return Some(format!(
            "must be an HTTP token: letters, digits and !#$%&'*+-.^_`|~ (found {})",
            describe(c)
        ));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Some(format!(
            "`{name}` is set by Gridroll or controls the connection, and cannot be set by a subscription"
        ));
    }
    None
}

/// What is wrong with a header value, if anything.
fn value_problem(value: &str) -> Option<String> {
    if value.len() > MAX_VALUE_LEN {
        return Some(format!("must be at most {MAX_VALUE_LEN} bytes long"));
    }
    // A line break would end the header and start another (header injection); anything
    // beyond ASCII is read differently by different servers.
    if let Some(c) = value
        .chars()
        .find(|&c| !(c == '\t' || (' '..='~').contains(&c)))
    {
        return Some(format!(
            "must hold only visible ASCII characters, spaces and tabs (found {})",
            describe(c)
        ));
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Some("must not begin or end with a space or tab".to_owned());
    }
    None
}

/// RFC 9110 §5.6.2 `tchar`, the characters of a header name.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A character named so that a control character or a space shows in a message.
fn describe(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("`{c}`")
    } else {
        format!("U+{:04X}", u32::from(c))
    }
}

/// The start of a client's value, quoted, for a message.
fn echo(text: &str) -> String {
    let start: String = text.chars().take(ECHO_CHARS).collect();
    if start.len() < text.len() {
        format!("{start:?}...")
    } else {
        format!("{start:?}")
    }
}

/// Shows the name only: a header usually carries the receiver's credentials, and a
/// subscription printed in a log must not leak them.
impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name)
            .field("value", &format_args!(".."))
            .finish()
    }
}

#[cfg(test)]
mod tests;
