//! The operator's commands on the program catalog and on enrollments.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use gridroll_domain::program::{Program, parse_catalog};
use gridroll_domain::timestamp::now_millis;
use gridroll_domain::{MeterId, PartnerId};
use gridroll_store::PartnerProgramsError;
use serde_json::json;

use crate::database::Database;
use crate::operator::require_partner;

#[derive(Debug, Subcommand)]
pub enum ProgramsCommand {
    /// List every program (retired ones marked); one JSON object per line.
    #[command(after_help = "Example:\n  gridroll programs list")]
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Show one program's definition as JSON.
    #[command(after_help = "Example:\n  gridroll programs show CEC-DSGS")]
    Show {
        /// The program's identifier, e.g. CEC-DSGS.
        identifier: String,
        #[command(flatten)]
        database: Database,
    },
    /// Add or change the programs of a catalog file (the layout of programs.toml).
    #[command(after_help = "Example:\n  gridroll programs put --file my-programs.toml")]
    Put {
        /// The catalog file, in the layout of programs.toml.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        database: Database,
    },
    /// Retire a program: meters are no longer evaluated against it.
    #[command(after_help = "Example:\n  gridroll programs retire PGE-CBP")]
    Retire {
        /// The program's identifier, e.g. PGE-CBP.
        identifier: String,
        #[command(flatten)]
        database: Database,
    },
    /// Choose the programs a partner may use (every program unless limited).
    #[command(
        after_help = "Examples:\n  gridroll programs enable --partner 01936f7e-... --programs CEC-DSGS,ELRP\n  \
            gridroll programs enable --partner 01936f7e-... --all"
    )]
    Enable {
        /// The partner whose programs to choose.
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
pub enum EnrollmentsCommand {
    /// Operator: confirm PENDING enrollments in a program: ACTIVE from now.
    #[command(
        after_help = "Example:\n  gridroll enrollments activate --partner 01936f7e-... --program CEC-DSGS"
    )]
    Activate {
        /// The partner whose enrollments to activate.
        #[arg(long)]
        partner: PartnerId,
        /// The program's identifier, e.g. CEC-DSGS.
        #[arg(long)]
        program: String,
        /// Only this meter; without it, every PENDING meter of the partner.
        #[arg(long)]
        meter: Option<MeterId>,
        #[command(flatten)]
        database: Database,
    },
    /// Operator: evaluate every meter of a partner again, after the catalog changed.
    #[command(after_help = "Example:\n  gridroll enrollments refresh --partner 01936f7e-...")]
    Refresh {
        /// The partner whose meters to evaluate.
        #[arg(long)]
        partner: PartnerId,
        #[command(flatten)]
        database: Database,
    },
}

pub fn read_catalog(file: &PathBuf) -> anyhow::Result<Vec<Program>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    parse_catalog(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

pub async fn programs(command: ProgramsCommand) -> anyhow::Result<()> {
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

pub async fn enrollments(command: EnrollmentsCommand) -> anyhow::Result<()> {
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
