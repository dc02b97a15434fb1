//! `gridroll`: runs the server, administers partners, keys and users on the database,
//! and, as a partner's client of the HTTP API, uploads files and reads jobs and meters.

use std::fs::File;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use gridroll_domain::PartnerId;
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::intake::{self, Format, IntakeError};
use gridroll_domain::program::{DEFAULT_CATALOG, parse_catalog};
use gridroll_domain::timestamp::now_millis;
use serde_json::json;

mod catalog;
mod client;
mod database;
mod docs;
mod lock;
mod operator;
mod output;
mod prompt;
mod serve;

use crate::catalog::{EnrollmentsCommand, ProgramsCommand, read_catalog};
use crate::client::Outcome;
use crate::client::jobs::JobsCommand;
use crate::client::meters::{MetersClientCommand, PartnerPrograms, ShowEnrollments};
use crate::client::upload::{UploadArgs, ValidateArgs};
use crate::database::Database;
use crate::operator::{
    InvitationsCommand, KeysCommand, PartnersCommand, UsersCommand, require_partner,
};
use crate::serve::ServeArgs;

/// jemalloc rather than glibc's malloc. An import allocates and frees each row's document
/// and each chunk's meters by the thousand on several threads, often freeing on one what
/// another allocated: against glibc, in alternating runs, 200k-row imports took 15-25%
/// less server CPU, and 1M rows 17 s instead of 20-23 s end to end.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (an operator may add to them or override them
/// with `_RJEM_MALLOC_CONF`, see the README):
/// - a thread of its own hands memory freed for a second back to the system, so that the
///   server's memory stays flat through a long import (with jemalloc's defaults a 1M-row
///   import peaked 1.24x a 100k one; with these, 1.02-1.10x);
/// - one arena rather than four per CPU. Each thread that reads or writes the database
///   took an arena of its own, and each arena kept its own freed pages: on two cores the
///   1M-row import peaked at 74-77 MB on SQLite and 43-45 MB on PostgreSQL with the
///   default, 53-54 and 35-37 MB with one arena, in the same time and with reads as
///   fast (one arena per CPU: 59-62 and 45 MB, and slower reads). The threads' caches
///   serve most allocations without the arena.
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: &[u8; 70] =
    b"background_thread:true,narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// What the exit statuses mean, for every command's help and the manual page.
const EXIT_STATUS: &str = "Exit status: 0 success (an awaited job COMPLETED); 3 a job \
    COMPLETED_WITH_ERRORS; 4 a job FAILED or a file was refused; 1 any other error (one \
    line on stderr); 2 a usage error; 130 interrupted.";

/// Gridroll: meter onboarding and demand-response enrollment.
///
/// Partner commands (login, upload, validate, jobs, meters get|search|export, enrollments
/// show, programs) speak a server's HTTP API with an API key, from --url/GRIDROLL_URL and
/// --key/GRIDROLL_KEY or a profile saved by `gridroll login`. Operator commands (serve,
/// migrate, partners, keys, users, invitations, programs list|show|put|retire|enable,
/// enrollments activate|refresh, meters import) work on the database named by
/// --database-url/DATABASE_URL.
#[derive(Debug, Parser)]
#[command(name = "gridroll", version, about, long_about, after_help = EXIT_STATUS)]
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
    /// Run the HTTP API, the portal and the job workers.
    #[command(after_help = "Examples:\n  gridroll serve --demo\n  \
        DATABASE_URL=postgres://gridroll@db/gridroll gridroll serve --addr 0.0.0.0:8080")]
    Serve(ServeArgs),
    /// Create or update the database schema and add the catalog's missing programs, then exit.
    #[command(after_help = "Example:\n  gridroll migrate --programs my-programs.toml")]
    Migrate {
        #[command(flatten)]
        database: Database,
        /// A catalog file (default: the catalog shipped with Gridroll).
        #[arg(long, env = "GRIDROLL_PROGRAMS")]
        programs: Option<PathBuf>,
    },
    /// Partner: save a server and an API key as a profile the other partner commands use.
    #[command(
        after_help = "Examples:\n  gridroll login --url http://127.0.0.1:8080\n  \
        echo \"$GRIDROLL_KEY\" | gridroll login --url http://127.0.0.1:8080 --profile acme"
    )]
    Login(LoginArgs),
    /// Partner: upload CSV or JSON files of meters, each as a job.
    Upload(UploadArgs),
    /// Partner: dry run of an upload; its problems, and the programs each asset could join.
    Validate(ValidateArgs),
    /// Partner: jobs, and the rows of a job that failed.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Partner: read, search and export meters; operator: import meters.
    #[command(subcommand)]
    Meters(MetersCommand),
    /// Partner: a meter's enrollments; operator: activate and refresh enrollments.
    #[command(subcommand)]
    Enrollments(EnrollmentsCommands),
    /// Partner (without a subcommand): the programs the partner's meters can join;
    /// operator: the program catalog.
    Programs(ProgramsArgs),
    /// Operator: partners.
    #[command(subcommand)]
    Partners(PartnersCommand),
    /// Operator: partners' API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Operator: portal users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Operator: invitations to the portal not yet accepted.
    #[command(subcommand)]
    Invitations(InvitationsCommand),
    /// Print a shell's completions for gridroll.
    #[command(
        after_help = "Example:\n  gridroll completions bash > ~/.local/share/bash-completion/completions/gridroll"
    )]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print gridroll's manual page (roff).
    #[command(after_help = "Example:\n  gridroll man > gridroll.1 && man ./gridroll.1")]
    Man,
}

