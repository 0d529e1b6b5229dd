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

/// Opens (creating if missing) the database file and its directory, and returns a read pool and
/// a single-connection write pool.
///
/// WAL lets readers proceed while one connection writes; `synchronous = NORMAL` is the
/// documented safe pairing with WAL (a power cut may lose the last commits, never corrupt).
/// The busy timeout covers other processes (a CLI command beside the server).
pub(super) async fn connect(url: &DatabaseUrl) -> Result<(SqlitePool, SqlitePool), sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url.expose())?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    if !is_in_memory(url.expose()) {
        make_private(options.get_filename()).map_err(sqlx::Error::Io)?;
    }
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options.read_only(true))
        .await?;
    Ok((reader, writer))
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
