//! Gridroll's OpenAPI document, served at `/openapi.json`. The `CreateMeter` schema is
//! generated from the domain's schema table, the same table that validates requests, so
//! the document cannot drift from what the server accepts.

use std::sync::LazyLock;

use gridroll_domain::enums::{
    ActionType, CustomerClassification, EnrollmentStatus, LoadType, MeterType,
    ParticipationPreference, TransmissionRegion,
};
use gridroll_domain::job::{AssetStatus, JobStatus, StatusName};
use gridroll_domain::schema::{CREATE_METER, Check, Field, Kind};
use gridroll_domain::scope::Scope;
use serde_json::{Map, Value, json};
use strum::VariantNames;

pub mod docs;
mod webhooks;

/// The whole document, built once.
pub static DOCUMENT: LazyLock<Value> = LazyLock::new(build);

fn build() -> Value {
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Gridroll",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Meter onboarding and demand-response enrollment. The meter and webhook endpoints are compatible with Leap's partner API (create meters v1.1, meters v2, enrollments v2, webhooks v1.1); the event feed, the delivery log and redelivery are Gridroll's own."
        },
        "security": [{"Bearer": []}],
        "paths": merged(paths(), webhooks::paths()),
        "components": {
            "securitySchemes": {
                "Bearer": {"type": "http", "scheme": "bearer", "description": "A partner's API key."},
                "OperatorToken": {"type": "http", "scheme": "bearer", "description": "The operator token (--operator-token)."}
            },
            "schemas": merged(schemas(), webhooks::schemas()),
            "headers": headers(),
        }
    });
    with_scopes(&mut document);
    with_statuses(&mut document);
    document
}

/// A schema that also allows `null`.
fn nullable(schema: &Value) -> Value {
    let mut schema = schema.clone();
    let kind = schema["type"].clone();
    schema["type"] = json!([kind, "null"]);
    schema
}

