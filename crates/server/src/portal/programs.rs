//! Programs the partner's meters can join: where they run, what they take, the fields
//! they need, and a CSV template for each.

use axum::extract::{Path, State};
use axum::response::Response;
use gridroll_domain::program::{Every, Program};
use gridroll_domain::schema::field_at;
use maud::{Markup, html};

use super::layout::{self, Section};
use super::session::SignedIn;
use super::{PortalError, PortalResult};
use crate::AppState;

/// `GET /portal/programs`
pub async fn list(State(state): State<AppState>, who: SignedIn) -> PortalResult<Markup> {
    let programs = state
        .catalog
        .partner_programs(who.user.partner, state.now_millis())
        .await?;
    Ok(layout::page(
        "Programs",
        &who,
        Section::Programs,
        html! {
            h1 { "Programs" }
            p {
                "Your meters are checked against these programs. Each template holds the "
                "columns every meter needs and the columns the program needs, with one "
                "example row; fill it in and " a href="/portal/upload" { "upload it" } "."
            }
            @for program in &programs {
                (program_card(program))
            }
        },
    ))
}

fn any_or(list: Vec<String>) -> String {
    if list.is_empty() {
        "any".to_owned()
    } else {
        list.join(", ").replace('_', " ")
    }
}

fn column(path: &str) -> String {
    field_at(path).map_or_else(|| path.to_owned(), |f| f.column_name().to_owned())
}

fn program_card(program: &Program) -> Markup {
    let delivery = &program.delivery;
    let season = match (delivery.every, &delivery.start, &delivery.end) {
        (Some(Every::Year), Some(start), Some(end)) => format!("every year, {start} to {end}"),
        (Some(Every::Month), _, _) => "every month".to_owned(),
        _ => "set periods".to_owned(),
    };
    html! {
        section.program aria-labelledby={ "p-" (program.identifier) } {
            h2 id={ "p-" (program.identifier) } { (program.name) " " small { code { (program.identifier) } } }
            @if !program.description.is_empty() { p { (program.description) } }
            dl.facts {
                dt { "Regions" } dd { (any_or(program.transmission_regions.iter().map(ToString::to_string).collect())) }
                dt { "Customers" } dd { (any_or(program.customer_classifications.iter().map(ToString::to_string).collect())) }
                dt { "Meter types" } dd { (any_or(program.meter_types.iter().map(ToString::to_string).collect())) }
                dt { "Load types" } dd { (any_or(program.load_types.iter().map(ToString::to_string).collect())) }
                dt { "Utilities" } dd { (any_or(program.utilities.iter().map(ToString::to_string).collect())) }
                dt { "Delivery" } dd { (season) ", complete " (delivery.deadline_days_before) " days before activation" }
                dt { "Required columns" }
                dd {
                    @if program.required_fields.is_empty() { "only those every meter needs" }
                    @for (i, path) in program.required_fields.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (column(path)) }
                    }
                }
                @if !program.conditional_fields.is_empty() {
                    dt { "Also" }
                    dd {
                        ul {
                            @for rule in &program.conditional_fields {
                                li {
                                    "one of "
                                    @for (i, path) in rule.any_of.iter().enumerate() {
                                        @if i > 0 { " or " }
                                        code { (column(path)) }
                                    }
                                    @if let Some(when) = &rule.when { " " (when.to_string()) }
                                }
                            }
                        }
                    }
                }
            }
            p {
                a.button href={ "/portal/programs/" (program.identifier) "/template.csv" } download {
                    "Download the CSV template"
                }
            }
        }
    }
}

/// `GET /portal/programs/{program}/template.csv`
pub async fn template(
    State(state): State<AppState>,
    who: SignedIn,
    Path(identifier): Path<String>,
) -> PortalResult<Response> {
    let programs = state
        .catalog
        .partner_programs(who.user.partner, state.now_millis())
        .await?;
    let program = programs
        .iter()
        .find(|p| p.identifier == identifier)
        .ok_or_else(|| PortalError::not_found("There is no such program."))?;
    Ok(crate::routes::programs::template_file(program)?)
}
