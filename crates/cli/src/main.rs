//! `gridroll`: runs the server and administers partners, keys and meters.

use std::fs::File;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use gridroll_domain::PartnerId;
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::intake::{self, Format, IntakeError};
use gridroll_domain::program::{DEFAULT_CATALOG, parse_catalog};
use gridroll_domain::scope::{KeyName, Scopes};
use gridroll_domain::timestamp::now_millis;
use gridroll_server::auth::issue_api_key;
use gridroll_server::portal;
use gridroll_store::{AccountStore, AddUserError, PasswordSet, Role};
use serde_json::json;

mod catalog;
mod database;
mod lock;
mod serve;

use crate::catalog::{EnrollmentsCommand, ProgramsCommand, read_catalog};
use crate::database::Database;
use crate::serve::ServeArgs;

/// jemalloc rather than glibc's malloc. An import allocates and frees each row's document
/// and each chunk's meters by the thousand on several threads, often freeing on one what
/// another allocated: against glibc, in alternating runs, 200k-row imports took 15-25%
/// less server CPU, and 1M rows 17 s instead of 20-23 s end to end.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts: a thread of its own hands memory freed for a
/// second back to the system, so that the server's memory stays flat through a long
/// import (with jemalloc's defaults a 1M-row import peaked 1.24x a 100k one; with these,
/// 1.02-1.09x).
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Gridroll: meter onboarding and demand-response enrollment.
#[derive(Debug, Parser)]
#[command(name = "gridroll", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "GRIDROLL_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and the job workers.
    Serve(ServeArgs),
    /// Create or update the database schema and add the catalog's missing programs, then exit.
    Migrate {
        #[command(flatten)]
        database: Database,
        /// A catalog file (default: the catalog shipped with Gridroll).
        #[arg(long, env = "GRIDROLL_PROGRAMS")]
        programs: Option<PathBuf>,
    },
    /// Manage partners.
    #[command(subcommand)]
    Partners(PartnersCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage portal users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Operator tools for meters.
    #[command(subcommand)]
    Meters(MetersCommand),
    /// The program catalog.
    #[command(subcommand)]
    Programs(ProgramsCommand),
    /// Operator moves on enrollments.
    #[command(subcommand)]
    Enrollments(EnrollmentsCommand),
}

