//! What is particular to SQLite: connection options, migrations, and the file's permissions.

use std::io;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::DatabaseUrl;

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How often the WAL is checkpointed in the background.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// WAL frames (pages) past which the writer checkpoints by itself after all — only if the
/// background checkpoints stall (a reader holding an old snapshot, a stopped runtime). SQLite's
/// default is 1,000.
const WRITER_CHECKPOINT_FRAMES: u32 = 10_000;

/// Opens (creating if missing) the database file and its directory, and returns a read pool, a
/// single-connection write pool, and the checkpointer's pool (none for a database in memory),
/// which the caller closes with the others.
///
/// WAL lets readers proceed while one connection writes; `synchronous = NORMAL` is the
/// documented safe pairing with WAL (a power cut may lose the last commits, never corrupt).
/// The busy timeout covers other processes (a CLI command beside the server).
///
/// Checkpoints — copying the WAL back into the database file, and the only `fsync`s under
/// `synchronous = NORMAL` — run on a connection of their own, every [`CHECKPOINT_INTERVAL`]
/// (a `PASSIVE` checkpoint: it waits for no reader or writer). SQLite's default makes the
/// commit that brings the WAL to 1,000 pages do the checkpoint, so every request waiting on
/// that commit — a batch of identity tokens, a login — waited for the copy and both
/// `fsync`s (6–7 ms each on a busy virtual disk; DEVELOPERS.md, "Issue 12, second pass").
pub(super) async fn connect(
    url: &DatabaseUrl,
) -> Result<(SqlitePool, SqlitePool, Option<SqlitePool>), sqlx::Error> {
    let options = base_options(url)?;
    let in_memory = is_in_memory(url.expose());
    if !in_memory {
        make_private(options.get_filename()).map_err(sqlx::Error::Io)?;
    }
    let writer = open_writer(&options).await?;
    let reader = pool(4)
        .connect_with(options.clone().read_only(true))
        .await?;
    let checkpointer = if in_memory {
        None
    } else {
        let checkpointer = pool(1).connect_with(options).await?;
        tokio::spawn(checkpoint_while_open(checkpointer.clone()));
        Some(checkpointer)
    };
    Ok((reader, writer, checkpointer))
}

/// The options every connection shares.
fn base_options(url: &DatabaseUrl) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str(url.expose())?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

/// Options for a pool of `connections`.
///
/// Connections are not pinged before use (sqlx's default, `test_before_acquire`): an SQLite
/// connection is a thread of this process, not a socket that can go stale, and the ping was a
/// round trip to that thread — a wake-up each way, as costly as the query after it — on every
/// query (DEVELOPERS.md, "Issue 12, second pass").
fn pool(connections: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
}

/// The writer's connection: the WAL is left to the background checkpoints.
async fn open_writer(options: &SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    pool(1)
        .connect_with(
            options
                .clone()
                .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_FRAMES.to_string()),
        )
        .await
}

/// Checkpoints every [`CHECKPOINT_INTERVAL`] until the pool is closed.
async fn checkpoint_while_open(checkpointer: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        if checkpointer.is_closed() {
            break;
        }
        match checkpoint(&checkpointer).await {
            Ok(_) if failing => {
                tracing::info!("checkpointing the database works again");
                failing = false;
            }
            Ok(_) => {}
            // Said once, not five times a second; the writer's own checkpoint is the fallback.
            Err(e) if !failing => {
                tracing::warn!(error = ?e, "checkpointing the database failed");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// What a checkpoint did: the WAL's frames, and how many of them are now in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checkpoint {
    pub wal_frames: i64,
    pub copied_frames: i64,
}

/// One `PASSIVE` checkpoint on `pool`.
pub(super) async fn checkpoint(pool: &SqlitePool) -> Result<Checkpoint, sqlx::Error> {
    let (_busy, wal_frames, copied_frames): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
    Ok(Checkpoint {
        wal_frames,
        copied_frames,
    })
}

fn is_in_memory(url: &str) -> bool {
    let (database, query) = url.split_once('?').unwrap_or((url, ""));
    database.ends_with(":memory:")
        || url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "mode" && v == "memory")
}

/// The names SQLite gives a database's side files.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates the database file (0600) and its directory (0700) private to the service's user
/// before SQLite opens them — the file holds password hashes and session-token hashes.
///
/// SQLite creates a missing file with 0644 less the umask, and gives the WAL and shared-memory
/// files the database file's own mode; so creating the empty file first (SQLite takes an empty
/// file for an empty database) makes every file private, whatever the umask. A database file
/// or side file made by an earlier version is narrowed to 0600. An existing directory is
/// narrowed to 0700 only when it holds nothing but this database (so it is ours): a database
/// put in a shared directory must not close that directory to its other users.
#[cfg(unix)]
fn make_private(file: &Path) -> io::Result<()> {
    use std::fs::{DirBuilder, OpenOptions};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() {
            if holds_only(dir, file)? {
                narrow(dir, 0o700)?;
            }
        } else {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            narrow(file, 0o600)?;
            for suffix in SIDE_FILES {
                let mut side = file.as_os_str().to_owned();
                side.push(suffix);
                let side = Path::new(&side);
                if side.exists() {
                    narrow(side, 0o600)?;
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn make_private(file: &Path) -> io::Result<()> {
    match file.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// Whether `dir` holds nothing but `file` and its side files.
#[cfg(unix)]
fn holds_only(dir: &Path, file: &Path) -> io::Result<bool> {
    let Some(name) = file.file_name() else {
        return Ok(false);
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?.file_name();
        let ours = entry == name
            || SIDE_FILES.iter().any(|suffix| {
                let mut side = name.to_owned();
                side.push(suffix);
                entry == side
            });
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes group and other permissions beyond `mode`, leaving a mode already as narrow alone
/// (so a file we do not own, but may use, is not an error).
#[cfg(unix)]
fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode == 0 {
        return Ok(());
    }
    let narrowed = current & mode;
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(narrowed)) {
        Ok(()) => {
            tracing::info!(path = %path.display(), mode = format!("{narrowed:o}"), "narrowed the database's permissions");
            Ok(())
        }
        // Someone else's file we may use: say so, and leave it to its owner.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            tracing::warn!(path = %path.display(), mode = format!("{current:o}"), "the database is readable by others and not ours to narrow");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_writer_leaves_checkpoints_to_the_checkpointer() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::new(format!("sqlite://{}", dir.path().join("t.db").display()));
        let options = base_options(&url).unwrap();
        let writer = open_writer(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (v BLOB NOT NULL)")
            .execute(&writer)
            .await
            .unwrap();
        // 1,500 commits of a page each: past SQLite's default of 1,000 frames, at which the
        // writer would have checkpointed (and restarted the WAL) by itself.
        for _ in 0..1_500 {
            sqlx::query("INSERT INTO t (v) VALUES (zeroblob(3000))")
                .execute(&writer)
                .await
                .unwrap();
        }
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let done = checkpoint(&checkpointer).await.unwrap();
        assert!(
            done.wal_frames >= 1_500,
            "the writer checkpointed: {done:?}"
        );
        assert_eq!(done.copied_frames, done.wal_frames, "{done:?}");
        // The next commit starts the WAL over: the checkpoint copied all of it.
        sqlx::query("INSERT INTO t (v) VALUES (zeroblob(3000))")
            .execute(&writer)
            .await
            .unwrap();
        let after = checkpoint(&checkpointer).await.unwrap();
        assert!(after.wal_frames < 10, "{after:?}");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&checkpointer)
            .await
            .unwrap();
        assert_eq!(count, 1_501);
    }
}
