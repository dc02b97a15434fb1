//! The filtered reads, written once and rendered for either dialect. Every query is scoped
//! to one partner and pages by key (never by offset), so a page costs the same wherever
//! it is in the listing.

use gridroll_domain::{JobId, MeterId, PartnerId};

use crate::db::Value;
use crate::model::{JobField, JobFilter, MeterFilter};
use crate::query::{Conditions, Dialect};
use crate::rows::JOB_COLUMNS;

/// A statement and its parameters.
pub struct Query {
    pub sql: String,
    pub params: Vec<Value>,
}

fn texts<T: AsRef<str>>(values: &[T]) -> impl Iterator<Item = Value> + '_ {
    values.iter().map(|v| Value::Text(v.as_ref().to_owned()))
}

fn boolean(dialect: Dialect, value: bool) -> &'static str {
    match (dialect, value) {
        (Dialect::Sqlite, true) => "1",
        (Dialect::Sqlite, false) => "0",
        (Dialect::Postgres, true) => "true",
        (Dialect::Postgres, false) => "false",
    }
}

/// `(',' || column || ',') LIKE '%,value,%'` for any value: membership in a comma list.
fn in_comma_list<T: AsRef<str>>(c: &mut Conditions, column: &str, values: &[T]) {
    let alternatives: Vec<String> = values
        .iter()
        .map(|v| {
            let p = c.bind(Value::Text(format!("%,{},%", v.as_ref())));
            format!("(',' || {column} || ',') LIKE {p}")
        })
        .collect();
    if alternatives.is_empty() {
        c.nothing();
    } else {
        c.push(format!("({})", alternatives.join(" OR ")));
    }
}

pub const METER_COLUMNS: &str = "id, partner_id, created_by, data, created_at, updated_at, \
     enrollments, participation, global_enrollment_status, is_archived";

/// A page of meters in id (creation) order, after `after`: their `columns`
/// ([`METER_COLUMNS`] or [`STORED_METER_COLUMNS`]).
pub fn search_meters(
    dialect: Dialect,
    columns: &str,
    partner: PartnerId,
    filter: &MeterFilter,
    after: Option<MeterId>,
    limit: usize,
) -> Query {
    let mut c = Conditions::new(dialect);
    c.eq("partner_id", Value::Uuid(*partner.as_uuid()));
    meter_fields(&mut c, filter);
    meter_times(&mut c, filter);
    meter_enrollments(&mut c, filter);
    if let Some(after) = after {
        let p = c.bind(Value::Uuid(*after.as_uuid()));
        c.push(format!("id > {p}"));
    }
    let limit = c.bind(Value::Int(limit as i64));
    Query {
        sql: format!(
            "SELECT {columns} FROM meters WHERE {} ORDER BY id LIMIT {limit}",
            c.sql()
        ),
        params: c.params,
    }
}

/// The conditions on what a meter is: its ids, reference, region, class, types, loads,
/// group, tags.
fn meter_fields(c: &mut Conditions, filter: &MeterFilter) {
    if let Some(ids) = filter.meter_ids.as_ref().filter(|ids| !ids.is_empty()) {
        c.one_of("id", ids.iter().map(|id| Value::Uuid(*id.as_uuid())));
    }
    if let Some(references) = &filter.partner_references {
        c.one_of("partner_reference", texts(references));
    }
    if let Some(region) = filter.transmission_region {
        c.eq("transmission_region", Value::Text(region.to_string()));
    }
    if let Some(class) = filter.customer_classification {
        c.eq("customer_classification", Value::Text(class.to_string()));
    }
    if let Some(types) = &filter.meter_types {
        c.one_of("meter_type", texts(types));
    }
    if let Some(types) = &filter.load_types {
        // load_types holds the JSON array, e.g. ["HVAC","EV_CHARGING"].
        let alternatives: Vec<String> = types
            .iter()
            .map(|t| {
                let p = c.bind(Value::Text(format!("%\"{t}\"%")));
                format!("load_types LIKE {p}")
            })
            .collect();
        if alternatives.is_empty() {
            c.nothing();
        } else {
            c.push(format!("({})", alternatives.join(" OR ")));
        }
    }
    if let Some(groups) = &filter.customer_groups {
        c.one_of("customer_group", texts(groups));
    }
    if let Some(tags) = &filter.tags {
        has_any_tag(c, tags);
    }
    // Meters carry no connection references yet, so asking for any finds none.
    if filter.connection_reference_ids.is_some() {
        c.nothing();
    }
    if let Some(text) = &filter.reference_contains {
        c.contains_any(
            &["partner_reference".to_owned()],
            std::slice::from_ref(text),
        );
    }
}

