//! The signed-in user's own account: changing their password. Also where the account
//! use cases' errors become a portal message, once for every page that meets them.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::PortalResult;
use super::layout::{self, Section, when};
use super::password;
use super::session::{PortalForm, SignedIn};
use crate::AppState;
use crate::accounts::{self, AccountError, PasswordChange};
use crate::error::ApiError;

/// The status and the sentence a page shows for an account use case that did not happen;
/// a store fault is the portal's error page.
pub fn problem(error: AccountError) -> PortalResult<(StatusCode, String)> {
    let status = match &error {
        AccountError::Store(_) | AccountError::Hashing(_) => {
            return Err(ApiError::internal(&error).into());
        }
        AccountError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        AccountError::NoSuchUser(_)
        | AccountError::NoSuchInvitation(_)
        | AccountError::NoSuchKey(_) => StatusCode::NOT_FOUND,
        AccountError::LastAdmin | AccountError::OwnAccount => StatusCode::CONFLICT,
        AccountError::AmbiguousEmail(_)
        | AccountError::WrongPassword
        | AccountError::PasswordsDiffer
        | AccountError::WeakPassword(_)
        | AccountError::InvalidEmail(_) => StatusCode::BAD_REQUEST,
    };
    Ok((status, sentence(&error.to_string())))
}

/// A message as a sentence: capitalised, with a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[derive(Debug, Default, Deserialize)]
pub struct AccountQuery {
    #[serde(default)]
    done: String,
}

/// `GET /portal/account`
pub async fn page(who: SignedIn, Query(query): Query<AccountQuery>) -> Markup {
    let notice = (query.done == "password")
        .then_some("Your password is changed. Your other sessions have ended; this one goes on.");
    account_page(&who, notice, None)
}

fn account_page(who: &SignedIn, notice: Option<&str>, problem: Option<&str>) -> Markup {
    layout::page(
        "Your account",
        who,
        Section::Account,
        html! {
            h1 { "Your account" }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            dl.facts {
                dt { "Email" } dd { (who.user.email) }
                dt { "Role" } dd { (who.user.role.to_string()) }
                dt { "Member since" } dd { (when(who.user.created_at)) }
            }
            section aria-labelledby="password" {
                h2 id="password" { "Change your password" }
                p { "Every other session of yours ends (other browsers must sign in again); this one goes on." }
                @if let Some(problem) = problem { p.alert role="alert" { (problem) } }
                form.stack method="post" action="/portal/account/password" {
                    (who.csrf_field())
                    label for="current" { "Current password" }
                    input id="current" name="current" type="password" autocomplete="current-password" required;
                    label for="new" { "New password " span.hint { "(at least " (password::MIN_LENGTH) " characters)" } }
                    input id="new" name="new" type="password" autocomplete="new-password" required minlength=(password::MIN_LENGTH);
                    label for="confirm" { "The new password again" }
                    input id="confirm" name="confirm" type="password" autocomplete="new-password" required;
                    button type="submit" { "Change password" }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /portal/account/password`
pub async fn change_password(
    State(state): State<AppState>,
    who: SignedIn,
    PortalForm(form): PortalForm<PasswordForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    let change = PasswordChange {
        current: form.current,
        new: form.new,
        confirm: form.confirm,
    };
    match accounts::change_password(state.accounts.as_ref(), &who.user, who.session(), change).await
    {
        Ok(()) => Ok(Redirect::to("/portal/account?done=password").into_response()),
        Err(error) => {
            let (status, message) = problem(error)?;
            Ok((status, account_page(&who, None, Some(&message))).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            sentence("the two new passwords differ"),
            "The two new passwords differ."
        );
        assert_eq!(sentence("Done."), "Done.");
    }
}
