//! The key-encryption key (KEK): AES-256-GCM over every private key at rest, with the key id as
//! associated data so a ciphertext cannot be moved onto another key's record.
//!
//! Source, first found wins: `LATCHKEY_KEK` (base64url of 32 bytes), else `<keys_dir>/kek`,
//! which development mode creates on first start (mode 0600, ignored by git). A previous KEK
//! (`LATCHKEY_KEK_PREVIOUS`, or `<keys_dir>/kek.previous`) is tried for opening only, so that
//! nodes keep working while `latchkey keys rewrap` moves every record to the new one. Sealing
//! always uses the current KEK.

use crate::crypto::{b64url, b64url_decode, random_bytes};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Kek {
    current: Aes256Gcm,
    previous: Option<Aes256Gcm>,
    /// Keys derived from the current and previous KEK for the lookup hashes of sealed personal
    /// data (`store::sealed`): equality without the plain text.
    lookup: [u8; 32],
    previous_lookup: Option<[u8; 32]>,
    /// The keys directory when the KEK came from files, so that a node can re-read it after a
    /// rewrap replaced the file under it.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

const PREFIX: &str = "v1";
const FILE: &str = "kek";
const PREVIOUS_FILE: &str = "kek.previous";
const NEXT_FILE: &str = "kek.next";

/// Does the KEK file in `keys_dir` sit on the same volume as the SQLite database at `database`
/// (a `sqlite:` URL)? Then a copy of that volume (a backup, a snapshot, a stolen disk) holds the
/// sealed keys and what opens them. False for other databases.
pub fn beside_database(keys_dir: &Path, database: &str) -> bool {
    let Some(file) = crate::config::sqlite_file(database) else { return false };
    let db_dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    same_volume(keys_dir, db_dir)
}

#[cfg(unix)]
fn same_volume(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_volume(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a.starts_with(&b) || b.starts_with(&a))
}

/// What would stop [`Kek::load_or_create`] at start-up, one line each, without creating
/// anything (for `config check`).
pub fn problems(keys_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["LATCHKEY_KEK", "LATCHKEY_KEK_PREVIOUS"] {
        if let Ok(v) = std::env::var(name)
            && material(&v).is_none()
        {
            out.push(format!("{name}: not base64url of 32 bytes"));
        }
    }
    if std::env::var("LATCHKEY_KEK").is_err() {
        for file in [FILE, PREVIOUS_FILE] {
            let path = keys_dir.join(file);
            match std::fs::read_to_string(&path) {
                Ok(t) if material(&t).is_none() => out.push(format!("{}: not a key-encryption key", path.display())),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => out.push(format!("{}: cannot read: {e}", path.display())),
            }
        }
    }
    out
}

impl Kek {
    pub fn load_or_create(keys_dir: &Path) -> anyhow::Result<Self> {
        if let Ok(v) = std::env::var("LATCHKEY_KEK") {
            let previous = match std::env::var("LATCHKEY_KEK_PREVIOUS") {
                Ok(p) => Some(
                    material(&p).ok_or_else(|| anyhow::anyhow!("LATCHKEY_KEK_PREVIOUS: not base64url of 32 bytes"))?,
                ),
                Err(_) => None,
            };
            let current = material(&v).ok_or_else(|| anyhow::anyhow!("LATCHKEY_KEK: not base64url of 32 bytes"))?;
            return Ok(Self::from_material(current, previous, None));
        }
        let path = keys_dir.join(FILE);
        if !path.exists() && write_new(&path, &generate())? {
            tracing::warn!(path = %path.display(), "generated a development key-encryption key; set LATCHKEY_KEK in production");
        }
        let text = read_settled(&path)?;
        let current = material(&text).ok_or_else(|| anyhow::anyhow!("{}: not a key-encryption key", path.display()))?;
        let previous_path = keys_dir.join(PREVIOUS_FILE);
        let previous = match std::fs::read_to_string(&previous_path) {
            Ok(t) => Some(
                material(&t).ok_or_else(|| anyhow::anyhow!("{}: not a key-encryption key", previous_path.display()))?,
            ),
            Err(_) => None,
        };
        Ok(Self::from_material(current, previous, Some(keys_dir.to_owned())))
    }

    fn from_material(current: Material, previous: Option<Material>, dir: Option<PathBuf>) -> Self {
        let (previous, previous_lookup) = previous.unzip();
        Self { current: current.0, previous, lookup: current.1, previous_lookup, dir }
    }

    /// When the KEK file was last replaced (file mode), so that a node can notice a rewrap
    /// before a lookup hash computed under the old KEK misses.
    pub fn file_stamp(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.dir.as_deref()?.join(FILE)).and_then(|m| m.modified()).ok()
    }

    /// HMAC-SHA256 of `message` under the lookup key of the current KEK, and of the previous
    /// one while there is one (rows written before a rewrap finished still carry those).
    pub fn lookup_hashes(&self, message: &[u8]) -> (String, Option<String>) {
        let hash = |key: &[u8; 32]| b64url(&crate::crypto::hmac_sha256(key, message));
        (hash(&self.lookup), self.previous_lookup.as_ref().map(hash))
    }

    /// The same source read again: after `keys rewrap` replaced `<keys_dir>/kek`, a running node
    /// picks up the new KEK this way. None when the KEK comes from the environment.
    pub fn reload(&self) -> Option<anyhow::Result<Self>> {
        self.dir.as_deref().map(Self::load_or_create)
    }

    /// A KEK that seals with `new` and still opens what `self` sealed.
    pub fn successor(&self, new: &str) -> anyhow::Result<Self> {
        let current = material(new).ok_or_else(|| anyhow::anyhow!("the new KEK is not base64url of 32 bytes"))?;
        Ok(Self::from_material(current, Some((self.current.clone(), self.lookup)), self.dir.clone()))
    }

    /// Whether the KEK lives in `<keys_dir>` (and `keys rewrap` must replace the file).
    pub fn keys_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes(12);
        let nonce = nonce_bytes.as_slice().try_into().expect("12-byte nonce");
        let ct = self
            .current
            .encrypt(nonce, Payload { msg: plaintext, aad: kid.as_bytes() })
            .expect("AES-GCM encryption of a small buffer cannot fail");
        format!("{PREFIX}.{}.{}", b64url(&nonce_bytes), b64url(&ct))
    }

    pub fn open(&self, kid: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        self.open_with(&self.current, kid, sealed).or_else(|e| match &self.previous {
            Some(p) => self.open_with(p, kid, sealed),
            None => Err(e),
        })
    }

    /// Whether `sealed` opens with the current KEK (not only with the previous one).
    pub fn is_current(&self, kid: &str, sealed: &str) -> bool {
        self.open_with(&self.current, kid, sealed).is_ok()
    }

    fn open_with(&self, key: &Aes256Gcm, kid: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let mut parts = sealed.split('.');
        let (Some(PREFIX), Some(n), Some(c), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("key {kid}: unknown encryption format");
        };
        let (Some(nonce_bytes), Some(ct)) = (b64url_decode(n), b64url_decode(c)) else {
            anyhow::bail!("key {kid}: malformed ciphertext");
        };
        let nonce = nonce_bytes.as_slice().try_into().map_err(|_| anyhow::anyhow!("key {kid}: bad nonce"))?;
        key.decrypt(nonce, Payload { msg: &ct, aad: kid.as_bytes() })
            .map_err(|_| anyhow::anyhow!("key {kid}: cannot decrypt with this key-encryption key"))
    }
}