/// `gridroll login`.
#[derive(Debug, Args)]
struct LoginArgs {
    /// The Gridroll server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "GRIDROLL_URL")]
    url: String,
    /// The name to save the profile under (one per server or partner).
    #[arg(long, env = "GRIDROLL_PROFILE", default_value = client::profile::DEFAULT)]
    profile: String,
    /// The longest wait for the server's answer, in seconds.
    #[arg(long, env = "GRIDROLL_TIMEOUT", value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum MetersCommand {
    #[command(flatten)]
    Client(MetersClientCommand),
    /// Operator: import meters that reach the platform by another channel than the
    /// partner's uploads (utility-authorized meters). They may share a partner_reference.
    #[command(
        after_help = "Example:\n  gridroll meters import --partner 01936f7e-... --file utility-meters.json"
    )]
    Import {
        /// The partner the meters belong to.
        #[arg(long)]
        partner: PartnerId,
        /// A JSON file holding {"assets": [...]}.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Debug, Subcommand)]
enum EnrollmentsCommands {
    /// Partner: a meter's enrollment in each program, and what each needs.
    Show(ShowEnrollments),
    #[command(flatten)]
    Operator(EnrollmentsCommand),
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  gridroll programs                  # the programs your meters can join\n  \
        gridroll programs --template CEC-DSGS > batteries.csv\n  \
        gridroll programs list             # operator: the whole catalog"
)]
struct ProgramsArgs {
    #[command(subcommand)]
    command: Option<ProgramsCommand>,
    #[command(flatten)]
    view: PartnerPrograms,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    if let Command::Upload(args) = &cli.command
        && args.name_conflict()
    {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--name names one job: give one file with it, or leave it out",
            )
            .exit();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let interruptible = cli.command.speaks_http();
    let interrupted = if matches!(cli.command, Command::Upload(_)) {
        Interrupted::Upload
    } else {
        Interrupted::Other
    };
    let result = runtime.block_on(async {
        if !interruptible {
            // The server stops on its own signal, after the work in hand; a command on
            // the database ends as any process does on Ctrl-C (a transaction cut off is
            // rolled back), and at a secret's prompt as interrupted (`prompt::secret`).
            return run(cli.command).await;
        }
        tokio::select! {
            result = run(cli.command) => result,
            _ = tokio::signal::ctrl_c() => Err(interrupted.into()),
        }
    });
    match result {
        Ok(outcome) => ExitCode::from(outcome.code()),
        // `gridroll ... | head`: the reader has what it wanted.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Whether the command is the partner's client at work on the server (not at a
    /// prompt): Ctrl-C then says what became of the upload.
    fn speaks_http(&self) -> bool {
        matches!(
            self,
            Command::Upload(_)
                | Command::Validate(_)
                | Command::Jobs(_)
                | Command::Meters(MetersCommand::Client(_))
                | Command::Enrollments(EnrollmentsCommands::Show(_))
                | Command::Programs(ProgramsArgs { command: None, .. })
        )
    }
}

/// Ctrl-C while the client works on the server, or at the prompt for a secret; during an
/// upload it says what became of it: an upload cut off is discarded whole by the server, a
/// job accepted earlier goes on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Interrupted {
    #[error(
        "interrupted: an upload cut off is discarded whole by the server; jobs it had \
         accepted go on (see `gridroll jobs list`)"
    )]
    Upload,
    #[error("interrupted")]
    Other,
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

