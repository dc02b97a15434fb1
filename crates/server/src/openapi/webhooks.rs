//! The webhook subscriptions, their deliveries and the event feed in the document: the
//! event types listed from the domain's own list, so that the document names exactly
//! the types the server accepts.

use gridroll_domain::enums::{
    EnrollmentStatus, MeterType, ParticipationPreference, TransmissionRegion,
};
use gridroll_domain::job::JobStatus;
use gridroll_domain::webhook::EventType;
use serde_json::{Value, json};
use strum::VariantNames;

use super::rules::nullable;
use super::{answer, error, reference, uuid_schema};

fn webhook_path() -> Value {
    json!({"name": "webhook_id", "in": "path", "required": true, "description": "The ID of the webhook.",
           "schema": uuid_schema()})
}

fn body(name: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": reference(name)}}})
}

/// The answers every webhook operation may give, beside its own.
fn responses(ok: (&str, Value), found: bool) -> Value {
    let mut responses = json!({
        "400": error("The request is invalid; details say which field and why."),
        "401": error("No valid API key."),
    });
    responses[ok.0] = ok.1;
    if found {
        responses["404"] = error("No such webhook (or event) for this partner.");
    }
    responses
}

pub fn paths() -> Value {
    let id = webhook_path();
    json!({
        "/v1.1/webhooks": {
            "get": {"operationId": "listWebhooks", "summary": "List webhooks", "tags": ["webhooks"],
                    "responses": responses(("200", answer("List of webhooks", reference("WebhookListResponse"))), false)},
            "post": {"operationId": "createWebhook", "summary": "Create a webhook: the answer carries its signing secret, shown this once", "tags": ["webhooks"],
                     "requestBody": body("WebhookRequest"),
                     "responses": responses(("200", answer("Webhook created successfully", reference("WebhookCreatedResponse"))), false)}
        },
        "/v1.1/webhooks/{webhook_id}": {
            "get": {"operationId": "getWebhook", "summary": "One webhook", "tags": ["webhooks"], "parameters": [id],
                    "responses": responses(("200", answer("The webhook", reference("Webhook"))), true)},
            "put": {"operationId": "updateWebhook", "summary": "Overwrite every setting of a webhook, and enable it again", "tags": ["webhooks"],
                    "parameters": [id], "requestBody": body("WebhookRequest"),
                    "responses": responses(("200", answer("Webhook updated", reference("WebhookResponse"))), true)},
            "delete": {"operationId": "deleteWebhook", "summary": "Delete a webhook, its deliveries and its log", "tags": ["webhooks"], "parameters": [id],
                       "responses": responses(("200", answer("Operation completed successfully", reference("SuccessResponse"))), true)}
        },
        "/v1.1/webhooks/{webhook_id}/test": {
            "post": {"operationId": "testWebhook", "summary": "Send a test event, signed, to the receiver; nothing is recorded", "tags": ["webhooks"],
                     "parameters": [id], "requestBody": body("WebhookEventPayload"),
                     "responses": responses(("200", answer("How the receiver answered", reference("TestWebhookResponse"))), true)}
        },
        "/v1.1/webhooks/{webhook_id}/rotate-secret": {
            "post": {"operationId": "rotateWebhookSecret", "summary": "A new signing secret, shown this once; the old one keeps signing beside it for the overlap (24 h by default)", "tags": ["webhooks"],
                     "parameters": [id],
                     "responses": responses(("200", answer("The new secret", reference("WebhookCreatedResponse"))), true)}
        },
        "/v1.1/webhooks/{webhook_id}/enable": {
            "post": {"operationId": "enableWebhook", "summary": "Enable a webhook disabled because its deliveries kept failing; it takes up the events from now on", "tags": ["webhooks"],
                     "parameters": [id],
                     "responses": responses(("200", answer("The webhook", reference("Webhook"))), true)}
        },
        "/v1.1/webhooks/{webhook_id}/deliveries": {
            "get": {"operationId": "listWebhookDeliveries", "summary": "The delivery log: every attempt, newest first", "tags": ["webhooks"],
                    "parameters": [id,
                        {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
                        {"name": "page_token", "in": "query", "schema": {"type": "string"}}],
                    "responses": responses(("200", answer("Attempts", reference("WebhookDeliveryList"))), true)}
        },
        "/v1.1/webhooks/{webhook_id}/events/{webhook_event_id}/redeliver": {
            "post": {"operationId": "redeliverWebhookEvent", "summary": "Send an event this webhook had again, at once", "tags": ["webhooks"],
                     "parameters": [id, {"name": "webhook_event_id", "in": "path", "required": true, "schema": uuid_schema()}],
                     "responses": responses(("202", answer("Queued", reference("SuccessResponse"))), true)}
        },
        "/v1.1/webhooks/{webhook_id}/recover": {
            "post": {"operationId": "recoverWebhook", "summary": "Send again every delivery that ended failed since a time (at most 10,000 a request)", "tags": ["webhooks"],
                     "parameters": [id],
                     "requestBody": {"required": true, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["since"], "additionalProperties": false,
                         "properties": {"since": {"type": "string", "format": "date-time"}}}}}},
                     "responses": responses(("202", answer("How many were queued", json!({"type": "object", "properties": {
                         "queued": {"type": "integer"}, "more": {"type": "boolean", "description": "More may be left: ask again."}}}))), true)}
        },
        "/v1.1/events": {
            "get": {"operationId": "listEvents", "summary": "The partner's events in commit order, oldest first, kept for the retention (30 days by default)", "tags": ["events"],
                    "parameters": [
                        {"name": "after", "in": "query", "description": "The next_cursor of the previous page; none: from the oldest kept.", "schema": {"type": "string"}},
                        {"name": "event_types", "in": "query", "description": "Comma-separated event types.", "schema": {"type": "string"}},
                        {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}],
                    "responses": responses(("200", answer("Events", reference("EventFeedPage"))), false)}
        }
    })
}

