//! The database every command names, and opening it: on a SQLite file another process
//! serves, commands work beside it without migrating (see `lock`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use gridroll_domain::webhook::EventType;
use gridroll_store::{EventTypes, StoreOptions, Stores};

use crate::lock;

#[derive(Debug, Args)]
pub struct Database {
    /// Database to use: sqlite://PATH (created on first use) or postgres://USER@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gridroll.db")]
    pub database_url: String,
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
    /// The event types the event feed keeps, comma-separated, `all` or `none`: every
    /// change records these, beyond those a partner's webhook subscriptions want.
    #[arg(long, env = "GRIDROLL_EVENT_FEED_TYPES", default_value = "all", value_parser = parse_feed_types)]
    event_feed_types: EventTypes,
}

/// `all`, `none`, or event types named as webhooks name them.
fn parse_feed_types(text: &str) -> Result<EventTypes, String> {
    match text.trim() {
        "all" => Ok(EventTypes::emitted()),
        "none" => Ok(EventTypes::NONE),
        list => list
            .split(',')
            .map(str::trim)
            .map(|name| {
                name.parse::<EventType>()
                    .ok()
                    .filter(|t| t.is_emitted())
                    .ok_or_else(|| {
                        let known: Vec<&str> = EventType::ALL
                            .iter()
                            .filter(|t| t.is_emitted())
                            .map(|t| t.as_str())
                            .collect();
                        format!("{name:?} is not an event type Gridroll records; use all, none or some of {}", known.join(", "))
                    })
            })
            .collect(),
    }
}

impl Database {
    /// Opens (creating and migrating) the database, for a command that may run beside a
    /// server: on a SQLite file another process serves, nothing is migrated (a schema
    /// that is not this release's is refused). The program catalog is filled by `serve`
    /// and `migrate`, from `--programs` or the shipped catalog.
    pub async fn open(&self) -> anyhow::Result<Stores> {
        let alone = match gridroll_store::sqlite_path(&self.database_url) {
            Some(path) => matches!(lock::take(Path::new(path))?, lock::Holding::Alone),
            None => true,
        };
        self.open_with(alone).await
    }

    /// Opens the database for serving or migrating it: on SQLite, only while no other
    /// process does, and this process keeps it to itself until it exits.
    pub async fn open_alone(&self) -> anyhow::Result<Stores> {
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
            event_feed: self.event_feed_types,
        };
        gridroll_store::open(&self.database_url, &options)
            .await
            .with_context(|| format!("cannot open the database {}", redact(&self.database_url)))
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
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
