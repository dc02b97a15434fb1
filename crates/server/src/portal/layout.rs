//! The frame around every page: head, navigation, sign-out, and small formatting helpers.

use gridroll_domain::timestamp::from_millis;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use time::macros::format_description;

use super::session::SignedIn;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Upload,
    Jobs,
    Meters,
    Programs,
    Keys,
    Webhooks,
    Users,
    /// The signed-in user's own account (linked from their email in the header).
    Account,
}

const SECTIONS: &[(Section, &str, &str, bool)] = &[
    (Section::Dashboard, "/portal", "Dashboard", false),
    (Section::Upload, "/portal/upload", "Upload", false),
    (Section::Jobs, "/portal/jobs", "Jobs", false),
    (Section::Meters, "/portal/meters", "Meters", false),
    (Section::Programs, "/portal/programs", "Programs", false),
    (Section::Keys, "/portal/keys", "API keys", true),
    (Section::Webhooks, "/portal/webhooks", "Webhooks", true),
    (Section::Users, "/portal/users", "Users", true),
];

fn head(title: &str, extra: Markup) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Gridroll" }
            link rel="icon" type="image/svg+xml" href="/portal/assets/favicon.svg";
            link rel="stylesheet" href="/portal/assets/portal.css";
            script src="/portal/assets/portal.js" defer {}
            (extra)
        }
    }
}

/// A page of a signed-in user.
pub fn page(title: &str, who: &SignedIn, current: Section, main: Markup) -> Markup {
    page_with_head(title, who, current, html! {}, main)
}

/// A page with extra head elements (a refresh while a job runs).
pub fn page_with_head(
    title: &str,
    who: &SignedIn,
    current: Section,
    extra_head: Markup,
    main: Markup,
) -> Markup {
    let admin = who.is_admin();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, extra_head))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/portal" { "Gridroll" }
                    nav aria-label="Main" {
                        ul {
                            @for (section, href, label, admin_only) in SECTIONS {
                                @if admin || !admin_only {
                                    li {
                                        a href=(href) aria-current=[(*section == current).then_some("page")] { (label) }
                                    }
                                }
                            }
                            li { a href="/docs" { "API reference" } }
                        }
                    }
                    form.sign-out method="post" action="/portal/sign-out" {
                        (who.csrf_field())
                        a.who href="/portal/account" title="Your account and password" aria-current=[(current == Section::Account).then_some("page")] { (who.user.email) }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" { (main) }
            }
        }
    }
}

/// A page outside the signed-in frame (sign-in, errors, invitations).
pub fn bare(title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, html! {}))
            body {
                header.top { a.brand href="/portal" { "Gridroll" } }
                main id="main" class="narrow" { (main) }
            }
        }
    }
}

/// The head of a table whose rows end with actions: a column per name, then one for the
/// row's buttons, named for screen readers only.
pub fn heads_with_actions(names: &[&str]) -> Markup {
    html! {
        thead { tr {
            @for name in names {
                th scope="col" { (name) }
            }
            th scope="col" { span.visually-hidden { "Actions" } }
        } }
    }
}

/// A stored instant as `2026-11-27 14:05 UTC`.
pub fn when(millis: i64) -> String {
    from_millis(millis)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A status as a badge; the class picks its colour.
pub fn badge(status: &str) -> Markup {
    html! { span class={ "badge " (status.to_lowercase()) } { (status.replace('_', " ")) } }
}

/// A labelled filter that picks one of `values`, or any of them; `chosen` is the value
/// picked so far (empty for any).
pub fn choice(name: &str, label: &str, values: &[&str], chosen: &str) -> Markup {
    html! {
        div {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                option value="" { "Any" }
                @for value in values {
                    option value=(value) selected[chosen == *value] { (value.replace('_', " ")) }
                }
            }
        }
    }
}

/// A query string from pairs, skipping empty values.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        serializer.append_pair(key, value);
    }
    let query = serializer.finish();
    if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    }
}

/// Text as-is inside markup that must not be escaped (an SVG we built).
pub fn raw(text: String) -> PreEscaped<String> {
    PreEscaped(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn queries_skip_empty_values_and_escape_the_rest() {
        assert_eq!(query(&[("q", ""), ("status", "")]), "");
        assert_eq!(query(&[("q", "a b&c"), ("x", "")]), "?q=a+b%26c");
    }
}
