//! API keys of the partner: create one (shown once), see when each was last used, and
//! revoke. Only admins manage keys.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use gridroll_domain::ApiKeyId;
use std::collections::HashMap;

use gridroll_domain::scope::{KeyName, MAX_KEY_NAME, Scope, Scopes};
use gridroll_store::ApiKey;
use maud::{Markup, html};
use serde::Deserialize;

use super::account;
use super::layout::{self, Section, heads_with_actions, when};
use super::session::{CsrfForm, PortalForm, SignedIn};
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::accounts::{self, AccountError};
use crate::auth::issue_api_key;

/// `GET /portal/keys`
pub async fn list(State(state): State<AppState>, who: SignedIn) -> PortalResult<Markup> {
    who.require_admin()?;
    let keys = state.accounts.list_api_keys(who.user.partner).await?;
    Ok(keys_page(&who, &keys, None, None))
}

/// A key just made, shown this once.
struct Created {
    name: String,
    key: String,
}

fn keys_page(
    who: &SignedIn,
    keys: &[ApiKey],
    created: Option<&Created>,
    problem: Option<&str>,
) -> Markup {
    layout::page(
        "API keys",
        who,
        Section::Keys,
        html! {
            h1 { "API keys" }
            p {
                "Your systems call the Gridroll API with these keys, sent as "
                code { "Authorization: Bearer <key>" } ". Each key may do only what its "
                "scopes allow: give a system the scopes it needs and no more."
            }
            @if let Some(created) = created {
                section.created role="status" aria-labelledby="new-key" {
                    h2 id="new-key" { "Your new key “" (created.name) "”" }
                    p { strong { "Copy it now: it is shown only once." } " Gridroll keeps only a hash of it." }
                    p { code.secret data-key { (created.key) } }
                }
            }
            section aria-labelledby="create" {
                h2 id="create" { "Create a key" }
                @if let Some(problem) = problem { p.alert role="alert" { (problem) } }
                form.inline method="post" action="/portal/keys" {
                    (who.csrf_field())
                    div {
                        label for="name" { "Name" }
                        input id="name" name="name" type="text" required maxlength=(MAX_KEY_NAME) placeholder="e.g. billing sync";
                    }
                    fieldset.scopes {
                        legend { "Scopes" }
                        @for scope in Scope::ALL {
                            label {
                                input type="checkbox" name=(scope.as_str()) value="on" checked;
                                " " code { (scope.as_str()) } " " span.hint { (scope.describe()) }
                            }
                        }
                    }
                    button type="submit" { "Create key" }
                }
            }
            section aria-labelledby="existing" {
                h2 id="existing" { "Keys" }
                @if keys.is_empty() {
                    p { "No keys yet." }
                } @else {
                    div.scroll {
                        table {
                            (heads_with_actions(&["Name", "Key", "Scopes", "Created", "Last used"]))
                            tbody {
                                @for key in keys {
                                    tr {
                                        td { (key.name) }
                                        td { (prefix_text(key)) }
                                        td { (scopes_text(key.scopes)) }
                                        td { (when(key.created_at)) }
                                        td { (key.last_used_at.map(when).unwrap_or_else(|| "never".to_owned())) }
                                        td {
                                            @if let Some(revoked) = key.revoked_at {
                                                "Revoked " (when(revoked))
                                            } @else {
                                                form method="post" action={ "/portal/keys/" (key.id) "/revoke" } data-confirm={ "Revoke the key “" (key.name) "”? Systems using it stop working within a minute." } {
                                                    (who.csrf_field())
                                                    button.danger type="submit" aria-label={ "Revoke " (key.name) } { "Revoke" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.hint {
                        "A revoked key is refused at once by the server that revoked it, and by "
                        "every other server of the platform within a minute (each remembers a key "
                        "it has checked for that long)."
                    }
                }
            }
        },
    )
}

/// The start of a key, so that two keys of one name can be told apart (and a key found
/// in a configuration matched to its row); keys made before prefixes were kept have none.
fn prefix_text(key: &ApiKey) -> Markup {
    match &key.prefix {
        Some(prefix) => html! { code { (prefix) "…" } },
        None => html! { span.hint { "not kept" } },
    }
}

/// A key's scopes as the list shows them.
fn scopes_text(scopes: Scopes) -> String {
    if scopes == Scopes::ALL {
        "All".to_owned()
    } else if scopes.is_read_only() {
        "Read only".to_owned()
    } else {
        scopes.to_string()
    }
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// The ticked scopes, each a field named after it.
    #[serde(flatten)]
    ticked: HashMap<String, String>,
}

/// `POST /portal/keys`
pub async fn create(
    State(state): State<AppState>,
    who: SignedIn,
    PortalForm(form): PortalForm<CreateForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    let partner = who.user.partner;
    let checked = match KeyName::parse(&form.name) {
        Err(_) => Err(format!(
            "Give the key a name of 1 to {MAX_KEY_NAME} characters, without tabs or line breaks."
        )),
        Ok(name) => {
            let ticked = Scope::ALL
                .into_iter()
                .map(Scope::as_str)
                .filter(|name| form.ticked.contains_key(*name));
            Scopes::from_names(ticked)
                .map(|scopes| (name, scopes))
                .map_err(|_| "Choose at least one scope for the key.".to_owned())
        }
    };
    let (name, scopes) = match checked {
        Ok(checked) => checked,
        Err(problem) => {
            let keys = state.accounts.list_api_keys(partner).await?;
            let page = keys_page(&who, &keys, None, Some(&problem));
            return Ok((axum::http::StatusCode::BAD_REQUEST, page).into_response());
        }
    };
    let (_, key) = issue_api_key(
        state.accounts.as_ref(),
        partner,
        name.as_str(),
        scopes,
        state.now_millis(),
    )
    .await?;
    tracing::info!(user = %who.user.id, "an API key was created in the portal");
    let keys = state.accounts.list_api_keys(partner).await?;
    let created = Created {
        name: name.as_str().to_owned(),
        key,
    };
    let page = keys_page(&who, &keys, Some(&created), None);
    // The key must not linger in caches or history.
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        page,
    )
        .into_response())
}

/// `POST /portal/keys/{key_id}/revoke`
pub async fn revoke(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    PortalForm(form): PortalForm<CsrfForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    let not_found = || PortalError::not_found("There is no such key, or it is revoked already.");
    let id: ApiKeyId = raw.parse().map_err(|_| not_found())?;
    let now = state.now_millis();
    match accounts::revoke_key(state.accounts.as_ref(), who.user.partner, id, now).await {
        Ok(()) => {}
        Err(AccountError::NoSuchKey(_)) => return Err(not_found()),
        Err(error) => {
            let (status, message) = account::problem(error)?;
            return Err(PortalError::page(
                status,
                "The key was not revoked",
                message,
            ));
        }
    }
    // This process stops accepting the key at once; others within their cache's minute.
    state.keys.clear();
    tracing::info!(user = %who.user.id, key = %id, "an API key was revoked in the portal");
    Ok(Redirect::to("/portal/keys").into_response())
}
