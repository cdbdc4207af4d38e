//! Signed plugin files.
//!
//! A ProofPix plugin is one file: the WebAssembly component, followed by one
//! custom section named [`SECTION_NAME`] that carries the plugin's manifest
//! (for display before install) and an Ed25519 signature over the SHA-256 of
//! everything before that section (the *content hash*). The file stays a
//! valid component: runtimes ignore custom sections they do not know.
//!
//! ```text
//! [ component bytes ............ ][ 0x00 size "proofpix-signature" {json} ]
//!   └── content hash = SHA-256 ──┘
//! ```
//!
//! Threats and answers:
//! - **A tampered file** (one byte of the component changed, or the section
//!   moved onto another component): the content hash no longer matches the
//!   signed one, so verification fails, whatever the trust store says.
//! - **An unsigned or self-signed plugin**: only keys in the operator's
//!   trust store (and the built-in first-party key) are accepted; installing
//!   anything else needs an explicit development flag in the caller.
//! - **A signature section followed by more bytes** (an attacker appending
//!   code after the signature): refused; the signature section must be the
//!   last thing in the file and there must be exactly one.
//!
//! - **A spoofed signer name or manifest** (someone editing the section to say
//!   "signed by ProofPix Inc." or to show other permissions before install):
//!   the signature covers both, so an edited name or manifest fails to verify.
//! - **A leaked key**: the development key once committed to this repository
//!   is revoked ([`REVOKED_KEYS`]); no trust store accepts it, whatever the
//!   operator's `trust/` folder holds.
//!
//! The signed message (format 2) is domain-separated:
//!
//! ```text
//! "proofpix-plugin-v2\0" || content hash (32) || SHA-256(manifest JSON bytes) (32)
//!     || u16 big-endian length of the signer name || signer name (UTF-8)
//! ```
//!
//! so a signature made for another purpose with the same key cannot be
//! replayed as a plugin signature, and neither the name nor the manifest can
//! be changed without the key. Format 1 sections (content hash only) are
//! refused with a message to re-sign: accepting them would mean showing a
//! name and a manifest nobody signed, and every format 1 file in existence
//! came out of this repository's own builds, which re-sign on build.
//!
//! ```
//! use proofpix_signing::{KeyPair, TrustStore, sign, verify};
//! let key = KeyPair::generate("acme");
//! let component = b"\0asm\x0d\0\x01\0".to_vec(); // any bytes; real files are components
//! let signed = sign(&component, &key, serde_json::json!({"id": "demo"})).unwrap();
//! let mut trust = TrustStore::default();
//! trust.add(key.public());
//! let v = verify(&signed, &trust).unwrap();
//! assert_eq!(v.signer, "acme");
//! assert_eq!(v.content, component);
//! ```
//!
//! Layering (checked by .ci/layers): floor 1, may use only the host crates below it (proofpix-model); never pulls in axum, hyper, redb, reqwest, tokio, wasmtime, even transitively.

#![deny(missing_docs)]

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Name of the custom section holding the signature.
pub const SECTION_NAME: &str = "proofpix-signature";
/// Domain separation prefix of the signed message.
const DOMAIN: &[u8] = b"proofpix-plugin-v2\0";
/// The signature format this crate writes and accepts.
pub const FORMAT: u32 = 2;
/// Public keys that are never trusted, whatever a trust store is given: the
/// first-party development key whose secret half was committed to this
/// repository (anyone can sign with it).
pub const REVOKED_KEYS: &[&str] =
    &["proofpix-ed25519 88Dod8TcZjC5xFHunOBvsoXvjW4YiRbtbS7GTzZYL+4= proofpix-first-party-dev"];

/// Whether a key id belongs to a revoked key.
pub fn is_revoked(key_id: &str) -> bool {
    REVOKED_KEYS
        .iter()
        .filter_map(|l| PublicKey::from_line(l).ok())
        .any(|k| k.id() == key_id)
}
/// Largest signature section accepted (the manifest is small).
const MAX_SECTION_BYTES: usize = 256 * 1024;

