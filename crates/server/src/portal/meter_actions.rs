//! Acting on one meter from its page: tags, its reference, archiving, idle periods,
//! disenrolling and taking part again, and its current data as a one-row CSV file in
//! the upload layout. Each form posts here and comes back to the meter's page
//! (post-redirect-get), so a reload repeats nothing; a refused form shows the page again
//! with why, having changed nothing.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gridroll_domain::MeterId;
use gridroll_domain::csv_layout::{STATUS_COLUMNS, export_cells, export_header};
use gridroll_domain::lifecycle::{
    Change, LocalPeriod, PartnerReference, Tag, parse_local_date, parse_reason,
};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::session::{PortalForm, SignedIn};
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::lifecycle::{self, IdlePeriods, LifecycleError};

/// An action of the meter's page, by the last segment of its form's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Tag,
    Untag,
    Reference,
    Archive,
    Unarchive,
    Idle,
    EndIdle,
    Disenroll,
    Participate,
}

impl Action {
    const ALL: [Action; 9] = [
        Self::Tag,
        Self::Untag,
        Self::Reference,
        Self::Archive,
        Self::Unarchive,
        Self::Idle,
        Self::EndIdle,
        Self::Disenroll,
        Self::Participate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::Untag => "untag",
            Self::Reference => "reference",
            Self::Archive => "archive",
            Self::Unarchive => "unarchive",
            Self::Idle => "idle",
            Self::EndIdle => "end-idle",
            Self::Disenroll => "disenroll",
            Self::Participate => "participate",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// What the page says once the action is done.
    pub fn done(self) -> &'static str {
        match self {
            Self::Tag => "The tags were added.",
            Self::Untag => "The tag was removed.",
            Self::Reference => "The partner reference was changed.",
            Self::Archive => {
                "The meter was archived: it takes part in no program, and uploads no longer find it."
            }
            Self::Unarchive => "The meter was brought back and evaluated again.",
            Self::Idle => "The idle period was set.",
            Self::EndIdle => "The idle period was removed.",
            Self::Disenroll => "The meter will be disenrolled from that date.",
            Self::Participate => "The meter takes part again from that date.",
        }
    }
}

/// Every field an action's form may send.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    partner_reference: String,
    #[serde(default)]
    start_date: String,
    #[serde(default)]
    end_date: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    date: String,
}

fn invalid(e: impl ToString) -> LifecycleError {
    LifecycleError::invalid("form", e.to_string())
}

