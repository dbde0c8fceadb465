//! Outcomes a run could not record before it ended (its database away past the run's
//! deadline), kept in a file on this host so that the next run records them instead of
//! sending those callbacks again. The run held their claims, so the next run on this
//! host, which takes a dead run's claims back, applies them first; only outcomes whose
//! claim the old run still holds are applied (see `callbacks::record_still_held`).
//!
//! The folder: `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else
//! `$XDG_STATE_HOME/httphooks`, else `~/.local/state/httphooks`.

use std::path::{Path, PathBuf};

use crate::storage::callbacks::{self, Outcome};
use crate::storage::Db;

/// What a file holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    /// The database, as messages show it.
    database: String,
    /// The run whose claims these outcomes are of.
    token: String,
    outcomes: Vec<Outcome>,
}

/// Where saved outcomes go, if this environment has such a place.
pub fn folder() -> Option<PathBuf> {
    let from = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("STATE_DIRECTORY")
        .map(|list| {
            // systemd lists several, separated by colons, when the unit names several.
            let text = list.to_string_lossy().into_owned();
            PathBuf::from(text.split(':').next().unwrap_or_default())
        })
        .or_else(|| from("XDG_STATE_HOME").map(|dir| dir.join("httphooks")))
        .or_else(|| from("HOME").map(|home| home.join(".local/state/httphooks")))
}

/// A short name for the database (its identity, see `Connector::identity`), for file
/// names.
fn database_key(database: &str) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = database.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{hash:016x}")
}

/// Saves `outcomes` of the run `token`; returns the file.
pub fn save(database: &str, token: &str, outcomes: Vec<Outcome>) -> Result<PathBuf, String> {
    let folder = folder().ok_or(
        "there is no folder to keep them in (set STATE_DIRECTORY, XDG_STATE_HOME or HOME)",
    )?;
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let safe_token: String = token
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = folder.join(format!(
        "unrecorded-{}-{safe_token}.json",
        database_key(database)
    ));
    let saved = Saved {
        database: database.to_owned(),
        token: token.to_owned(),
        outcomes,
    };
    let text = serde_json::to_vec(&saved).map_err(|e| e.to_string())?;
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Keeps runs of this host apart from the moment one records saved outcomes until it has
/// taken back the claims of dead runs: a run that did not get a file must not take back
/// (and send again) the claims whose outcomes another run is recording. Released when
/// dropped; None where there is no folder (then nothing is saved either).
pub struct Lock(#[allow(dead_code)] Option<std::fs::File>);

pub fn lock() -> Lock {
    let file = folder().and_then(|folder| {
        std::fs::create_dir_all(&folder).ok()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(folder.join("unrecorded.lock"))
            .ok()?;
        lock_file(&file).then_some(file)
    });
    Lock(file)
}

#[cfg(unix)]
fn lock_file(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // Released when the file is closed (the lock dropped, or the process gone).
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) == 0 }
}

#[cfg(not(unix))]
fn lock_file(_file: &std::fs::File) -> bool {
    false
}

/// Records the outcomes earlier runs against this database saved, and removes their
/// files. Each file is taken by renaming it first, so that two runs starting together
/// never apply one twice. Returns how many callbacks it recorded.
pub fn record_saved(db: &mut Db, database: &str) -> crate::Result<usize> {
    let Some(folder) = folder() else {
        return Ok(0);
    };
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(0);
    };
    let prefix = format!("unrecorded-{}-", database_key(database));
    let mut recorded = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(&prefix) && name.ends_with(".json")) {
            continue;
        }
        let taken = folder.join(format!("{name}.taken-by-{}", std::process::id()));
        if std::fs::rename(entry.path(), &taken).is_err() {
            continue; // another run took it
        }
        match read(&taken) {
            Ok(saved) => {
                let made = callbacks::record_still_held(db, &saved.token, &saved.outcomes);
                match made {
                    Ok(made) => {
                        recorded += made;
                        let _ = std::fs::remove_file(&taken);
                        log::warn!(
                            "recorded {made} outcome(s) that run {} could not write to {} before it ended",
                            saved.token,
                            saved.database
                        );
                    }
                    Err(error) => {
                        // Put back for the next run.
                        let _ = std::fs::rename(&taken, entry.path());
                        return Err(error);
                    }
                }
            }
            Err(problem) => log::warn!(
                "ignoring {}: {problem}; remove it once you have looked at it",
                taken.display()
            ),
        }
    }
    Ok(recorded)
}

fn read(path: &Path) -> Result<Saved, String> {
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&text).map_err(|e| format!("not a file of saved outcomes ({e})"))
}
