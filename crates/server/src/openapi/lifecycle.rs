//! The operations of a meter's life after its creation: tags, references, archiving, and
//! Leap's v1.1 enrollment writes (idle periods, disenrollment, participate, the
//! market-registration refresh).

use serde_json::{Value, json};

use super::{answer, error, reference, uuid_schema};

pub(super) fn paths() -> Value {
    let uuid_path = |name: &str, description: &str| {
        json!({"name": name, "in": "path", "required": true, "description": description,
               "schema": {"type": "string", "format": "uuid"}})
    };
    json!({
        "/v1.1/meters/tags": {
            "post": {
                "operationId": "addMeterTags",
                "summary": "Add tags to up to 1,000 meters, all or none",
                "description": "Each meter gets the tags it lacks (a meter has at most 50). Tags are part of the meter's data: they show in its details, its CSV row and search's `tags` filter, and an update with update_existing replaces them. A tag is 1 to 128 letters, digits, inner spaces and ’ ' + # \" @ ( ) / & . - \\; not , ; or |, which separate tags in a CSV cell. A meter that is not the partner's refuses the whole request (404).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("TagsRequest")}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("Meters are not the partner's; details list them, and nothing was changed.")}
            },
            "delete": {
                "operationId": "removeMeterTags",
                "summary": "Remove tags from up to 1,000 meters, all or none",
                "description": "Tags a meter does not have are passed over.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("TagsRequest")}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("Meters are not the partner's; details list them, and nothing was changed.")}
            }
        },
        "/v1.1/meters/{meter_id}/partner_meter_ref": {
            "patch": {
                "operationId": "changePartnerMeterRef",
                "summary": "Change a meter's partner_reference",
                "description": "A reference another active meter of the partner has is refused (409, naming that meter). The change moves audit.updated_at.",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "required": ["partner_reference"], "properties": {"partner_reference": {"type": "string", "minLength": 3, "maxLength": 256}}}}}},
                "responses": {"200": answer("The meter's details after the change.", reference("MeterDetailsResponse")),
                              "409": error("The reference is another meter's; details name it.")}
            }
        },
        "/v1.1/meters/partner_meter_ref": {
            "patch": {
                "operationId": "changePartnerMeterRefs",
                "summary": "Change the partner_reference of up to 1,000 meters, all or none",
                "description": "References are checked against the partner's meters as they are after the request, so two meters may swap theirs in one request. A meter listed twice is a 400.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "required": ["meters"], "properties": {"meters": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
                    "type": "object", "additionalProperties": false, "required": ["meter_id", "partner_reference"], "properties": {"meter_id": uuid_schema(), "partner_reference": {"type": "string", "minLength": 3, "maxLength": 256}}}}}}}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("Meters are not the partner's; details list them, and nothing was changed."),
                              "409": error("References are other meters'; details name them, and nothing was changed.")}
            }
        },
        "/v1.1/meters/archive": {
            "post": {
                "operationId": "archiveMeters",
                "summary": "Archive up to 1,000 meters, all or none (Gridroll's)",
                "description": "An archived meter takes part in no program (each enrollment INELIGIBLE, saying why), is left out by exclude_archived, and holds no claim on its reference: uploads never match it (update_existing or duplicates), so an upload with its reference creates a new meter. Archiving an archived meter is a 409.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("MeterIdsRequest")}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("Meters are not the partner's; nothing was changed."),
                              "409": error("Meters are archived already; details list them, and nothing was changed.")}
            }
        },
        "/v1.1/meters/unarchive": {
            "post": {
                "operationId": "unarchiveMeters",
                "summary": "Bring up to 1,000 archived meters back, all or none (Gridroll's)",
                "description": "A meter is evaluated again against its programs. Its reference must be free: another active meter with it is a 409 naming that meter.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("MeterIdsRequest")}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("Meters are not the partner's; nothing was changed."),
                              "409": error("Meters are not archived, or their reference is another meter's; nothing was changed.")}
            }
        },
        "/v1.1/enrollment/meters/{meter_id}/idle_periods": {
            "get": {
                "operationId": "getIdlePeriods",
                "summary": "A meter's idle periods, in its local dates",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "responses": {"200": answer("The idle periods and the zone of their dates.", reference("MeterIdlePeriods"))}
            },
            "post": {
                "operationId": "createIdlePeriods",
                "summary": "Add idle periods to a meter",
                "description": "Dates are the meter's local dates, both inclusive. Each period overrides the idle or disenrolled time it overlaps. Periods of one request may not overlap each other; one invalid period refuses them all.",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("IdlePeriodsRequest")}}},
                "responses": {"200": answer("The meter's idle periods after the change.", reference("MeterIdlePeriods"))}
            },
            "delete": {
                "operationId": "deleteIdlePeriods",
                "summary": "Remove idle periods of a meter, given by their exact dates",
                "description": "A period the meter does not have, to the day, is a 404 naming it, and nothing is removed.",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("IdlePeriodsRequest")}}},
                "responses": {"200": answer("The meter's idle periods after the change.", reference("MeterIdlePeriods")),
                              "404": error("The meter is not the partner's, or it has no idle period with these dates to the day (details name it); nothing was removed.")}
            }
        },
        "/v1.1/enrollment/meters/idle_periods": {
            "get": {
                "operationId": "getIdlePeriodsBulk",
                "summary": "The idle periods of up to 100 meters",
                "parameters": [{"name": "meter_ids", "in": "query", "required": true, "description": "Meter ids, separated by commas (or the parameter repeated).", "schema": {"type": "string"}}],
                "responses": {"200": answer("Each meter's idle periods.", json!({"type": "object", "required": ["enrollment"], "properties": {"enrollment": {"type": "array", "items": reference("MeterIdlePeriods")}}})),
                              "404": error("Meters are not the partner's; details list them.")}
            },
            "post": {
                "operationId": "createIdlePeriodsBulk",
                "summary": "Add idle periods to up to 1,000 meters: applied if at least one meter can be found",
                "description": "As Leap's: the periods of meters that are not the partner's are discarded (listed in not_found_meter_ids); none found is a 404. One invalid period refuses the whole request. A meter occurs once.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("BulkIdlePeriodsRequest")}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("None of the meters is the partner's.")}
            },
            "delete": {
                "operationId": "deleteIdlePeriodsBulk",
                "summary": "Remove idle periods of up to 1,000 meters, all or none",
                "description": "Each period must match one the meter has to the day; one that does not is a 404 naming it, and nothing is removed. So is a meter that is not the partner's.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("BulkIdlePeriodsRequest")}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("A period or a meter was not found; nothing was removed.")}
            }
        },
        "/v1.1/enrollment/meters/{meter_id}/disenrollment_requests": {
            "post": {
                "operationId": "createDisenrollmentRequest",
                "summary": "Disenroll a meter from a date after its local today, for good",
                "description": "The meter is DISENROLL from the start of disenrollment_date (its local date) until it participates again; a program whose delivery period it leaves no time in, or that is under way past the date, is NOT_PARTICIPATING.",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("DisenrollmentRequest")}}},
                "responses": {"200": answer("The meter's enrollments after the change.", reference("MeterEnrollmentResponse"))}
            }
        },
        "/v1.1/enrollment/meters/disenrollment_requests": {
            "post": {
                "operationId": "createDisenrollmentRequests",
                "summary": "Disenroll up to 1,000 meters, all or none",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"allOf": [reference("DisenrollmentRequest"), reference("MeterIdsRequest")]}}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("Meters are not the partner's; nothing was changed.")}
            }
        },
        "/v1.1/enrollment/meters/{meter_id}/participate": {
            "post": {
                "operationId": "participate",
                "summary": "A meter takes part from a local date on",
                "description": "Idle and disenrolled time from the start of start_date on is lifted.",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference("ParticipateRequest")}}},
                "responses": {"200": answer("The meter's enrollments after the change.", reference("MeterEnrollmentResponse"))}
            }
        },
        "/v1.1/enrollment/meters/participate": {
            "post": {
                "operationId": "participateBulk",
                "summary": "Up to 1,000 meters take part from a local date on, all or none",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"allOf": [reference("ParticipateRequest"), reference("MeterIdsRequest")]}}}},
                "responses": {"200": answer("What changed.", reference("MetersChanged")),
                              "404": error("Meters are not the partner's; nothing was changed.")}
            }
        },
        "/v1.1/enrollment/meters/{meter_id}/market_registration_refresh": {
            "post": {
                "operationId": "refreshMarketRegistration",
                "summary": "Evaluate a CAISO utility meter again against its programs (Gridroll's path)",
                "description": "For CAISO utility meters that are not archived; any other meter is a 400 (an archived one a 409).",
                "parameters": [uuid_path("meter_id", "Meter ID")],
                "responses": {"200": answer("The meter's enrollments after the evaluation.", reference("MeterEnrollmentResponse")),
                              "409": error("The meter is archived.")}
            }
        }
    })
}