/// Why a file could not be signed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// No signature section.
    #[error("the plugin is not signed")]
    Unsigned,
    /// The file is not a WebAssembly binary.
    #[error("not a WebAssembly file")]
    NotWasm,
    /// The section is malformed or not the last thing in the file.
    #[error("the signature section is malformed: {0}")]
    Malformed(String),
    /// The content does not match the signed hash.
    #[error("the plugin was modified after it was signed (content hash {actual}, signed {signed})")]
    Tampered {
        /// Hash of the content as found.
        actual: String,
        /// Hash the signature covers.
        signed: String,
    },
    /// The signing key is not trusted.
    #[error(
        "the plugin is signed by {signer:?} (key {key_id}), which is not in the trust store; add the key with `proofpix plugin trust KEY.pub` if you trust it"
    )]
    UntrustedKey {
        /// Signer name from the file.
        signer: String,
        /// Key id.
        key_id: String,
    },
    /// The signature does not verify.
    #[error("the signature does not verify with key {key_id}")]
    BadSignature {
        /// Key id.
        key_id: String,
    },
    /// The key is revoked (its secret half is public).
    #[error(
        "the plugin is signed with key {key_id}, which is revoked (its secret key was published, so anyone can sign with it); ask the author for a file signed with their own key"
    )]
    Revoked {
        /// Key id.
        key_id: String,
    },
    /// The section is in an older format whose name and manifest are not signed.
    #[error(
        "the signature section is format {found}, which does not sign the signer name or the manifest; re-sign the file with `proofpix plugin sign` (format {FORMAT})"
    )]
    OldFormat {
        /// The format found.
        found: u32,
    },
    /// A key file could not be read or written.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A public key with the name of whoever holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    /// Who signs with it.
    pub name: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.name, self.id())
    }
}

impl PublicKey {
    /// A short stable id: the first 16 hex characters of the key's SHA-256.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.key.as_bytes()))
            .chars()
            .take(16)
            .collect()
    }

    /// The `.pub` file form: `proofpix-ed25519 <base64> <name>`.
    pub fn to_line(&self) -> String {
        format!(
            "proofpix-ed25519 {} {}",
            B64.encode(self.key.as_bytes()),
            self.name
        )
    }

    /// Parses the `.pub` form.
    ///
    /// # Errors
    /// A malformed line or key.
    pub fn from_line(line: &str) -> Result<Self, String> {
        let mut parts = line.trim().splitn(3, ' ');
        if parts.next() != Some("proofpix-ed25519") {
            return Err("not a proofpix-ed25519 public key".into());
        }
        let bytes = B64
            .decode(parts.next().unwrap_or_default())
            .map_err(|e| format!("bad base64: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "an Ed25519 public key is 32 bytes".to_string())?;
        let key = VerifyingKey::from_bytes(&arr).map_err(|e| e.to_string())?;
        Ok(PublicKey {
            key,
            name: parts.next().unwrap_or("unnamed").trim().to_string(),
        })
    }
}

/// A signing key and its name. The secret half is zeroized on drop and never
/// printed.
pub struct KeyPair {
    key: SigningKey,
    name: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyPair({} {}, secret [redacted])",
            self.name,
            self.public().id()
        )
    }
}

