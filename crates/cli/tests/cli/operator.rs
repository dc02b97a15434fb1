//! The operator's account commands as the built binary, on each backend: partners, keys
//! (with their first characters), users (never the last admin) and invitations.

use gridroll_store::{NewInvitation, Role, StoreOptions, TokenHash};
use gridroll_testkit::{Backend, TestDatabase};
use serde_json::Value;

use super::{Server, create_partner, gridroll, gridroll_with_input};

fn lines(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn refused(out: &std::process::Output, expected: &str) {
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(expected), "{expected:?} in {stderr}");
}

async fn operators_list_partners_and_keys_and_revoke_a_key_by_its_id(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, first_key) = create_partner(&db);
    let out = gridroll(
        &db,
        &[
            "keys",
            "create",
            "--partner",
            &partner,
            "--name",
            "first key",
        ],
    );
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    let second_key = second["api_key"].as_str().unwrap();

    let [listed] = lines(&gridroll(&db, &["partners", "list", "--output", "json"]))
        .try_into()
        .unwrap();
    assert_eq!(listed["partner_id"], partner.as_str());
    assert_eq!(listed["name"], "Acme Energy");
    assert_eq!(listed["live_keys"], 2);
    assert_eq!(listed["users"], 0);

    // Two keys of one name are told apart by their first characters.
    let keys = lines(&gridroll(
        &db,
        &["keys", "list", "--partner", &partner, "--output", "json"],
    ));
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["name"] == "first key"));
    let prefixes: Vec<&str> = keys.iter().map(|k| k["prefix"].as_str().unwrap()).collect();
    assert_eq!(prefixes, [&second_key[..12], &first_key[..12]]);
    let table = gridroll(&db, &["keys", "list", "--partner", &partner]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&second_key[..12]));

    let revoke = gridroll(
        &db,
        &[
            "keys",
            "revoke",
            "--partner",
            &partner,
            keys[0]["key_id"].as_str().unwrap(),
        ],
    );
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    let again = gridroll(
        &db,
        &[
            "keys",
            "revoke",
            "--partner",
            &partner,
            keys[0]["key_id"].as_str().unwrap(),
        ],
    );
    refused(&again, "there is no live API key");
    let server = Server::start(&db, &[]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = |key: &str| {
        agent
            .get(format!("{}/v1.1/programs", server.base))
            .header("Authorization", format!("Bearer {key}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status(second_key), 401);
    assert_eq!(status(&first_key), 200);
}

async fn operators_manage_users_but_never_remove_or_demote_the_last_admin(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    let add = |email: &str, role: &str| {
        let out = gridroll_with_input(
            &db,
            &[
                "users",
                "create",
                "--partner",
                &partner,
                "--email",
                email,
                "--role",
                role,
            ],
            "a long enough passphrase\n",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    add("boss@acme.example", "admin");
    add("ops@acme.example", "member");

    let last = gridroll(&db, &["users", "remove", "--email", "boss@acme.example"]);
    refused(&last, "last admin");
    let demote = gridroll(
        &db,
        &[
            "users",
            "set-role",
            "--email",
            "boss@acme.example",
            "--role",
            "member",
        ],
    );
    refused(&demote, "last admin");

    let promoted = lines(&gridroll(
        &db,
        &[
            "users",
            "set-role",
            "--email",
            "ops@acme.example",
            "--role",
            "admin",
        ],
    ));
    assert_eq!(promoted[0]["role"], "admin");
    let removed = lines(&gridroll(
        &db,
        &["users", "remove", "--email", "boss@acme.example"],
    ));
    assert_eq!(removed[0]["removed"], true);
    let users = lines(&gridroll(
        &db,
        &["users", "list", "--partner", &partner, "--output", "json"],
    ));
    let emails: Vec<&Value> = users.iter().map(|u| &u["email"]).collect();
    assert_eq!(emails, ["ops@acme.example"]);
    assert_eq!(users[0]["role"], "admin");
    refused(
        &gridroll(&db, &["users", "remove", "--email", "nobody@acme.example"]),
        "there is no user nobody@acme.example",
    );
}

async fn operators_list_and_revoke_pending_invitations(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    let out = gridroll_with_input(
        &db,
        &[
            "users",
            "create",
            "--partner",
            &partner,
            "--email",
            "boss@acme.example",
        ],
        "a long enough passphrase\n",
    );
    let boss: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stores = gridroll_store::open(db.url(), &StoreOptions::default())
        .await
        .unwrap();
    let now = gridroll_domain::timestamp::now_millis();
    for (token, email) in [([1; 32], "new@acme.example"), ([2; 32], "old@acme.example")] {
        stores
            .accounts
            .add_invitation(&NewInvitation {
                token: TokenHash(token),
                partner: partner.parse().unwrap(),
                email: email.to_owned(),
                role: Role::Member,
                invited_by: boss["user_id"].as_str().unwrap().parse().unwrap(),
                created_at: now,
                // The old one has expired: it is not pending.
                expires_at: if email.starts_with("old") {
                    now - 1
                } else {
                    now + 3_600_000
                },
            })
            .await
            .unwrap();
    }
    let pending = lines(&gridroll(
        &db,
        &[
            "invitations",
            "list",
            "--partner",
            &partner,
            "--output",
            "json",
        ],
    ));
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["email"], "new@acme.example");
    assert_eq!(pending[0]["invited_by"], "boss@acme.example");

    let revoke = [
        "invitations",
        "revoke",
        "--partner",
        &partner,
        "--email",
        "New@Acme.example",
    ];
    assert_eq!(lines(&gridroll(&db, &revoke))[0]["revoked"], true);
    assert!(
        stores
            .accounts
            .invitation(&TokenHash([1; 32]), now)
            .await
            .unwrap()
            .is_none()
    );
    refused(
        &gridroll(&db, &revoke),
        "no pending invitation for new@acme.example",
    );
    let none = lines(&gridroll(
        &db,
        &[
            "invitations",
            "list",
            "--partner",
            &partner,
            "--output",
            "json",
        ],
    ));
    assert!(none.is_empty());
}

/// One line on stderr and the exit status `code`: 1 for what the database refuses, 2 for
/// what the command line does.
fn refused_in_one_line(out: &std::process::Output, code: i32, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    if code == 1 {
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

async fn account_commands_name_what_is_unknown_and_never_leave_a_partner_without_an_admin(
    backend: Backend,
) {
    let db = TestDatabase::new(backend).await.unwrap();
    let (partner, _) = create_partner(&db);
    let (other, _) = create_partner(&db);
    let stranger = "01900000-0000-7000-8000-000000000000";
    for partner in [&partner, &other] {
        let out = gridroll_with_input(
            &db,
            &[
                "users",
                "create",
                "--partner",
                partner,
                "--email",
                "boss@acme.example",
            ],
            "a long enough passphrase\n",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    for list in ["users", "keys", "invitations"] {
        refused_in_one_line(
            &gridroll(&db, &[list, "list", "--partner", stranger]),
            1,
            &format!("there is no partner {stranger}"),
        );
    }
    refused_in_one_line(
        &gridroll(&db, &["keys", "revoke", "--partner", stranger, stranger]),
        1,
        "there is no partner",
    );
    refused_in_one_line(
        &gridroll(&db, &["keys", "revoke", "--partner", &partner, stranger]),
        1,
        &format!("there is no live API key {stranger}"),
    );
    refused_in_one_line(
        &gridroll(
            &db,
            &["keys", "revoke", "--partner", &partner, "grk_not_an_id"],
        ),
        2,
        "grk_not_an_id",
    );
    refused_in_one_line(
        &gridroll(
            &db,
            &[
                "invitations",
                "revoke",
                "--partner",
                &partner,
                "--email",
                "nobody@acme.example",
            ],
        ),
        1,
        "there is no pending invitation for nobody@acme.example",
    );

    // The email is a user of two partners: which one must be said.
    let boss = ["--email", "boss@acme.example"];
    refused_in_one_line(
        &gridroll(&db, &[&["users", "remove"][..], &boss].concat()),
        1,
        "--partner",
    );
    let of_partner = [&boss[..], &["--partner", &partner]].concat();
    refused_in_one_line(
        &gridroll(&db, &[&["users", "remove"][..], &of_partner].concat()),
        1,
        "last admin",
    );
    refused_in_one_line(
        &gridroll(
            &db,
            &[
                &["users", "set-role"][..],
                &of_partner,
                &["--role", "member"],
            ]
            .concat(),
        ),
        1,
        "last admin",
    );
    refused_in_one_line(
        &gridroll(
            &db,
            &[
                &["users", "set-role"][..],
                &of_partner,
                &["--role", "owner"],
            ]
            .concat(),
        ),
        2,
        "possible values: admin, member",
    );
    refused_in_one_line(
        &gridroll(
            &db,
            &[
                "users",
                "remove",
                "--email",
                "boss@acme.example",
                "--partner",
                stranger,
            ],
        ),
        1,
        "there is no user boss@acme.example",
    );
    refused_in_one_line(
        &gridroll(
            &db,
            &[
                "users",
                "set-role",
                "--email",
                "nobody@acme.example",
                "--role",
                "admin",
            ],
        ),
        1,
        "there is no user nobody@acme.example",
    );
    let users = lines(&gridroll(
        &db,
        &["users", "list", "--partner", &partner, "--output", "json"],
    ));
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["role"], "admin");
}

gridroll_testkit::backend_tests!(
    operators_list_partners_and_keys_and_revoke_a_key_by_its_id,
    operators_manage_users_but_never_remove_or_demote_the_last_admin,
    operators_list_and_revoke_pending_invitations,
    account_commands_name_what_is_unknown_and_never_leave_a_partner_without_an_admin,
);