/// A fresh KEK, base64url of 32 random bytes.
pub fn generate() -> String {
    b64url(&random_bytes(32))
}

/// Rewrap, file mode, step 1: the new KEK is written to `<keys_dir>/kek.next` before any
/// record is sealed with it, so a crash never leaves records no file can open.
pub fn stage_file(keys_dir: &Path, new: &str) -> anyhow::Result<()> {
    let path = keys_dir.join(NEXT_FILE);
    let _ = std::fs::remove_file(&path);
    if !write_new(&path, new)? {
        anyhow::bail!("{} appeared while writing it; is another rewrap running?", path.display());
    }
    Ok(())
}

/// Rewrap, file mode, step 2 (after the records are resealed): `kek` becomes `kek.previous`
/// and `kek.next` becomes `kek`. Each rename is atomic.
pub fn promote_file(keys_dir: &Path) -> anyhow::Result<()> {
    std::fs::rename(keys_dir.join(FILE), keys_dir.join(PREVIOUS_FILE))?;
    std::fs::rename(keys_dir.join(NEXT_FILE), keys_dir.join(FILE))?;
    Ok(())
}

/// What one KEK gives: the AES-256-GCM key, and the key of the lookup hashes derived from it
/// (HMAC-SHA256 of a fixed label under the KEK), so one secret serves both and a rewrap
/// replaces both.
type Material = (Aes256Gcm, [u8; 32]);

fn material(s: &str) -> Option<Material> {
    let bytes = b64url_decode(s.trim())?;
    let aes = Aes256Gcm::new_from_slice(&bytes).ok()?;
    Some((aes, crate::crypto::hmac_sha256(&bytes, b"latchkey personal data lookup v1")))
}

/// Writes a secret file with mode 0600, only if it does not exist. Returns whether it wrote:
/// when two processes start at once, one writes and the other reads it.
fn write_new(path: &Path, text: &str) -> anyhow::Result<bool> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reads a KEK file, waiting briefly while another process is still writing it.
fn read_settled(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(path)?;
        if !text.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(text)
}
