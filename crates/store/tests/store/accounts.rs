//! Partners, keys, users, sessions and invitations.

use gridroll_domain::UserId;
use gridroll_domain::scope::{Scope, Scopes};
use gridroll_store::{
    AddUserError, ApiKeyHash, NewInvitation, NewSession, PasswordSet, Role, TokenHash, UserChange,
};
use gridroll_testkit::Backend;

use crate::{Fixture, NOW};

async fn a_partner_is_found_by_its_id_and_its_name(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let found = accounts.get_partner(f.partner).await.unwrap().unwrap();
    assert_eq!(found.name, "Fixture Partner");
    assert_eq!(found.created_at, NOW, "the time is the caller's");
    let by_name = accounts
        .find_partner_by_name("Fixture Partner")
        .await
        .unwrap();
    assert_eq!(by_name.map(|p| p.id), Some(f.partner));
    assert!(
        accounts
            .find_partner_by_name("Nobody")
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_key_grants_its_partner_until_revoked_and_notes_its_use_once_a_minute(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let hash = ApiKeyHash([7; 32]);
    let scopes: Scopes = [Scope::MetersRead, Scope::WebhooksManage]
        .into_iter()
        .collect();
    let key = accounts
        .add_api_key(f.partner, "ci", scopes, &hash, "grk_AbCdEfGh", NOW)
        .await
        .unwrap();
    let grant = accounts.use_api_key(&hash, NOW).await.unwrap().unwrap();
    assert_eq!(grant.partner, f.partner);
    assert_eq!(grant.scopes, scopes);
    // Used again within the minute: the use noted first stays.
    accounts.use_api_key(&hash, NOW + 30_000).await.unwrap();
    let listed = accounts.list_api_keys(f.partner).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(NOW));
    assert_eq!(listed[0].scopes, scopes);
    accounts.use_api_key(&hash, NOW + 61_000).await.unwrap();
    let listed = accounts.list_api_keys(f.partner).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(NOW + 61_000));

    assert!(accounts.revoke_api_key(f.partner, key, NOW).await.unwrap());
    assert!(!accounts.revoke_api_key(f.partner, key, NOW).await.unwrap());
    assert!(accounts.use_api_key(&hash, NOW).await.unwrap().is_none());
}

async fn an_email_is_unique_within_a_partner_and_may_recur_across_partners(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let other = accounts.create_partner("Other", NOW).await.unwrap().id;
    accounts
        .add_user(f.partner, "a@example.com", Role::Admin, "hash-1", NOW)
        .await
        .unwrap();
    let again = accounts
        .add_user(f.partner, "a@example.com", Role::Member, "hash-2", NOW)
        .await;
    assert!(matches!(again, Err(AddUserError::EmailTaken)));
    accounts
        .add_user(other, "a@example.com", Role::Member, "hash-3", NOW)
        .await
        .unwrap();
    assert_eq!(
        accounts
            .user_credentials("a@example.com")
            .await
            .unwrap()
            .len(),
        2
    );

    // A new password names the partner when the email is ambiguous.
    let ambiguous = accounts.set_password("a@example.com", None, "new").await;
    assert_eq!(ambiguous.unwrap(), PasswordSet::Ambiguous);
    let set = accounts
        .set_password("a@example.com", Some(other), "new")
        .await
        .unwrap();
    assert_eq!(set, PasswordSet::Changed);
    let hashes: Vec<String> = accounts
        .user_credentials("a@example.com")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.password_hash)
        .collect();
    assert!(hashes.contains(&"new".to_owned()) && hashes.contains(&"hash-1".to_owned()));
    let nobody = accounts.set_password("b@example.com", None, "x").await;
    assert_eq!(nobody.unwrap(), PasswordSet::NoSuchUser);
}

