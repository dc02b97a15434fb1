//! `gridroll`: runs the server and administers partners, keys and meters.

use std::fs::File;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::intake::{self, Format, IntakeError};
use gridroll_domain::program::{DEFAULT_CATALOG, Program, parse_catalog};
use gridroll_domain::timestamp::now_millis;
use gridroll_domain::{MeterId, PartnerId};
use gridroll_server::auth::issue_api_key;
use gridroll_server::body::BodyPace;
use gridroll_server::slots::UploadSlots;
use gridroll_server::{AppState, Config, portal};
use gridroll_store::{
    AccountStore, AddUserError, PartnerProgramsError, PasswordSet, Permission, Role, StoreOptions,
    Stores,
};
use serde_json::json;

mod lock;

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

#[derive(Debug, Args)]
struct Database {
    /// Database to use: sqlite://PATH (created on first use) or postgres://USER@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gridroll.db")]
    database_url: String,
    /// Most database connections this process opens.
    #[arg(long, env = "GRIDROLL_DB_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    db_pool_size: u32,
    /// Longest a single database statement may run, in seconds (PostgreSQL).
    #[arg(long, env = "GRIDROLL_DB_STATEMENT_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    db_statement_timeout: u64,
    /// The most bytes the SQLite file may grow to; past it, writes are refused as on a
    /// full disk (507), and the file keeps room on the disk for everything else.
    #[arg(long, env = "GRIDROLL_DB_MAX_SIZE")]
    db_max_size: Option<u64>,
}

impl Database {
    /// Opens (creating and migrating) the database, for a command that may run beside a
    /// server: on a SQLite file another process serves, nothing is migrated (a schema
    /// that is not this release's is refused). The program catalog is filled by `serve`
    /// and `migrate`, from `--programs` or the shipped catalog.
    async fn open(&self) -> anyhow::Result<Stores> {
        let alone = match gridroll_store::sqlite_path(&self.database_url) {
            Some(path) => matches!(lock::take(Path::new(path))?, lock::Holding::Alone),
            None => true,
        };
        self.open_with(alone).await
    }

    /// Opens the database for serving or migrating it: on SQLite, only while no other
    /// process does, and this process keeps it to itself until it exits.
    async fn open_alone(&self) -> anyhow::Result<Stores> {
        if let Some(path) = gridroll_store::sqlite_path(&self.database_url)
            && let lock::Holding::Beside { holder, lock } = lock::take(Path::new(path))?
        {
            bail!(
                "{path} is in use by another gridroll process ({holder}; lock file {}). \
                 A SQLite database is served by one process at a time: stop that process \
                 first, or use PostgreSQL to run several",
                lock.display()
            );
        }
        self.open_with(true).await
    }

    async fn open_with(&self, migrate: bool) -> anyhow::Result<Stores> {
        let options = StoreOptions {
            max_connections: self.db_pool_size as usize,
            statement_timeout: Duration::from_secs(self.db_statement_timeout),
            migrate,
            max_size: self.db_max_size,
        };
        gridroll_store::open(&self.database_url, &options)
            .await
            .with_context(|| format!("cannot open the database {}", redact(&self.database_url)))
    }
}

/// A database URL without its password, for messages and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
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
enum ProgramsCommand {
    /// List every program (retired ones marked); one JSON object per line.
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Show one program's definition as JSON.
    Show {
        identifier: String,
        #[command(flatten)]
        database: Database,
    },
    /// Add or change the programs of a catalog file (the layout of programs.toml).
    Put {
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        database: Database,
    },
    /// Retire a program: meters are no longer evaluated against it.
    Retire {
        identifier: String,
        #[command(flatten)]
        database: Database,
    },
    /// Choose the programs a partner may use (every program unless limited).
    Enable {
        #[arg(long)]
        partner: PartnerId,
        /// Comma-separated program identifiers.
        #[arg(long, value_delimiter = ',', required_unless_present = "all")]
        programs: Vec<String>,
        /// Allow every program.
        #[arg(long, conflicts_with = "programs")]
        all: bool,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Debug, Subcommand)]