async fn run(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Serve(args) => serve::serve(args).await?,
        Command::Migrate { database, programs } => {
            let store = database.open_alone().await?;
            let catalog = match &programs {
                Some(file) => read_catalog(file)?,
                None => parse_catalog(DEFAULT_CATALOG).map_err(anyhow::Error::msg)?,
            };
            let added = store.catalog.seed_programs(&catalog, now_millis()).await?;
            eprintln!("the database is up to date; {added} programs added to the catalog");
        }
        Command::Login(args) => login(args).await?,
        Command::Upload(args) => return client::upload::upload(args).await,
        Command::Validate(args) => return client::upload::validate(args).await,
        Command::Jobs(command) => return client::jobs::run(command).await,
        Command::Meters(MetersCommand::Client(command)) => client::meters::run(command).await?,
        Command::Meters(MetersCommand::Import {
            partner,
            file,
            database,
        }) => import_meters(database, partner, file).await?,
        Command::Enrollments(EnrollmentsCommands::Show(args)) => {
            client::meters::enrollments(args).await?
        }
        Command::Enrollments(EnrollmentsCommands::Operator(command)) => {
            catalog::enrollments(command).await?
        }
        Command::Programs(ProgramsArgs {
            command: Some(command),
            ..
        }) => catalog::programs(command).await?,
        Command::Programs(ProgramsArgs {
            command: None,
            view,
        }) => client::meters::programs(view).await?,
        Command::Partners(command) => operator::partners(command).await?,
        Command::Keys(command) => operator::keys(command).await?,
        Command::Users(command) => operator::users(command).await?,
        Command::Invitations(command) => operator::invitations(command).await?,
        Command::Completions { shell } => docs::completions(Cli::command(), shell)?,
        Command::Man => docs::man(Cli::command())?,
    }
    Ok(Outcome::Success)
}

/// Saves a server and a key (typed without echo, or piped in) once the server has
/// accepted the key.
async fn login(args: LoginArgs) -> anyhow::Result<()> {
    // A profiles file others can read is refused before the key is asked for.
    client::profile::check()?;
    let key = prompt::secret("API key (grk_...): ")?.trim().to_owned();
    let timeout = std::time::Duration::from_secs(args.timeout);
    let client = client::Client::new(&args.url, &key, timeout)?;
    verify_key(&client).await.context("nothing was saved")?;
    let profile = client::profile::Profile {
        url: client.base().as_str().trim_end_matches('/').to_owned(),
        key,
    };
    let url = profile.url.clone();
    let file = client::profile::save(&args.profile, profile)?;
    eprintln!(
        "saved the profile {:?} for {url} in {} (readable by you only)",
        args.profile,
        file.display()
    );
    output::print_json(&json!({"profile": args.profile, "url": url, "path": file}))
}

/// Whether the server is Gridroll and takes the key: its list of jobs, or its refusal
/// for want of a scope (a key without the scope to read jobs is still a key).
async fn verify_key(client: &client::Client) -> anyhow::Result<()> {
    use client::api::ApiFailure;
    let checked = client
        .send(|| {
            Ok(client
                .request(reqwest::Method::GET, "v1.1/jobs/meters")
                .query(&[("page_size", "1")]))
        })
        .await;
    let gridroll = match checked {
        Ok(response) => client.json(response).await?["jobs"].is_array(),
        Err(ApiFailure::Answered { status, body, .. })
            if status == reqwest::StatusCode::FORBIDDEN =>
        {
            body["details"]["scope"].is_string()
        }
        Err(failure) => return Err(client::api::into_anyhow(failure)),
    };
    if !gridroll {
        bail!(
            "the server at {} does not answer as a Gridroll server does",
            client.base()
        );
    }
    Ok(())
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
    use super::*;

    /// Every command below `gridroll`, with its full name.
    fn commands(command: &clap::Command, name: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let full = format!("{name} {}", sub.get_name());
            out.push((full.clone(), sub.clone()));
            commands(sub, full, out);
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_has_a_help_line_and_every_command_an_example() {
        let mut all = Vec::new();
        commands(&Cli::command(), "gridroll".to_owned(), &mut all);
        let mut missing = Vec::new();
        for (name, command) in &all {
            let leaf = !command.has_subcommands() || *name == "gridroll programs";
            let example = command
                .get_after_help()
                .is_some_and(|help| help.to_string().contains("gridroll "));
            if leaf && !example {
                missing.push(format!("{name}: no example in --help"));
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{name}: {id} has no help line"));
                }
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
        assert!(all.len() > 30, "found only {} commands", all.len());
    }

    #[test]
    fn an_exit_status_for_each_outcome() {
        assert_eq!(Outcome::of_status("COMPLETED").code(), 0);
        assert_eq!(Outcome::of_status("COMPLETED_WITH_ERRORS").code(), 3);
        assert_eq!(Outcome::of_status("FAILED").code(), 4);
    }
}
