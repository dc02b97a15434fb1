//! Checkpoints off the writer's thread. By default SQLite copies the write-ahead log
//! back into the database inside whichever commit crosses 1,000 pages, so the writer
//! stops to do it. Here the writer never checkpoints: a thread of its own copies what
//! the writer has committed, on the other core, while the writer goes on. Should that
//! thread fall behind (the log only starts over once it has caught up), the writer
//! restarts the log itself past a size limit.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use rusqlite::Connection;

use crate::Result;

/// Past this size the writer checkpoints and restarts the log itself.
const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// The writer's side: a nudge after each commit. Dropping it stops the thread.
pub struct Checkpointer {
    nudge: SyncSender<()>,
    wal: PathBuf,
}

impl Checkpointer {
    /// Starts the checkpointing thread for the database at `path`.
    pub fn start(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;")?;
        let (nudge, nudged) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || run(&conn, &nudged))
            .map_err(|e| crate::StoreError::Config(format!("cannot start a thread: {e}")))?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Self {
            nudge,
            wal: wal.into(),
        })
    }

    /// Called by the writer after each write. A failure here is logged, not returned:
    /// the write itself has succeeded, and its caller must not be told otherwise.
    pub fn committed(&self, writer: &Connection) {
        match self.nudge.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
        let size = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        if size > WAL_LIMIT_BYTES
            && let Err(e) = writer.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "restarting the write-ahead log failed; retried after the next write");
        }
    }
}

fn run(conn: &Connection, nudged: &Receiver<()>) {
    loop {
        // (busy, frames in the log, frames copied); copying again at once while the
        // writer has added frames since.
        let progress = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match progress {
            Ok((logged, copied)) if copied < logged => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "a background checkpoint failed"),
        }
        match nudged.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn committed_pages_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (v TEXT);",
            )
            .unwrap();
        let checkpointer = Checkpointer::start(&path).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        writer
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
                 INSERT INTO t SELECT printf('%0500d', i) FROM n;",
            )
            .unwrap();
        checkpointer.committed(&writer);
        let started = Instant::now();
        while std::fs::metadata(&path).unwrap().len() < before + 2_000_000 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the pages were never copied into the database file"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
