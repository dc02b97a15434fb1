//! The operator's commands on accounts, run on the database: partners, API keys, portal
//! users and their invitations. The use cases that change accounts are the server's
//! (`gridroll_server::accounts`), shared with the portal.

use anyhow::bail;
use clap::{Subcommand, ValueEnum};
use gridroll_domain::scope::{KeyName, Scopes};
use gridroll_domain::timestamp::{format_millis, now_millis};
use gridroll_domain::{ApiKeyId, PartnerId};
use gridroll_server::accounts::{self, AccountError, Actor};
use gridroll_server::auth::issue_api_key;
use gridroll_server::portal;
use gridroll_store::{AccountStore, AddUserError, PasswordSet, Role, User};
use serde_json::json;

use crate::database::Database;
use crate::output::{Listing, Output, print_json, when, when_or};
use crate::prompt;

#[derive(Debug, Subcommand)]
pub enum PartnersCommand {
    /// Create a partner with a first API key; prints {"partner_id", "api_key"}.
    #[command(after_help = "Example:\n  gridroll partners create --name \"Acme Energy\"")]
    Create {
        /// The partner's name, as the operator knows it.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: Database,
    },
    /// List every partner with its counts of users and live API keys.
    #[command(after_help = "Example:\n  gridroll partners list --output json")]
    List {
        /// How to print the list.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create another API key for a partner; prints {"partner_id", "api_key", "scopes"}.
    #[command(
        after_help = "Example:\n  gridroll keys create --partner 01936f7e-... --name billing-sync --scope meters:read"
    )]
    Create {
        /// The partner the key acts for.
        #[arg(long)]
        partner: PartnerId,
        /// A label to recognise the key by.
        #[arg(long, default_value = "api")]
        name: String,
        /// Every read and nothing else: meters:read, events:read and webhooks:read.
        #[arg(long, conflicts_with = "scope")]
        read_only: bool,
        /// What the key may do, one or more of meters:read, meters:write,
        /// enrollments:write, events:read, webhooks:read, webhooks:manage (repeat the
        /// flag or separate by commas). Without it (or --read-only), every scope.
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
        #[command(flatten)]
        database: Database,
    },
    /// List a partner's API keys, newest first, with the first characters of each key.
    #[command(after_help = "Example:\n  gridroll keys list --partner 01936f7e-...")]
    List {
        /// The partner whose keys to list.
        #[arg(long)]
        partner: PartnerId,
        /// How to print the list.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        database: Database,
    },
    /// Revoke a partner's API key: servers refuse it within a minute.
    #[command(after_help = "Example:\n  gridroll keys revoke --partner 01936f7e-... 01937a2b-...")]
    Revoke {
        /// The partner whose key it is.
        #[arg(long)]
        partner: PartnerId,
        /// The key's id, as `keys list` shows it.
        key: ApiKeyId,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a portal user for a partner; prints {"user_id", "partner_id", "email",
    /// "role"}. The password is typed without echo (twice) at a terminal, or read from
    /// standard input (one line).
    #[command(
        after_help = "Example:\n  gridroll users create --partner 01936f7e-... --email ops@acme.example < password.txt"
    )]
    Create {
        /// The partner the user works for.
        #[arg(long)]
        partner: PartnerId,
        /// The address the user signs in with.
        #[arg(long)]
        email: String,
        /// Members upload and read; admins also manage users and API keys.
        #[arg(long, value_enum, default_value_t = UserRole::Admin)]
        role: UserRole,
        #[command(flatten)]
        database: Database,
    },
    /// Set a portal user's password (typed without echo at a terminal, or one line of
    /// standard input); the user's sessions end and lockouts are lifted.
    #[command(after_help = "Example:\n  gridroll users set-password --email ops@acme.example")]
    SetPassword {
        #[command(flatten)]
        user: UserArg,
        #[command(flatten)]
        database: Database,
    },
    /// List a partner's portal users.
    #[command(after_help = "Example:\n  gridroll users list --partner 01936f7e-...")]
    List {
        /// The partner whose users to list.
        #[arg(long)]
        partner: PartnerId,
        /// How to print the list.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        database: Database,
    },
    /// Remove a portal user: their sessions end at once and the invitations they made
    /// are withdrawn. A partner's last admin cannot be removed.
    #[command(after_help = "Example:\n  gridroll users remove --email former@acme.example")]
    Remove {
        #[command(flatten)]
        user: UserArg,
        #[command(flatten)]
        database: Database,
    },
    /// Give a portal user a role. A partner's last admin cannot be made a member.
    #[command(
        after_help = "Example:\n  gridroll users set-role --email ops@acme.example --role member"
    )]
    SetRole {
        #[command(flatten)]
        user: UserArg,
        /// The new role.
        #[arg(long, value_enum)]
        role: UserRole,
        #[command(flatten)]
        database: Database,
    },
}

