//! Jobs: the list, one job's progress and rows, and its failed rows as a CSV file to fix
//! and upload again.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gridroll_domain::JobId;
use gridroll_domain::job::{AssetStatus, JobStatus};
use gridroll_store::{AssetFilter, Job, JobField, JobFilter, JobPage, ProvisionalAsset, Search};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use strum::VariantNames;

use super::dashboard::jobs_table;
use super::layout::{self, Section, badge, count, query};
use super::session::SignedIn;
use super::{PortalError, PortalResult, query_value};
use crate::AppState;

const JOBS_PER_PAGE: usize = 25;
const ROWS_PER_PAGE: usize = 100;
/// The statuses of rows that did not become a meter.
const FAILED: &[AssetStatus] = &[
    AssetStatus::Failed,
    AssetStatus::Duplicate,
    AssetStatus::MultiplePartnerReference,
];

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    before: String,
}

/// `GET /portal/jobs`
pub async fn list(
    State(state): State<AppState>,
    who: SignedIn,
    Query(params): Query<ListQuery>,
) -> PortalResult<Markup> {
    let status = query_value::<JobStatus>(&params.status, "status")?;
    let before = query_value::<JobId>(&params.before, "page")?;
    let q = params.q.trim();
    let filter = JobFilter {
        statuses: status.map(|s| vec![s]),
        search: (!q.is_empty()).then(|| Search {
            terms: vec![q.to_owned()],
            fields: vec![JobField::FileName, JobField::PartnerReference],
        }),
        ..JobFilter::default()
    };
    let page = JobPage {
        before,
        limit: JOBS_PER_PAGE + 1,
    };
    let mut jobs = state
        .jobs
        .list_jobs(who.user.partner, &filter, &page)
        .await?;
    let more = jobs.len() > JOBS_PER_PAGE;
    jobs.truncate(JOBS_PER_PAGE);
    let next = more
        .then(|| jobs.last().map(|j| j.id.to_string()))
        .flatten();
    Ok(layout::page(
        "Jobs",
        &who,
        Section::Jobs,
        html! {
            h1 { "Jobs" }
            form.filters method="get" action="/portal/jobs" role="search" {
                div {
                    label for="q" { "File name or partner reference" }
                    input id="q" name="q" type="search" value=(q);
                }
                (layout::choice("status", "Status", JobStatus::VARIANTS, &params.status))
                button type="submit" { "Filter" }
            }
            (jobs_table(&jobs))
            @if let Some(next) = next {
                nav.pager aria-label="Pages" {
                    a href={ "/portal/jobs" (query(&[("status", &params.status), ("q", q), ("before", &next)])) } { "Older jobs →" }
                }
            }
        },
    ))
}

/// A job of the signed-in user's partner, or 404.
async fn job_of(state: &AppState, who: &SignedIn, raw: &str) -> PortalResult<Job> {
    let not_found = || PortalError::not_found("There is no such job.");
    let id: JobId = raw.parse().map_err(|_| not_found())?;
    state
        .jobs
        .get_job(who.user.partner, id)
        .await?
        .ok_or_else(not_found)
}

fn is_final(job: &Job) -> bool {
    job.status != JobStatus::Processing
}

fn processed(job: &Job) -> u64 {
    job.counts().finished().min(job.assets_count)
}

#[derive(Debug, Default, Deserialize)]
pub struct RowsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
}

