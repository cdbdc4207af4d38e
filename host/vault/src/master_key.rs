//! The master key: where it comes from, how it is stored, and what is derived from it.
//!
//! Every sealed value in the store is encrypted under a sub-key of one 32-byte master key.
//! The key comes from `PROOFPIX_MASTER_KEY` (64 hex characters or standard base64) or, when
//! that is unset, from the key file `<data dir>/master.key`, which is created with mode 0600
//! on first run.
//!
//! Threats handled:
//! - Another local user reading the key file. A key file whose mode grants anything to group
//!   or others is refused at load time, with the `chmod` command that fixes it: we fail closed
//!   rather than keep using a key that may already have been copied.
//! - A crash while writing a key file (first run or `vault rotate-key`). [`write_key_file`]
//!   writes a temporary file, syncs it, renames it over the old one and syncs the directory,
//!   so the path holds either the whole old key or the whole new one.
//! - A typo in the variable. A value that is not exactly 32 bytes of hex or base64 is an
//!   error naming the variable and the expected format; it never falls back to the key file.
//! - Key misuse across purposes. The master key itself is never used directly: sealing, the
//!   key check and the audit-head MAC each use their own HMAC-SHA256 derived sub-key, so a
//!   value computed for one purpose is useless for another.
//!
//! What it does not do: it does not protect the key from root or from the user the daemon
//! runs as, and it does not create a key when a key file should have existed; whether a
//! missing key is a first run is decided by the caller, who knows whether a store exists
//! ([`resolve_master_key`] takes that as `allow_create`).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The environment variable that holds the master key (64 hex characters or base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "PROOFPIX_MASTER_KEY";

/// The name of the key file inside the data directory.
pub const KEY_FILE_NAME: &str = "master.key";

/// Length of a master key in bytes (256 bits).
pub const MASTER_KEY_BYTES: usize = 32;

/// Mode bits a key file may not have: anything for group or others.
const KEY_FILE_FORBIDDEN_MODE_BITS: u32 = 0o077;

/// A 256-bit master key, zeroized on drop. `Debug` prints only its public [`MasterKey::id`].
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; MASTER_KEY_BYTES]>);

/// The purposes sub-keys are derived for; each label is part of the derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyPurpose {
    /// Sealing secrets and tokens with XChaCha20-Poly1305.
    Seal,
    /// The key-check value stored next to sealed data, to detect a wrong key at open.
    KeyCheck,
    /// The MAC over the audit chain head.
    AuditHead,
    /// The short public identifier of the key shown in logs.
    Id,
}

impl KeyPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            KeyPurpose::Seal => b"proofpix/v1/seal",
            KeyPurpose::KeyCheck => b"proofpix/v1/key-check",
            KeyPurpose::AuditHead => b"proofpix/v1/audit-head-mac",
            KeyPurpose::Id => b"proofpix/v1/key-id",
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

