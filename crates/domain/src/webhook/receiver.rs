//! The URL a subscription's deliveries are sent to.

use std::fmt;
use std::net::IpAddr;

use serde::{Serialize, Serializer};
use url::{Host, Url};

use super::address::is_public;
use super::subscription::SubscriptionProblem;

/// The longest receiver URL, in bytes; browsers and proxies commonly stop near here.
const MAX_LEN: usize = 2048;

const FIELD: &str = "receiver_url";

/// An absolute `https` URL (or `http`, where private receivers are allowed) with a host, no
/// credentials and no fragment, whose host, when an IP literal, is public.
///
/// A host *name* is not resolved here: the sender must check every address it connects to
/// with [`is_public`], or a name that resolves to a private address (or is re-pointed to one
/// later) reaches the internal network after all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiverUrl {
    url: Url,
    ip: Option<IpAddr>,
}

impl ReceiverUrl {
    /// Parses a receiver URL. `allow_private` (for development and tests) also admits `http`,
    /// `localhost` and private or loopback IP literals.
    pub fn parse(text: &str, allow_private: bool) -> Result<ReceiverUrl, SubscriptionProblem> {
        if text.len() > MAX_LEN {
            return Err(problem(format!("must be at most {MAX_LEN} bytes long")));
        }
        let url =
            Url::parse(text).map_err(|e| problem(format!("must be an absolute URL ({e})")))?;
        match (url.scheme(), allow_private) {
            ("https", _) | ("http", true) => {}
            ("http", false) => return Err(problem("must use https".to_owned())),
            _ => return Err(problem("must be an https URL".to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(problem(
                "must not contain a user name or password; send credentials in a header".to_owned(),
            ));
        }
        if url.fragment().is_some() {
            return Err(problem("must not contain a fragment (#...)".to_owned()));
        }
        let ip = check_host(url.host(), allow_private)?;
        Ok(ReceiverUrl { url, ip })
    }

    /// The URL in its normalized form (lower-case scheme and host, `/` for an empty path),
    /// which may differ from the text it was parsed from.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The host as written in the URL: a lower-case name, or an IP literal (an IPv6 literal
    /// keeps its brackets; see [`ReceiverUrl::ip_literal`]).
    pub fn host(&self) -> &str {
        // `parse` refuses a URL without a host, so this is never empty.
        self.url.host_str().unwrap_or_default()
    }

    /// The port, or the scheme's default (443 for https, 80 for http).
    pub fn port_or_default(&self) -> u16 {
        self.url
            .port_or_known_default()
            .unwrap_or(if self.url.scheme() == "http" { 80 } else { 443 })
    }

    /// The host's address when the host is an IP literal rather than a name.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        self.ip
    }
}

impl fmt::Display for ReceiverUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialized as its text. There is no `Deserialize`: reading one back must go through
/// [`ReceiverUrl::parse`], which needs to know whether private receivers are allowed.
impl Serialize for ReceiverUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Checks the host, answering its address when it is an IP literal.
fn check_host(
    host: Option<Host<&str>>,
    allow_private: bool,
) -> Result<Option<IpAddr>, SubscriptionProblem> {
    let ip = match host {
        None => return Err(problem("must name a host".to_owned())),
        Some(Host::Domain(name)) => {
            if !allow_private && is_localhost(name) {
                return Err(problem(format!(
                    "must not point at this machine (`{name}`)"
                )));
            }
            return Ok(None);
        }
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if !allow_private && !is_public(ip) {
        return Err(problem(format!(
            "must not point at a private, loopback or otherwise non-public address ({ip})"
        )));
    }
    Ok(Some(ip))
}

/// `localhost` and its subdomains are the loopback interface (RFC 6761), whatever DNS says.
/// The url crate lower-cases names; a trailing dot names the same host.
fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name == "localhost" || name.ends_with(".localhost")
}

fn problem(message: String) -> SubscriptionProblem {
    SubscriptionProblem::new(FIELD.to_owned(), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_public_https_receiver_is_accepted_and_normalized() {
        let url = ReceiverUrl::parse("HTTPS://Hooks.Example.COM/leap?x=1", false)
            .expect("a public https URL");
        assert_eq!(url.as_str(), "https://hooks.example.com/leap?x=1");
        assert_eq!(url.to_string(), url.as_str());
        assert_eq!(url.host(), "hooks.example.com");
        assert_eq!(url.port_or_default(), 443);
        assert_eq!(url.ip_literal(), None);
        assert_eq!(
            serde_json::to_string(&url).ok().as_deref(),
            Some("\"https://hooks.example.com/leap?x=1\"")
        );
    }

    #[test]
    fn ports_and_public_ip_literals_are_reported() {
        let url = ReceiverUrl::parse("https://8.8.8.8:8443/hook", false).expect("public IP");
        assert_eq!(url.port_or_default(), 8443);
        assert_eq!(url.ip_literal(), "8.8.8.8".parse().ok());
        let url = ReceiverUrl::parse("https://[2606:4700:4700::1111]/", false).expect("public");
        assert_eq!(url.host(), "[2606:4700:4700::1111]");
        assert_eq!(url.ip_literal(), "2606:4700:4700::1111".parse().ok());
        let url = ReceiverUrl::parse("http://localhost:3000/", true).expect("allowed");
        assert_eq!(url.port_or_default(), 3000);
        let url = ReceiverUrl::parse("http://10.0.0.5/", true).expect("allowed");
        assert_eq!(url.port_or_default(), 80);
    }

    #[test]
    fn receivers_that_break_a_rule_are_refused_naming_the_field() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_LEN));
        let cases: &[(&str, &str)] = &[
            ("", "absolute URL"),
            ("/relative/path", "absolute URL"),
            ("example.com/hook", "absolute URL"),
            ("https://", "absolute URL"),
            ("http://example.com/", "must use https"),
            ("ftp://example.com/", "https URL"),
            ("mailto:ops@example.com", "https URL"),
            ("https://user:pw@example.com/", "user name or password"),
            ("https://user@example.com/", "user name or password"),
            ("https://example.com/#top", "fragment"),
            ("https://example.com/#", "fragment"),
            ("https://localhost/", "this machine"),
            ("https://LOCALHOST./", "this machine"),
            ("https://api.localhost/", "this machine"),
            ("https://127.0.0.1/", "non-public"),
            ("https://2130706433/", "non-public"),
            ("https://0x7f.1/", "non-public"),
            ("https://0/", "non-public"),
            ("https://169.254.169.254/latest/meta-data", "non-public"),
            ("https://[::1]/", "non-public"),
            ("https://[::ffff:10.0.0.1]/", "non-public"),
            ("https://[fd00::1]/", "non-public"),
            (&long, "2048 bytes"),
        ];
        for (text, expected) in cases {
            let problem = ReceiverUrl::parse(text, false).expect_err(text);
            assert_eq!(problem.field(), "receiver_url");
            assert!(
                problem.to_string().contains(expected),
                "{text:?}: {problem}"
            );
        }
    }

    #[test]
    fn allowing_private_receivers_admits_http_and_local_hosts_but_not_other_rules() {
        for text in [
            "http://localhost:8080/hook",
            "https://api.localhost/",
            "http://127.0.0.1/",
            "http://[::1]:9000/",
            "http://192.168.1.10/",
        ] {
            assert!(ReceiverUrl::parse(text, true).is_ok(), "{text}");
        }
        for text in [
            "ftp://localhost/",
            "http://u:p@localhost/",
            "http://localhost/#x",
        ] {
            assert!(ReceiverUrl::parse(text, true).is_err(), "{text}");
        }
    }

    #[test]
    fn a_localhost_lookalike_is_an_ordinary_name() {
        for text in ["https://localhost.example.com/", "https://mylocalhost/"] {
            assert!(ReceiverUrl::parse(text, false).is_ok(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".*", allow in any::<bool>()) {
            let _ = ReceiverUrl::parse(&text, allow);
        }

        #[test]
        fn an_accepted_receiver_parses_again_to_itself(
            host in "[a-z][a-z0-9-]{0,20}\\.(com|org|energy)",
            path in "(/[a-zA-Z0-9._~-]{0,12}){0,4}",
            port in proptest::option::of(1u16..),
        ) {
            // "xn--" starts a punycode label, which must then decode.
            prop_assume!(!host.starts_with("xn--"));
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = ReceiverUrl::parse(&format!("https://{host}{port}{path}"), false)
                .expect("a valid receiver");
            prop_assert_eq!(ReceiverUrl::parse(url.as_str(), false), Ok(url.clone()));
            prop_assert_eq!(url.host(), host.as_str());
        }
    }
}