pub fn schemas() -> Value {
    let timestamp = json!({"type": "string", "format": "date-time"});
    let event_type = json!({"type": "string", "enum": EventType::ALL.map(EventType::as_str)});
    let header = json!({"type": "object", "required": ["name", "value"],
                        "properties": {"name": {"type": "string"}, "value": {"type": "string"}}});
    let meter = json!({
        "meter_id": uuid_schema(),
        "partner_reference": {"type": "string"},
        "transmission_region": {"type": "string", "enum": TransmissionRegion::VARIANTS},
        "meter_type": {"type": "string", "enum": MeterType::VARIANTS},
    });
    let with = |event: EventType, extra: Value, required: &[&str]| {
        let mut properties = meter.clone();
        if let (Some(p), Value::Object(extra)) = (properties.as_object_mut(), extra) {
            p.extend(extra);
        }
        properties["webhook_event_type"] = json!({"type": "string", "const": event.as_str()});
        let mut all = vec!["webhook_event_type", "meter_id", "transmission_region"];
        all.extend(required);
        json!({"type": "object", "required": all, "properties": properties})
    };
    let status = json!({"type": "string", "enum": EnrollmentStatus::VARIANTS});
    json!({
        "WebhookRequest": {"type": "object", "required": ["event_types", "receiver_url"], "additionalProperties": false, "properties": {
            "receiver_url": {"type": "string", "description": "https, on a public address (unless the operator allows private ones)."},
            "event_types": {"type": "array", "items": event_type, "minItems": 1, "uniqueItems": true},
            "headers": {"type": "array", "maxItems": 20, "items": header, "description": "Sent with every delivery; names unique, none of Gridroll's own (webhook-*, content-type, host, ...)."}
        }},
        "Webhook": {"type": "object", "required": ["webhook_id", "event_types", "headers", "receiver_url"], "properties": {
            "webhook_id": uuid_schema(), "receiver_url": {"type": "string"},
            "event_types": {"type": "array", "items": event_type},
            "headers": {"type": "array", "items": header},
            "status": {"type": "string", "enum": ["ENABLED", "DISABLED"]},
            "disabled_at": nullable(&timestamp), "failing_since": nullable(&timestamp),
            "created_at": timestamp, "updated_at": timestamp
        }},
        "WebhookListResponse": {"type": "object", "required": ["webhooks"], "properties": {"webhooks": {"type": "array", "items": reference("Webhook")}}},
        "WebhookResponse": {"type": "object", "required": ["webhook_id"], "properties": {"webhook_id": uuid_schema()}},
        "WebhookCreatedResponse": {"type": "object", "required": ["webhook_id", "secret"], "properties": {
            "webhook_id": uuid_schema(),
            "secret": {"type": "string", "description": "whsec_ and the base64 of the signing key: verify deliveries with it (Standard Webhooks)."}}},
        "SuccessResponse": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
        "TestWebhookResponse": {"type": "object", "required": ["is_successful"], "properties": {
            "is_successful": {"type": "boolean"}, "error": {"type": "string"},
            "status_code": {"type": "integer"}, "response_time_ms": {"type": "integer"}}},
        "WebhookDeliveryList": {"type": "object", "required": ["deliveries"], "properties": {
            "deliveries": {"type": "array", "items": {"type": "object", "properties": {
                "webhook_event_id": uuid_schema(), "webhook_event_type": event_type,
                "attempt": {"type": "integer"}, "attempted_at": timestamp,
                "is_successful": {"type": "boolean"}, "status_code": {"type": ["integer", "null"]},
                "response_time_ms": {"type": "integer"}, "response": {"type": "string", "description": "The first KB of the answer."},
                "error": {"type": ["string", "null"]},
                "delivery_status": {"type": "string", "enum": ["PENDING", "SUCCEEDED", "FAILED"]},
                "next_attempt_at": {"type": ["string", "null"], "format": "date-time"}}}},
            "next_page_token": {"type": ["string", "null"]}}},
        "WebhookEventPayload": {
            "description": "The payload of an event: its webhook_event_type, and that type's fields.",
            "oneOf": [reference("MeterCreatedEvent"), reference("MeterUpdatedEvent"),
                      reference("MeterEnrollmentGlobalStatusUpdatedEvent"),
                      reference("MeterEnrollmentParticipationStatusUpdatedEvent"),
                      reference("MeterEnrollmentRequiredActionsUpdatedEvent"), reference("JobCompletedEvent")],
            "discriminator": {"propertyName": "webhook_event_type", "mapping": {
                "meter.created": "#/components/schemas/MeterCreatedEvent",
                "meter.updated": "#/components/schemas/MeterUpdatedEvent",
                "meter.enrollment.global-status.updated": "#/components/schemas/MeterEnrollmentGlobalStatusUpdatedEvent",
                "meter.enrollment.participation-status.updated": "#/components/schemas/MeterEnrollmentParticipationStatusUpdatedEvent",
                "meter.enrollment.required-actions.updated": "#/components/schemas/MeterEnrollmentRequiredActionsUpdatedEvent",
                "job.completed": "#/components/schemas/JobCompletedEvent"}}
        },
        "WebhookDelivery": {"type": "object", "required": ["webhook_event_id", "payload"], "description": "The body of every delivery, signed with the webhook-id, webhook-timestamp and webhook-signature headers (Standard Webhooks).",
            "properties": {"webhook_event_id": uuid_schema(), "payload": reference("WebhookEventPayload")}},
        "MeterCreatedEvent": with(EventType::MeterCreated, json!({}), &[]),
        "MeterUpdatedEvent": with(EventType::MeterUpdated, json!({}), &[]),
        "MeterEnrollmentGlobalStatusUpdatedEvent": with(EventType::EnrollmentGlobalStatusUpdated, json!({"global_enrollment_status": status}), &["global_enrollment_status"]),
        "MeterEnrollmentParticipationStatusUpdatedEvent": with(EventType::EnrollmentParticipationStatusUpdated, json!({
            "participation_preference": {"type": "string", "enum": ParticipationPreference::VARIANTS},
            "start_time": timestamp, "end_time": timestamp}), &["participation_preference", "start_time"]),
        "MeterEnrollmentRequiredActionsUpdatedEvent": with(EventType::EnrollmentRequiredActionsUpdated, json!({
            "global_enrollment_status": status,
            "required_actions": {"type": "object", "properties": {"partner": {"type": "array", "items": reference("RequiredAction")}}}}),
            &["global_enrollment_status", "required_actions"]),
        "JobCompletedEvent": {"type": "object", "required": ["webhook_event_type", "job_id", "status"], "properties": {
            "webhook_event_type": {"type": "string", "const": EventType::JobCompleted.as_str()}, "job_id": uuid_schema(),
            "status": {"type": "string", "enum": JobStatus::VARIANTS},
            "assets_count": {"type": "integer"}, "created_count": {"type": "integer"},
            "updated_count": {"type": "integer"}, "failed_count": {"type": "integer"}}},
        "EventFeedPage": {"type": "object", "required": ["events", "next_cursor"], "properties": {
            "events": {"type": "array", "items": {"type": "object", "required": ["webhook_event_id", "created_at", "payload"], "properties": {
                "webhook_event_id": uuid_schema(), "created_at": timestamp, "payload": reference("WebhookEventPayload")}}},
            "next_cursor": {"type": "string", "description": "Where the next page starts; kept and used later when nothing follows yet."},
            "has_more": {"type": "boolean", "description": "Events follow already: ask again at once."}}}
    })
}