impl MasterKey {
    /// Draws a fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        MasterKey(bytes)
    }

    /// Wraps raw key bytes (for tests and for callers that hold a key in a secure store).
    pub fn from_bytes(bytes: [u8; MASTER_KEY_BYTES]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    /// Parses a key written as 64 hex characters or as base64 (standard alphabet, padding
    /// optional) of exactly 32 bytes. Surrounding whitespace is ignored.
    ///
    /// # Errors
    ///
    /// [`KeyError::Format`] if the text is neither; the message never contains the text.
    ///
    /// # Examples
    ///
    /// ```
    /// use proofpix_vault::MasterKey;
    /// let hex = "00".repeat(32);
    /// assert!(MasterKey::parse(&hex).is_ok());
    /// assert!(MasterKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
    /// assert!(MasterKey::parse("too short").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_BYTES]);
        if text.len() == 2 * MASTER_KEY_BYTES && hex::decode_to_slice(text, bytes.as_mut()).is_ok()
        {
            return Ok(MasterKey(bytes));
        }
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|_| KeyError::Format)?,
        );
        if decoded.len() != MASTER_KEY_BYTES {
            return Err(KeyError::Format);
        }
        bytes.copy_from_slice(&decoded);
        Ok(MasterKey(bytes))
    }

    /// The key as 64 lowercase hex characters, the key file's format. Zeroized on drop.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    /// A derived 32-byte sub-key for one purpose: HMAC-SHA256(master, label).
    pub fn derive(&self, purpose: KeyPurpose) -> Zeroizing<[u8; 32]> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC accepts keys of any length");
        mac.update(purpose.label());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// HMAC-SHA256 of `data` under the sub-key for `purpose`.
    pub fn mac(&self, purpose: KeyPurpose, data: &[u8]) -> [u8; 32] {
        let sub = self.derive(purpose);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(sub.as_ref())
            .expect("HMAC accepts keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `data` for `purpose`, compared in constant time.
    pub fn verify_mac(&self, purpose: KeyPurpose, data: &[u8], tag: &[u8]) -> bool {
        let sub = self.derive(purpose);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(sub.as_ref())
            .expect("HMAC accepts keys of any length");
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }

    /// The key-check value stored with sealed data: a MAC of a fixed label, so it reveals
    /// nothing about the key but lets a wrong key be detected before anything is decrypted.
    pub fn key_check(&self) -> KeyCheck {
        KeyCheck(self.mac(KeyPurpose::KeyCheck, b"key check"))
    }

    /// A short public identifier (16 hex characters) for logs and `vault status`; derived with
    /// its own label, so it reveals nothing usable about the key.
    pub fn id(&self) -> String {
        hex::encode(&self.mac(KeyPurpose::Id, b"key id")[..8])
    }

    pub(crate) fn seal_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive(KeyPurpose::Seal)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id {}, [redacted])", self.id())
    }
}

/// The value that proves which master key a store was sealed under (see [`MasterKey::key_check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck(pub [u8; 32]);

impl KeyCheck {
    /// Whether `stored` (as read from the store) equals this check value, in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        if stored.len() != self.0.len() {
            return false;
        }
        self.0
            .iter()
            .zip(stored)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Where a master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// The `PROOFPIX_MASTER_KEY` environment variable.
    Env,
    /// An existing key file.
    KeyFile(PathBuf),
    /// A key file created just now (first run).
    Created(PathBuf),
}

