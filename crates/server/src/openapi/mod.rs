//! Gridroll's OpenAPI document, served at `/openapi.json` (and as a page at `/docs`): its
//! paths here, its schemas in `schemas` (the meter's generated from the domain's schema
//! table, the same table that validates requests), and the rules every operation follows
//! in `rules`. Every answer of the integration tests is validated against it.

use std::sync::LazyLock;

use gridroll_domain::scope::Scope;
use serde_json::{Map, Value, json};

pub mod docs;
mod lifecycle;
mod rules;
mod schemas;
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
        "paths": merged(merged(paths(), lifecycle::paths()), webhooks::paths()),
        "components": {
            "securitySchemes": {
                "Bearer": {"type": "http", "scheme": "bearer", "description": "A partner's API key."},
                "OperatorToken": {"type": "http", "scheme": "bearer", "description": "The operator token (--operator-token)."}
            },
            "schemas": merged(schemas::schemas(), webhooks::schemas()),
            "headers": rules::headers(),
        }
    });
    rules::with_scopes(&mut document);
    rules::with_statuses(&mut document);
    document
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
                "parameters": [uuid_path("job_id", "The id returned when the job was created."),
                    {"name": "include_assets", "in": "query", "required": false,
                     "description": "Extension: false answers the job's status and counts without its assets, for following a job's progress.",
                     "schema": {"type": "boolean", "default": true}}],
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
        "/v1.1/programs/{program_identifier}/template": {
            "get": {
                "operationId": "getProgramTemplate",
                "summary": "Extension: a program's CSV template",
                "description": "The columns every meter needs and the columns the program needs, in the upload layout, with one example row the program accepts: a file to start an upload from.",
                "parameters": [{"name": "program_identifier", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": common_errors(("200", json!({
                    "description": "The template, a header row and one example row.",
                    "content": {"text/csv": {"schema": {"type": "string"}}}
                })))
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