enum EnrollmentsCommand {
    /// Confirm PENDING enrollments in a program: ACTIVE from now.
    Activate {
        #[arg(long)]
        partner: PartnerId,
        #[arg(long)]
        program: String,
        /// Only this meter; without it, every PENDING meter of the partner.
        #[arg(long)]
        meter: Option<MeterId>,
        #[command(flatten)]
        database: Database,
    },
    /// Evaluate every meter of a partner again, after the catalog changed.
    Refresh {
        #[arg(long)]
        partner: PartnerId,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GRIDROLL_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    database: Database,
    /// Create a demo partner if there is none, and print a fresh API key for it.
    #[arg(long)]
    demo: bool,
    /// Job workers in this process.
    #[arg(long, env = "GRIDROLL_WORKERS", default_value_t = 2)]
    workers: usize,
    /// Assets processed per transaction.
    #[arg(long, env = "GRIDROLL_CHUNK_SIZE", default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..))]
    chunk_size: u32,
    /// Largest bulk upload body, in bytes.
    #[arg(long, env = "GRIDROLL_MAX_BODY_BYTES", default_value_t = 256 * 1024 * 1024)]
    max_body_bytes: u64,
    /// How long a worker's claim on a job lasts without renewal, in seconds. Another
    /// process takes over a job whose worker died once this has passed.
    #[arg(long, env = "GRIDROLL_LEASE_SECONDS", default_value_t = 30.0)]
    lease_seconds: f64,
    /// Bulk uploads received at once; further ones are answered 429.
    #[arg(long, env = "GRIDROLL_MAX_CONCURRENT_UPLOADS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_uploads: u32,
    /// Bulk uploads one partner may send at once (default: half of
    /// --max-concurrent-uploads), so that one partner cannot hold every place.
    #[arg(long, env = "GRIDROLL_MAX_UPLOADS_PER_PARTNER", value_parser = clap::value_parser!(u32).range(1..))]
    max_uploads_per_partner: Option<u32>,
    /// Seconds a request body may go without sending a byte before the request is
    /// refused (408).
    #[arg(long, env = "GRIDROLL_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout: u64,
    /// Fewest bytes per second a request body must arrive at, measured over each 30 s the
    /// server waits for it (408 below).
    #[arg(long, env = "GRIDROLL_MIN_BODY_RATE", default_value_t = 1024)]
    min_body_rate: u64,
    /// Marks portal cookies Secure and makes invitation links https://: set it when the
    /// portal is reached over HTTPS (directly or through a proxy).
    #[arg(long, env = "GRIDROLL_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Requests arrive through a reverse proxy that appends the client's address to
    /// X-Forwarded-For: the portal's sign-in throttle counts by that address.
    #[arg(long, env = "GRIDROLL_BEHIND_PROXY")]
    behind_proxy: bool,
    /// Token that opens the operator API (/operator/v1); without it the API is closed.
    #[arg(long, env = "GRIDROLL_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
    /// A catalog file whose programs are added at start when missing (default: the
    /// catalog shipped with Gridroll).
    #[arg(long, env = "GRIDROLL_PROGRAMS")]
    programs: Option<PathBuf>,
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
        /// The key may list and search but not create meters or change participation.
        #[arg(long)]
        read_only: bool,
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
        Command::Serve(args) => serve(args).await,
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
                Permission::ReadWrite,
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
            database,
        }) => {
            if gridroll_domain::text::control_character(&name).is_some() {
                bail!("the key name must not contain control characters");
            }
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let permission = if read_only {
                Permission::ReadOnly
            } else {
                Permission::ReadWrite
            };
            let (_, key) = issue_api_key(
                store.accounts.as_ref(),
                partner,
                &name,
                permission,
                now_millis(),
            )
            .await?;
            println!("{}", json!({"partner_id": partner, "api_key": key}));
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
        Command::Programs(command) => programs(command).await,
        Command::Enrollments(command) => enrollments(command).await,
    }
}

fn read_catalog(file: &PathBuf) -> anyhow::Result<Vec<Program>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    parse_catalog(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

async fn programs(command: ProgramsCommand) -> anyhow::Result<()> {
    match command {
        ProgramsCommand::List { database } => {
            let store = database.open().await?;
            for entry in store.catalog.list_programs().await? {
                println!(
                    "{}",
                    json!({
                        "program_identifier": entry.program.identifier,
                        "name": entry.program.name,
                        "transmission_regions": entry.program.transmission_regions,
                        "retired": entry.retired,
                    })
                );
            }
            Ok(())
        }
        ProgramsCommand::Show {
            identifier,
            database,
        } => {
            let store = database.open().await?;
            let entry = store
                .catalog
                .list_programs()
                .await?
                .into_iter()
                .find(|e| e.program.identifier == identifier)
                .with_context(|| format!("there is no program {identifier}"))?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"definition": entry.program, "retired": entry.retired})
                )?
            );
            Ok(())
        }
        ProgramsCommand::Put { file, database } => {
            let catalog = read_catalog(&file)?;
            let store = database.open().await?;
            for program in &catalog {
                store.catalog.put_program(program, now_millis()).await?;
                eprintln!("put {}", program.identifier);
            }
            eprintln!(
                "{} programs saved; meters are evaluated against them from their next change, \
                 or at once with `gridroll enrollments refresh`",
                catalog.len()
            );
            Ok(())
        }
        ProgramsCommand::Retire {
            identifier,
            database,
        } => {
            let store = database.open().await?;
            if !store
                .catalog
                .retire_program(&identifier, now_millis())
                .await?
            {
                bail!("there is no program {identifier}");
            }
            eprintln!("retired {identifier}");
            Ok(())
        }
        ProgramsCommand::Enable {
            partner,
            programs,
            all,
            database,
        } => {
            let store = database.open().await?;
            let programs = (!all).then_some(programs.as_slice());
            match store.catalog.set_partner_programs(partner, programs).await {
                Ok(()) => {}
                Err(PartnerProgramsError::Store(e)) => return Err(e.into()),
                Err(refused) => bail!("{refused}"),
            }
            let enabled = store
                .catalog
                .partner_programs(partner, now_millis())
                .await?;
            println!(
                "{}",
                json!({"partner_id": partner, "programs": enabled.iter().map(|p| &p.identifier).collect::<Vec<_>>()})
            );
            Ok(())
        }
    }
}