impl KeyPair {
    /// A new random key.
    ///
    /// # Panics
    /// If the operating system's random source fails, which leaves no safe
    /// way to make a key.
    pub fn generate(name: &str) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        #[allow(clippy::expect_used)]
        getrandom::getrandom(seed.as_mut()).expect("the OS random source works");
        KeyPair {
            key: SigningKey::from_bytes(&seed),
            name: name.to_string(),
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
            name: self.name.clone(),
        }
    }

    /// The secret key file form: `proofpix-ed25519-secret <base64 seed> <name>`.
    pub fn to_secret_line(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "proofpix-ed25519-secret {} {}",
            B64.encode(self.key.to_bytes()),
            self.name
        ))
    }

    /// Parses the secret key file form.
    ///
    /// # Errors
    /// A malformed line.
    pub fn from_secret_line(line: &str) -> Result<Self, String> {
        let mut parts = line.trim().splitn(3, ' ');
        if parts.next() != Some("proofpix-ed25519-secret") {
            return Err("not a proofpix-ed25519-secret key".into());
        }
        let bytes = Zeroizing::new(
            B64.decode(parts.next().unwrap_or_default())
                .map_err(|e| format!("bad base64: {e}"))?,
        );
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| "an Ed25519 secret key is 32 bytes".to_string())?;
        Ok(KeyPair {
            key: SigningKey::from_bytes(&arr),
            name: parts.next().unwrap_or("unnamed").trim().to_string(),
        })
    }

    /// Writes `<dir>/<name>.key` (mode 0600) and `<dir>/<name>.pub`.
    ///
    /// # Errors
    /// I/O errors, or when the key file exists (never overwritten).
    pub fn write(&self, dir: &Path) -> Result<(), SigningError> {
        let err = |path: &Path, e: std::io::Error| SigningError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        let secret = dir.join(format!("{}.key", self.name));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&secret).map_err(|e| err(&secret, e))?;
        std::io::Write::write_all(
            &mut f,
            format!("{}\n", self.to_secret_line().as_str()).as_bytes(),
        )
        .map_err(|e| err(&secret, e))?;
        let public = dir.join(format!("{}.pub", self.name));
        std::fs::write(&public, format!("{}\n", self.public().to_line()))
            .map_err(|e| err(&public, e))?;
        Ok(())
    }

    /// Reads a secret key file, refusing one others can read.
    ///
    /// # Errors
    /// I/O errors, loose permissions, malformed content.
    pub fn read(path: &Path) -> Result<Self, SigningError> {
        let err = |reason: String| SigningError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| err(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "readable by others (mode {:o}); run chmod 600 on it",
                    mode & 0o777
                )));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        Self::from_secret_line(&text).map_err(err)
    }
}

/// The public keys an operator trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: Vec<PublicKey>,
}

impl TrustStore {
    /// Adds a key. A revoked key ([`REVOKED_KEYS`]) is never added; returns
    /// whether the key is trusted now.
    pub fn add(&mut self, key: PublicKey) -> bool {
        if is_revoked(&key.id()) {
            return false;
        }
        if !self.keys.iter().any(|k| k.key == key.key) {
            self.keys.push(key);
        }
        true
    }

    /// Loads every `*.pub` file in `dir` (a missing directory is empty).
    ///
    /// # Errors
    /// A file that is not a public key.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), SigningError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "pub") {
                let text = std::fs::read_to_string(&path).map_err(|err| SigningError::KeyFile {
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })?;
                let key = PublicKey::from_line(&text).map_err(|reason| SigningError::KeyFile {
                    path: path.display().to_string(),
                    reason,
                })?;
                if !self.add(key) {
                    return Err(SigningError::KeyFile {
                        path: path.display().to_string(),
                        reason:
                            "this key is revoked (its secret key was published); delete the file"
                                .into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

/// What the signature section carries. `manifest` is JSON text: its exact
/// bytes are hashed into the signed message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    v: u32,
    key_id: String,
    signer: String,
    content_sha256: String,
    #[serde(default)]
    manifest_sha256: String,
    signature: String,
    #[serde(default)]
    manifest: serde_json::Value,
}

impl Envelope {
    /// The manifest's bytes as signed: a string holds JSON text (format 2);
    /// anything else is format 1's inline value.
    fn manifest_text(&self) -> &str {
        self.manifest.as_str().unwrap_or_default()
    }
}

/// What a signature section claims, before (or without) verification.
#[derive(Debug, Clone)]
pub struct Claims {
    /// The signature format.
    pub format: u32,
    /// The signing key's id.
    pub key_id: String,
    /// The signer name the section carries. Unverified: show it only after
    /// [`verify`] succeeds.
    pub claimed_signer: String,
    /// The manifest the section carries. Unverified likewise.
    pub claimed_manifest: serde_json::Value,
}

/// A verified plugin file.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The component bytes (the file without its signature section).
    pub content: Vec<u8>,
    /// SHA-256 of `content`, hex.
    pub content_hash: String,
    /// Who signed it.
    pub signer: String,
    /// The signing key's id.
    pub key_id: String,
    /// The manifest stored at signing time.
    pub manifest: serde_json::Value,
}

/// Splits a file into its content and its signature section, if any.
///
/// # Errors
/// A malformed signature section, or one that is not last.
pub fn split(file: &[u8]) -> Result<(&[u8], Option<&[u8]>), SigningError> {
    if !file.starts_with(b"\0asm") {
        return Err(SigningError::NotWasm);
    }
    // Walk the top-level sections from the 8-byte preamble; find ours.
    let mut pos = 8usize;
    let mut found: Option<(usize, &[u8])> = None;
    while pos < file.len() {
        let start = pos;
        let id = *file
            .get(pos)
            .ok_or_else(|| SigningError::Malformed("truncated".into()))?;
        pos += 1;
        let (size, n) = leb128(file.get(pos..).unwrap_or_default())
            .ok_or_else(|| SigningError::Malformed("bad section size".into()))?;
        pos += n;
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= file.len())
            .ok_or_else(|| {
                SigningError::Malformed("a section runs past the end of the file".into())
            })?;
        if id == 0 {
            let body = file.get(pos..end).unwrap_or_default();
            if let Some((name_len, n)) = leb128(body)
                && body.get(n..n + name_len) == Some(SECTION_NAME.as_bytes())
            {
                if found.is_some() {
                    return Err(SigningError::Malformed(
                        "more than one signature section".into(),
                    ));
                }
                found = Some((start, body.get(n + name_len..).unwrap_or_default()));
            }
        }
        if found.is_some_and(|(s, _)| s == start) && end != file.len() {
            return Err(SigningError::Malformed(
                "bytes follow the signature section".into(),
            ));
        }
        pos = end;
    }
    match found {
        Some((start, payload)) => Ok((file.get(..start).unwrap_or_default(), Some(payload))),
        None => Ok((file, None)),
    }
}

fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().take(5).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(value).ok().map(|v| (v, i + 1));
        }
    }
    None
}