/// A user named by email, and by partner when users of several partners have it.
#[derive(Debug, clap::Args)]
pub struct UserArg {
    /// The user's email.
    #[arg(long)]
    email: String,
    /// The partner whose user it is, when users of several partners share the email.
    #[arg(long)]
    partner: Option<PartnerId>,
}

#[derive(Debug, Subcommand)]
pub enum InvitationsCommand {
    /// List a partner's pending invitations (not accepted, not expired).
    #[command(after_help = "Example:\n  gridroll invitations list --partner 01936f7e-...")]
    List {
        /// The partner whose invitations to list.
        #[arg(long)]
        partner: PartnerId,
        /// How to print the list.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        database: Database,
    },
    /// Withdraw a partner's pending invitations to an email: their links stop working.
    #[command(
        after_help = "Example:\n  gridroll invitations revoke --partner 01936f7e-... --email new@acme.example"
    )]
    Revoke {
        /// The partner that invited.
        #[arg(long)]
        partner: PartnerId,
        /// The invited email.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UserRole {
    Admin,
    Member,
}

impl From<UserRole> for Role {
    fn from(role: UserRole) -> Self {
        match role {
            UserRole::Admin => Role::Admin,
            UserRole::Member => Role::Member,
        }
    }
}

pub async fn require_partner(
    accounts: &dyn AccountStore,
    partner: PartnerId,
) -> anyhow::Result<()> {
    if accounts.get_partner(partner).await?.is_none() {
        bail!("there is no partner {partner}");
    }
    Ok(())
}

pub async fn partners(command: PartnersCommand) -> anyhow::Result<()> {
    match command {
        PartnersCommand::Create { name, database } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("the partner name must not be empty");
            }
            if gridroll_domain::text::control_character(name).is_some() {
                bail!("the partner name must not contain control characters");
            }
            let store = database.open().await?;
            let partner = store.accounts.create_partner(name, now_millis()).await?;
            let (_, key) = issue_api_key(
                store.accounts.as_ref(),
                partner.id,
                "first key",
                Scopes::ALL,
                now_millis(),
            )
            .await?;
            print_json(&json!({"partner_id": partner.id, "api_key": key}))
        }
        PartnersCommand::List { output, database } => {
            let store = database.open().await?;
            let mut listing = Listing::new(&["PARTNER ID", "NAME", "CREATED", "USERS", "KEYS"]);
            for summary in store.accounts.list_partners().await? {
                let p = &summary.partner;
                listing.push(
                    vec![
                        p.id.to_string(),
                        p.name.clone(),
                        when(p.created_at),
                        summary.users.to_string(),
                        summary.live_keys.to_string(),
                    ],
                    json!({
                        "partner_id": p.id, "name": p.name, "created_at": format_millis(p.created_at),
                        "users": summary.users, "live_keys": summary.live_keys,
                    }),
                );
            }
            listing.print(output)
        }
    }
}

