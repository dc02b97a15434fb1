//! Meters: a searchable, filterable list, and one meter with all its fields, its
//! enrollments and what it needs from the partner, in plain words.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use gridroll_domain::MeterId;
use gridroll_domain::csv_layout::{export_cells, export_header};
use gridroll_domain::enrollment::{self, Abstention, MeterEnrollments, ProgramView, Schedule};
use gridroll_domain::enums::{EnrollmentStatus, ParticipationPreference, TransmissionRegion};
use gridroll_domain::lifecycle::{idle_periods, tags_of};
use gridroll_domain::program::Program;
use gridroll_domain::schema::field_at;
use gridroll_domain::timestamp::format;
use gridroll_domain::zone::MeterZone;
use gridroll_store::{Meter, MeterFilter};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use strum::VariantNames;

use super::layout::{self, Section, badge, query, when};
use super::meter_actions::{Action, Notice, forms};
use super::session::SignedIn;
use super::{PortalError, PortalResult, query_value};
use crate::AppState;
use crate::lifecycle::IdlePeriods;
use crate::routes::enrollments::catalog;

const METERS_PER_PAGE: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    after: String,
}

/// `GET /portal/meters`
pub async fn list(
    State(state): State<AppState>,
    who: SignedIn,
    Query(params): Query<ListQuery>,
) -> PortalResult<Markup> {
    let q = params.q.trim();
    let action_required = params.action == "required";
    let filter = MeterFilter {
        reference_contains: (!q.is_empty()).then(|| q.to_owned()),
        global_enrollment_statuses: query_value::<EnrollmentStatus>(&params.status, "status")?
            .map(|s| vec![s]),
        transmission_region: query_value::<TransmissionRegion>(&params.region, "region")?,
        partner_action_required: action_required,
        ..MeterFilter::default()
    };
    let after = query_value::<MeterId>(&params.after, "page")?;
    let mut meters = state
        .meters
        .search_meters(who.user.partner, &filter, after, METERS_PER_PAGE + 1)
        .await?;
    let more = meters.len() > METERS_PER_PAGE;
    meters.truncate(METERS_PER_PAGE);
    let next = more
        .then(|| meters.last().map(|m| m.id.to_string()))
        .flatten();
    let next_href = next.map(|after| {
        let pairs = [
            ("q", q),
            ("status", params.status.as_str()),
            ("region", params.region.as_str()),
            ("action", params.action.as_str()),
            ("after", after.as_str()),
        ];
        format!("/portal/meters{}", query(&pairs))
    });
    Ok(layout::page(
        "Meters",
        &who,
        Section::Meters,
        html! {
            h1 { "Meters" }
            form.filters method="get" action="/portal/meters" role="search" {
                div {
                    label for="q" { "Partner reference contains" }
                    input id="q" name="q" type="search" value=(q);
                }
                (layout::choice("status", "Enrollment status", EnrollmentStatus::VARIANTS, &params.status))
                (layout::choice("region", "Region", TransmissionRegion::VARIANTS, &params.region))
                div.check {
                    input id="action" name="action" type="checkbox" value="required" checked[action_required];
                    label for="action" { "Needs something from us" }
                }
                button type="submit" { "Search" }
            }
            @if meters.is_empty() {
                p { "No meters match." }
            } @else {
                div.scroll {
                    table {
                        thead { tr {
                            th scope="col" { "Partner reference" }
                            th scope="col" { "Region" }
                            th scope="col" { "Type" }
                            th scope="col" { "Load types" }
                            th scope="col" { "Enrollment" }
                            th scope="col" { "Created" }
                        } }
                        tbody {
                            @for meter in &meters {
                                tr {
                                    td { a href={ "/portal/meters/" (meter.id) } { (text(&meter.data, "partner_reference")) } }
                                    td { (text(&meter.data, "transmission_region")) }
                                    td { (text(&meter.data, "meter_type").replace('_', " ")) }
                                    td { (text(&meter.data, "load_types").replace('_', " ")) }
                                    td { (badge(meter.global_status.as_ref())) }
                                    td { (when(meter.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(href) = next_href {
                nav.pager aria-label="Pages" {
                    a href=(href) { "More meters →" }
                }
            }
        },
    ))
}

/// A field of a meter as text; lists joined with commas.
fn text(data: &gridroll_domain::MeterData, path: &str) -> String {
    match data.get(path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

/// `GET /portal/meters/{meter_id}`
pub async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    Query(params): Query<ShowQuery>,
) -> PortalResult<Markup> {
    let id: MeterId = raw
        .parse()
        .map_err(|_| PortalError::not_found("There is no such meter."))?;
    let notice = Action::parse(&params.done).map_or(Notice::None, Notice::Done);
    page(&state, &who, id, notice).await
}

/// The page of a meter, with what its last action left to say.
pub async fn page(
    state: &AppState,
    who: &SignedIn,
    id: MeterId,
    notice: Notice,
) -> PortalResult<Markup> {
    let not_found = || PortalError::not_found("There is no such meter.");
    let meter = state
        .meters
        .get_meter(who.user.partner, id)
        .await?
        .ok_or_else(not_found)?;
    let catalog = catalog(state, who.user.partner).await?;
    let schedule = Schedule::new(catalog.values(), state.clock.now());
    let shown = enrollment::view(&meter.enrollments, &catalog, &meter.abstentions, &schedule);
    let reference = text(&meter.data, "partner_reference");
    let zone = MeterZone::of(&meter.data);
    let idle = IdlePeriods {
        meter: meter.id,
        zone: zone.name(),
        periods: idle_periods(&meter.abstentions, &zone),
    };
    let tags = tags_of(&meter.data);
    Ok(layout::page(
        &reference,
        who,
        Section::Meters,
        html! {
            p.crumbs { a href="/portal/meters" { "Meters" } " / " }
            h1 { (reference) }
            (notice.show())
            p {
                "Enrollment: " (badge(shown.global_status.as_ref()))
                @if meter.archived { " " (badge("ARCHIVED")) }
            }
            @if !tags.is_empty() {
                p { "Tags: " @for tag in &tags { span.tag { (tag) } " " } }
            }
            (needs(&shown))
            (enrollment_table(&shown, &catalog, &meter, &zone))
            (forms(who, meter.id, &tags, meter.archived, &idle))
            section aria-labelledby="fields" {
                h2 id="fields" { "Fields" }
                (fields(&meter))
            }
        },
    ))
}

/// What the meter needs from the partner (and what waits on the platform).
fn needs(shown: &MeterEnrollments) -> Markup {
    html! {
        section aria-labelledby="actions" {
            h2 id="actions" { "What this meter needs from you" }
            @if shown.partner_actions.is_empty() {
                p { "Nothing at the moment." }
            } @else {
                ul.actions {
                    @for action in &shown.partner_actions {
                        li {
                            strong { (action.program) } ": "
                            @match missing_of(&shown.programs, &action.program) {
                                Some(columns) => {
                                    "fill in " (columns) " in this meter's row (download it "
                                    "below), then upload the row with “Update existing "
                                    "meters” on."
                                }
                                None => { (action.description) }
                            }
                            @if let Some(deadline) = action.deadline {
                                " Due by " (format(deadline).get(..10).unwrap_or_default()) "."
                            }
                        }
                    }
                }
            }
            @if !shown.operator_actions.is_empty() {
                p.hint { "Waiting on the platform: "
                    @for (i, action) in shown.operator_actions.iter().enumerate() {
                        @if i > 0 { "; " }
                        (action.program) " — " (action.description)
                    }
                }
            }
        }
    }
}

/// The meter's enrollment in each program, with why it stands there: the idle or
/// disenrolled period that keeps it out (in the meter's dates, as its forms take them),
/// the others in the delivery period, the criteria it fails, the fields it lacks.
fn enrollment_table(
    shown: &MeterEnrollments,
    catalog: &HashMap<String, Program>,
    meter: &Meter,
    zone: &MeterZone,
) -> Markup {
    html! {
        section aria-labelledby="enrollments" {
            h2 id="enrollments" { "Enrollments" }
            @if shown.programs.is_empty() {
                p { "No program is open to this meter." }
            } @else {
                div.scroll {
                    table {
                        thead { tr {
                            th scope="col" { "Program" }
                            th scope="col" { "Status" }
                            th scope="col" { "Delivery period" }
                            th scope="col" { "Why" }
                        } }
                        tbody {
                            @for program in &shown.programs {
                                @let period = program.period.as_ref().map(|p| p.name.as_str()).unwrap_or("");
                                tr {
                                    td { (program.program) }
                                    td { (badge(program.status.as_ref())) }
                                    td { (period) }
                                    td {
                                        @if let Some(a) = &program.not_participating {
                                            (abstention(a, zone)) ", which keeps it out of " (period) ". "
                                        }
                                        @for a in program.abstentions.iter().filter(|a| Some(*a) != program.not_participating.as_ref()) {
                                            (abstention(a, zone)) ". "
                                        }
                                        @for reason in program.described_reasons(catalog, &meter.data) { (reason) ". " }
                                        @if !program.missing.is_empty() {
                                            "Missing: " (columns(&program.missing))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An idle or disenrolled period in the meter's dates, with its reason.
fn abstention(a: &Abstention, zone: &MeterZone) -> String {
    let what = match a.preference {
        ParticipationPreference::Idle => "Idle",
        _ => "Disenrolled",
    };
    let when = match a.end {
        Some(end) => format!(
            "{} to {}",
            zone.date_of(a.start),
            zone.last_date_before(end)
        ),
        None => format!("from {}", zone.date_of(a.start)),
    };
    match &a.reason {
        Some(reason) => format!("{what} {when} ({reason})"),
        None => format!("{what} {when}"),
    }
}

/// Dotted paths as the CSV columns a partner fills in.
fn columns(paths: &[String]) -> String {
    paths
        .iter()
        .map(|path| field_at(path).map_or(path.as_str(), |f| f.column_name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns a program still needs of the meter, if any.
fn missing_of(programs: &[ProgramView], program: &str) -> Option<String> {
    programs
        .iter()
        .find(|p| p.program == program && !p.missing.is_empty())
        .map(|p| columns(&p.missing))
}

/// Every field the meter has, under its CSV column name.
fn fields(meter: &Meter) -> Markup {
    let devices = meter
        .data
        .get("site.site_devices")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let header = export_header(devices);
    let cells = export_cells(&meter.data, devices);
    html! {
        dl.fields {
            dt { "Meter id" } dd { code { (meter.id) } }
            dt { "Created" } dd { (when(meter.created_at)) }
            dt { "Last changed" } dd { (when(meter.updated_at)) }
            @for (name, value) in header.iter().zip(&cells).filter(|(_, v)| !v.is_empty()) {
                dt { (name) } dd { (value) }
            }
        }
    }
}