fn write_leb128(mut v: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn message(
    content_hash: &[u8],
    manifest_hash: &[u8],
    signer: &str,
) -> Result<Vec<u8>, SigningError> {
    let len = u16::try_from(signer.len()).map_err(|_| {
        SigningError::Malformed("the signer name is longer than 65535 bytes".into())
    })?;
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(content_hash);
    m.extend_from_slice(manifest_hash);
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(signer.as_bytes());
    Ok(m)
}

/// Signs a component: returns the file with a signature section appended
/// (replacing any previous one).
///
/// # Errors
/// When the input is not a WebAssembly file or has a malformed section.
pub fn sign(
    file: &[u8],
    key: &KeyPair,
    manifest: serde_json::Value,
) -> Result<Vec<u8>, SigningError> {
    let (content, _) = split(file)?;
    let hash = Sha256::digest(content);
    let manifest_text =
        serde_json::to_string(&manifest).map_err(|e| SigningError::Malformed(e.to_string()))?;
    let manifest_hash = Sha256::digest(manifest_text.as_bytes());
    let signature = key.key.sign(&message(&hash, &manifest_hash, &key.name)?);
    let envelope = Envelope {
        v: FORMAT,
        key_id: key.public().id(),
        signer: key.name.clone(),
        content_sha256: hex::encode(hash),
        manifest_sha256: hex::encode(manifest_hash),
        signature: B64.encode(signature.to_bytes()),
        manifest: serde_json::Value::String(manifest_text),
    };
    let payload =
        serde_json::to_vec(&envelope).map_err(|e| SigningError::Malformed(e.to_string()))?;
    let mut body = Vec::new();
    write_leb128(SECTION_NAME.len(), &mut body);
    body.extend_from_slice(SECTION_NAME.as_bytes());
    body.extend_from_slice(&payload);
    let mut out = content.to_vec();
    out.push(0);
    write_leb128(body.len(), &mut out);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Verifies a signed file against a trust store.
///
/// # Errors
/// Unsigned, malformed, tampered, untrusted or badly signed files.
pub fn verify(file: &[u8], trust: &TrustStore) -> Result<Verified, SigningError> {
    let (content, payload) = split(file)?;
    let Some(payload) = payload else {
        // A signed file with a changed section size can still parse to the end without
        // meeting its signature section; it is a changed file, never an unsigned one (which
        // a development install would accept).
        // Our section's name as its header writes it (length byte, then the name), not the
        // bare words, which a plugin may well contain (a webhook's signature header name).
        let mut header = vec![SECTION_NAME.len() as u8];
        header.extend_from_slice(SECTION_NAME.as_bytes());
        if file.windows(header.len()).any(|w| w == header.as_slice()) {
            return Err(SigningError::Malformed(
                "the file holds a signature section its structure no longer leads to; it was changed after signing".into(),
            ));
        }
        return Err(SigningError::Unsigned);
    };
    if payload.len() > MAX_SECTION_BYTES {
        return Err(SigningError::Malformed(
            "the signature section is too large".into(),
        ));
    }
    let env: Envelope =
        serde_json::from_slice(payload).map_err(|e| SigningError::Malformed(e.to_string()))?;
    if env.v < FORMAT {
        return Err(SigningError::OldFormat { found: env.v });
    }
    if env.v != FORMAT {
        return Err(SigningError::Malformed(format!(
            "signature format version {} is not supported (this host reads format {FORMAT}); upgrade ProofPix",
            env.v
        )));
    }
    if is_revoked(&env.key_id) {
        return Err(SigningError::Revoked {
            key_id: env.key_id.clone(),
        });
    }
    let manifest_text = env.manifest_text();
    if !env.manifest.is_string() {
        return Err(SigningError::Malformed(
            "the manifest must be JSON text in format 2".into(),
        ));
    }
    let manifest_hash = Sha256::digest(manifest_text.as_bytes());
    let manifest: serde_json::Value = serde_json::from_str(manifest_text)
        .map_err(|e| SigningError::Malformed(format!("the manifest is not JSON: {e}")))?;
    let hash = Sha256::digest(content);
    let actual = hex::encode(hash);
    if actual != env.content_sha256 {
        return Err(SigningError::Tampered {
            actual,
            signed: env.content_sha256,
        });
    }
    let key = trust
        .keys()
        .iter()
        .find(|k| k.id() == env.key_id)
        .ok_or_else(|| SigningError::UntrustedKey {
            signer: env.signer.clone(),
            key_id: env.key_id.clone(),
        })?;
    let sig_bytes: [u8; 64] = B64
        .decode(&env.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SigningError::Malformed("the signature is not 64 bytes of base64".into()))?;
    let signature = ed25519_dalek::Signature::from_bytes(&sig_bytes);
    // The name and manifest are in the signed message: an edited one fails here.
    key.key
        .verify_strict(&message(&hash, &manifest_hash, &env.signer)?, &signature)
        .map_err(|_| SigningError::BadSignature {
            key_id: env.key_id.clone(),
        })?;
    Ok(Verified {
        content: content.to_vec(),
        content_hash: actual,
        signer: env.signer,
        key_id: env.key_id,
        manifest,
    })
}

/// Reads the section without verifying. The signer name and manifest in the
/// result are claims only (see [`Claims`]); the key id is what to show for a
/// file that does not verify.
///
/// # Errors
/// Unsigned or malformed files.
pub fn inspect(file: &[u8]) -> Result<Claims, SigningError> {
    let (_, payload) = split(file)?;
    let env: Envelope = serde_json::from_slice(payload.ok_or(SigningError::Unsigned)?)
        .map_err(|e| SigningError::Malformed(e.to_string()))?;
    let claimed_manifest = match &env.manifest {
        serde_json::Value::String(text) if env.v >= 2 => {
            serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
        }
        other => other.clone(),
    };
    Ok(Claims {
        format: env.v,
        key_id: env.key_id,
        claimed_signer: env.signer,
        claimed_manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component() -> Vec<u8> {
        // A preamble and one unrelated custom section, standing in for a component.
        let mut c = b"\0asm\x0d\0\x01\0".to_vec();
        c.extend_from_slice(&[0, 5, 4, b'n', b'a', b'm', b'e']);
        c
    }

    fn trust(k: &KeyPair) -> TrustStore {
        let mut t = TrustStore::default();
        t.add(k.public());
        t
    }

    #[test]
    fn a_signed_file_verifies_and_yields_the_original_component() {
        let k = KeyPair::generate("acme");
        let signed = sign(&component(), &k, serde_json::json!({"id": "x"})).unwrap();
        let v = verify(&signed, &trust(&k)).unwrap();
        assert_eq!(v.content, component());
        assert_eq!(v.manifest["id"], "x");
        // Re-signing replaces the section instead of stacking a second one.
        let again = sign(&signed, &k, serde_json::Value::Null).unwrap();
        assert!(verify(&again, &trust(&k)).is_ok());
    }

    /// A changed section size that swallows the signature section still parses to the end;
    /// the file is reported changed, never unsigned (a development install takes unsigned
    /// files).
    #[test]
    fn a_size_that_hides_the_signature_section_is_a_changed_file_not_an_unsigned_one() {
        let k = KeyPair::generate("acme");
        let signed = sign(&component(), &k, serde_json::Value::Null).unwrap();
        let (_, n) = leb128(signed.get(9..).unwrap()).unwrap();
        let rest = signed.get(9 + n..).unwrap();
        let mut t = signed.get(..9).unwrap().to_vec();
        write_leb128(rest.len(), &mut t);
        t.extend_from_slice(rest);
        let err = verify(&t, &trust(&k)).unwrap_err();
        assert!(matches!(err, SigningError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn any_changed_byte_of_the_component_is_detected() {
        let k = KeyPair::generate("acme");
        let signed = sign(&component(), &k, serde_json::Value::Null).unwrap();
        for i in 8..component().len() {
            let mut t = signed.clone();
            t[i] ^= 0x01;
            let err = verify(&t, &trust(&k)).unwrap_err();
            assert!(
                matches!(
                    err,
                    SigningError::Tampered { .. } | SigningError::Malformed(_)
                ),
                "byte {i}: {err:?}"
            );
        }
    }

    #[test]
    fn unsigned_untrusted_and_appended_files_are_refused() {
        let k = KeyPair::generate("acme");
        let other = KeyPair::generate("mallory");
        assert_eq!(
            verify(&component(), &trust(&k)).unwrap_err(),
            SigningError::Unsigned
        );
        let signed = sign(&component(), &other, serde_json::Value::Null).unwrap();
        assert!(matches!(
            verify(&signed, &trust(&k)).unwrap_err(),
            SigningError::UntrustedKey { .. }
        ));
        let mut appended = sign(&component(), &k, serde_json::Value::Null).unwrap();
        appended.extend_from_slice(&[0, 3, 2, b'x', b'y']);
        assert!(matches!(
            verify(&appended, &trust(&k)).unwrap_err(),
            SigningError::Malformed(_)
        ));
    }

    #[test]
    fn a_signature_moved_onto_another_component_fails() {
        let k = KeyPair::generate("acme");
        let signed = sign(&component(), &k, serde_json::Value::Null).unwrap();
        let (_, section_payload) = split(&signed).unwrap();
        let mut other = b"\0asm\x0d\0\x01\0".to_vec();
        let mut body = Vec::new();
        write_leb128(SECTION_NAME.len(), &mut body);
        body.extend_from_slice(SECTION_NAME.as_bytes());
        body.extend_from_slice(section_payload.unwrap());
        other.push(0);
        write_leb128(body.len(), &mut other);
        other.extend_from_slice(&body);
        assert!(matches!(
            verify(&other, &trust(&k)).unwrap_err(),
            SigningError::Tampered { .. }
        ));
    }

    #[test]
    fn keys_round_trip_through_their_file_forms_without_printing_secrets() {
        let k = KeyPair::generate("acme");
        let back = KeyPair::from_secret_line(&k.to_secret_line()).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(
            PublicKey::from_line(&k.public().to_line()).unwrap(),
            k.public()
        );
        assert!(!format!("{k:?}").contains(&B64.encode(k.key.to_bytes())));
    }

    /// The file with its section's JSON edited by `edit` (no re-signing).
    fn edit_section(signed: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let (content, payload) = split(signed).unwrap();
        let mut env: serde_json::Value = serde_json::from_slice(payload.unwrap()).unwrap();
        edit(&mut env);
        let payload = serde_json::to_vec(&env).unwrap();
        let mut body = Vec::new();
        write_leb128(SECTION_NAME.len(), &mut body);
        body.extend_from_slice(SECTION_NAME.as_bytes());
        body.extend_from_slice(&payload);
        let mut out = content.to_vec();
        out.push(0);
        write_leb128(body.len(), &mut out);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn a_spoofed_signer_name_is_detected() {
        let k = KeyPair::generate("mallory");
        let signed = sign(&component(), &k, serde_json::json!({"id": "x"})).unwrap();
        let spoofed = edit_section(&signed, |env| {
            env["signer"] = "ProofPix Inc. (official release key)".into();
        });
        assert_eq!(
            verify(&spoofed, &trust(&k)).unwrap_err(),
            SigningError::BadSignature {
                key_id: k.public().id()
            }
        );
        // Unedited, the same file verifies: the edit is what fails.
        assert_eq!(verify(&signed, &trust(&k)).unwrap().signer, "mallory");
    }

    #[test]
    fn a_spoofed_manifest_is_detected() {
        let k = KeyPair::generate("acme");
        let signed = sign(
            &component(),
            &k,
            serde_json::json!({"permissions": ["network:https://api.acme.example"]}),
        )
        .unwrap();
        let spoofed = edit_section(&signed, |env| {
            env["manifest"] = serde_json::json!({"permissions": []}).to_string().into();
        });
        assert!(matches!(
            verify(&spoofed, &trust(&k)).unwrap_err(),
            SigningError::BadSignature { .. }
        ));
        // Recomputing the advertised manifest hash does not help: the hash is recomputed
        // from the bytes, never read from the section.
        let spoofed = edit_section(&spoofed, |env| {
            let text = env["manifest"].as_str().unwrap().to_string();
            env["manifest_sha256"] = hex::encode(Sha256::digest(text.as_bytes())).into();
        });
        assert!(matches!(
            verify(&spoofed, &trust(&k)).unwrap_err(),
            SigningError::BadSignature { .. }
        ));
    }

    #[test]
    fn a_format_1_section_is_refused_with_a_message_to_re_sign() {
        let k = KeyPair::generate("acme");
        // A format 1 section exactly as the old code wrote it: the signature covers the
        // content hash only.
        let hash = Sha256::digest(component());
        let mut m = b"proofpix-plugin-v1\0".to_vec();
        m.extend_from_slice(&hash);
        let sig = k.key.sign(&m);
        let signed = sign(&component(), &k, serde_json::Value::Null).unwrap();
        let old = edit_section(&signed, |env| {
            env["v"] = 1.into();
            env["signature"] = B64.encode(sig.to_bytes()).into();
            env["manifest"] = serde_json::json!({"id": "x"});
        });
        let err = verify(&old, &trust(&k)).unwrap_err();
        assert_eq!(err, SigningError::OldFormat { found: 1 });
        assert!(err.to_string().contains("proofpix plugin sign"), "{err}");
    }

    #[test]
    fn the_published_development_key_is_never_trusted() {
        let leaked = PublicKey::from_line(REVOKED_KEYS[0]).unwrap();
        let mut t = TrustStore::default();
        assert!(!t.add(leaked.clone()));
        assert!(t.keys().is_empty());
        let dir = std::env::temp_dir().join(format!("proofpix-revoked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dev.pub"), REVOKED_KEYS[0]).unwrap();
        let err = TrustStore::default().load_dir(&dir).unwrap_err();
        assert!(err.to_string().contains("revoked"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(is_revoked(&leaked.id()));
    }

    #[test]
    fn inspect_reports_claims_and_key_id() {
        let k = KeyPair::generate("acme");
        let signed = sign(&component(), &k, serde_json::json!({"id": "x"})).unwrap();
        let c = inspect(&signed).unwrap();
        assert_eq!(c.format, FORMAT);
        assert_eq!(c.key_id, k.public().id());
        assert_eq!(c.claimed_manifest["id"], "x");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Splitting never panics, whatever follows the preamble.
            #[test]
            fn splitting_any_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
                let mut f = b"\0asm\x0d\0\x01\0".to_vec();
                f.extend(tail);
                let _ = split(&f);
            }
        }
    }
}