/// Errors loading or storing the master key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key text is not 64 hex characters or base64 of 32 bytes.
    #[error(
        "the master key is not valid: expected 64 hex characters or base64 of 32 bytes \
         (generate one with `openssl rand -hex 32`)"
    )]
    Format,
    /// `PROOFPIX_MASTER_KEY` is set but invalid.
    #[error(
        "{MASTER_KEY_ENV} is set but is not a valid key: expected 64 hex characters or base64 \
         of 32 bytes; it is never ignored in favour of the key file"
    )]
    EnvFormat,
    /// The key file is readable or writable by other users.
    #[error(
        "the key file {} has mode {mode:04o}, which lets other users read or change it; \
         run `chmod 600 {}` and consider rotating the key (`proofpix vault rotate-key`)",
        path.display(), path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file's contents are not a valid key.
    #[error("the key file {} does not hold a valid key (64 hex characters expected)", path.display())]
    KeyFileFormat {
        /// The key file.
        path: PathBuf,
    },
    /// No key was found and creating one was not allowed (a store already exists).
    #[error(
        "no master key found: {MASTER_KEY_ENV} is unset and {} does not exist, but the data \
         directory already holds a store sealed under a key; set {MASTER_KEY_ENV} to that key \
         or restore the key file",
        path.display()
    )]
    Missing {
        /// The key file that was looked for.
        path: PathBuf,
    },
    /// Reading or writing the key file failed.
    #[error("cannot {action} the key file {}", path.display())]
    Io {
        /// What was being done ("read", "create", "replace").
        action: &'static str,
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Finds the master key: `PROOFPIX_MASTER_KEY` if set, else `<data_dir>/master.key`; when
/// neither exists and `allow_create` is true, creates the key file (mode 0600).
///
/// Pass `allow_create = false` when the data directory already holds a store, so a lost key
/// file is reported instead of being silently replaced by a new key.
///
/// # Errors
///
/// See [`KeyError`]; every variant names what to do next.
pub fn resolve_master_key(
    data_dir: &Path,
    allow_create: bool,
) -> Result<(MasterKey, KeySource), KeyError> {
    let env = std::env::var(MASTER_KEY_ENV).ok().map(Zeroizing::new);
    resolve_master_key_with(env.as_deref().map(String::as_str), data_dir, allow_create)
}

/// [`resolve_master_key`] with the environment value passed in (tests use this to avoid
/// racing on the process environment).
///
/// # Errors
///
/// See [`KeyError`].
pub fn resolve_master_key_with(
    env_value: Option<&str>,
    data_dir: &Path,
    allow_create: bool,
) -> Result<(MasterKey, KeySource), KeyError> {
    if let Some(value) = env_value.filter(|v| !v.trim().is_empty()) {
        return MasterKey::parse(value)
            .map(|k| (k, KeySource::Env))
            .map_err(|_| KeyError::EnvFormat);
    }
    let path = data_dir.join(KEY_FILE_NAME);
    match read_key_file(&path) {
        Ok(key) => Ok((key, KeySource::KeyFile(path))),
        Err(KeyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            if !allow_create {
                return Err(KeyError::Missing { path });
            }
            let key = MasterKey::generate();
            create_key_file(&path, &key)?;
            Ok((key, KeySource::Created(path)))
        }
        Err(e) => Err(e),
    }
}

/// Reads a key file, refusing one that group or others may access.
///
/// # Errors
///
/// [`KeyError::KeyFilePermissions`], [`KeyError::KeyFileFormat`] or [`KeyError::Io`].
pub fn read_key_file(path: &Path) -> Result<MasterKey, KeyError> {
    let io_err = |source| KeyError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mode = file_mode(&file.metadata().map_err(io_err)?);
    if mode & KEY_FILE_FORBIDDEN_MODE_BITS != 0 {
        return Err(KeyError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = Zeroizing::new(String::new());
    file.take(1024).read_to_string(&mut text).map_err(io_err)?;
    MasterKey::parse(&text).map_err(|_| KeyError::KeyFileFormat {
        path: path.to_owned(),
    })
}

/// Creates a new key file with mode 0600; fails if the file already exists.
fn create_key_file(path: &Path, key: &MasterKey) -> Result<(), KeyError> {
    let io_err = |source| KeyError::Io {
        action: "create",
        path: path.to_owned(),
        source,
    };
    let mut file = owner_only(OpenOptions::new().write(true).create_new(true))
        .open(path)
        .map_err(io_err)?;
    write_key(&mut file, key).map_err(io_err)?;
    sync_parent(path).map_err(io_err)
}

/// Writes `key` to `path` atomically: a temporary 0600 file in the same directory is written,
/// synced, renamed over `path`, and the directory is synced. After a crash the path holds the
/// old key or the new one, never a mix or nothing.
///
/// Call this after `Store::rotate_master_key` has committed, when the key lives in a key file.
///
/// # Errors
///
/// [`KeyError::Io`] if any step fails; the old key file is then untouched.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), KeyError> {
    let io_err = |source| KeyError::Io {
        action: "replace",
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| KEY_FILE_NAME.to_owned());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut file = owner_only(OpenOptions::new().write(true).create_new(true)).open(&tmp)?;
        write_key(&mut file, key)?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err)
}

fn write_key(file: &mut File, key: &MasterKey) -> io::Result<()> {
    let mut text = key.to_hex();
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = path.parent().unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(unix)]
fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600)
}

#[cfg(not(unix))]
fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

