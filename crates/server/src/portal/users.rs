//! The partner's portal users, and inviting more: an admin makes an invitation link
//! (shown once, valid for a week) and sends it; whoever opens it chooses a password and
//! is signed in. The link's random token is the only way to the invitation, so it also
//! protects the invitation's form against cross-site posts.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gridroll_store::{AddUserError, NewInvitation, Role, User};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, when};
use super::password;
use super::session;
use super::session::{PortalForm, SignedIn, hash_token, signed_in, start_session};
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::auth::random_token;

const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// `GET /portal/users`
pub async fn list(State(state): State<AppState>, who: SignedIn) -> PortalResult<Markup> {
    who.require_admin()?;
    let users = state.accounts.list_users(who.user.partner).await?;
    Ok(users_page(&who, &users, None, None))
}

fn users_page(who: &SignedIn, users: &[User], link: Option<&str>, problem: Option<&str>) -> Markup {
    layout::page(
        "Users",
        who,
        Section::Users,
        html! {
            h1 { "Users" }
            @if let Some(link) = link {
                section.created role="status" aria-labelledby="link" {
                    h2 id="link" { "Invitation link" }
                    p { "Send this link to the person you invited. It works once, for seven days, and is shown only now." }
                    p { code.secret { (link) } }
                }
            }
            section aria-labelledby="invite" {
                h2 id="invite" { "Invite someone" }
                @if let Some(problem) = problem { p.alert role="alert" { (problem) } }
                form.inline method="post" action="/portal/users" {
                    (who.csrf_field())
                    div {
                        label for="email" { "Email" }
                        input id="email" name="email" type="email" required;
                    }
                    div {
                        label for="role" { "Role" }
                        select id="role" name="role" {
                            option value="member" { "Member: uploads and reads" }
                            option value="admin" { "Admin: also users and API keys" }
                        }
                    }
                    button type="submit" { "Create invitation" }
                }
            }
            section aria-labelledby="members" {
                h2 id="members" { "People" }
                div.scroll {
                    table {
                        thead { tr {
                            th scope="col" { "Email" }
                            th scope="col" { "Role" }
                            th scope="col" { "Added" }
                            th scope="col" { "Last signed in" }
                        } }
                        tbody {
                            @for user in users {
                                tr {
                                    td { (user.email) }
                                    td { (user.role.to_string()) }
                                    td { (when(user.created_at)) }
                                    td { (user.last_sign_in_at.map(when).unwrap_or_else(|| "never".to_owned())) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /portal/users`
pub async fn invite(
    State(state): State<AppState>,
    who: SignedIn,
    headers: HeaderMap,
    PortalForm(form): PortalForm<InviteForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    let partner = who.user.partner;
    let role = form.role.parse::<Role>().ok();
    let email = password::normalize_email(&form.email);
    let problem = match (&email, role) {
        (Err(problem), _) => Some((*problem).to_owned()),
        // Whether the email has an account (with any partner) is not told here; the
        // invitation then says so when it is accepted.
        (_, None) => Some("Choose a role.".to_owned()),
        _ => None,
    };
    if let Some(problem) = problem {
        let users = state.accounts.list_users(partner).await?;
        let page = users_page(&who, &users, None, Some(&problem));
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let (email, role) = (email.expect("checked"), role.expect("checked"));
    let token = random_token();
    let now = state.now_millis();
    state
        .accounts
        .add_invitation(&NewInvitation {
            token: hash_token(&token),
            partner,
            email,
            role,
            invited_by: who.user.id,
            created_at: now,
            expires_at: now + INVITATION_LIFETIME.as_millis() as i64,
        })
        .await?;
    let link = format!("{}/portal/invitations/{token}", origin(&state, &headers));
    let users = state.accounts.list_users(partner).await?;
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        users_page(&who, &users, Some(&link), None),
    )
        .into_response())
}

/// The scheme and host the request came to, for links sent elsewhere.
fn origin(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = if state.config.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

fn invitation_form(email: &str, token: &str, form_token: &str, problem: Option<&str>) -> Markup {
    layout::bare(
        "Join Gridroll",
        html! {
            h1 { "Join Gridroll" }
            p { "You are invited as " strong { (email) } ". Choose a password to finish." }
            @if let Some(problem) = problem { p.alert role="alert" { (problem) } }
            form.stack method="post" action={ "/portal/invitations/" (token) } {
                input type="hidden" name="csrf" value=(form_token);
                label for="password" { "Password " span.hint { "(at least " (password::MIN_LENGTH) " characters)" } }
                input id="password" name="password" type="password" autocomplete="new-password" required minlength=(password::MIN_LENGTH);
                label for="confirm" { "The same password again" }
                input id="confirm" name="confirm" type="password" autocomplete="new-password" required;
                button type="submit" { "Create my account" }
            }
        },
    )
}

fn gone() -> PortalError {
    PortalError::not_found(
        "This invitation link is not valid: it was used already, or it has expired. Ask for a new one.",
    )
}

/// `GET /portal/invitations/{token}`
pub async fn invitation_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> PortalResult<Response> {
    let now = state.now_millis();
    let invitation = state
        .accounts
        .invitation(&hash_token(&token), now)
        .await?
        .ok_or_else(gone)?;
    let form_token = session::form_token(&headers);
    Ok((
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::SET_COOKIE,
                session::form_token_cookie(&state, &form_token),
            ),
        ],
        invitation_form(&invitation.email, &token, &form_token, None),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /portal/invitations/{token}`
pub async fn accept(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    PortalForm(form): PortalForm<AcceptForm>,
) -> PortalResult<Response> {
    // Without it, another site could sign a visitor's browser into an account whose
    // invitation it holds.
    session::check_form_token(&headers, &form.csrf)?;
    let hash = hash_token(&token);
    let now = state.now_millis();
    let invitation = state
        .accounts
        .invitation(&hash, now)
        .await?
        .ok_or_else(gone)?;
    let problem = if form.password != form.confirm {
        Some("The two passwords differ.".to_owned())
    } else {
        password::check_strength(&form.password, &invitation.email).err()
    };
    if let Some(problem) = problem {
        let page = invitation_form(&invitation.email, &token, &form.csrf, Some(&problem));
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let password_hash = password::hash(form.password)
        .await
        .map_err(|e| crate::error::ApiError::internal(e.as_ref()))?;
    let user = match state
        .accounts
        .accept_invitation(&hash, now, &password_hash)
        .await
    {
        Ok(Some(user)) => user,
        Ok(None) => return Err(gone()),
        // Only a user of the same organisation: an address may be a user of several, so
        // this tells nothing about other organisations.
        Err(AddUserError::EmailTaken) => {
            return Err(PortalError::page(
                StatusCode::CONFLICT,
                "Already a user",
                "You are a user of this organisation already. Sign in with your password.",
            ));
        }
        Err(AddUserError::Store(e)) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, "an invitation was accepted");
    let session = start_session(&state, &user).await?;
    Ok(signed_in(&state, &session, "/portal"))
}
