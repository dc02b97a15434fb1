//! Uploading a CSV file: the form, and its answer. A file with problems is refused as a
//! whole and its problems are listed (row, column, message); a good file becomes a job
//! and its page opens.

use std::io;

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gridroll_domain::intake::Format;
use maud::{Markup, html};

use super::layout::{self, Section, count};
use super::session::{SignedIn, csrf_refused};
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::error::ApiError;
use crate::routes::jobs::check_file_name;
use crate::upload::{self, Upload, UploadError};

/// `GET /portal/upload`
pub async fn page(who: SignedIn) -> Markup {
    upload_page(&who, &Outcome::default())
}

/// What the last submission left to show.
#[derive(Debug, Default)]
struct Outcome {
    file_name: String,
    update_existing: bool,
    /// A problem with the form or the request as a whole.
    alert: Option<String>,
    problems: Option<Rejected>,
}

#[derive(Debug)]
struct Rejected {
    title: String,
    rows: Vec<ProblemRow>,
}

/// One problem of a refused file, as the page lists it.
#[derive(Debug)]
struct ProblemRow {
    message: String,
    csv_row: Option<usize>,
    problem_field: Option<String>,
}

fn upload_page(who: &SignedIn, outcome: &Outcome) -> Markup {
    layout::page(
        "Upload meters",
        who,
        Section::Upload,
        html! {
            h1 { "Upload meters" }
            p {
                "Upload a CSV file with one meter per row. Every row is checked first: if any "
                "row has a problem, nothing is stored and the problems are listed here. "
                "Start from a " a href="/portal/programs" { "program's CSV template" } "."
            }
            @if let Some(alert) = &outcome.alert {
                p.alert role="alert" { (alert) }
            }
            @if let Some(rejected) = &outcome.problems {
                section.problems aria-labelledby="problems-title" {
                    h2 id="problems-title" role="alert" { (rejected.title) }
                    p { "Fix these rows in your file and upload it again." }
                    div.scroll {
                        table {
                            thead { tr {
                                th scope="col" class="num" { "Row" }
                                th scope="col" { "Column" }
                                th scope="col" { "Problem" }
                            } }
                            tbody {
                                @for problem in &rejected.rows {
                                    tr {
                                        td.num { (problem.csv_row.map(|r| count(r as u64)).unwrap_or_default()) }
                                        td { code { (problem.problem_field.as_deref().unwrap_or("")) } }
                                        td { (problem.message) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.stack.upload method="post" action="/portal/upload" enctype="multipart/form-data" {
                (who.csrf_field())
                label for="file_name" { "File name " span.hint { "(optional; shown in the job list)" } }
                p.hint id="file-name-rules" {
                    "A file name is made of letters, digits, spaces, dots, underscores and hyphens, "
                    "and ends in an extension. Left empty, your file's own name is used with the "
                    "other characters left out: “meters (1).csv” is kept as “meters 1.csv”."
                }
                input id="file_name" name="file_name" type="text" maxlength="255"
                    placeholder="the uploaded file's own name" value=(outcome.file_name);
                div.check {
                    input id="update_existing" name="update_existing" type="checkbox" value="true"
                        aria-describedby="update-warning" checked[outcome.update_existing];
                    label for="update_existing" { "Update existing meters" }
                }
                p.warning id="update-warning" {
                    "When this is on, a row whose partner_reference matches one of your meters "
                    strong { "replaces all of that meter's data" }
                    " with the row: a field left empty in the row is removed from the meter. "
                    "A reference shared by several meters fails with MULTIPLE_PARTNER_REFERENCE. "
                    "When it is off, such rows fail as duplicates and the meter is left as it is."
                }
                div.drop data-drop {
                    label for="file" { "CSV file" }
                    input id="file" name="file" type="file" accept=".csv,text/csv" required;
                    p.hint { "Choose a file, or drop one here." }
                }
                button type="submit" { "Upload and check" }
            }
        },
    )
}

/// `POST /portal/upload` (multipart: csrf, file_name, update_existing, file, in that
/// order, as the form sends them; the file streams straight into validation).
pub async fn submit(
    State(state): State<AppState>,
    who: SignedIn,
    multipart: Result<Multipart, MultipartRejection>,
) -> PortalResult<Response> {
    let mut multipart = multipart
        .map_err(|e| PortalError::bad_request(format!("The form could not be read: {e}")))?;
    let limit = state.config.max_body_bytes;
    let unreadable = |e: MultipartError| unreadable(e.status(), limit);
    let mut outcome = Outcome::default();
    let mut csrf_checked = false;
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name != "csrf" && !csrf_checked {
            return Err(csrf_refused());
        }
        match name.as_str() {
            "csrf" => {
                who.check_csrf(&field.text().await.map_err(unreadable)?)?;
                csrf_checked = true;
            }
            "file_name" => {
                outcome.file_name = field.text().await.map_err(unreadable)?.trim().to_owned()
            }
            "update_existing" => {
                outcome.update_existing = field.text().await.map_err(unreadable)? == "true"
            }
            "file" => return receive_file(&state, &who, outcome, field).await,
            _ => {}
        }
    }
    if !csrf_checked {
        return Err(csrf_refused());
    }
    outcome.alert = Some("Choose a CSV file to upload.".to_owned());
    Ok((StatusCode::BAD_REQUEST, upload_page(&who, &outcome)).into_response())
}

/// Why a form's body could not be read: too large, or broken off.
fn unreadable(status: StatusCode, limit: u64) -> PortalError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        PortalError::page(status, "The file is too large", too_large(limit))
    } else {
        PortalError::bad_request("The upload was cut off before it was complete. Try again.")
    }
}

fn too_large(limit: u64) -> String {
    format!(
        "Files of up to {} MiB are accepted. Split the file and upload the parts.",
        limit / (1024 * 1024)
    )
}

async fn receive_file(
    state: &AppState,
    who: &SignedIn,
    mut outcome: Outcome,
    field: Field<'_>,
) -> PortalResult<Response> {
    // The form's name wins; else the browser's name for the file, with what the rules
    // allow of it (`meters (1).csv` is kept as `meters 1.csv`).
    let file_name = if outcome.file_name.is_empty() {
        field
            .file_name()
            .and_then(gridroll_domain::schema::fit_file_name)
    } else {
        Some(outcome.file_name.clone())
    };
    if let Some(name) = &file_name
        && let Err(e) = check_file_name(name)
    {
        outcome.alert = Some(format!(
            "The file name is not valid: {}",
            super::sentence(&e.details)
        ));
        drain(field).await;
        return Ok((StatusCode::BAD_REQUEST, upload_page(who, &outcome)).into_response());
    }
    let permit = match upload::permit(state, who.user.partner) {
        Ok(permit) => permit,
        Err(e) => {
            drain(field).await;
            return refused(who, outcome, e);
        }
    };
    let upload = Upload {
        format: Format::Csv,
        file_name,
        update_existing: outcome.update_existing,
    };
    let result = receive_streaming(state, who, upload, field).await;
    drop(permit);
    match result {
        Ok(job) => Ok(Redirect::to(&format!("/portal/jobs/{job}")).into_response()),
        Err(e) => refused(who, outcome, e),
    }
}

/// Reads the rest of a refused file and drops it: answering before the browser has
/// sent the whole body would reset the connection instead of showing the answer.
async fn drain(mut field: Field<'_>) {
    while let Ok(Some(_)) = field.chunk().await {}
}

/// Feeds the file part to the upload as a body, chunk by chunk, while it is received.
async fn receive_streaming(
    state: &AppState,
    who: &SignedIn,
    upload: Upload,
    mut field: Field<'_>,
) -> Result<gridroll_domain::JobId, UploadError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(4);
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let forward = async move {
        let mut broken = None;
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e.status());
                    Err(io::Error::other(e))
                }
            };
            let failed = chunk.is_err();
            // Once the upload is refused the rest of the file is read and dropped:
            // answering before the browser has sent it all would reset the connection.
            if tx.send(chunk).await.is_err() {
                while let Ok(Some(_)) = field.chunk().await {}
                break;
            }
            if failed {
                break;
            }
        }
        broken
    };
    let (received, broken) = tokio::join!(
        upload::receive(state, who.user.partner, upload, body),
        forward
    );
    // A body that outgrew the limit or broke off explains the refusal best.
    match broken {
        Some(StatusCode::PAYLOAD_TOO_LARGE) => {
            Err(UploadError::TooLarge(state.config.max_body_bytes))
        }
        Some(_) => Err(UploadError::Unreadable(
            "the upload was cut off before it was complete".to_owned(),
        )),
        None => received,
    }
}