async fn enrollments(command: EnrollmentsCommand) -> anyhow::Result<()> {
    match command {
        EnrollmentsCommand::Activate {
            partner,
            program,
            meter,
            database,
        } => {
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let activated = store
                .catalog
                .activate_enrollments(partner, &program, meter, now_millis())
                .await?;
            println!("{}", json!({"program": program, "activated": activated}));
            Ok(())
        }
        EnrollmentsCommand::Refresh { partner, database } => {
            let store = database.open().await?;
            require_partner(store.accounts.as_ref(), partner).await?;
            let changed = store
                .catalog
                .refresh_enrollments(partner, now_millis())
                .await?;
            println!("{}", json!({"changed": changed}));
            Ok(())
        }
    }
}

async fn require_partner(accounts: &dyn AccountStore, partner: PartnerId) -> anyhow::Result<()> {
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = args.database.open_alone().await?;
    if args.demo {
        let partner = match store.accounts.find_partner_by_name(DEMO_PARTNER).await? {
            Some(partner) => partner,
            None => {
                store
                    .accounts
                    .create_partner(DEMO_PARTNER, now_millis())
                    .await?
            }
        };
        let (_, key) = issue_api_key(
            store.accounts.as_ref(),
            partner.id,
            "demo",
            Permission::ReadWrite,
            now_millis(),
        )
        .await?;
        println!(
            "Demo partner {} is ready. Its API key:\n\n    export GRIDROLL_KEY={key}\n",
            partner.id
        );
        // A fresh password at every start: only its hash is kept, so it cannot be shown
        // again later.
        let password = gridroll_server::auth::random_token();
        let hash = portal::password::hash(password.clone()).await?;
        if store
            .accounts
            .set_password(DEMO_USER, Some(partner.id), &hash)
            .await?
            == PasswordSet::NoSuchUser
        {
            match store
                .accounts
                .add_user(partner.id, DEMO_USER, Role::Admin, &hash, now_millis())
                .await
            {
                Ok(_) | Err(AddUserError::EmailTaken) => {}
                Err(AddUserError::Store(e)) => return Err(e.into()),
            }
        }
        println!(
            "The portal is at http://{}/portal; sign in as {DEMO_USER} with the password\n\n    {password}\n",
            args.addr
        );
    }
    if !(args.lease_seconds.is_finite() && args.lease_seconds >= 0.1) {
        bail!("--lease-seconds must be at least 0.1");
    }
    let mut config = Config {
        max_body_bytes: args.max_body_bytes,
        workers: args.workers,
        chunk_size: args.chunk_size as usize,
        lease: Duration::from_secs_f64(args.lease_seconds),
        max_concurrent_uploads: args.max_concurrent_uploads as usize,
        max_uploads_per_partner: args.max_uploads_per_partner.map_or_else(
            || UploadSlots::default_share(args.max_concurrent_uploads as usize),
            |n| n as usize,
        ),
        body_pace: BodyPace {
            idle_timeout: Duration::from_secs(args.body_timeout),
            min_rate: args.min_body_rate,
        },
        secure_cookies: args.secure_cookies,
        behind_proxy: args.behind_proxy,
        ..Config::default()
    };
    if let Some(file) = &args.programs {
        config.programs = read_catalog(file)?;
    }
    if let Some(token) = args.operator_token.as_deref().filter(|t| !t.is_empty()) {
        if token.len() < 16 {
            bail!("--operator-token must be at least 16 characters");
        }
        config = config.with_operator_token(token);
    }
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    tracing::info!(addr = %listener.local_addr()?, database = %redact(&args.database.database_url), "gridroll is serving");
    gridroll_server::serve(listener, AppState::new(store, config), shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

const DEMO_PARTNER: &str = "Demo Partner";
const DEMO_USER: &str = "demo@example.com";

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the work in hand");
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

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_left_out_of_database_urls() {
        assert_eq!(
            redact("postgres://app:s3cret@db.internal:5432/gridroll"),
            "postgres://app:***@db.internal:5432/gridroll"
        );
        assert_eq!(
            redact("postgres://app@db/gridroll"),
            "postgres://app@db/gridroll"
        );
        assert_eq!(redact("sqlite://gridroll.db"), "sqlite://gridroll.db");
    }
}
