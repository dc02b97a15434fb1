//! Account housekeeping in the portal, through the real router and database: keys shown
//! by their first characters, admins removing users, changing roles and withdrawing
//! invitations (never leaving the partner without an admin, never locking themselves
//! out), and users changing their own password.

use axum::http::StatusCode;
use gridroll_domain::PartnerId;
use gridroll_server::portal::password;
use gridroll_store::Role;
use gridroll_testkit::Backend;

use crate::common::TestApp;
use crate::common::portal::{Page, Visitor};

const PASSWORD: &str = "a long test passphrase";

async fn add_user(app: &TestApp, partner: PartnerId, email: &str, role: Role) -> String {
    let hash = password::hash(PASSWORD.to_owned()).await.unwrap();
    let user = app
        .accounts
        .add_user(
            partner,
            email,
            role,
            &hash,
            gridroll_domain::timestamp::now_millis(),
        )
        .await
        .unwrap();
    user.id.to_string()
}

async fn signed_in<'a>(app: &'a TestApp, email: &str) -> Visitor<'a> {
    let mut visitor = Visitor::new(app);
    let page = visitor.sign_in(email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    visitor
}

async fn post(visitor: &mut Visitor<'_>, uri: &str, fields: &[(&str, &str)]) -> Page {
    let csrf = visitor.csrf().await;
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    visitor.post_form(uri, &all).await
}

fn redirected_to(page: &Page, location: &str) {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    assert_eq!(page.location.as_deref(), Some(location));
}

async fn keys_show_their_first_characters_so_two_of_one_name_differ(backend: Backend) {
    let app = TestApp::new(backend).await;
    add_user(&app, app.partner, "admin@example.com", Role::Admin).await;
    let mut admin = signed_in(&app, "admin@example.com").await;
    let mut made = Vec::new();
    for _ in 0..2 {
        let page = post(
            &mut admin,
            "/portal/keys",
            &[("name", "sync"), ("meters:read", "on")],
        )
        .await
        .assert_ok();
        made.push(page.after("<code class=\"secret\" data-key>", '<'));
    }
    let page = admin.get("/portal/keys").await;
    for key in &made {
        page.assert_contains(&format!("<code>{}…</code>", &key[..12]));
        assert!(
            !page.text.contains(key.as_str()),
            "a key is never shown again"
        );
    }
    assert_ne!(made[0][..12], made[1][..12]);
}

async fn an_admin_changes_roles_and_removes_users_whose_sessions_end(backend: Backend) {
    let app = TestApp::new(backend).await;
    add_user(&app, app.partner, "admin@example.com", Role::Admin).await;
    let ops = add_user(&app, app.partner, "ops@example.com", Role::Member).await;
    let mut admin = signed_in(&app, "admin@example.com").await;
    let mut member = signed_in(&app, "ops@example.com").await;
    assert_eq!(
        member.get("/portal/keys").await.status,
        StatusCode::FORBIDDEN
    );

    let promoted = post(
        &mut admin,
        &format!("/portal/users/{ops}/role"),
        &[("role", "admin")],
    )
    .await;
    redirected_to(&promoted, "/portal/users?done=role");
    admin
        .get("/portal/users?done=role")
        .await
        .assert_contains("The role is changed.");
    // The new admin's session has the new role at once.
    assert_eq!(member.get("/portal/keys").await.status, StatusCode::OK);

    let removed = post(&mut admin, &format!("/portal/users/{ops}/remove"), &[]).await;
    redirected_to(&removed, "/portal/users?done=removed");
    let users = admin.get("/portal/users").await;
    assert!(!users.text.contains("ops@example.com"), "{}", users.text);
    let ended = member.get("/portal").await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert!(ended.location.unwrap().starts_with("/portal/sign-in"));
    let again = Visitor::new(&app)
        .sign_in("ops@example.com", PASSWORD)
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);

    // A removed user is not found again; nor is another partner's.
    let gone = post(&mut admin, &format!("/portal/users/{ops}/remove"), &[]).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let other = app.accounts.create_partner("Other", 0).await.unwrap();
    let stranger = add_user(&app, other.id, "stranger@example.com", Role::Member).await;
    let foreign = post(&mut admin, &format!("/portal/users/{stranger}/remove"), &[]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(app.accounts.list_users(other.id).await.unwrap().len(), 1);
}

async fn the_last_admin_stays_and_no_admin_removes_or_demotes_themselves(backend: Backend) {
    let app = TestApp::new(backend).await;
    let me = add_user(&app, app.partner, "admin@example.com", Role::Admin).await;
    let other = add_user(&app, app.partner, "second@example.com", Role::Admin).await;
    let mut admin = signed_in(&app, "admin@example.com").await;

    for (uri, role) in [
        (format!("/portal/users/{me}/remove"), None),
        (format!("/portal/users/{me}/role"), Some("member")),
    ] {
        let fields: Vec<(&str, &str)> = role.iter().map(|r| ("role", *r)).collect();
        let page = post(&mut admin, &uri, &fields).await;
        assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.text);
        page.assert_contains("You cannot remove your own account");
    }
    // Demoting the other admin leaves this one; then this one is the last, whom the
    // store itself refuses to demote (the operator's commands meet the same rule).
    let demoted = post(
        &mut admin,
        &format!("/portal/users/{other}/role"),
        &[("role", "member")],
    )
    .await;
    redirected_to(&demoted, "/portal/users?done=role");
    let me_id = me.parse().unwrap();
    let last = app
        .accounts
        .set_role(app.partner, me_id, Role::Member)
        .await
        .unwrap();
    assert_eq!(last, gridroll_store::UserChange::LastAdmin);
    let removed = app.accounts.remove_user(app.partner, me_id).await.unwrap();
    assert_eq!(removed, gridroll_store::UserChange::LastAdmin);
    let users = app.accounts.list_users(app.partner).await.unwrap();
    assert_eq!(users.iter().filter(|u| u.role == Role::Admin).count(), 1);
    let unknown_role = post(
        &mut admin,
        &format!("/portal/users/{other}/role"),
        &[("role", "owner")],
    )
    .await;
    assert_eq!(unknown_role.status, StatusCode::BAD_REQUEST);
}