async fn a_session_opens_until_it_expires_and_ends_when_asked(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let user = accounts
        .add_user(f.partner, "s@example.com", Role::Member, "hash", NOW)
        .await
        .unwrap();
    let token = TokenHash([3; 32]);
    accounts
        .start_session(&NewSession {
            token,
            user: user.id,
            csrf_token: "csrf".to_owned(),
            created_at: NOW,
            expires_at: NOW + 1000,
            source: None,
            device: None,
        })
        .await
        .unwrap();
    let open = accounts.session(&token, NOW + 999).await.unwrap().unwrap();
    assert_eq!(open.user.id, user.id);
    assert_eq!(open.csrf_token, "csrf");
    assert!(
        accounts
            .session(&token, NOW + 1000)
            .await
            .unwrap()
            .is_none()
    );
    accounts.end_session(&token).await.unwrap();
    assert!(accounts.session(&token, NOW).await.unwrap().is_none());
}

async fn an_invitation_is_accepted_once_and_a_taken_email_leaves_it_standing(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let admin = accounts
        .add_user(f.partner, "admin@example.com", Role::Admin, "hash", NOW)
        .await
        .unwrap();
    let invite = |token: [u8; 32], email: &str| NewInvitation {
        token: TokenHash(token),
        partner: f.partner,
        email: email.to_owned(),
        role: Role::Member,
        invited_by: admin.id,
        created_at: NOW,
        expires_at: NOW + 1000,
    };
    accounts
        .add_invitation(&invite([1; 32], "new@example.com"))
        .await
        .unwrap();
    let user = accounts
        .accept_invitation(&TokenHash([1; 32]), NOW, "pw")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (user.email.as_str(), user.role),
        ("new@example.com", Role::Member)
    );
    let twice = accounts
        .accept_invitation(&TokenHash([1; 32]), NOW, "pw")
        .await;
    assert!(matches!(twice, Ok(None)));

    accounts
        .add_invitation(&invite([2; 32], "admin@example.com"))
        .await
        .unwrap();
    let taken = accounts
        .accept_invitation(&TokenHash([2; 32]), NOW, "pw")
        .await;
    assert!(matches!(taken, Err(AddUserError::EmailTaken)));
    assert!(
        accounts
            .invitation(&TokenHash([2; 32]), NOW)
            .await
            .unwrap()
            .is_some(),
        "the refused acceptance was rolled back"
    );
    assert!(
        accounts
            .invitation(&TokenHash([2; 32]), NOW + 1000)
            .await
            .unwrap()
            .is_none()
    );
}

async fn failed_sign_ins_lock_out_their_source_only(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let user: UserId = accounts
        .add_user(f.partner, "l@example.com", Role::Member, "hash", NOW)
        .await
        .unwrap()
        .id;
    let (near, far) = (TokenHash([8; 32]), TokenHash([9; 32]));
    for _ in 0..2 {
        assert!(
            accounts
                .sign_in_attempt(user, &near, NOW, 2, NOW + 100)
                .await
                .unwrap()
                .allowed
        );
    }
    assert!(
        !accounts
            .sign_in_attempt(user, &near, NOW + 1, 2, NOW + 101)
            .await
            .unwrap()
            .allowed
    );
    let elsewhere = accounts
        .sign_in_attempt(user, &far, NOW + 1, 2, NOW + 101)
        .await
        .unwrap();
    assert!(elsewhere.allowed);
    assert_eq!(elsewhere.account_failures, 3);
    assert!(
        accounts
            .sign_in_attempt(user, &near, NOW + 100, 2, NOW + 200)
            .await
            .unwrap()
            .allowed
    );
}

fn session(token: u8, user: UserId) -> NewSession {
    NewSession {
        token: TokenHash([token; 32]),
        user,
        csrf_token: format!("csrf-{token}"),
        created_at: NOW,
        expires_at: NOW + 3_600_000,
        source: None,
        device: None,
    }
}