#[cfg(unix)]
fn file_mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn file_mode(_meta: &fs::Metadata) -> u32 {
    0o600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_spellings_of_one_key_are_the_same_key() {
        let key = MasterKey::generate();
        let hex = key.to_hex();
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.0.as_ref());
        let from_hex = MasterKey::parse(&hex).unwrap();
        let from_b64 = MasterKey::parse(&b64).unwrap();
        let from_b64_nopad = MasterKey::parse(b64.trim_end_matches('=')).unwrap();
        assert_eq!(from_hex.id(), key.id());
        assert_eq!(from_b64.id(), key.id());
        assert_eq!(from_b64_nopad.id(), key.id());
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused_without_echoing_it() {
        for text in [
            "",
            "abcd",
            &"0".repeat(63),
            &"0".repeat(66),
            "not base64 at all!!",
        ] {
            let err = MasterKey::parse(text).unwrap_err();
            assert!(matches!(err, KeyError::Format), "case {text:?}");
        }
        let err = resolve_master_key_with(Some("sekrit-typo"), Path::new("/nonexistent"), false)
            .unwrap_err();
        assert!(matches!(err, KeyError::EnvFormat));
        assert!(!err.to_string().contains("sekrit"));
    }

    #[test]
    fn the_first_run_creates_an_owner_only_key_file_and_later_runs_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, src) = resolve_master_key_with(None, dir.path(), true).unwrap();
        assert_eq!(src, KeySource::Created(dir.path().join(KEY_FILE_NAME)));
        let meta = fs::metadata(dir.path().join(KEY_FILE_NAME)).unwrap();
        assert_eq!(file_mode(&meta) & 0o777, 0o600);
        let (k2, src) = resolve_master_key_with(None, dir.path(), true).unwrap();
        assert_eq!(src, KeySource::KeyFile(dir.path().join(KEY_FILE_NAME)));
        assert_eq!(k1.id(), k2.id());
    }

    #[test]
    fn a_missing_key_file_is_an_error_when_creation_is_not_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_master_key_with(None, dir.path(), false).unwrap_err();
        assert!(matches!(err, KeyError::Missing { .. }));
        assert!(err.to_string().contains("PROOFPIX_MASTER_KEY"), "{err}");
        assert!(!dir.path().join(KEY_FILE_NAME).exists());
    }

    #[test]
    fn the_environment_wins_over_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        resolve_master_key_with(None, dir.path(), true).unwrap();
        let env_key = MasterKey::generate();
        let (k, src) = resolve_master_key_with(Some(&env_key.to_hex()), dir.path(), true).unwrap();
        assert_eq!(src, KeySource::Env);
        assert_eq!(k.id(), env_key.id());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_readable_by_others_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        write_key_file(&path, &MasterKey::generate()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key_file(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the key file {p} has mode 0644, which lets other users read or change it; \
                 run `chmod 600 {p}` and consider rotating the key (`proofpix vault rotate-key`)",
                p = path.display()
            )
        );
    }

    #[test]
    fn writing_a_key_file_replaces_the_old_key_atomically_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        write_key_file(&path, &old).unwrap();
        write_key_file(&path, &new).unwrap();
        assert_eq!(read_key_file(&path).unwrap().id(), new.id());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(KEY_FILE_NAME)]);
    }

    #[test]
    fn debug_shows_the_key_id_and_never_the_key() {
        let key = MasterKey::generate();
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.id()));
        assert!(!shown.contains(key.to_hex().as_str()));
    }

    #[test]
    fn sub_keys_for_different_purposes_differ() {
        let key = MasterKey::generate();
        assert_ne!(
            *key.derive(KeyPurpose::Seal),
            *key.derive(KeyPurpose::AuditHead)
        );
        assert_ne!(
            *key.derive(KeyPurpose::Seal),
            *key.derive(KeyPurpose::KeyCheck)
        );
        let tag = key.mac(KeyPurpose::AuditHead, b"head");
        assert!(key.verify_mac(KeyPurpose::AuditHead, b"head", &tag));
        assert!(!key.verify_mac(KeyPurpose::KeyCheck, b"head", &tag));
        assert!(!MasterKey::generate().verify_mac(KeyPurpose::AuditHead, b"head", &tag));
    }
}