async fn admins_see_and_withdraw_pending_invitations(backend: Backend) {
    let app = TestApp::new(backend).await;
    add_user(&app, app.partner, "admin@example.com", Role::Admin).await;
    let mut admin = signed_in(&app, "admin@example.com").await;
    let invited = post(
        &mut admin,
        "/portal/users",
        &[("email", "New.Person@Example.com"), ("role", "member")],
    )
    .await
    .assert_ok();
    let link = invited.from("/portal/invitations/", '<');
    let users = admin.get("/portal/users").await;
    users.assert_contains("Pending invitations");
    let pending = users.from("id=\"pending\"", '§');
    assert!(pending.contains("new.person@example.com"), "{pending}");
    assert!(
        pending.contains("admin@example.com"),
        "the inviter is named: {pending}"
    );

    let withdrawn = post(
        &mut admin,
        "/portal/users/invitations/withdraw",
        &[("email", "new.person@example.com")],
    )
    .await;
    redirected_to(&withdrawn, "/portal/users?done=withdrawn");
    let after = admin.get("/portal/users?done=withdrawn").await;
    after.assert_contains("The invitation is withdrawn");
    assert!(
        !after
            .from("id=\"pending\"", '§')
            .contains("new.person@example.com")
    );
    assert_eq!(
        Visitor::new(&app).get(&link).await.status,
        StatusCode::NOT_FOUND
    );

    let again = post(
        &mut admin,
        "/portal/users/invitations/withdraw",
        &[("email", "new.person@example.com")],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    again.assert_contains("There is no pending invitation for new.person@example.com.");
}

async fn a_user_changes_their_password_and_their_other_sessions_end(backend: Backend) {
    let app = TestApp::new(backend).await;
    add_user(&app, app.partner, "ops@example.com", Role::Member).await;
    let mut here = signed_in(&app, "ops@example.com").await;
    let mut elsewhere = signed_in(&app, "ops@example.com").await;
    here.get("/portal/account")
        .await
        .assert_contains("Change your password");
    let new = "an entirely new passphrase";

    let refusals = [
        (
            "not the password at all",
            new,
            new,
            "The current password is not right.",
        ),
        (
            PASSWORD,
            new,
            "another one entirely",
            "The two new passwords differ.",
        ),
        (
            PASSWORD,
            "short",
            "short",
            "The password must have at least 12 characters.",
        ),
    ];
    for (current, password, confirm, message) in refusals {
        let page = post(
            &mut here,
            "/portal/account/password",
            &[
                ("current", current),
                ("new", password),
                ("confirm", confirm),
            ],
        )
        .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
        page.assert_contains(message);
    }
    assert_eq!(elsewhere.get("/portal").await.status, StatusCode::OK);

    let changed = post(
        &mut here,
        "/portal/account/password",
        &[("current", PASSWORD), ("new", new), ("confirm", new)],
    )
    .await;
    redirected_to(&changed, "/portal/account?done=password");
    here.get("/portal/account?done=password")
        .await
        .assert_contains("Your password is changed.");
    assert_eq!(
        here.get("/portal").await.status,
        StatusCode::OK,
        "this session goes on"
    );
    assert_eq!(
        elsewhere.get("/portal").await.status,
        StatusCode::SEE_OTHER,
        "others end"
    );
    let old = Visitor::new(&app)
        .sign_in("ops@example.com", PASSWORD)
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let fresh = Visitor::new(&app).sign_in("ops@example.com", new).await;
    assert_eq!(fresh.status, StatusCode::SEE_OTHER);

    // Without the session's token, nothing changes.
    let forged = here
        .post_form(
            "/portal/account/password",
            &[
                ("csrf", "forged"),
                ("current", new),
                ("new", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

async fn members_cannot_remove_users_or_change_roles(backend: Backend) {
    let app = TestApp::new(backend).await;
    let boss = add_user(&app, app.partner, "admin@example.com", Role::Admin).await;
    add_user(&app, app.partner, "ops@example.com", Role::Member).await;
    let mut member = signed_in(&app, "ops@example.com").await;
    for (uri, fields) in [
        (format!("/portal/users/{boss}/remove"), vec![]),
        (
            format!("/portal/users/{boss}/role"),
            vec![("role", "member")],
        ),
        (
            "/portal/users/invitations/withdraw".to_owned(),
            vec![("email", "x@example.com")],
        ),
    ] {
        let page = post(&mut member, &uri, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{uri}");
    }
    let users = app.accounts.list_users(app.partner).await.unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().any(|u| u.role == Role::Admin));
}

gridroll_testkit::backend_tests!(
    keys_show_their_first_characters_so_two_of_one_name_differ,
    an_admin_changes_roles_and_removes_users_whose_sessions_end,
    the_last_admin_stays_and_no_admin_removes_or_demotes_themselves,
    admins_see_and_withdraw_pending_invitations,
    a_user_changes_their_password_and_their_other_sessions_end,
    members_cannot_remove_users_or_change_roles,
);
