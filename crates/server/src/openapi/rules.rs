//! The rules every operation of the document follows, applied to the whole of it once
//! it is built: the scope each partner operation needs, the answers each may give by what
//! it takes, the headers answers carry, and what may be null.

use serde_json::{Value, json};

use super::error;

/// A schema that also allows `null`.
pub(super) fn nullable(schema: &Value) -> Value {
    let mut schema = schema.clone();
    let kind = schema["type"].clone();
    schema["type"] = json!([kind, "null"]);
    schema
}

/// The answers every operation may give beside its own, by what it takes: a body
/// (malformed, too large, of another type, or too slow), an id in its path (malformed or
/// not the partner's), query parameters, a key (missing, over its limit), a change (no
/// storage left), and a fault of the server.
pub(super) fn with_statuses(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        let partner = path.starts_with("/v1.1/") || path.starts_with("/v2/");
        let operator = path.starts_with("/operator/");
        for (method, operation) in operations.iter_mut() {
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let takes = |place: &str| parameters.iter().any(|p| p["in"] == place);
            let mut statuses: Vec<(&str, &str)> = Vec::new();
            if operation.get("requestBody").is_some() {
                statuses.extend([
                    ("400", "The body is invalid; details say where and why."),
                    ("408", "The body stopped arriving, or arrived too slowly."),
                    ("413", "The body is larger than the operation takes."),
                    ("415", "The body's Content-Type or Content-Encoding is not one the operation takes."),
                ]);
            }
            if takes("path") {
                statuses.extend([
                    ("400", "An id in the path is malformed."),
                    ("404", "No such object for this partner."),
                ]);
            }
            if takes("query") {
                statuses.push(("400", "A query parameter is invalid; details name it."));
            }
            if partner || operator {
                statuses.extend([
                    ("401", "No valid key or token."),
                    (
                        "500",
                        "A fault of the server; details carry a reference to report.",
                    ),
                ]);
            }
            if partner {
                statuses.push(("429", "The key made too many requests in this window; retry after the Retry-After seconds."));
            }
            if operator {
                statuses.push(("403", "The operator API is closed (no --operator-token)."));
            }
            if method != "get" && (partner || operator) {
                statuses.push(("507", "The server has no storage left; nothing was stored."));
            }
            let responses = operation["responses"]
                .as_object_mut()
                .expect("every operation has answers");
            for (status, description) in statuses {
                responses
                    .entry(status)
                    .or_insert_with(|| error(description));
            }
            let changes = operation_changes(path, method);
            for (status, response) in responses.iter_mut() {
                let mut headers = vec!["x-request-id"];
                if partner {
                    headers.extend(["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]);
                }
                if status == "429" {
                    headers.push("Retry-After");
                }
                if changes && status.starts_with('2') {
                    headers.push("Idempotent-Replayed");
                }
                for name in headers {
                    response["headers"][name] =
                        json!({"$ref": format!("#/components/headers/{name}")});
                }
            }
        }
    }
}

/// Whether a partner operation changes something (and so takes an `Idempotency-Key`).
fn operation_changes(path: &str, method: &str) -> bool {
    let method = axum::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes());
    method
        .ok()
        .and_then(|m| crate::auth::scope_of(&m, path))
        .is_some_and(crate::idempotency::changes)
}

/// The headers answers carry, described once.
pub(super) fn headers() -> Value {
    let integer = json!({"type": "integer", "minimum": 0});
    json!({
        "x-request-id": {"description": "The request's id: the client's own when it sent 1 to 128 visible ASCII characters, a new UUID otherwise. Every error body repeats it as request_id.", "schema": {"type": "string"}},
        "RateLimit-Limit": {"description": "Requests the API key may make in each window (per process).", "schema": integer},
        "RateLimit-Remaining": {"description": "Requests left in the current window.", "schema": integer},
        "RateLimit-Reset": {"description": "Seconds until the current window ends.", "schema": integer},
        "Retry-After": {"description": "Seconds to wait before trying again.", "schema": integer},
        "Idempotent-Replayed": {"description": "true when the answer is that of an earlier request with the same Idempotency-Key.", "schema": {"type": "string", "enum": ["true"]}}
    })
}

/// Marks each partner operation with the scope its key needs (as its security
/// requirement's role, and as `x-scope`), from the table
/// the router's guard reads, and the 403 a key without it gets; each operation that
/// changes something with the `Idempotency-Key` it takes, and its 409 (beside the
/// operation's own) and 422.
pub(super) fn with_scopes(document: &mut Value) {
    for (method, route, scope) in crate::auth::OPERATIONS {
        let Some(operation) = document["paths"]
            .get_mut(*route)
            .and_then(|path| path.get_mut(method.to_lowercase()))
        else {
            continue;
        };
        // OpenAPI 3.1 lets a scheme other than OAuth name the roles an operation needs.
        operation["security"] = json!([{"Bearer": [scope.as_str()]}]);
        operation["x-scope"] = json!(scope.as_str());
        operation["responses"]["403"] = error(&format!(
            "The API key lacks the scope {scope}; details name it."
        ));
        if !crate::idempotency::changes(*scope) {
            continue;
        }
        let key = json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes the request safe to retry for 24 hours: a repeat (same method, path, query and body) gets the first answer again, with `Idempotent-Replayed: true`. 1 to 255 visible ASCII characters, the partner's own.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255}
        });
        match operation["parameters"].as_array_mut() {
            Some(parameters) => parameters.push(key),
            None => operation["parameters"] = json!([key]),
        }
        // An operation's own conflicts stay described; the key's is one more.
        let conflict = match operation["responses"]["409"]["description"].as_str() {
            Some(own) => {
                format!("{own} Or a request with the same Idempotency-Key is still being answered.")
            }
            None => "A request with the same Idempotency-Key is still being answered.".to_owned(),
        };
        operation["responses"]["409"] = error(&conflict);
        operation["responses"]["422"] = error(
            "The Idempotency-Key was used for another request (method, path, query or body).",
        );
    }
}