async fn partners_are_listed_with_their_users_and_live_keys(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let other = accounts.create_partner("Other", NOW + 1).await.unwrap();
    accounts
        .add_user(f.partner, "a@example.com", Role::Admin, "hash", NOW)
        .await
        .unwrap();
    let key = accounts
        .add_api_key(
            f.partner,
            "ci",
            Scopes::ALL,
            &ApiKeyHash([9; 32]),
            "grk_12345678",
            NOW,
        )
        .await
        .unwrap();
    accounts
        .add_api_key(
            f.partner,
            "old",
            Scopes::ALL,
            &ApiKeyHash([8; 32]),
            "grk_abcdefgh",
            NOW,
        )
        .await
        .unwrap();
    assert!(accounts.revoke_api_key(f.partner, key, NOW).await.unwrap());
    let listed = accounts.list_partners().await.unwrap();
    let counts: Vec<(&str, u64, u64)> = listed
        .iter()
        .map(|p| (p.partner.name.as_str(), p.users, p.live_keys))
        .collect();
    assert_eq!(counts, [("Fixture Partner", 1, 1), ("Other", 0, 0)]);
    assert_eq!(listed[1].partner.id, other.id);
    let keys = accounts.list_api_keys(f.partner).await.unwrap();
    let prefixes: Vec<Option<&str>> = keys.iter().map(|k| k.prefix.as_deref()).collect();
    assert_eq!(prefixes, [Some("grk_abcdefgh"), Some("grk_12345678")]);
}

async fn a_removed_user_takes_their_sessions_and_invitations_but_never_the_last_admin(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let admin = accounts
        .add_user(f.partner, "a@example.com", Role::Admin, "hash", NOW)
        .await
        .unwrap();
    let other = accounts
        .add_user(f.partner, "b@example.com", Role::Admin, "hash", NOW)
        .await
        .unwrap();
    accounts.start_session(&session(1, other.id)).await.unwrap();
    accounts
        .add_invitation(&NewInvitation {
            token: TokenHash([5; 32]),
            partner: f.partner,
            email: "c@example.com".to_owned(),
            role: Role::Member,
            invited_by: other.id,
            created_at: NOW,
            expires_at: NOW + 1000,
        })
        .await
        .unwrap();
    let listed = accounts.list_invitations(f.partner, NOW).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].invited_by, "b@example.com");

    let removed = accounts.remove_user(f.partner, other.id).await.unwrap();
    let UserChange::Done(removed) = removed else {
        panic!("not removed: {removed:?}");
    };
    assert_eq!((removed.id, removed.email), (other.id, other.email));
    assert!(
        accounts
            .session(&TokenHash([1; 32]), NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        accounts
            .list_invitations(f.partner, NOW)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        accounts.remove_user(f.partner, other.id).await.unwrap(),
        UserChange::NoSuchUser
    );
    assert_eq!(
        accounts.remove_user(f.partner, admin.id).await.unwrap(),
        UserChange::LastAdmin
    );
    assert_eq!(
        accounts
            .set_role(f.partner, admin.id, Role::Member)
            .await
            .unwrap(),
        UserChange::LastAdmin
    );
    // Another partner's user is not this partner's to remove.
    let stranger = accounts.create_partner("Other", NOW).await.unwrap();
    assert_eq!(
        accounts.remove_user(stranger.id, admin.id).await.unwrap(),
        UserChange::NoSuchUser
    );
    assert_eq!(accounts.list_users(f.partner).await.unwrap(), [admin]);
}

