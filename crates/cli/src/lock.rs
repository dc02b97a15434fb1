//! One process at a time serves a SQLite database: a second server's start-up recovery
//! would remove the first one's uploads in progress. `serve` and `migrate` hold a lock
//! file beside the database (`gridroll.db.lock`) for as long as they run and refuse to
//! start while another process holds it; the other commands, made to run beside a
//! server, go on without the lock, but then never migrate the schema.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;

/// The lock this process holds, kept until it exits.
static HELD: OnceLock<File> = OnceLock::new();

/// Whether this process has the database to itself.
pub enum Holding {
    /// The lock is this process's until it exits.
    Alone,
    /// Another process holds it; what it wrote of itself.
    Beside { holder: String, lock: PathBuf },
}

/// The lock file of a database file.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock of the database at `database` if no other process holds it.
pub fn take(database: &Path) -> anyhow::Result<Holding> {
    if HELD.get().is_some() {
        return Ok(Holding::Alone);
    }
    let path = lock_path(database);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            let command: Vec<String> = std::env::args().collect();
            file.set_len(0)?;
            write!(file, "pid {}: {}", std::process::id(), command.join(" "))?;
            let _ = HELD.set(file);
            Ok(Holding::Alone)
        }
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            Ok(Holding::Beside {
                holder: holder.trim().to_owned(),
                lock: path,
            })
        }
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}
