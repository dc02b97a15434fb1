//! The partner's portal users, and inviting more: an admin makes an invitation link
//! (shown once, valid for a week) and sends it; whoever opens it chooses a password and
//! is signed in. Admins also change roles, remove users and withdraw pending invitations
//! (the use cases of `crate::accounts`). The link's random token is the only way to the invitation, so it also
//! protects the invitation's form against cross-site posts.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gridroll_domain::UserId;
use gridroll_store::{AddUserError, NewInvitation, PendingInvitation, Role, User};
use maud::{Markup, html};
use serde::Deserialize;

use super::account;
use super::layout::{self, Section, heads_with_actions, when};
use super::password;
use super::session;
use super::session::{CsrfForm, PortalForm, SignedIn, hash_token, signed_in, start_session};
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::accounts::{self, AccountError, Actor};
use crate::auth::random_token;

const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// `GET /portal/users`
pub async fn list(
    State(state): State<AppState>,
    who: SignedIn,
    Query(query): Query<UsersQuery>,
) -> PortalResult<Markup> {
    who.require_admin()?;
    let listing = Listing::read(&state, &who).await?;
    let notice = match query.done.as_str() {
        "removed" => Some("The user is removed; their sessions have ended."),
        "role" => Some("The role is changed."),
        "withdrawn" => Some("The invitation is withdrawn; its link no longer works."),
        _ => None,
    };
    Ok(users_page(
        &who,
        &listing,
        Shown {
            notice,
            ..Shown::default()
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    done: String,
}

/// What the users page lists.
struct Listing {
    users: Vec<User>,
    invitations: Vec<PendingInvitation>,
}

impl Listing {
    async fn read(state: &AppState, who: &SignedIn) -> PortalResult<Self> {
        let partner = who.user.partner;
        Ok(Self {
            users: state.accounts.list_users(partner).await?,
            invitations: state
                .accounts
                .list_invitations(partner, state.now_millis())
                .await?,
        })
    }
}

/// What the page shows beside the lists: a link made just now, what was done, or what
/// went wrong.
#[derive(Default)]
struct Shown<'a> {
    link: Option<&'a str>,
    notice: Option<&'a str>,
    problem: Option<&'a str>,
}

fn users_page(who: &SignedIn, listing: &Listing, shown: Shown<'_>) -> Markup {
    layout::page(
        "Users",
        who,
        Section::Users,
        html! {
            h1 { "Users" }
            @if let Some(notice) = shown.notice { p.notice role="status" { (notice) } }
            @if let Some(problem) = shown.problem { p.alert role="alert" { (problem) } }
            @if let Some(link) = shown.link {
                section.created role="status" aria-labelledby="link" {
                    h2 id="link" { "Invitation link" }
                    p { "Send this link to the person you invited. It works once, for seven days, and is shown only now." }
                    p { code.secret { (link) } }
                }
            }
            (invite_form(who))
            (people(who, &listing.users))
            (pending(who, &listing.invitations))
        },
    )
}

fn invite_form(who: &SignedIn) -> Markup {
    html! {
        section aria-labelledby="invite" {
            h2 id="invite" { "Invite someone" }
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
    }
}

fn people(who: &SignedIn, users: &[User]) -> Markup {
    html! {
        section aria-labelledby="members" {
            h2 id="members" { "People" }
            div.scroll {
                table {
                    (heads_with_actions(&["Email", "Role", "Added", "Last signed in"]))
                    tbody {
                        @for user in users {
                            tr {
                                td { (user.email) }
                                td { (user.role.to_string()) }
                                td { (when(user.created_at)) }
                                td { (user.last_sign_in_at.map(when).unwrap_or_else(|| "never".to_owned())) }
                                td {
                                    @if user.id == who.user.id {
                                        span.hint { "you" }
                                    } @else {
                                        (user_actions(who, user))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.hint {
                "A partner keeps at least one admin. Your own account is changed by another "
                "admin; your password, on " a href="/portal/account" { "your account's page" } "."
            }
        }
    }
}

fn user_actions(who: &SignedIn, user: &User) -> Markup {
    let other = match user.role {
        Role::Admin => Role::Member,
        Role::Member => Role::Admin,
    };
    html! {
        form.row-action method="post" action={ "/portal/users/" (user.id) "/role" } {
            (who.csrf_field())
            input type="hidden" name="role" value=(other.to_string());
            button type="submit" aria-label={ "Make " (user.email) " " (other.to_string()) } { "Make " (other.to_string()) }
        }
        " "
        form.row-action method="post" action={ "/portal/users/" (user.id) "/remove" } data-confirm={ "Remove " (user.email) "? Their sessions end at once." } {
            (who.csrf_field())
            button.danger type="submit" aria-label={ "Remove " (user.email) } { "Remove" }
        }
    }
}

fn pending(who: &SignedIn, invitations: &[PendingInvitation]) -> Markup {
    html! {
        section aria-labelledby="pending" {
            h2 id="pending" { "Pending invitations" }
            @if invitations.is_empty() {
                p { "None: every invitation was accepted, withdrawn or has expired." }
            } @else {
                div.scroll {
                    table {
                        (heads_with_actions(&["Email", "Role", "Invited by", "Expires"]))
                        tbody {
                            @for invitation in invitations {
                                tr {
                                    td { (invitation.email) }
                                    td { (invitation.role.to_string()) }
                                    td { (invitation.invited_by) }
                                    td { (when(invitation.expires_at)) }
                                    td {
                                        form.row-action method="post" action="/portal/users/invitations/withdraw" {
                                            (who.csrf_field())
                                            input type="hidden" name="email" value=(invitation.email);
                                            button.danger type="submit" aria-label={ "Withdraw the invitation of " (invitation.email) } { "Withdraw" }
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

/// Answers an account use case: off to the list on success (post-redirect-get), or the
/// list again with what went wrong.
async fn answer<T>(
    state: &AppState,
    who: &SignedIn,
    result: Result<T, AccountError>,
    done: &str,
) -> PortalResult<Response> {
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/portal/users?done={done}")).into_response()),
        Err(error) => {
            let (status, message) = account::problem(error)?;
            let listing = Listing::read(state, who).await?;
            let shown = Shown {
                problem: Some(&message),
                ..Shown::default()
            };
            Ok((status, users_page(who, &listing, shown)).into_response())
        }
    }
}

fn user_id(raw: &str) -> PortalResult<UserId> {
    raw.parse()
        .map_err(|_| PortalError::not_found("There is no such user."))
}

/// `POST /portal/users/{user_id}/remove`
pub async fn remove(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    PortalForm(form): PortalForm<CsrfForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    let user = user_id(&raw)?;
    let actor = Actor::User(who.user.id);
    let result =
        accounts::remove_user(state.accounts.as_ref(), actor, who.user.partner, user).await;
    answer(&state, &who, result, "removed").await
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

/// `POST /portal/users/{user_id}/role`
pub async fn set_role(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    PortalForm(form): PortalForm<RoleForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    let user = user_id(&raw)?;
    let role: Role = form
        .role
        .parse()
        .map_err(|_| PortalError::bad_request("Choose the role admin or member."))?;
    let actor = Actor::User(who.user.id);
    let result =
        accounts::set_role(state.accounts.as_ref(), actor, who.user.partner, user, role).await;
    answer(&state, &who, result, "role").await
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// `POST /portal/users/invitations/withdraw`
pub async fn withdraw(
    State(state): State<AppState>,
    who: SignedIn,
    PortalForm(form): PortalForm<WithdrawForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    let result = accounts::revoke_invitation(
        state.accounts.as_ref(),
        who.user.partner,
        &form.email,
        state.now_millis(),
    )
    .await;
    answer(&state, &who, result, "withdrawn").await
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
        let listing = Listing::read(&state, &who).await?;
        let shown = Shown {
            problem: Some(&problem),
            ..Shown::default()
        };
        let page = users_page(&who, &listing, shown);
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
    let listing = Listing::read(&state, &who).await?;
    let shown = Shown {
        link: Some(&link),
        ..Shown::default()
    };
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        users_page(&who, &listing, shown),
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