/// `GET /portal/jobs/{job_id}`
pub async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    Query(params): Query<RowsQuery>,
) -> PortalResult<Markup> {
    let job = job_of(&state, &who, &raw).await?;
    let statuses = match params.status.as_str() {
        "" => None,
        "failed" => Some(FAILED.to_vec()),
        other => query_value::<AssetStatus>(other, "status")?.map(|s| vec![s]),
    };
    let after = query_value::<u64>(&params.after, "page")?.map(|seq| (job.id, seq));
    let filter = AssetFilter {
        job_ids: Some(vec![job.id]),
        statuses,
        ..AssetFilter::default()
    };
    let mut rows = state
        .jobs
        .list_provisional_assets(who.user.partner, &filter, after, ROWS_PER_PAGE + 1)
        .await?;
    let more = rows.len() > ROWS_PER_PAGE;
    rows.truncate(ROWS_PER_PAGE);
    let next = more
        .then(|| rows.last().map(|r| r.state.seq.to_string()))
        .flatten();
    let title = job.file_name.clone().unwrap_or_else(|| job.id.to_string());
    // Without script the page reloads itself until the job is final; with it, the bar
    // is updated in place and the page reloads once at the end.
    let refresh = html! {
        @if !is_final(&job) {
            noscript { meta http-equiv="refresh" content="2"; }
        }
    };
    let base = format!("/portal/jobs/{}", job.id);
    Ok(layout::page_with_head(
        &title,
        &who,
        Section::Jobs,
        refresh,
        html! {
            p.crumbs { a href="/portal/jobs" { "Jobs" } " / " }
            h1 { (title) }
            (progress(&job))
            dl.facts {
                dt { "Uploaded" } dd { (layout::when(job.created_at)) }
                dt { "Update existing meters" } dd { @if job.update_existing { "yes" } @else { "no" } }
                dt { "Job id" } dd { code { (job.id) } }
            }
            @if job.failed_count > 0 {
                p {
                    a.button href={ (base) "/failed.csv" } download {
                        "Download the " (count(job.failed_count)) " failed rows as CSV"
                    }
                    " — fix them in the file and "
                    a href="/portal/upload" { "upload it again" } "."
                }
            }
            h2 { "Rows" }
            nav.tabs aria-label="Rows by status" {
                @for (value, label) in [("", "All"), ("failed", "Failed"), ("COMPLETED", "Completed"), ("PROCESSING", "Waiting")] {
                    a href={ (base) (query(&[("status", value)])) } aria-current=[(params.status == value).then_some("page")] { (label) }
                }
            }
            (rows_table(&rows))
            @if let Some(next) = next {
                nav.pager aria-label="Pages" {
                    a href={ (base) (query(&[("status", &params.status), ("after", &next)])) } { "More rows →" }
                }
            }
        },
    ))
}

fn progress(job: &Job) -> Markup {
    let done = processed(job);
    let total = job.assets_count.max(1);
    let percent = done * 100 / total;
    html! {
        section.progress data-progress={ "/portal/jobs/" (job.id) "/progress" } data-final=(is_final(job)) {
            p {
                "Status: " span data-field="status" { (badge(job.status.as_ref())) }
            }
            progress max=(job.assets_count) value=(done) aria-label="Rows processed" { (percent) "%" }
            p.counts aria-live="polite" {
                span data-field="processed" { (count(done)) } " of " (count(job.assets_count)) " rows processed: "
                span data-field="created" { (count(job.created_count)) } " created, "
                span data-field="updated" { (count(job.updated_count)) } " updated, "
                span data-field="failed" { (count(job.failed_count)) } " failed."
            }
        }
    }
}

fn rows_table(rows: &[ProvisionalAsset]) -> Markup {
    html! {
        @if rows.is_empty() {
            p { "No rows here." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" class="num" { "Row" }
                        th scope="col" { "Partner reference" }
                        th scope="col" { "Status" }
                        th scope="col" { "Reason" }
                        th scope="col" { "Meter" }
                    } }
                    tbody {
                        @for row in rows {
                            tr {
                                // Row 1 of the file is its header.
                                td.num { (row.state.seq + 2) }
                                td { (row.state.partner_reference) }
                                td { (badge(row.state.status.as_ref())) }
                                td {
                                    @if let Some(name) = &row.state.status_name { code { (name.as_ref()) } " " }
                                    (row.state.status_description.as_deref().unwrap_or(""))
                                }
                                td {
                                    @if let Some(meter) = row.state.meter_id {
                                        a href={ "/portal/meters/" (meter) } { "Open" }
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

/// `GET /portal/jobs/{job_id}/progress`: the counts the page's script shows.
pub async fn progress_json(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
) -> PortalResult<Json<Value>> {
    let job = job_of(&state, &who, &raw).await?;
    Ok(Json(json!({
        "status": job.status.as_ref(),
        "final": is_final(&job),
        "total": job.assets_count,
        "processed": processed(&job),
        "created": job.created_count,
        "updated": job.updated_count,
        "failed": job.failed_count,
    })))
}

/// `GET /portal/jobs/{job_id}/failed.csv`
pub async fn failed_rows(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
) -> PortalResult<Response> {
    let job = job_of(&state, &who, &raw).await?;
    let filter = AssetFilter {
        job_ids: Some(vec![job.id]),
        statuses: Some(FAILED.to_vec()),
        ..AssetFilter::default()
    };
    let stem = job
        .file_name
        .as_deref()
        .and_then(|n| n.rsplit_once('.').map(|(stem, _)| stem))
        .unwrap_or("job");
    let name = format!("{stem}-failed-rows.csv");
    let mut response =
        crate::routes::assets::export_csv(state.jobs.clone(), who.user.partner, filter, &name)
            .await?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response.into_response())
}