#[derive(Debug, Subcommand)]
enum PartnersCommand {
    /// Create a partner with a first API key; prints {"partner_id", "api_key"}.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create another API key for a partner; prints {"partner_id", "api_key"}.
    Create {
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
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a portal user for a partner. The password is read from standard input
    /// (one line); prints {"user_id", "partner_id", "email", "role"}.
    Create {
        #[arg(long)]
        partner: PartnerId,
        #[arg(long)]
        email: String,
        /// Members upload and read; admins also invite users and manage API keys.
        #[arg(long, value_enum, default_value_t = UserRole::Admin)]
        role: UserRole,
        #[command(flatten)]
        database: Database,
    },
    /// Set a portal user's password, read from standard input (one line); the user's
    /// sessions end and a lockout is lifted.
    SetPassword {
        #[arg(long)]
        email: String,
        /// The partner whose user it is, when users of several partners share the email.
        #[arg(long)]
        partner: Option<PartnerId>,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum UserRole {
    Admin,
    Member,
}

#[derive(Debug, Subcommand)]
enum MetersCommand {
    /// Import meters that reach the platform by another channel than the partner's
    /// uploads (utility-authorized meters). They may share a partner_reference.
    Import {
        #[arg(long)]
        partner: PartnerId,
        /// A JSON file holding {"assets": [...]}.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        database: Database,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRIDROLL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Migrate { database, programs } => {
            let store = database.open_alone().await?;
            let catalog = match &programs {
                Some(file) => read_catalog(file)?,
                None => parse_catalog(DEFAULT_CATALOG).map_err(anyhow::Error::msg)?,
            };
            let added = store.catalog.seed_programs(&catalog, now_millis()).await?;
            eprintln!("the database is up to date; {added} programs added to the catalog");
            Ok(())
        }
        Command::Partners(PartnersCommand::Create { name, database }) => {
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
            println!("{}", json!({"partner_id": partner.id, "api_key": key}));
            Ok(())
        }
        Command::Keys(KeysCommand::Create {
            partner,
            name,
            read_only,
            scope,
            database,
        }) => {
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
            let (_, key) = issue_api_key(
                store.accounts.as_ref(),
                partner,
                name.as_str(),
                scopes,
                now_millis(),
            )
            .await?;
            println!(
                "{}",
                json!({"partner_id": partner, "api_key": key, "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()})
            );
            Ok(())
        }
        Command::Users(UsersCommand::Create {
            partner,
            email,
            role,
            database,
        }) => {
            let (email, hash) = email_and_password(&email).await?;
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let role = match role {
                UserRole::Admin => Role::Admin,
                UserRole::Member => Role::Member,
            };
            let user = match store
                .accounts
                .add_user(partner, &email, role, &hash, now_millis())
                .await
            {
                Ok(user) => user,
                Err(AddUserError::EmailTaken) => {
                    bail!("the partner has a user with the email {email} already")
                }
                Err(AddUserError::Store(e)) => return Err(e.into()),
            };
            println!(
                "{}",
                json!({"user_id": user.id, "partner_id": partner, "email": user.email, "role": user.role.to_string()})
            );
            Ok(())
        }
        Command::Users(UsersCommand::SetPassword {
            email,
            partner,
            database,
        }) => {
            let (email, hash) = email_and_password(&email).await?;
            let store = database.open().await?;
            match store.accounts.set_password(&email, partner, &hash).await? {
                PasswordSet::Changed => {}
                PasswordSet::NoSuchUser => bail!("there is no user with the email {email}"),
                PasswordSet::Ambiguous => bail!(
                    "users of several partners have the email {email}: name one with --partner"
                ),
            }
            println!("{}", json!({"email": email, "password_changed": true}));
            Ok(())
        }
        Command::Meters(MetersCommand::Import {
            partner,
            file,
            database,
        }) => import_meters(database, partner, file).await,
        Command::Programs(command) => catalog::programs(command).await,
        Command::Enrollments(command) => catalog::enrollments(command).await,
    }
}

pub(crate) async fn require_partner(
    accounts: &dyn AccountStore,
    partner: PartnerId,
) -> anyhow::Result<()> {
    if accounts.get_partner(partner).await?.is_none() {
        bail!("there is no partner {partner}");
    }
    Ok(())
}

/// A normalised email, and the hash of a password read from standard input.
async fn email_and_password(email: &str) -> anyhow::Result<(String, String)> {
    let email =
        portal::password::normalize_email(email).map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    portal::password::check_strength(password, &email)
        .map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let hash = portal::password::hash(password.to_owned()).await?;
    Ok((email, hash))
}

async fn import_meters(
    database: Database,
    partner: PartnerId,
    file: PathBuf,
) -> anyhow::Result<()> {
    let store = database.open().await?;
    require_partner(store.accounts.as_ref(), partner).await?;
    let reader = File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut meters = Vec::new();
    let read = tokio::task::block_in_place(|| {
        intake::read_assets(Format::Json, reader, &mut |data| {
            meters.push(data);
            ControlFlow::Continue(())
        })
    });
    match read {
        Ok(_) => {}
        Err(IntakeError::Rejected(problems)) => {
            eprintln!("{}", serde_json::to_string_pretty(&problems.listed)?);
            bail!(
                "{} has {} problems; nothing was imported",
                file.display(),
                problems.total
            );
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
    let ids = store
        .meters
        .import_meters(partner, CreatedBy::Utility, meters, now_millis())
        .await?;
    println!("{}", json!({"imported": ids.len(), "meter_ids": ids}));
    Ok(())
}