/// The upload page again, with why the file was refused; a fault of the server's own is
/// its error page.
fn refused(who: &SignedIn, mut outcome: Outcome, error: UploadError) -> PortalResult<Response> {
    let status = match &error {
        UploadError::Rejected(problems) => {
            let title = ApiError::invalid_assets(problems.clone())
                .title
                .replace("The request has", "The file has");
            let rows = problems
                .listed
                .iter()
                .map(|p| ProblemRow {
                    message: p.message.clone(),
                    csv_row: p.csv_row,
                    problem_field: p.problem_field.clone(),
                })
                .collect();
            outcome.problems = Some(Rejected { title, rows });
            StatusCode::BAD_REQUEST
        }
        UploadError::TooLarge(limit) => {
            outcome.alert = Some(format!("The file is too large. {}", too_large(*limit)));
            StatusCode::PAYLOAD_TOO_LARGE
        }
        UploadError::Busy(refused) => {
            outcome.alert = Some(format!("{}: {}.", refused.title, refused.error));
            StatusCode::TOO_MANY_REQUESTS
        }
        UploadError::Stalled(_) | UploadError::Unreadable(_) => {
            outcome.alert =
                Some("The upload was cut off before it was complete. Try again.".to_owned());
            StatusCode::BAD_REQUEST
        }
        UploadError::Store(_) | UploadError::Internal(_) => {
            return Err(ApiError::from(error).into());
        }
    };
    Ok((status, upload_page(who, &outcome)).into_response())
}
