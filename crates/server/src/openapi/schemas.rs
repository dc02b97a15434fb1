//! The document's schemas: the meter's, generated from the domain's schema table (the
//! same table that validates requests), and those of every answer.

use gridroll_domain::enums::{
    ActionType, CustomerClassification, EnrollmentStatus, LoadType, MeterType,
    ParticipationPreference, TransmissionRegion,
};
use gridroll_domain::job::{AssetStatus, JobStatus, StatusName};
use gridroll_domain::schema::{CREATE_METER, Check, Field, Kind, Text};
use serde_json::{Map, Value, json};
use strum::VariantNames;

use super::reference;

/// The schemas of the meter, job, enrollment and error answers (the webhooks' are with
/// their paths).
pub(super) fn schemas() -> Value {
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
        "TagsRequest": {"type": "object", "additionalProperties": false, "required": ["meter_ids", "tags"], "properties": {
            "meter_ids": {"type": "array", "minItems": 1, "maxItems": 1000, "items": uuid},
            "tags": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 128}}}},
        "MeterIdsRequest": {"type": "object", "required": ["meter_ids"], "properties": {
            "meter_ids": {"type": "array", "minItems": 1, "maxItems": 1000, "items": uuid}}},
        "IdlePeriodsRequest": {"type": "object", "additionalProperties": false, "required": ["idle_periods"], "properties": {
            "idle_periods": {"type": "array", "minItems": 1, "maxItems": 100, "items": reference("IdlePeriod")}}},
        "BulkIdlePeriodsRequest": {"type": "object", "additionalProperties": false, "required": ["enrollment"], "properties": {
            "enrollment": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "object", "additionalProperties": false, "required": ["meter_id", "idle_periods"], "properties": {
                "meter_id": uuid, "idle_periods": {"type": "array", "minItems": 1, "maxItems": 100, "items": reference("IdlePeriod")}}}}}},
        "DisenrollmentRequest": {"type": "object", "required": ["disenrollment_date", "reason"], "properties": {
            "disenrollment_date": {"type": "string", "format": "date", "description": "The meter's local date from which it is disenrolled; after its today, at most 9998-12-31."},
            "reason": {"type": "string", "minLength": 1, "maxLength": 500}}},
        "ParticipateRequest": {"type": "object", "required": ["start_date"], "properties": {
            "start_date": {"type": "string", "format": "date", "description": "The meter's local date from which it takes part, from 1970-01-01 to 9998-12-31."}}},
        "IdlePeriod": {"type": "object", "additionalProperties": false, "required": ["start_date", "end_date"], "properties": {
            "start_date": {"type": "string", "format": "date", "description": "The first day, in the meter's local time, from 1970-01-01 to 9998-12-31."},
            "end_date": {"type": "string", "format": "date", "description": "The last day (inclusive), in the meter's local time, at most 9998-12-31."},
            "reason": {"type": "string", "maxLength": 500}}},
        "MeterIdlePeriods": {"type": "object", "required": ["meter_id", "time_zone", "idle_periods"], "properties": {
            "meter_id": uuid,
            "time_zone": {"type": "string", "description": "The IANA zone the meter's dates are in, from its state or province (else its region)."},
            "idle_periods": {"type": "array", "items": reference("IdlePeriod")}}},
        "MetersChanged": {"type": "object", "required": ["updated", "meter_ids", "unchanged_meter_ids", "not_found_meter_ids"], "properties": {
            "updated": {"type": "integer", "minimum": 0, "description": "How many meters changed."},
            "meter_ids": {"type": "array", "items": uuid, "description": "The meters that changed."},
            "unchanged_meter_ids": {"type": "array", "items": uuid, "description": "The meters that were already as asked."},
            "not_found_meter_ids": {"type": "array", "items": uuid, "description": "Meters that are not the partner's, left out (only where the operation applies changes if at least one meter can be found)."}}},
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
                    "missing_fields": {"type": "array", "items": {"type": "string"}, "description": "Extension: what the meter still needs."},
                    "not_participating_reason": {"type": "string", "description": "Extension: the idle or disenrolled period that makes the program NOT_PARTICIPATING for its delivery period, as a sentence."},
                    "participation_in_period": {"type": "array", "description": "Extension: the meter's idle and disenrolled periods that fall in the delivery period.", "items": {"type": "object", "required": ["participation_preference", "start_time", "end_time"], "properties": {
                        "participation_preference": {"type": "string", "enum": ParticipationPreference::VARIANTS},
                        "start_time": timestamp, "end_time": timestamp, "reason": {"type": "string"}
                    }}}
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
                "problem_field": {"type": "string", "description": "Dotted path (JSON) or column name (CSV)."},
                "suggestion": {"type": "string", "description": "What was probably meant: the nearest field name (for an unknown field) or allowed value."}
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
pub(super) fn ecma_pattern(source: &str) -> String {
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
        Kind::Text(text) => field_schema_text(text),
        Kind::Enum(values) => json!({"type": "string", "enum": values}),
        Kind::EnumList(values) => json!({
            "type": "array", "minItems": 1, "uniqueItems": true,
            "items": {"type": "string", "enum": values}
        }),
        Kind::TextList { item, max } => json!({
            "type": "array", "maxItems": max, "uniqueItems": true,
            "items": field_schema_text(item)
        }),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Number { min, max } => json!({"type": "number", "minimum": min, "maximum": max}),
        Kind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Kind::Date => json!({"type": "string", "format": "date"}),
        Kind::Object(children) => object_schema(children),
        Kind::ObjectList(children) => json!({"type": "array", "items": object_schema(children)}),
    }
}

fn field_schema_text(text: &Text) -> Value {
    let mut schema = json!({"type": "string", "minLength": text.min, "maxLength": text.max});
    match &text.check {
        Check::None => {}
        Check::Pattern(p) => schema["pattern"] = json!(ecma_pattern(p.source)),
        Check::Email => schema["format"] = json!("email"),
        Check::NoMojibake => schema["pattern"] = json!("^[^?\u{a0}\u{fffd}]*$"),
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