async fn two_admins_demoting_each_other_at_once_leave_one_admin(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    // Many partners at once, so that the two changes of a pair do overlap.
    const PARTNERS: usize = 24;
    let mut pairs = Vec::new();
    for n in 0..PARTNERS {
        let partner = accounts
            .create_partner(&format!("P{n}"), NOW)
            .await
            .unwrap();
        let mut admins = Vec::new();
        for email in ["a@example.com", "b@example.com"] {
            let user = accounts
                .add_user(partner.id, email, Role::Admin, "hash", NOW)
                .await
                .unwrap();
            admins.push(user.id);
        }
        pairs.push((partner.id, admins));
    }
    let demotions = pairs.iter().flat_map(|(partner, admins)| {
        admins
            .iter()
            .map(move |admin| accounts.set_role(*partner, *admin, Role::Member))
    });
    let outcomes = futures_util::future::join_all(demotions).await;
    let refused = outcomes
        .into_iter()
        .filter(|o| *o.as_ref().unwrap() == UserChange::LastAdmin)
        .count();
    assert_eq!(refused, PARTNERS, "one demotion of each pair is refused");
    for (partner, _) in &pairs {
        let users = accounts.list_users(*partner).await.unwrap();
        assert_eq!(users.iter().filter(|u| u.role == Role::Admin).count(), 1);
    }
}

async fn a_changed_password_keeps_the_asking_session_and_ends_the_others(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let user = accounts
        .add_user(f.partner, "a@example.com", Role::Member, "old", NOW)
        .await
        .unwrap();
    for token in [1, 2] {
        accounts
            .start_session(&session(token, user.id))
            .await
            .unwrap();
    }
    let changed = accounts
        .change_password(f.partner, user.id, "new", Some(TokenHash([1; 32])))
        .await
        .unwrap();
    assert!(changed);
    assert!(
        accounts
            .session(&TokenHash([1; 32]), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        accounts
            .session(&TokenHash([2; 32]), NOW)
            .await
            .unwrap()
            .is_none()
    );
    let stored = accounts
        .credentials_of(f.partner, user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password_hash, "new");
    let stranger = accounts.create_partner("Other", NOW).await.unwrap();
    assert!(
        !accounts
            .change_password(stranger.id, user.id, "x", None)
            .await
            .unwrap()
    );
    assert!(
        accounts
            .credentials_of(stranger.id, user.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn invitations_to_an_email_are_withdrawn_and_counted_while_pending(backend: Backend) {
    let f = Fixture::new(backend).await;
    let accounts = &f.stores.accounts;
    let admin = accounts
        .add_user(f.partner, "a@example.com", Role::Admin, "hash", NOW)
        .await
        .unwrap();
    for (token, expires_at) in [(1u8, NOW + 1000), (2, NOW - 1)] {
        accounts
            .add_invitation(&NewInvitation {
                token: TokenHash([token; 32]),
                partner: f.partner,
                email: "c@example.com".to_owned(),
                role: Role::Member,
                invited_by: admin.id,
                created_at: NOW - 10,
                expires_at,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        accounts
            .list_invitations(f.partner, NOW)
            .await
            .unwrap()
            .len(),
        1
    );
    let stranger = accounts.create_partner("Other", NOW).await.unwrap();
    assert_eq!(
        accounts
            .revoke_invitations(stranger.id, "c@example.com", NOW)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        accounts
            .revoke_invitations(f.partner, "c@example.com", NOW)
            .await
            .unwrap(),
        1
    );
    assert!(
        accounts
            .invitation(&TokenHash([1; 32]), NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        accounts
            .revoke_invitations(f.partner, "c@example.com", NOW)
            .await
            .unwrap(),
        0
    );
}

gridroll_testkit::backend_tests!(
    partners_are_listed_with_their_users_and_live_keys,
    a_removed_user_takes_their_sessions_and_invitations_but_never_the_last_admin,
    two_admins_demoting_each_other_at_once_leave_one_admin,
    a_changed_password_keeps_the_asking_session_and_ends_the_others,
    invitations_to_an_email_are_withdrawn_and_counted_while_pending,
    a_partner_is_found_by_its_id_and_its_name,
    a_key_grants_its_partner_until_revoked_and_notes_its_use_once_a_minute,
    an_email_is_unique_within_a_partner_and_may_recur_across_partners,
    a_session_opens_until_it_expires_and_ends_when_asked,
    an_invitation_is_accepted_once_and_a_taken_email_leaves_it_standing,
    failed_sign_ins_lock_out_their_source_only,
);