/// The answers every operation may give beside its own, by what it takes: a body
/// (malformed, too large, of another type, or too slow), an id in its path (malformed or
/// not the partner's), query parameters, a key (missing, over its limit), a change (no
/// storage left), and a fault of the server.
fn with_statuses(document: &mut Value) {
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
fn headers() -> Value {
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
/// changes something with the `Idempotency-Key` it takes, and its 409 and 422.
fn with_scopes(document: &mut Value) {
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
        operation["responses"]["409"] =
            error("A request with the same Idempotency-Key is still being answered.");
        operation["responses"]["422"] = error(
            "The Idempotency-Key was used for another request (method, path, query or body).",
        );
    }
}

/// Two objects' members as one object.
fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn uuid_schema() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_body(schema: Value) -> Value {
    json!({"content": {"application/json": {"schema": schema}}})
}

fn answer(description: &str, schema: Value) -> Value {
    let mut answer = json_body(schema);
    answer["description"] = json!(description);
    answer
}

fn error(description: &str) -> Value {
    answer(description, reference("ErrorResponse"))
}

fn paths() -> Value {
    let uuid_path = |name: &str, description: &str| {
        json!({"name": name, "in": "path", "required": true, "description": description,
               "schema": {"type": "string", "format": "uuid"}})
    };
    let update_existing = json!({
        "name": "update_existing", "in": "query", "required": false,
        "description": "Replace all data of the meter that already has the asset's partner_reference (create it when there is none). Without it, such an asset is a DUPLICATE.",
        "schema": {"type": "boolean", "default": false}
    });
    let common_errors = |ok: (&str, Value)| {
        let mut responses = Map::new();
        responses.insert(ok.0.to_owned(), ok.1);
        responses.insert(
            "400".into(),
            error("The request is invalid; details say why."),
        );
        responses.insert("401".into(), error("No valid API key."));
        Value::Object(responses)
    };
    let mut create_job = common_errors((
        "201",
        answer(
            "The job was accepted; poll it by its id.",
            reference("CreateMeterBatchJobResponse"),
        ),
    ));
    create_job["408"] = error(
        "The body stopped arriving (no byte for the body timeout) or arrived below the minimum rate.",
    );
    create_job["413"] = error("The body (decoded, when gzip) is larger than the configured limit.");
    create_job["415"] = error(
        "The Content-Type is neither application/json nor text/csv, or the Content-Encoding is neither gzip nor identity.",
    );
    create_job["429"] = error(
        "The partner's share of the uploads received at once, or the server's, is taken; retry after the Retry-After seconds.",
    );
    create_job["507"] = error("The server's database has no storage left; nothing was stored.");
    let mut get_job = common_errors((
        "200",
        answer(
            "The job and every asset's status.",
            reference("JobAndAssets"),
        ),
    ));
    get_job["404"] = error("No such job for this partner.");
    let mut get_meter = common_errors((
        "200",
        answer("The meter.", reference("MeterDetailsResponse")),
    ));
    get_meter["404"] = error("No such meter for this partner.");
    let mut get_meter_enrollment = common_errors((
        "200",
        answer(
            "The meter's enrollments.",
            reference("MeterEnrollmentResponse"),
        ),
    ));
    get_meter_enrollment["404"] = error("No such meter for this partner.");

    json!({
        "/v1.1/jobs/meters": {
            "post": {
                "operationId": "createMeterBatchJob",
                "summary": "Create or update meters in bulk",
                "description": "Takes JSON ({\"assets\": [...]}) or a CSV file (text/csv). The whole request is validated first: any problem refuses it with every problem listed, and nothing is stored.",
                "parameters": [
                    update_existing,
                    {"name": "file_name", "in": "query", "required": false,
                     "schema": {"type": "string", "maxLength": 255,
                                "pattern": gridroll_domain::schema::FILE_NAME.source}}
                ],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": {"schema": reference("CreateMeterBatchJobRequest")},
                        "text/csv": {"schema": {"type": "string",
                            "description": "A header row naming fields (leaf names, billing_* for the billing address, or dotted paths), then one meter per row."}}
                    }
                },
                "responses": create_job
            },
            "get": {
                "operationId": "listMeterBatchJobs",
                "summary": "List meter jobs, newest first",
                "parameters": list_parameters(
                    "Keys: status, transmission_region, file_name.",
                    "Fields: file_name, partner_reference (of any asset of the job)."
                ),
                "responses": common_errors(("200", answer("A page of jobs.", reference("PagedJobs"))))
            }
        },
        "/v1.1/jobs/meters/{job_id}": {
            "get": {
                "operationId": "getMeterBatchJob",
                "summary": "Get a job with the status of every asset",
                "parameters": [uuid_path("job_id", "The id returned when the job was created.")],
                "responses": get_job
            }
        },
        "/v1.1/meters": {
            "post": {
                "operationId": "createSingleMeter",
                "summary": "Create or update one meter synchronously",
                "parameters": [update_existing],
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("CreateAssetRequest")}}},
                "responses": {
                    "200": answer("The provisional asset with its outcome.", reference("ProvisionalAsset")),
                    "400": answer("The meter is invalid: every problem, in the contract's details and in Leap's errors.", reference("CreateMeterErrorResponse"))
                }
            }
        },
        "/v2/meters/{meter_id}": {
            "get": {
                "operationId": "getMeterDetails",
                "summary": "Get a meter's details",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "responses": get_meter
            }
        },
        "/v1.1/jobs/meter-job-filters": {
            "get": {
                "operationId": "listMeterBatchJobsFilters",
                "summary": "The filter values that occur in the partner's jobs",
                "responses": common_errors(("200", answer("Filter keys and values.", reference("FilterOptions"))))
            }
        },
        "/v1.1/provisional-assets": {
            "get": {
                "operationId": "listProvisionalAssets",
                "summary": "List provisional assets: newest job first, each job in upload order",
                "description": "With Accept: text/csv, answers every matching row (page_size and page_token do not apply) in the upload layout followed by the status columns job_id, status, status_detail.name, status_detail.description, meter_id, created_at, which an upload reads past: fix the rows and upload the file again.",
                "parameters": list_parameters(
                    "Keys: job_id, status, transmission_region, customer_classification, meter_type, partner_reference.",
                    "Fields: partner_reference, device_serial_number, utility_meter_serial_number, electric_service_account_number, street_1, city, postal_code, end_customer_name, customer_group."
                ),
                "responses": {
                    "200": {
                        "description": "A page of provisional assets, or all of them as CSV.",
                        "content": {
                            "application/json": {"schema": reference("ListProvisionalAssetsResponse")},
                            "text/csv": {"schema": {"type": "string"}}
                        }
                    },
                    "400": answer("An unknown filter key or value, search field, page size or page token; with Leap's message beside.", reference("ValidationErrorResponse")),
                    "401": error("No valid API key.")
                }
            }
        },
        "/v1.1/provisional-assets-filters": {
            "get": {
                "operationId": "listProvisionalAssetsFilters",
                "summary": "The filter values that occur in the partner's provisional assets",
                "responses": common_errors(("200", answer("Filter keys and values.", reference("FilterOptions"))))
            }
        },
        "/v2/meters/search": {
            "post": {
                "operationId": "searchMeterDetails",
                "summary": "Search meters; page through the whole inventory or what changed since an instant",
                "description": "Meters come in creation order. Pages are by key: paging while other uploads land returns every meter that existed when paging began exactly once. Lists match any of their values; all given filters must hold.",
                "requestBody": {"required": false, "content": {"application/json": {"schema": reference("MeterFilterRequest")}}},
                "responses": common_errors(("200", answer("A page of meters.", reference("ListMeterDetailsResponse"))))
            }
        },
        "/v2/meters/{meter_id}/enrollments": {
            "get": {
                "operationId": "getMeterEnrollment",
                "summary": "A meter's enrollment in each program, its participation and the actions required",
                "description": "program_enrollment lists every program the partner may use in the meter's region (and those it left), INELIGIBLE ones with ineligibility_reasons and ELIGIBLE ones with missing_fields (extensions).",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "responses": get_meter_enrollment
            }
        },
        "/v2/meters/enrollments/search": {
            "post": {
                "operationId": "searchMeterEnrollments",
                "summary": "Search meters' enrollments with the filters of the meter search",
                "requestBody": {"required": false, "content": {"application/json": {"schema": reference("MeterFilterRequest")}}},
                "responses": common_errors(("200", answer("A page of meter enrollments.", json!({
                    "type": "object", "required": ["meters"],
                    "properties": {"meters": {"type": "array", "items": reference("MeterEnrollmentResponse")},
                                   "next_page_token": {"type": "string"}}
                }))))
            }
        },
        "/v2/meters/{meter_id}/participation": {
            "post": {
                "operationId": "setParticipation",
                "summary": "Set a meter's participation preference from start_time (to end_time)",
                "description": "IDLE needs an end_time; DISENROLL holds until changed; PARTICIPATE lifts IDLE or DISENROLL in its period. A meter that does not participate during a program's delivery period is NOT_PARTICIPATING there.",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("ParticipationRequest")}}},
                "responses": common_errors(("200", answer("The meter's enrollments after the change.", reference("MeterEnrollmentResponse"))))
            }
        },
        "/v2/meters/participation": {
            "post": {
                "operationId": "setParticipationBulk",
                "summary": "The same participation change for up to 1,000 meters, all or none",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"allOf": [
                    reference("ParticipationRequest"),
                    {"type": "object", "required": ["meter_ids"], "properties": {"meter_ids": {"type": "array", "minItems": 1, "maxItems": 1000, "items": uuid_schema()}}}
                ]}}}},
                "responses": {
                    "200": answer("How many meters changed, and which.", json!({"type": "object", "required": ["updated", "meter_ids"], "properties": {
                        "updated": {"type": "integer", "minimum": 0},
                        "meter_ids": {"type": "array", "items": uuid_schema()}}})),
                    "404": error("Some meters are not the partner's; details list them, and nothing was changed.")
                }
            }
        },
        "/v1.1/programs": {
            "get": {
                "operationId": "listPrograms",
                "summary": "The programs the partner may use: who may join, what each needs, the next delivery period",
                "responses": common_errors(("200", answer("Programs.", json!({"type": "object", "properties": {"programs": {"type": "array", "items": reference("Program")}}}))))
            }
        },
        "/v1.1/programs/{program_identifier}": {
            "get": {
                "operationId": "getProgram",
                "summary": "One program",
                "parameters": [{"name": "program_identifier", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": common_errors(("200", answer("The program.", reference("Program"))))
            }
        },
        "/v1.1/meters/validate": {
            "post": {
                "operationId": "validateMeters",
                "summary": "Dry run of an upload: the problems it would be refused for and, per valid asset, the programs it could join and what each still needs. Stores nothing.",
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": reference("CreateMeterBatchJobRequest")},
                    "text/csv": {"schema": {"type": "string"}}
                }},
                "responses": common_errors(("200", answer("The verdict.", json!({"type": "object", "properties": {
                    "valid": {"type": "boolean"},
                    "problems_count": {"type": "integer"},
                    "problems": {"type": "array", "items": reference("ValidationProblem")},
                    "assets": {"type": "array", "items": {"type": "object", "required": ["partner_reference", "programs"], "properties": {
                        "json_index": {"type": "integer"}, "csv_row": {"type": "integer"},
                        "partner_reference": {"type": "string"},
                        "programs": {"type": "array", "items": {"type": "object", "required": ["program_identifier", "eligible", "ready"], "properties": {
                            "program_identifier": {"type": "string"},
                            "eligible": {"type": "boolean", "description": "The meter may join the program."},
                            "ready": {"type": "boolean", "description": "It has every field the program needs."},
                            "missing_fields": {"type": "array", "items": {"type": "string"}},
                            "ineligibility_reasons": {"type": "array", "items": {"type": "string"}}}}}}}}
                }}))))
            }
        },
        "/operator/v1/programs": {
            "get": {"operationId": "operatorListPrograms", "summary": "Operator: every program, retired ones included", "security": [{"OperatorToken": []}],
                    "responses": {"200": answer("Every program, retired ones included.", json!({"type": "object", "required": ["programs"], "properties": {"programs": {"type": "array", "items": reference("CatalogEntry")}}})), "401": error("Wrong token."), "403": error("The operator API is closed.")}}
        },
        "/operator/v1/programs/{program_identifier}": {
            "put": {"operationId": "operatorPutProgram", "summary": "Operator: add or change a program", "security": [{"OperatorToken": []}],
                    "parameters": [{"name": "program_identifier", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": reference("ProgramDefinition")}}},
                    "responses": {"200": answer("Saved.", reference("CatalogEntry")), "400": error("Invalid definition.")}},
            "delete": {"operationId": "operatorRetireProgram", "summary": "Operator: retire a program", "security": [{"OperatorToken": []}],
                       "parameters": [{"name": "program_identifier", "in": "path", "required": true, "schema": {"type": "string"}}],
                       "responses": {"204": {"description": "Retired."}, "404": error("No such program.")}}
        },
        "/operator/v1/partners/{partner_id}/programs": {
            "put": {"operationId": "operatorSetPartnerPrograms", "summary": "Operator: the programs a partner may use (null: all)", "security": [{"OperatorToken": []}],
                    "parameters": [uuid_path("partner_id", "Partner ID")],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"programs": {"type": ["array", "null"], "items": {"type": "string"}}}}}}},
                    "responses": {"200": answer("The partner's programs.", json!({"type": "object", "required": ["partner_id", "programs"], "properties": {"partner_id": uuid_schema(), "programs": {"type": "array", "items": {"type": "string"}}}}))}}
        },
        "/operator/v1/partners/{partner_id}/keys": {
            "post": {"operationId": "operatorCreateKey", "summary": "Operator: a new API key for a partner, with the scopes given (every scope without them); the key is shown this once", "security": [{"OperatorToken": []}],
                     "parameters": [uuid_path("partner_id", "Partner ID")],
                     "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                         "name": {"type": "string", "minLength": 1, "maxLength": 100},
                         "scopes": {"type": "array", "items": {"type": "string", "enum": Scope::ALL.map(Scope::as_str)}}}}}}},
                     "responses": {
                         "201": answer("The key, shown this once.", json!({"type": "object", "required": ["key_id", "partner_id", "name", "scopes", "api_key"], "properties": {
                             "key_id": uuid_schema(), "partner_id": uuid_schema(), "name": {"type": "string"},
                             "scopes": {"type": "array", "items": {"type": "string"}}, "api_key": {"type": "string"}}})),
                         "400": error("The name or a scope is invalid; details say which."),
                         "401": error("Wrong token."), "403": error("The operator API is closed."),
                         "404": error("No such partner.")}}
        },
        "/operator/v1/partners/{partner_id}/enrollments/activate": {
            "post": {"operationId": "operatorActivate", "summary": "Operator: confirm PENDING enrollments in a program (every meter, or meter_ids)", "security": [{"OperatorToken": []}],
                     "parameters": [uuid_path("partner_id", "Partner ID")],
                     "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["program"], "properties": {"program": {"type": "string"}, "meter_ids": {"type": "array", "items": uuid_schema()}}}}}},
                     "responses": {"200": answer("How many became ACTIVE.", json!({"type": "object", "required": ["program", "activated"], "properties": {"program": {"type": "string"}, "activated": {"type": "integer", "minimum": 0}}}))}}
        },
        "/operator/v1/partners/{partner_id}/enrollments/refresh": {
            "post": {"operationId": "operatorRefresh", "summary": "Operator: evaluate every meter of a partner again", "security": [{"OperatorToken": []}],
                     "parameters": [uuid_path("partner_id", "Partner ID")],
                     "responses": {"200": answer("How many meters changed.", json!({"type": "object", "required": ["changed"], "properties": {"changed": {"type": "integer", "minimum": 0}}}))}}
        },
        "/operator/v1/partners/{partner_id}/meters/import": {
            "post": {"operationId": "operatorImport", "summary": "Operator: import meters from other channels; they may share a partner_reference", "security": [{"OperatorToken": []}],
                     "parameters": [uuid_path("partner_id", "Partner ID")],
                     "requestBody": {"required": true, "content": {"application/json": {"schema": reference("CreateMeterBatchJobRequest")}}},
                     "responses": {"201": answer("The new meters' ids.", json!({"type": "object", "required": ["imported", "meter_ids"], "properties": {"imported": {"type": "integer", "minimum": 0}, "meter_ids": {"type": "array", "items": uuid_schema()}}}))}}
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness: answers 200 while the process serves",
                "security": [],
                "responses": {"200": answer("Alive.", json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}))}
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Answers 200 when the database answers and its schema is this release's",
                "security": [],
                "responses": {
                    "200": answer("Ready.", json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ready"}}})),
                    "503": error("Not ready: the database does not answer, or its schema is another release's.")
                }
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "summary": "This reference as a page, linked from the portal",
                "security": [],
                "responses": {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}}
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "The process's metrics, in Prometheus's text format",
                "security": [],
                "responses": {"200": {"description": "The metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": answer("The OpenAPI document.", json!({"type": "object", "required": ["openapi", "info", "paths"], "properties": {"openapi": {"type": "string"}}}))}
            }
        }
    })
}

