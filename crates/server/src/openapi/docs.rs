//! `/docs`: the API reference as a page, rendered from the OpenAPI document itself (so it
//! says exactly what `/openapi.json` does), with the portal's stylesheet and nothing
//! fetched from elsewhere.

use maud::{DOCTYPE, Markup, html};
use serde_json::{Map, Value};

use super::DOCUMENT;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `GET /docs`
pub async fn page() -> Markup {
    render(&DOCUMENT)
}

fn render(document: &Value) -> Markup {
    let groups = groups(document);
    let schemas = document["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "API reference · Gridroll" }
                link rel="stylesheet" href="/portal/assets/portal.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/portal" { "Gridroll" }
                    nav aria-label="Main" { ul {
                        li { a href="/portal" { "Portal" } }
                        li { a href="/docs" aria-current="page" { "API reference" } }
                        li { a href="/openapi.json" { "openapi.json" } }
                    } }
                }
                main id="main" {
                    h1 { "API reference" }
                    p { (text(&document["info"]["description"])) }
                    p.hint {
                        "Version " (text(&document["info"]["version"])) ". The same reference as "
                        a href="/openapi.json" { "the OpenAPI document" } ", which clients can be generated from. "
                        "Partner operations take an API key as " code { "Authorization: Bearer <key>" }
                        " and need the scope shown; the operator API takes the operator token."
                    }
                    nav aria-labelledby="contents" {
                        h2 id="contents" { "Operations" }
                        @for (group, operations) in &groups {
                            h3 { (group) }
                            ul { @for op in operations {
                                li { a href={ "#" (op.id) } { code { (op.method.to_uppercase()) " " (op.path) } } " " (op.summary) }
                            } }
                        }
                    }
                    @for (group, operations) in &groups {
                        section aria-label=(group) {
                            h2 { (group) }
                            @for op in operations { (operation(op)) }
                        }
                    }
                    section aria-labelledby="schemas" {
                        h2 id="schemas" { "Schemas" }
                        @for (name, schema) in &schemas { (schema_section(name, schema)) }
                    }
                }
            }
        }
    }
}

struct Operation<'a> {
    id: String,
    method: &'a str,
    path: &'a str,
    summary: String,
    body: &'a Value,
}

/// The operations by group: the partner API by tag, then the operator API and the
/// service's own endpoints.
fn groups(document: &Value) -> Vec<(String, Vec<Operation<'_>>)> {
    let mut groups: Vec<(String, Vec<Operation<'_>>)> = Vec::new();
    let Some(paths) = document["paths"].as_object() else {
        return groups;
    };
    for (path, item) in paths {
        for method in METHODS {
            let Some(body) = item.get(method) else {
                continue;
            };
            let group = if path.starts_with("/operator/") {
                "Operator API".to_owned()
            } else if !(path.starts_with("/v1.1/") || path.starts_with("/v2/")) {
                "Service".to_owned()
            } else {
                match body["tags"][0].as_str() {
                    Some(tag) => capitalised(tag),
                    None => "Meters, jobs and enrollments".to_owned(),
                }
            };
            let op = Operation {
                id: body["operationId"]
                    .as_str()
                    .map_or_else(|| format!("{method}-{path}"), str::to_owned),
                method,
                path,
                summary: text(&body["summary"]),
                body,
            };
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, ops)) => ops.push(op),
                None => groups.push((group, vec![op])),
            }
        }
    }
    let rank = |g: &str| match g {
        "Operator API" => 2,
        "Service" => 3,
        _ => 1,
    };
    groups.sort_by_key(|(g, _)| rank(g));
    groups
}

fn operation(op: &Operation<'_>) -> Markup {
    let parameters = op.body["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let responses = op.body["responses"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let request = op.body.pointer("/requestBody/content");
    html! {
        article.operation id=(op.id) {
            h3 { code { (op.method.to_uppercase()) " " (op.path) } }
            p { (op.summary) }
            @if let Some(scope) = op.body["x-scope"].as_str() {
                p { "Scope: " code { (scope) } }
            }
            @if let Some(description) = op.body["description"].as_str() { p { (description) } }
            @if !parameters.is_empty() {
                h4 { "Parameters" }
                div.scroll { table {
                    thead { tr { th { "Name" } th { "In" } th { "Type" } th { "Description" } } }
                    tbody { @for p in &parameters { tr {
                        td { code { (text(&p["name"])) } @if p["required"] == true { " (required)" } }
                        td { (text(&p["in"])) }
                        td { (type_of(&p["schema"])) }
                        td { (text(&p["description"])) }
                    } } }
                } }
            }
            @if let Some(Value::Object(content)) = request {
                h4 { "Body" }
                ul { @for (media, body) in content {
                    li { code { (media) } ": " (type_of(&body["schema"])) }
                } }
            }
            h4 { "Answers" }
            div.scroll { table {
                thead { tr { th { "Status" } th { "Description" } th { "Body" } } }
                tbody { @for (status, response) in &responses { tr {
                    td { (status) }
                    td { (text(&response["description"])) }
                    td { @if let Some(Value::Object(content)) = response.get("content") {
                        @for (media, body) in content { code { (media) } " " (type_of(&body["schema"])) " " }
                    } }
                } } }
            } }
        }
    }
}

fn schema_section(name: &str, schema: &Value) -> Markup {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    html! {
        article.schema id={ "schema-" (name) } {
            h3 { (name) }
            @if let Some(description) = schema["description"].as_str() { p { (description) } }
            @if let Some(parts) = schema["allOf"].as_array() {
                p { "All of: " @for part in parts { (type_of(part)) " " } }
            }
            @if let Some(parts) = schema["oneOf"].as_array() {
                p { "One of: " @for part in parts { (type_of(part)) " " } }
            }
            @if !properties.is_empty() { (property_table(&properties, &required)) }
            @for part in schema["allOf"].as_array().into_iter().flatten() {
                @if let Some(props) = part["properties"].as_object() {
                    (property_table(props, &part["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>()).unwrap_or_default()))
                }
            }
        }
    }
}

fn property_table(properties: &Map<String, Value>, required: &[&str]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Field" } th { "Type" } th { "Description" } } }
            tbody { @for (field, schema) in properties { tr {
                td { code { (field) } @if required.contains(&field.as_str()) { " (required)" } }
                td { (type_of(schema)) }
                td { (text(&schema["description"])) }
            } } }
        } }
    }
}

/// A schema in a few words, with links to the named schemas it uses.
fn type_of(schema: &Value) -> Markup {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.rsplit('/').next().unwrap_or(target);
        return html! { a href={ "#schema-" (name) } { (name) } };
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => String::new(),
    };
    html! {
        @if kind.starts_with("array") {
            "array of " (type_of(&schema["items"]))
        } @else if !kind.is_empty() {
            (kind)
        } @else if schema.get("allOf").or(schema.get("oneOf")).is_some() {
            @for part in schema["allOf"].as_array().or(schema["oneOf"].as_array()).into_iter().flatten() {
                (type_of(part)) " "
            }
        }
        @if let Some(format) = schema["format"].as_str() { " (" (format) ")" }
        @if let Some(pattern) = schema["pattern"].as_str() { " matching " code { (pattern) } }
        @if let Some(values) = schema["enum"].as_array() {
            ": " @for (i, v) in values.iter().enumerate() { @if i > 0 { ", " } code { (text(v)) } }
        }
        @if let Some(value) = schema.get("const") { ": " code { (text(value)) } }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn capitalised(tag: &str) -> String {
    let mut chars = tag.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
