//! Throwaway databases for tests: a SQLite file in a temporary directory, or a fresh
//! PostgreSQL database that is dropped when the test ends.
//!
//! PostgreSQL is found at `GRIDROLL_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached, PostgreSQL
//! tests say so and skip, unless `GRIDROLL_REQUIRE_POSTGRES=1`, which makes them fail.

use tempfile::TempDir;
use tokio::sync::OnceCell;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The storage backends the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    place: Place,
}

enum Place {
    Sqlite(TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh database on `backend`, or `None` when PostgreSQL is unavailable and not
    /// required (the reason is printed).
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("gridroll.db").display());
        Self {
            url,
            place: Place::Sqlite(dir),
        }
    }

    pub async fn postgres() -> Option<Self> {
        let admin_url = admin_url();
        if !postgres_available(&admin_url).await {
            return None;
        }
        let name = format!("gridroll_test_{}", uuid::Uuid::now_v7().simple());
        let admin = connect(&admin_url)
            .await
            .expect("PostgreSQL was reachable a moment ago");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create a test database");
        Some(Self {
            url: with_database(&admin_url, &name),
            place: Place::Postgres { admin_url, name },
        })
    }

    /// The URL Gridroll opens this database with.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        match self.place {
            Place::Sqlite(_) => Backend::Sqlite,
            Place::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Runs a query that answers one integer, behind Gridroll's back.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.place {
            Place::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("gridroll.db")).unwrap();
                conn.query_row(sql, [], |row| row.get(0)).unwrap()
            }
            Place::Postgres { .. } => {
                let client = connect(&self.url).await.unwrap();
                let row = client.query_one(sql, &[]).await.unwrap();
                row.try_get::<_, i64>(0)
                    .or_else(|_| row.try_get::<_, i32>(0).map(i64::from))
                    .unwrap()
            }
        }
    }

    /// Runs a query that answers one text, behind Gridroll's back.
    pub async fn text(&self, sql: &str) -> String {
        match &self.place {
            Place::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("gridroll.db")).unwrap();
                conn.query_row(sql, [], |row| row.get(0)).unwrap()
            }
            Place::Postgres { .. } => {
                let client = connect(&self.url).await.unwrap();
                client.query_one(sql, &[]).await.unwrap().get(0)
            }
        }
    }

    /// How PostgreSQL would run `sql`, a line per step of its plan (`EXPLAIN`).
    pub async fn plan(&self, sql: &str) -> String {
        let Place::Postgres { .. } = &self.place else {
            panic!("only PostgreSQL plans are read (SQLite's statements name their indexes)");
        };
        let client = connect(&self.url).await.unwrap();
        let steps = client.query(&format!("EXPLAIN {sql}"), &[]).await.unwrap();
        let steps = steps.iter().map(|row| row.get::<_, String>(0));
        steps.collect::<Vec<_>>().join("\n")
    }

    /// Runs statements behind Gridroll's back, e.g. to make time pass for a lease.
    pub async fn execute(&self, sql: &str) {
        match &self.place {
            Place::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("gridroll.db")).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Place::Postgres { .. } => {
                let client = connect(&self.url).await.unwrap();
                client.batch_execute(sql).await.unwrap();
            }
        }
    }

    /// Makes the database unreachable, as when its server goes away under a running
    /// process: it accepts no connection, and the open ones are ended (PostgreSQL only;
    /// a SQLite file is the process's own).
    pub async fn cut_off(&self) {
        let Place::Postgres { admin_url, name } = &self.place else {
            panic!("only a PostgreSQL database can be cut off");
        };
        let admin = connect(admin_url).await.unwrap();
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
            ))
            .await
            .unwrap();
    }

    /// Takes the row locks of `sql` (a `SELECT ... FOR UPDATE`) in a transaction on a
    /// connection of its own, and holds them until [`RowLock::release`]: another process
    /// in the middle of a change, for a test to make a concurrent step wait at a known
    /// place (PostgreSQL only; SQLite's one writer has no row locks).
    pub async fn lock_rows(&self, sql: &str) -> RowLock {
        let Place::Postgres { .. } = &self.place else {
            panic!("only PostgreSQL locks rows");
        };
        let client = connect(&self.url).await.unwrap();
        client.batch_execute("BEGIN").await.unwrap();
        client.batch_execute(sql).await.unwrap();
        RowLock { client }
    }

    /// Returns once a session of this database waits for a lock another holds (see
    /// [`TestDatabase::lock_rows`]): the step that comes to the lock has been reached,
    /// and everything before it done. Fails after a minute of no session waiting.
    pub async fn until_a_session_waits_for_a_lock(&self) {
        let Place::Postgres { .. } = &self.place else {
            panic!("only PostgreSQL sessions wait for row locks");
        };
        let client = connect(&self.url).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let waiting: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no session came to wait for a lock"
            );
            // The server says when a session starts to wait only when asked again.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Every byte the database keeps on disk, where the backend allows reading them.
    pub fn raw_file(&self) -> Option<Vec<u8>> {
        match &self.place {
            Place::Sqlite(dir) => std::fs::read(dir.path().join("gridroll.db")).ok(),
            Place::Postgres { .. } => None,
        }
    }
}

/// Row locks held by a transaction of their own (see [`TestDatabase::lock_rows`]).
pub struct RowLock {
    client: tokio_postgres::Client,
}

impl RowLock {
    /// Ends the transaction, changing nothing, and lets the waiting sessions go on.
    pub async fn release(self) {
        self.client.batch_execute("ROLLBACK").await.unwrap();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Place::Postgres { admin_url, name } = &self.place else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop may run inside a test's runtime, so the cleanup gets a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            runtime.block_on(async {
                if let Ok(admin) = connect(&admin_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn admin_url() -> String {
    std::env::var("GRIDROLL_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

static AVAILABLE: OnceCell<Result<(), String>> = OnceCell::const_new();

async fn postgres_available(admin_url: &str) -> bool {
    let reachable = AVAILABLE
        .get_or_init(|| async {
            let attempt = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                let (client, connection) =
                    tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
                let task = tokio::spawn(connection);
                client.simple_query("SELECT 1").await?;
                drop(client);
                let _ = task.await;
                Ok::<_, tokio_postgres::Error>(())
            })
            .await;
            match attempt {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out".to_owned()),
            }
        })
        .await;
    match reachable {
        Ok(()) => true,
        Err(reason) if required() => {
            panic!(
                "PostgreSQL is required (GRIDROLL_REQUIRE_POSTGRES=1) but {admin_url} is unreachable: {reason}"
            )
        }
        Err(reason) => {
            eprintln!(
                "skipping a PostgreSQL test: {admin_url} is unreachable ({reason}); set GRIDROLL_REQUIRE_POSTGRES=1 to fail instead"
            );
            false
        }
    }
}

fn required() -> bool {
    std::env::var("GRIDROLL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Whether tests on `backend` can run here (PostgreSQL may be unreachable; see above).
pub async fn available(backend: Backend) -> bool {
    match backend {
        Backend::Sqlite => true,
        Backend::Postgres => postgres_available(&admin_url()).await,
    }
}

/// Runs each named test on every backend, as `sqlite::NAME` and `postgres::NAME`. Each
/// test is an ordinary `async fn NAME(backend: Backend)` defined beside the invocation.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::available($crate::Backend::Postgres).await {
                        super::$name($crate::Backend::Postgres).await
                    }
                }
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t3"),
            "postgres://h:5432/t3"
        );
    }
}