/// The query parameters of the list endpoints.
fn list_parameters(filter_keys: &str, search_fields: &str) -> Value {
    json!([
        {"name": "filter", "in": "query", "style": "form", "explode": true,
         "description": format!("key:value1,value2 — all filters must hold; the values of one are alternatives. {filter_keys}"),
         "schema": {"type": "array", "items": {"type": "string"}}},
        {"name": "search_query", "in": "query", "description": "Comma-separated terms, any of which found (ignoring case) in any of search_fields matches.",
         "schema": {"type": "string"}},
        {"name": "search_fields", "in": "query", "style": "form", "explode": true,
         "description": format!("Required with search_query. {search_fields}"),
         "schema": {"type": "array", "items": {"type": "string"}}},
        {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
        {"name": "page_token", "in": "query", "schema": {"type": "string"}}
    ])
}

fn schemas() -> Value {
    let timestamp = json!({"type": "string", "format": "date-time"});
    let uuid = json!({"type": "string", "format": "uuid"});
    let count = json!({"type": "integer", "minimum": 0});
    let job = json!({
        "type": "object",
        "required": ["job_id", "status", "created_at", "updated_at"],
        "properties": {
            "job_id": uuid,
            "status": {"type": "string", "enum": JobStatus::VARIANTS},
            "file_name": {"type": "string"},
            "assets_count": count,
            "assets_created_count": count,
            "assets_updated_count": count,
            "assets_failed_count": count,
            "transmission_regions": {"type": "array", "items": {"type": "string"}},
            "created_at": timestamp,
            "updated_at": timestamp
        }
    });
    let asset_status = json!({
        "type": "object",
        "required": ["partner_reference", "status", "status_detail"],
        "properties": {
            "partner_reference": {"type": "string"},
            "status": {"type": "string", "enum": AssetStatus::VARIANTS},
            "status_detail": {
                "type": "object",
                "description": "Empty while the asset is processing.",
                "properties": {
                    "name": {"type": "string", "enum": StatusName::VARIANTS},
                    "description": {"type": "string"}
                }
            },
            "created_at": timestamp,
            "meter_id": uuid
        }
    });
    json!({
        "CreateMeter": object_schema(CREATE_METER),
        "MeterFields": open_object(object_schema(CREATE_METER)),
        "CreateMeterBatchJobRequest": {
            "type": "object", "required": ["assets"], "additionalProperties": false,
            "properties": {"assets": {"type": "array", "minItems": 1, "items": reference("CreateMeter")}}
        },
        "CreateMeterBatchJobResponse": {"type": "object", "required": ["job_id"], "properties": {"job_id": uuid}},
        "CreateAssetRequest": {
            "type": "object", "required": ["provisional_asset"], "additionalProperties": false,
            "properties": {
                "provisional_asset": reference("CreateMeter"),
                "onboarding_token": {"type": "string", "description": "Accepted for compatibility; not required."}
            }
        },
        "Job": job,
        "PagedJobs": {
            "type": "object", "required": ["jobs"],
            "properties": {
                "jobs": {"type": "array", "items": reference("Job")},
                "next_page_token": {"type": "string", "description": "Absent on the last page."}
            }
        },
        "AssetUploadStatus": asset_status,
        "JobAndAssets": {
            "allOf": [reference("Job"), {"type": "object", "properties": {
                "assets": {"type": "array", "items": reference("AssetUploadStatus")}}}]
        },
        "ProvisionalAsset": {
            "allOf": [reference("AssetUploadStatus"), {"type": "object", "required": ["job_id"], "properties": {
                "job_id": uuid, "data": reference("CreateMeter")}}]
        },
        "MeterDetailsResponse": {
            "unevaluatedProperties": false,
            "allOf": [reference("MeterFields"), {"type": "object",
                "required": ["meter_id", "is_archived", "audit"],
                "properties": {
                    "meter_id": uuid,
                    "is_archived": {"type": "boolean"},
                    "global_enrollment_status": {"type": "string", "enum": EnrollmentStatus::VARIANTS,
                        "description": "As of the meter's last change; GET /v2/meters/{meter_id}/enrollments derives it afresh."},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "connection_references": {"type": "array", "items": {"type": "string"}},
                    "audit": {"type": "object", "properties": {
                        "created_by": {"type": "string", "enum": gridroll_domain::enums::CreatedBy::VARIANTS},
                        "created_at": timestamp,
                        "updated_at": timestamp
                    }}
                }}]
        },
        "MeterFilterRequest": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "page_token": {"type": "string"},
                "page_size": {"type": "integer", "minimum": 1, "maximum": 500, "default": 500},
                "transmission_region": {"type": "string", "enum": TransmissionRegion::VARIANTS},
                "customer_classification": {"type": "string", "enum": CustomerClassification::VARIANTS},
                "meter_ids": {"type": "array", "maxItems": 1000, "items": uuid},
                "partner_references": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "string"}},
                "global_enrollment_statuses": {"type": "array", "minItems": 1, "maxItems": 5, "items": {"type": "string", "enum": EnrollmentStatus::VARIANTS}},
                "meter_types": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "string", "enum": MeterType::VARIANTS}},
                "load_types": {"type": "array", "minItems": 1, "maxItems": 20, "description": "Meters with any of these load types.", "items": {"type": "string", "enum": LoadType::VARIANTS}},
                "customer_groups": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "string"}},
                "tags": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "string"}},
                "last_modified_date_time": {"type": "string", "format": "date-time", "description": "Meters changed at or after this instant."},
                "created_after_date_time": {"type": "string", "format": "date-time", "description": "Meters created at or after this instant."},
                "created_before_date_time": {"type": "string", "format": "date-time", "description": "Meters created before this instant."},
                "partner_action_required": {"type": "boolean", "default": false},
                "exclude_archived": {"type": "boolean", "default": false},
                "connection_reference_ids": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string"}},
                "action_type": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "string", "enum": ActionType::VARIANTS}}
            }
        },
        "ListMeterDetailsResponse": {
            "type": "object", "required": ["meters"],
            "properties": {
                "meters": {"type": "array", "items": reference("MeterDetailsResponse")},
                "next_page_token": {"type": "string", "description": "Absent on the last page."}
            }
        },
        "ListProvisionalAssetsResponse": {
            "type": "object", "required": ["provisional_assets"],
            "properties": {
                "provisional_assets": {"type": "array", "items": reference("ProvisionalAsset")},
                "next_page_token": {"type": "string", "description": "Absent on the last page."}
            }
        },
        "FilterOptions": {
            "type": "object", "required": ["filter_options"],
            "properties": {"filter_options": {"type": "array", "items": {
                "type": "object", "required": ["key", "values"],
                "properties": {"key": {"type": "string"}, "values": {"type": "array", "items": {"type": "string"}}}
            }}}
        },
        "ParticipationRequest": {
            "type": "object", "required": ["participation_preference", "start_time"],
            "properties": {
                "participation_preference": {"type": "string", "enum": ParticipationPreference::VARIANTS},
                "start_time": timestamp,
                "end_time": timestamp,
                "reason": {"type": "string", "maxLength": 500}
            }
        },
        "Program": {
            "type": "object",
            "properties": {
                "program_identifier": {"type": "string"},
                "name": {"type": "string"},
                "transmission_regions": {"type": "array", "items": {"type": "string"}},
                "customer_classifications": {"type": "array", "items": {"type": "string"}, "description": "Empty: any."},
                "meter_types": {"type": "array", "items": {"type": "string"}, "description": "Empty: any."},
                "load_types": {"type": "array", "items": {"type": "string"}, "description": "A meter needs one of these; empty: any."},
                "utilities": {"type": "array", "items": {"type": "string"}, "description": "Empty: any."},
                "required_fields": {"type": "array", "items": {"type": "string"}, "description": "Dotted CreateMeter paths."},
                "conditional_fields": {"type": "array", "items": {"type": "object", "required": ["any_of"], "properties": {
                    "any_of": {"type": "array", "items": {"type": "string"}, "description": "Dotted CreateMeter paths, one of which is needed."},
                    "when": {"type": ["string", "null"], "description": "The condition under which one is needed, in words; null: always."}}}},
                "next_delivery_period": {"type": ["object", "null"], "description": "null: the program has no period ahead.",
                    "required": ["delivery_period", "delivery_period_start_date_time", "delivery_period_end_date_time", "enrollment_deadlines"],
                    "properties": {
                        "delivery_period": {"type": "string"},
                        "delivery_period_start_date_time": timestamp,
                        "delivery_period_end_date_time": timestamp,
                        "enrollment_deadlines": {"type": "array", "items": {"type": "object", "required": ["enrollment_deadline_date_time", "activation_date_time"], "properties": {
                            "enrollment_deadline_date_time": timestamp, "activation_date_time": timestamp}}}}}
            }
        },
        "ProgramDefinition": {
            "type": "object", "additionalProperties": false, "description": "A program of the catalog, as the operator writes it (programs.toml's fields).",
            "required": ["identifier", "name", "transmission_regions", "delivery"],
            "properties": {
                "identifier": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
                "transmission_regions": {"type": "array", "items": {"type": "string", "enum": TransmissionRegion::VARIANTS}},
                "customer_classifications": {"type": "array", "items": {"type": "string", "enum": CustomerClassification::VARIANTS}},
                "meter_types": {"type": "array", "items": {"type": "string", "enum": MeterType::VARIANTS}},
                "load_types": {"type": "array", "items": {"type": "string", "enum": LoadType::VARIANTS}},
                "utilities": {"type": "array", "items": {"type": "string"}},
                "required_fields": {"type": "array", "items": {"type": "string"}},
                "conditional_fields": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["any_of"], "properties": {
                    "any_of": {"type": "array", "items": {"type": "string"}},
                    "when": {"type": "object", "additionalProperties": false, "required": ["field"], "properties": {
                        "field": {"type": "string"}, "after": {"type": "string", "format": "date"},
                        "before": {"type": "string", "format": "date"}, "equals": {"type": "string"}}}}}},
                "delivery": {"type": "object", "additionalProperties": false, "required": ["deadline_days_before"], "properties": {
                    "every": {"type": "string", "enum": ["year", "month"]},
                    "start": {"type": "string", "description": "MM-DD"}, "end": {"type": "string", "description": "MM-DD"},
                    "deadline_days_before": {"type": "integer", "minimum": 0},
                    "activation": {"type": "string", "enum": ["start", "monthly"]},
                    "periods": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["name", "start", "end"], "properties": {
                        "name": {"type": "string"}, "start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"}}}}}}
            }
        },
        "CatalogEntry": {"type": "object", "required": ["definition", "retired"], "properties": {
            "definition": reference("ProgramDefinition"), "retired": {"type": "boolean"}}},
        "MeterEnrollmentResponse": {
            "type": "object",
            "required": ["meter_id", "global_enrollment_status", "program_enrollment", "required_actions", "audit"],
            "properties": {
                "meter_id": uuid,
                "partner_reference": {"type": "string"},
                "transmission_region": {"type": "string", "enum": TransmissionRegion::VARIANTS},
                "global_enrollment_status": {"type": "string", "enum": EnrollmentStatus::VARIANTS},
                "participation_preferences": {"type": "array", "items": {"type": "object", "properties": {
                    "participation_preference": {"type": "string", "enum": ParticipationPreference::VARIANTS},
                    "start_time": timestamp, "end_time": timestamp, "reason": {"type": "string"}
                }}},
                "program_enrollment": {"type": "array", "items": {"type": "object", "properties": {
                    "program_identifier": {"type": "string"},
                    "delivery_period": {"type": "string"},
                    "delivery_period_start_date_time": timestamp,
                    "delivery_period_end_date_time": timestamp,
                    "enrollment_status": {"type": "string", "enum": EnrollmentStatus::VARIANTS},
                    "enrollment_deadlines": {"type": "array", "items": {"type": "object", "properties": {
                        "enrollment_deadline_date_time": timestamp, "activation_date_time": timestamp}}},
                    "ineligibility_reasons": {"type": "array", "items": {"type": "string"}, "description": "Extension: why the meter cannot join."},
                    "missing_fields": {"type": "array", "items": {"type": "string"}, "description": "Extension: what the meter still needs."}
                }}},
                "required_actions": {"type": "object", "properties": {
                    "partner": {"type": "array", "items": reference("RequiredAction")},
                    "leap": {"type": "array", "items": reference("RequiredAction")}
                }}
            }
        },
        "RequiredAction": {
            "type": "object",
            "properties": {
                "program_identifier": {"type": "string"},
                "delivery_period": {"type": "string"},
                "enrollment_deadline_date_time": timestamp,
                "action_type": {"type": "string", "enum": ActionType::VARIANTS},
                "action_description": {"type": "string"},
                "action_code": {"type": "string"}
            }
        },
        "ValidationProblem": {
            "type": "object", "required": ["message"],
            "properties": {
                "message": {"type": "string"},
                "json_index": {"type": "integer", "description": "0-based index in assets."},
                "csv_row": {"type": "integer", "description": "1-based row of the file; the header is row 1."},
                "problem_field": {"type": "string", "description": "Dotted path (JSON) or column name (CSV)."}
            }
        },
        "ValidationErrorResponse": {
            "description": "An error as every operation answers it, with Leap's message (the title again) beside.",
            "allOf": [reference("ErrorResponse"), {"type": "object", "required": ["message"], "properties": {
                "message": {"type": "string"}}}]
        },
        "CreateMeterErrorResponse": {
            "description": "An error as every operation answers it, with Leap's errors beside: one per problem.",
            "allOf": [reference("ErrorResponse"), {"type": "object", "required": ["errors"], "properties": {
                "errors": {"type": "array", "items": {"type": "object", "required": ["description"], "properties": {
                    "field": {"type": "string", "description": "The field in error, dotted within the asset; absent for the body as a whole."},
                    "description": {"type": "string"},
                    "suggestions": {"type": "array", "items": {"type": "object", "properties": {
                        "suggestions": {"type": "array", "items": {"type": "object", "properties": {
                            "field": {"type": "string"}, "suggestion": {"type": "string"}}}}}}}}}}}}]
        },
        "ErrorResponse": {
            "type": "object", "required": ["title", "status", "details"],
            "properties": {
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "details": {"description": "An object, or for refused uploads a list of ValidationProblem.",
                            "oneOf": [{"type": "object"}, {"type": "array", "items": reference("ValidationProblem")}]},
                "request_id": {"type": "string", "description": "The request's id, as its x-request-id header: quote it when reporting a problem."}
            }
        }
    })
}