/// Meters with any of `tags`: the tags are the last field of the meter's data, a list
/// read by position (meters stored before schema version 9 have none).
fn has_any_tag(c: &mut Conditions, tags: &[String]) {
    let list = c.dialect().compact_list("data", "tags");
    let values: Vec<String> = tags
        .iter()
        .map(|t| c.bind(Value::Text(t.clone())))
        .collect();
    if values.is_empty() {
        c.nothing();
    } else {
        c.push(format!(
            "EXISTS (SELECT 1 FROM {list} WHERE tag IN ({}))",
            values.join(", ")
        ));
    }
}

/// The conditions on when a meter was created and last changed.
fn meter_times(c: &mut Conditions, filter: &MeterFilter) {
    if let Some(since) = filter.modified_since {
        let p = c.bind(Value::Int(since));
        c.push(format!("updated_at >= {p}"));
    }
    if let Some(after) = filter.created_after {
        let p = c.bind(Value::Int(after));
        c.push(format!("created_at >= {p}"));
    }
    if let Some(before) = filter.created_before {
        let p = c.bind(Value::Int(before));
        c.push(format!("created_at < {p}"));
    }
}

/// The conditions on a meter's standing: archived, enrollment status, actions.
fn meter_enrollments(c: &mut Conditions, filter: &MeterFilter) {
    let dialect = c.dialect();
    if filter.exclude_archived {
        c.push(format!("is_archived = {}", boolean(dialect, false)));
    }
    if let Some(statuses) = &filter.global_enrollment_statuses {
        c.one_of("global_enrollment_status", texts(statuses));
    }
    if filter.partner_action_required {
        c.push(format!(
            "partner_action_required = {}",
            boolean(dialect, true)
        ));
    }
    if let Some(types) = &filter.action_types {
        in_comma_list(c, "partner_action_types", types);
    }
}

/// The columns of a [`crate::StoredMeter`].
pub const STORED_METER_COLUMNS: &str =
    "id, created_by, data, created_at, updated_at, global_enrollment_status, is_archived";

/// A page of jobs, newest first, before `before`.
pub fn list_jobs(
    dialect: Dialect,
    partner: PartnerId,
    filter: &JobFilter,
    before: Option<JobId>,
    limit: usize,
) -> Query {
    let mut c = Conditions::new(dialect);
    c.eq("partner_id", Value::Uuid(*partner.as_uuid()));
    c.push("status <> 'RECEIVING'");
    if let Some(statuses) = &filter.statuses {
        c.one_of("status", texts(statuses));
    }
    if let Some(regions) = &filter.transmission_regions {
        in_comma_list(&mut c, "transmission_regions", regions);
    }
    if let Some(names) = &filter.file_names {
        c.one_of("file_name", texts(names));
    }
    if let Some(search) = &filter.search {
        let mut alternatives = Vec::new();
        for field in &search.fields {
            alternatives.push(match field {
                JobField::FileName => c.matching(&["file_name".to_owned()], &search.terms),
                // A segment's references, a line each: a term without a line break
                // found there is found in one of them, and one with a line break is in
                // no reference.
                JobField::PartnerReference => {
                    let terms: Vec<String> = search
                        .terms
                        .iter()
                        .filter(|t| !t.contains('\n'))
                        .cloned()
                        .collect();
                    format!(
                        "EXISTS (SELECT 1 FROM job_segments s WHERE s.job_id = jobs.id AND {})",
                        c.matching(&["s.refs".to_owned()], &terms)
                    )
                }
            });
        }
        if alternatives.is_empty() {
            c.nothing();
        } else {
            c.push(format!("({})", alternatives.join(" OR ")));
        }
    }
    if let Some(before) = before {
        let p = c.bind(Value::Uuid(*before.as_uuid()));
        c.push(format!("id < {p}"));
    }
    let limit = c.bind(Value::Int(limit as i64));
    Query {
        sql: format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE {} ORDER BY id DESC LIMIT {limit}",
            c.sql()
        ),
        params: c.params,
    }
}

/// Distinct values of a job column.
pub fn job_facet(dialect: Dialect, partner: PartnerId, column: &str) -> Query {
    let mut c = Conditions::new(dialect);
    c.eq("partner_id", Value::Uuid(*partner.as_uuid()));
    c.push("status <> 'RECEIVING'");
    Query {
        sql: format!(
            "SELECT DISTINCT {column} FROM jobs WHERE {} ORDER BY {column}",
            c.sql()
        ),
        params: c.params,
    }
}