impl ActionForm {
    /// The change the form asks for.
    fn change(&self, action: Action) -> Result<Change, LifecycleError> {
        let reason = || parse_reason(Some(&self.reason)).map_err(invalid);
        Ok(match action {
            Action::Tag | Action::Untag => {
                let tags = gridroll_domain::csv_layout::split_list(&self.tags)
                    .map(|t| Tag::parse(t).map_err(|e| invalid(format!("the tag “{t}” {e}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                if tags.is_empty() {
                    return Err(invalid("name at least one tag"));
                }
                if action == Action::Tag {
                    Change::AddTags(tags)
                } else {
                    Change::RemoveTags(tags)
                }
            }
            Action::Reference => Change::Reference(
                PartnerReference::parse(self.partner_reference.trim())
                    .map_err(|e| invalid(format!("the partner reference {e}")))?,
            ),
            Action::Archive => Change::Archive,
            Action::Unarchive => Change::Unarchive,
            Action::Idle | Action::EndIdle => {
                let period =
                    LocalPeriod::parse(&self.start_date, &self.end_date, Some(&self.reason))
                        .map_err(invalid)?;
                if action == Action::Idle {
                    Change::AddIdle(vec![period])
                } else {
                    Change::RemoveIdle(vec![period])
                }
            }
            Action::Disenroll => Change::Disenroll {
                date: parse_local_date("date", &self.date).map_err(invalid)?,
                reason: Some(reason()?.ok_or_else(|| invalid("say why the meter leaves"))?),
            },
            Action::Participate => Change::Participate {
                start: parse_local_date("date", &self.date).map_err(invalid)?,
            },
        })
    }
}

/// `POST /portal/meters/{meter_id}/{action}`
pub async fn act(
    State(state): State<AppState>,
    who: SignedIn,
    Path((raw, action)): Path<(String, String)>,
    PortalForm(form): PortalForm<ActionForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    let id: MeterId = raw
        .parse()
        .map_err(|_| PortalError::not_found("There is no such meter."))?;
    let action = Action::parse(&action)
        .ok_or_else(|| PortalError::not_found("This page does not exist."))?;
    let result = match form.change(action) {
        Ok(change) => lifecycle::change_each(&state, who.user.partner, &[id], change).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            tracing::info!(user = %who.user.id, meter = %id, action = action.as_str(), "a meter was changed in the portal");
            Ok(
                Redirect::to(&format!("/portal/meters/{id}?done={}", action.as_str()))
                    .into_response(),
            )
        }
        Err(LifecycleError::Store(e)) => Err(e.into()),
        Err(LifecycleError::NotFound(_)) => Err(PortalError::not_found("There is no such meter.")),
        Err(refused) => {
            let status = match &refused {
                LifecycleError::Invalid { .. } => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            };
            let page =
                super::meters::page(&state, &who, id, Notice::Refused(sentence(&refused))).await?;
            Ok((status, page).into_response())
        }
    }
}

/// A refusal as the page says it.
fn sentence(error: &LifecycleError) -> String {
    match error {
        LifecycleError::Invalid { message, .. } => capitalized(message),
        LifecycleError::Refused(refusals) => refusals
            .iter()
            .map(|(_, r)| capitalized(&r.to_string()))
            .collect::<Vec<_>>()
            .join(" "),
        LifecycleError::ReferenceTaken(taken) => match taken.first() {
            Some(t) => format!(
                "Another of your meters ({}) has the reference {}; choose another.",
                t.held_by, t.reference
            ),
            None => capitalized(&error.to_string()),
        },
        other => capitalized(&other.to_string()),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.extend(chars);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// What the meter's page says above its actions.
pub enum Notice {
    None,
    Done(Action),
    Refused(String),
}

impl Notice {
    pub fn show(&self) -> Markup {
        match self {
            Self::None => html! {},
            Self::Done(action) => html! { p.notice role="status" { (action.done()) } },
            Self::Refused(message) => {
                html! { p.alert role="alert" { "Nothing was changed: " (message) } }
            }
        }
    }
}

/// The forms of the meter's page.
pub fn forms(
    who: &SignedIn,
    id: MeterId,
    tags: &[String],
    archived: bool,
    idle: &IdlePeriods,
) -> Markup {
    let to = |a: Action| format!("/portal/meters/{id}/{}", a.as_str());
    html! {
        section aria-labelledby="keep" {
            h2 id="keep" { "Keep this meter in order" }
            (row_download(id, archived))
            h3 { "Tags" }
            (tag_forms(who, tags, &to))
            h3 { "Partner reference" }
            form.stack method="post" action=(to(Action::Reference)) {
                (who.csrf_field())
                label for="partner_reference" { "New partner reference" }
                input id="partner_reference" name="partner_reference" type="text" minlength="3" maxlength="256" required;
                button type="submit" { "Change the reference" }
            }
            h3 { "Participation " span.hint { "(dates in the meter's time, " (idle.zone) ")" } }
            (participation_forms(who, idle, &to))
            h3 { "Archive" }
            (archive_form(who, archived, &to))
        }
    }
}

/// The link to the meter's row, and what to do with it: an archived meter's row makes
/// a new meter, as no upload finds an archived one.
fn row_download(id: MeterId, archived: bool) -> Markup {
    html! {
        p {
            a href={ "/portal/meters/" (id) "/meter.csv" } download { "Download this meter's row" }
            " — its current data in the upload layout. "
            @if archived {
                "No upload finds an archived meter: bring it back before uploading its row "
                "with “Update existing meters” on, or the row makes a new meter."
            } @else {
                "Change what you need in a spreadsheet, then upload it with “Update existing "
                "meters” on: the row replaces all of the meter's data, so start from this row "
                "rather than from memory."
            }
        }
    }
}

fn tag_forms(who: &SignedIn, tags: &[String], to: &dyn Fn(Action) -> String) -> Markup {
    html! {
        @if tags.is_empty() { p { "No tags." } } @else {
            ul.tags {
                @for tag in tags {
                    li {
                        (tag) " "
                        form.inline method="post" action=(to(Action::Untag)) {
                            (who.csrf_field())
                            input type="hidden" name="tags" value=(tag);
                            button.link type="submit" aria-label={ "Remove the tag " (tag) } { "Remove" }
                        }
                    }
                }
            }
        }
        form.stack method="post" action=(to(Action::Tag)) {
            (who.csrf_field())
            label for="tags" { "Add tags " span.hint { "(separated by commas; letters, digits, spaces and ’ ' + # \" @ ( ) / & . - \\)" } }
            input id="tags" name="tags" type="text" required;
            button type="submit" { "Add tags" }
        }
    }
}

fn participation_forms(
    who: &SignedIn,
    idle: &IdlePeriods,
    to: &dyn Fn(Action) -> String,
) -> Markup {
    html! {
        @if !idle.periods.is_empty() {
            ul.periods {
                @for p in &idle.periods {
                    li {
                        "Idle " (p.start) " to " (p.end)
                        @if let Some(reason) = &p.reason { " (" (reason) ")" }
                        " "
                        form.inline method="post" action=(to(Action::EndIdle)) {
                            (who.csrf_field())
                            input type="hidden" name="start_date" value=(p.start.to_string());
                            input type="hidden" name="end_date" value=(p.end.to_string());
                            button.link type="submit" { "Remove" }
                        }
                    }
                }
            }
        }
        form.stack method="post" action=(to(Action::Idle)) {
            (who.csrf_field())
            label for="idle_start" { "Idle from" }
            input id="idle_start" name="start_date" type="date" required;
            label for="idle_end" { "to (inclusive)" }
            input id="idle_end" name="end_date" type="date" required;
            label for="idle_reason" { "Reason " span.hint { "(optional)" } }
            input id="idle_reason" name="reason" type="text" maxlength="500";
            button type="submit" { "Set the idle period" }
        }
        form.stack method="post" action=(to(Action::Disenroll)) {
            (who.csrf_field())
            label for="disenroll_date" { "Disenroll from " span.hint { "(a date after today)" } }
            input id="disenroll_date" name="date" type="date" required;
            label for="disenroll_reason" { "Reason" }
            input id="disenroll_reason" name="reason" type="text" maxlength="500" required;
            button type="submit" { "Disenroll" }
        }
        form.stack method="post" action=(to(Action::Participate)) {
            (who.csrf_field())
            label for="participate_date" { "Take part again from" }
            input id="participate_date" name="date" type="date" required;
            button type="submit" { "Take part" }
        }
    }
}

fn archive_form(who: &SignedIn, archived: bool, to: &dyn Fn(Action) -> String) -> Markup {
    html! {
        @if archived {
            p { "The meter is archived: it takes part in no program, and uploads do not find it." }
            form method="post" action=(to(Action::Unarchive)) {
                (who.csrf_field())
                button type="submit" { "Bring the meter back" }
            }
        } @else {
            form method="post" action=(to(Action::Archive)) {
                (who.csrf_field())
                p.hint { "An archived meter takes part in no program and is left out of uploads: a row with its reference creates a new meter." }
                button type="submit" { "Archive the meter" }
            }
        }
    }
}

/// `GET /portal/meters/{meter_id}/meter.csv`: the meter's current data as one row of the
/// upload layout, to change and upload again with "Update existing meters".
pub async fn download(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
) -> PortalResult<Response> {
    let not_found = || PortalError::not_found("There is no such meter.");
    let id: MeterId = raw.parse().map_err(|_| not_found())?;
    let meter = state
        .meters
        .get_meter(who.user.partner, id)
        .await?
        .ok_or_else(not_found)?;
    let devices = meter
        .data
        .get("site.site_devices")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut header = export_header(devices);
    header.truncate(header.len() - STATUS_COLUMNS.len());
    let cells = export_cells(&meter.data, devices);
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(&header)
        .and_then(|()| writer.write_record(&cells))
        .map_err(|e| crate::error::ApiError::internal(&e))?;
    let body = writer
        .into_inner()
        .map_err(|e| crate::error::ApiError::internal(e.error()))?;
    let reference: String = meter
        .data
        .partner_reference()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"meter-{reference}.csv\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).unwrap_or_else(|_| {
                    HeaderValue::from_static("attachment; filename=\"meter.csv\"")
                }),
            ),
        ],
        body,
    )
        .into_response())
}
