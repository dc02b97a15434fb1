//! Every answer the tests receive through [`super::TestApp::send_with`] is checked
//! against the OpenAPI document the server serves: the operation must list the status,
//! and a JSON body must validate against the schema given for it. So the document cannot
//! drift from what the server answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::{HeaderMap, Method, StatusCode, header};
use serde_json::Value;

type Validators = Mutex<HashMap<String, Arc<jsonschema::Validator>>>;

/// Panics, naming the operation and what differs, when the answer is not what the
/// document says the operation answers. Paths the document does not describe (the
/// portal, unknown routes) and methods a path does not serve are left alone.
pub fn check(method: &Method, uri: &str, status: StatusCode, headers: &HeaderMap, body: &Value) {
    let document = &*gridroll_server::openapi::DOCUMENT;
    let path = uri.split('?').next().unwrap_or(uri);
    let Some((template, item)) = operation_path(document, path) else {
        return;
    };
    let Some(operation) = item.get(method.as_str().to_ascii_lowercase()) else {
        return;
    };
    let responses = &operation["responses"];
    let Some(response) = responses.get(status.as_str()) else {
        panic!(
            "{method} {template} answered {status}, which the document does not list \
             (it lists {:?}): {body}",
            responses.as_object().map(|r| r.keys().collect::<Vec<_>>())
        );
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !is_json {
        return;
    }
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        panic!("{method} {template} {status} answers JSON the document does not describe: {body}");
    };
    let validator = validator(&format!("{method} {template} {status}"), schema, document);
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("  {} (at {})", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {uri} {status}: the answer does not match the document:\n{}\n{body}",
        errors.join("\n")
    );
}

/// The document's path that `path` is an instance of, preferring the one with the most
/// literal segments (`/v2/meters/search` over `/v2/meters/{meter_id}`).
fn operation_path<'a>(document: &'a Value, path: &str) -> Option<(&'a str, &'a Value)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    document["paths"]
        .as_object()?
        .iter()
        .filter_map(|(template, item)| {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') {
                    continue;
                }
                if part != segment {
                    return None;
                }
                literal += 1;
            }
            Some((literal, template.as_str(), item))
        })
        .max_by_key(|(literal, _, _)| *literal)
        .map(|(_, template, item)| (template, item))
}

/// A validator of `schema`, whose references point into the document's components.
fn validator(key: &str, schema: &Value, document: &Value) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Validators> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().unwrap().get(key) {
        return found.clone();
    }
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("the document's schema for {key} does not compile: {e}"));
    let validator = Arc::new(validator);
    cache
        .lock()
        .unwrap()
        .insert(key.to_owned(), validator.clone());
    validator
}