pub async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            partner,
            name,
            read_only,
            scope,
            database,
        } => {
            let name = KeyName::parse(&name)?;
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let scopes = if read_only {
                Scopes::READ_ONLY
            } else if scope.is_empty() {
                Scopes::ALL
            } else {
                Scopes::from_names(scope.iter().map(String::as_str))?
            };
            let (id, key) = issue_api_key(
                store.accounts.as_ref(),
                partner,
                name.as_str(),
                scopes,
                now_millis(),
            )
            .await?;
            print_json(&json!({
                "partner_id": partner, "key_id": id, "api_key": key,
                "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            }))
        }
        KeysCommand::List {
            partner,
            output,
            database,
        } => {
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let mut listing = Listing::new(&[
                "KEY ID",
                "NAME",
                "STARTS WITH",
                "SCOPES",
                "CREATED",
                "LAST USED",
                "REVOKED",
            ]);
            for key in store.accounts.list_api_keys(partner).await? {
                let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                listing.push(
                    vec![
                        key.id.to_string(),
                        key.name.clone(),
                        key.prefix.clone().unwrap_or_else(|| "-".to_owned()),
                        scopes.join(","),
                        when(key.created_at),
                        when_or(key.last_used_at, "never"),
                        when_or(key.revoked_at, "-"),
                    ],
                    json!({
                        "key_id": key.id, "name": key.name, "prefix": key.prefix, "scopes": scopes,
                        "created_at": format_millis(key.created_at),
                        "last_used_at": key.last_used_at.map(format_millis),
                        "revoked_at": key.revoked_at.map(format_millis),
                    }),
                );
            }
            listing.print(output)
        }
        KeysCommand::Revoke {
            partner,
            key,
            database,
        } => {
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            accounts::revoke_key(store.accounts.as_ref(), partner, key, now_millis()).await?;
            eprintln!(
                "revoked key {key}; servers refuse it within a minute (each remembers a checked key that long)"
            );
            print_json(&json!({"key_id": key, "revoked": true}))
        }
    }
}

pub async fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create {
            partner,
            email,
            role,
            database,
        } => {
            let (email, hash) = email_and_password(&email).await?;
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let user = match store
                .accounts
                .add_user(partner, &email, role.into(), &hash, now_millis())
                .await
            {
                Ok(user) => user,
                Err(AddUserError::EmailTaken) => {
                    bail!("the partner has a user with the email {email} already")
                }
                Err(AddUserError::Store(e)) => return Err(e.into()),
            };
            print_json(&json!({
                "user_id": user.id, "partner_id": partner, "email": user.email,
                "role": user.role.to_string(),
            }))
        }
        UsersCommand::SetPassword { user, database } => {
            let (email, hash) = email_and_password(&user.email).await?;
            let store = database.open().await?;
            match store
                .accounts
                .set_password(&email, user.partner, &hash)
                .await?
            {
                PasswordSet::Changed => {}
                PasswordSet::NoSuchUser => bail!("there is no user with the email {email}"),
                PasswordSet::Ambiguous => bail!(
                    "users of several partners have the email {email}: name one with --partner"
                ),
            }
            print_json(&json!({"email": email, "password_changed": true}))
        }
        UsersCommand::List {
            partner,
            output,
            database,
        } => {
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let mut listing =
                Listing::new(&["USER ID", "EMAIL", "ROLE", "ADDED", "LAST SIGNED IN"]);
            for user in store.accounts.list_users(partner).await? {
                listing.push(
                    vec![
                        user.id.to_string(),
                        user.email.clone(),
                        user.role.to_string(),
                        when(user.created_at),
                        when_or(user.last_sign_in_at, "never"),
                    ],
                    json!({
                        "user_id": user.id, "email": user.email, "role": user.role.to_string(),
                        "created_at": format_millis(user.created_at),
                        "last_sign_in_at": user.last_sign_in_at.map(format_millis),
                    }),
                );
            }
            listing.print(output)
        }
        UsersCommand::Remove { user, database } => {
            let store = database.open().await?;
            let found = find_user(store.accounts.as_ref(), &user).await?;
            let removed = accounts::remove_user(
                store.accounts.as_ref(),
                Actor::Operator,
                found.partner,
                found.id,
            )
            .await?;
            eprintln!("removed {}; their sessions have ended", removed.email);
            print_json(&json!({
                "user_id": removed.id, "partner_id": removed.partner, "email": removed.email,
                "removed": true,
            }))
        }
        UsersCommand::SetRole {
            user,
            role,
            database,
        } => {
            let store = database.open().await?;
            let found = find_user(store.accounts.as_ref(), &user).await?;
            let changed = accounts::set_role(
                store.accounts.as_ref(),
                Actor::Operator,
                found.partner,
                found.id,
                role.into(),
            )
            .await?;
            print_json(&json!({
                "user_id": changed.id, "partner_id": changed.partner, "email": changed.email,
                "role": changed.role.to_string(),
            }))
        }
    }
}

pub async fn invitations(command: InvitationsCommand) -> anyhow::Result<()> {
    match command {
        InvitationsCommand::List {
            partner,
            output,
            database,
        } => {
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let mut listing = Listing::new(&["EMAIL", "ROLE", "INVITED BY", "CREATED", "EXPIRES"]);
            for invitation in store
                .accounts
                .list_invitations(partner, now_millis())
                .await?
            {
                listing.push(
                    vec![
                        invitation.email.clone(),
                        invitation.role.to_string(),
                        invitation.invited_by.clone(),
                        when(invitation.created_at),
                        when(invitation.expires_at),
                    ],
                    json!({
                        "email": invitation.email, "role": invitation.role.to_string(),
                        "invited_by": invitation.invited_by,
                        "created_at": format_millis(invitation.created_at),
                        "expires_at": format_millis(invitation.expires_at),
                    }),
                );
            }
            listing.print(output)
        }
        InvitationsCommand::Revoke {
            partner,
            email,
            database,
        } => {
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let email =
                accounts::revoke_invitation(store.accounts.as_ref(), partner, &email, now_millis())
                    .await?;
            print_json(&json!({"partner_id": partner, "email": email, "revoked": true}))
        }
    }
}

/// The user named on the command line; an email that several partners' users have asks
/// for `--partner`.
async fn find_user(accounts: &dyn AccountStore, user: &UserArg) -> anyhow::Result<User> {
    accounts::find_user(accounts, &user.email, user.partner)
        .await
        .map_err(|e| match e {
            AccountError::AmbiguousEmail(email) => anyhow::anyhow!(
                "users of several partners have the email {email}: name one with --partner"
            ),
            e => e.into(),
        })
}

/// A normalised email, and the hash of a new password typed or piped in.
async fn email_and_password(email: &str) -> anyhow::Result<(String, String)> {
    let email =
        portal::password::normalize_email(email).map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let password = prompt::new_password(&email)?;
    portal::password::check_strength(&password, &email)
        .map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let hash = portal::password::hash(password).await?;
    Ok((email, hash))
}