/// The JSON Schema of an object of the schema table.
pub fn object_schema(fields: &'static [Field]) -> Value {
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| {
            let mut schema = field_schema(f);
            schema["description"] = json!(f.description);
            (f.name.to_owned(), schema)
        })
        .collect();
    let mut schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// A pattern of the domain (Rust's regex syntax) in the ECMA-262 dialect JSON Schema
/// validators read: `\x{C0}` is `\u00C0` there (`\u{1F600}` past four digits, which
/// needs the `u` flag validators use).
fn ecma_pattern(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("\\x{") {
        out.push_str(&rest[..at]);
        let digits_at = at + 3;
        let Some(end) = rest[digits_at..].find('}') else {
            break;
        };
        let digits = &rest[digits_at..digits_at + end];
        if digits.len() <= 4 {
            out.push_str(&format!("\\u{digits:0>4}"));
        } else {
            out.push_str(&format!("\\u{{{digits}}}"));
        }
        rest = &rest[digits_at + end + 1..];
    }
    out.push_str(rest);
    out
}

/// An object schema that other schemas extend (with `allOf`): its own members are
/// checked, and the extension says whether others may follow.
fn open_object(mut schema: Value) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.remove("additionalProperties");
    }
    schema
}

fn field_schema(field: &'static Field) -> Value {
    match &field.kind {
        Kind::Text(text) => {
            let mut schema =
                json!({"type": "string", "minLength": text.min, "maxLength": text.max});
            match &text.check {
                Check::None => {}
                Check::Pattern(p) => schema["pattern"] = json!(ecma_pattern(p.source)),
                Check::Email => schema["format"] = json!("email"),
                Check::NoMojibake => schema["pattern"] = json!("^[^?\u{a0}\u{fffd}]*$"),
            }
            schema
        }
        Kind::Enum(values) => json!({"type": "string", "enum": values}),
        Kind::EnumList(values) => json!({
            "type": "array", "minItems": 1, "uniqueItems": true,
            "items": {"type": "string", "enum": values}
        }),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Number { min, max } => json!({"type": "number", "minimum": min, "maximum": max}),
        Kind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Kind::Date => json!({"type": "string", "format": "date"}),
        Kind::Object(children) => object_schema(children),
        Kind::ObjectList(children) => json!({"type": "array", "items": object_schema(children)}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridroll_domain::schema::LEAVES;

    /// Every `pattern` anywhere in the document.
    fn patterns(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(members) => {
                if let Some(Value::String(pattern)) = members.get("pattern") {
                    found.push(pattern.clone());
                }
                members.values().for_each(|v| patterns(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| patterns(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_pattern_of_the_document_compiles_as_ecma_262() {
        let mut found = Vec::new();
        patterns(&DOCUMENT, &mut found);
        assert!(found.len() >= 5, "{found:?}");
        for pattern in found {
            for flags in ["", "u"] {
                if let Err(e) = regress::Regex::with_flags(&pattern, flags) {
                    panic!("{pattern:?} is not ECMA-262 (flags {flags:?}): {e}");
                }
            }
        }
    }

    #[test]
    fn an_ecma_pattern_matches_what_the_domains_does() {
        let street = gridroll_domain::schema::STREET.source;
        let ecma = regress::Regex::with_flags(&ecma_pattern(street), "u").unwrap();
        let rust = regex::Regex::new(street).unwrap();
        for text in [
            "1 Rue de l’Église",
            "Straße 5",
            "Ærø Vej 2",
            "Main St. #4",
            "a<b",
            "x€",
        ] {
            assert_eq!(ecma.find(text).is_some(), rust.is_match(text), "{text:?}");
        }
        assert_eq!(
            ecma_pattern(r"[\x{C0}-\x{24F}\x{1E00}]"),
            r"[\u00C0-\u024F\u1E00]"
        );
        assert_eq!(ecma_pattern(r"\x{1F600}"), r"\u{1F600}");
    }

    #[test]
    fn every_field_of_the_model_is_in_the_create_meter_schema() {
        let create_meter = &DOCUMENT["components"]["schemas"]["CreateMeter"];
        for leaf in LEAVES.iter() {
            let mut node = create_meter;
            for segment in leaf.path.split('.') {
                node = &node["properties"][segment];
            }
            assert!(node.is_object(), "{} is missing", leaf.path);
            assert!(
                node["description"].is_string(),
                "{} has no description",
                leaf.path
            );
        }
        let site_device =
            &create_meter["properties"]["site"]["properties"]["site_devices"]["items"];
        assert_eq!(site_device["required"], json!(["device_type"]));
        assert_eq!(create_meter["properties"]["load_types"]["minItems"], 1);
        assert_eq!(
            create_meter["properties"]["customer"]["required"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
    }

    /// Every object the document describes says what it holds (only an error's details,
    /// free-form by nature, may be any object).
    #[test]
    fn no_schema_is_a_bare_object() {
        fn walk(value: &Value, at: &str, bare: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    let described = [
                        "properties",
                        "additionalProperties",
                        "allOf",
                        "oneOf",
                        "$ref",
                    ]
                    .iter()
                    .any(|k| map.contains_key(*k));
                    if map.get("type") == Some(&json!("object")) && !described {
                        bare.push(at.to_owned());
                    }
                    for (key, v) in map {
                        walk(v, &format!("{at}/{key}"), bare);
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        walk(v, &format!("{at}/{i}"), bare);
                    }
                }
                _ => {}
            }
        }
        let mut bare = Vec::new();
        walk(&DOCUMENT, "", &mut bare);
        bare.retain(|at| at != "/components/schemas/ErrorResponse/properties/details/oneOf/0");
        assert!(bare.is_empty(), "{bare:#?}");
    }

    #[test]
    fn every_reference_points_at_something_defined() {
        fn walk(value: &Value) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.trim_start_matches('#');
                        assert!(
                            DOCUMENT.pointer(pointer).is_some(),
                            "{target} is not defined"
                        );
                    }
                    map.values().for_each(walk);
                }
                Value::Array(items) => items.iter().for_each(walk),
                _ => {}
            }
        }
        walk(&DOCUMENT);
    }
}
