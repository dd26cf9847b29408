//! The directories `serve` writes to: `data_dir` (the SQLite file and the development mail
//! outbox, when those are in use) and `keys_dir` (the development key-encryption key, unless
//! `LATCHKEY_KEK` is set). Each is created if missing and must be writable by the user the
//! server runs as; a failure names the directory, so that a container whose volume is owned by
//! another user says which path to fix.

use crate::config::Settings;
use std::path::{Path, PathBuf};

/// The directories these settings make `serve` write to, with their setting names.
pub fn needed(settings: &Settings) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    if settings.database.url.is_none() || settings.mail.smtp_url.is_none() {
        out.push(("data_dir", settings.data_dir.clone()));
    }
    if std::env::var_os("LATCHKEY_KEK").is_none() {
        out.push(("keys_dir", settings.keys_dir.clone()));
    }
    out
}

/// Creates each needed directory and checks that it can be written to.
pub fn prepare(settings: &Settings) -> anyhow::Result<()> {
    for (name, dir) in needed(settings) {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("{name} {}: cannot create it: {e}", dir.display()))?;
        probe(&dir).map_err(|e| anyhow::anyhow!("{name} {}: not writable by this user: {e}", dir.display()))?;
    }
    Ok(())
}

/// What [`prepare`] would refuse, without creating anything: a missing directory is judged by
/// its nearest existing ancestor, where it would be created.
pub fn problems(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    for (name, dir) in needed(settings) {
        let existing = dir.ancestors().find(|a| a.as_os_str().is_empty() || a.exists()).unwrap_or(Path::new(""));
        let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
        if !existing.is_dir() {
            out.push(format!("{name} {}: {} is not a directory", dir.display(), existing.display()));
        } else if let Err(e) = probe(existing) {
            out.push(format!("{name} {}: not writable by this user: {e}", dir.display()));
        }
    }
    out
}

/// Writes and removes a file in `dir`: permissions, read-only mounts and full disks all show.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".latchkey-probe-{}", crate::crypto::random_id()));
    std::fs::write(&path, b"")?;
    std::fs::remove_file(&path)
}
