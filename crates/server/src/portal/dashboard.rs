//! The dashboard: meters by enrollment status and by region, the meters that need
//! something from the partner, and the latest jobs.

use axum::extract::State;
use gridroll_store::{Job, JobFilter, JobPage};
use maud::{Markup, html};

use super::PortalResult;
use super::chart::{self, Bar};
use super::layout::{self, Section, badge, count, raw, when};
use super::session::SignedIn;
use crate::AppState;

const LATEST_JOBS: usize = 5;

/// `GET /portal`
pub async fn show(State(state): State<AppState>, who: SignedIn) -> PortalResult<Markup> {
    let partner = who.user.partner;
    let overview = state.meters.meter_overview(partner).await?;
    let jobs = state
        .jobs
        .list_jobs(
            partner,
            &JobFilter::default(),
            &JobPage {
                before: None,
                limit: LATEST_JOBS,
            },
        )
        .await?;
    // In the order of enrollment, best first, each in its badge's colour.
    let mut by_status: Vec<Bar> = overview
        .by_status
        .iter()
        .map(|(status, n)| Bar {
            label: status.replace('_', " "),
            value: *n,
            href: format!("/portal/meters{}", layout::query(&[("status", status)])),
            class: Some(status.to_lowercase()),
        })
        .collect();
    by_status.sort_by_key(|bar| {
        gridroll_domain::enrollment::STATUS_ORDER
            .iter()
            .position(|s| s.as_ref().to_lowercase() == bar.class.as_deref().unwrap_or_default())
    });
    let by_region: Vec<Bar> = overview
        .by_region
        .iter()
        .map(|(region, n)| Bar {
            label: region.clone(),
            value: *n,
            href: format!("/portal/meters{}", layout::query(&[("region", region)])),
            class: None,
        })
        .collect();
    Ok(layout::page(
        "Dashboard",
        &who,
        Section::Dashboard,
        html! {
            h1 { "Dashboard" }
            section.cards aria-label="Summary" {
                div.card {
                    p.figure { (count(overview.total)) }
                    p { "meters" }
                }
                a.card.action href="/portal/meters?action=required" {
                    p.figure { (count(overview.action_required)) }
                    p { "meters need something from you" }
                }
                a.card href="/portal/upload" {
                    p.figure { "↑" }
                    p { "Upload meters" }
                }
            }
            div.charts {
                section {
                    h2 { "Meters by enrollment status" }
                    (raw(chart::bars("Meters by enrollment status", &by_status)))
                }
                section {
                    h2 { "Meters by region" }
                    (raw(chart::bars("Meters by region", &by_region)))
                }
            }
            section {
                h2 { "Latest jobs" }
                (jobs_table(&jobs))
                p { a href="/portal/jobs" { "All jobs" } }
            }
        },
    ))
}

/// Jobs as a table: file, status, counts, date.
pub fn jobs_table(jobs: &[Job]) -> Markup {
    html! {
        @if jobs.is_empty() {
            p { "No jobs yet. " a href="/portal/upload" { "Upload a CSV file" } " to create meters." }
        } @else {
            div.scroll {
                table {
                    thead {
                        tr {
                            th scope="col" { "File" }
                            th scope="col" { "Status" }
                            th scope="col" class="num" { "Rows" }
                            th scope="col" class="num" { "Created" }
                            th scope="col" class="num" { "Updated" }
                            th scope="col" class="num" { "Failed" }
                            th scope="col" { "Uploaded" }
                        }
                    }
                    tbody {
                        @for job in jobs {
                            tr {
                                td { a href={ "/portal/jobs/" (job.id) } { (job.file_name.as_deref().unwrap_or("(no name)")) } }
                                td { (badge(job.status.as_ref())) }
                                td.num { (count(job.assets_count)) }
                                td.num { (count(job.created_count)) }
                                td.num { (count(job.updated_count)) }
                                td.num { (count(job.failed_count)) }
                                td { (when(job.created_at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
