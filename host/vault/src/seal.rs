//! Sealing a secret for one record, and opening it again.
//!
//! A sealed value is XChaCha20-Poly1305 ciphertext under the master key's `Seal` sub-key,
//! with a fresh random 192-bit nonce per seal (random nonces of that size are safe to draw
//! for the lifetime of a key; AES-GCM's 96-bit ones are not at our write rates over years).
//!
//! Threats handled:
//! - Someone who can read or write the store file but has no master key. They learn nothing
//!   from the ciphertext except its length, and any change to it makes [`open`] fail.
//! - Moving a sealed value to another record, e.g. copying integration A's refresh token into
//!   integration B's row so B's plugin receives A's credentials. The integration id and the
//!   field name are the associated data ([`Aad`]), so the value only opens where it was sealed.
//! - A wrong master key: [`open`] fails with the same error as tampering. Callers should
//!   compare the store's key check ([`crate::MasterKey::key_check`]) first, so a wrong key is
//!   reported as such before anything is decrypted.
//!
//! What it does not do: it does not stop a rollback of a record to an older sealed value of
//! the same record (an older token for the same integration and field still opens).
//!
//! Wire format (version 1): `[0x01][nonce: 24 bytes][ciphertext || tag: 16 bytes]`.

use std::fmt;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::{MasterKey, Secret};

/// The current sealed-value format version (the first byte of [`Sealed::as_bytes`]).
pub const SEALED_FORMAT_V1: u8 = 1;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// The record a sealed value belongs to; bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad<'a> {
    /// The integration id (for example `salesforce-prod`).
    pub integration: &'a str,
    /// The field name within the integration (for example `client_secret`, `token.refresh`).
    pub field: &'a str,
}

impl<'a> Aad<'a> {
    /// The associated data for `field` of `integration`.
    pub fn new(integration: &'a str, field: &'a str) -> Self {
        Aad { integration, field }
    }

    /// Length-prefixed, so ("ab", "c") and ("a", "bc") never encode alike.
    fn encode(&self, version: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.integration.len() + self.field.len());
        out.extend_from_slice(b"proofpix-vault");
        out.push(version);
        for part in [self.integration, self.field] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// A sealed secret: safe to store and to copy around; opening it needs the master key and
/// the same [`Aad`].
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

impl Sealed {
    /// The stored form (format byte, nonce, ciphertext and tag).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps bytes read from storage. The format is checked by [`open`], not here.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Sealed(bytes)
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

/// Errors sealing or opening a value. Messages name the record, never the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// Authentication failed: wrong master key, a value moved from another record, or altered bytes.
    #[error(
        "cannot open the sealed '{field}' of integration '{integration}': it was sealed under \
         another master key or for another record, or it was altered"
    )]
    Open {
        /// The integration the caller expected.
        integration: String,
        /// The field the caller expected.
        field: String,
    },
    /// The stored bytes are not a sealed value this version understands.
    #[error("the sealed '{field}' of integration '{integration}' is malformed: {reason}")]
    Malformed {
        /// The integration the caller expected.
        integration: String,
        /// The field the caller expected.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Encryption failed (only for plaintexts beyond the cipher's limits).
    #[error("cannot seal '{field}' of integration '{integration}': the value is too large")]
    Seal {
        /// The integration.
        integration: String,
        /// The field.
        field: String,
    },
}

impl VaultError {
    fn open(aad: &Aad<'_>) -> Self {
        VaultError::Open {
            integration: aad.integration.to_owned(),
            field: aad.field.to_owned(),
        }
    }

    fn malformed(aad: &Aad<'_>, reason: &'static str) -> Self {
        VaultError::Malformed {
            integration: aad.integration.to_owned(),
            field: aad.field.to_owned(),
            reason,
        }
    }
}

/// Seals `plaintext` for the record named by `aad`.
///
/// # Errors
///
/// [`VaultError::Seal`] only if the plaintext exceeds the cipher's limit (256 GiB).
///
/// # Examples
///
/// ```
/// use proofpix_vault::{open, seal, Aad, MasterKey, Secret};
/// let key = MasterKey::generate();
/// let aad = Aad::new("sf-prod", "client_secret");
/// let sealed = seal(&key, &aad, &Secret::new("s3cr3t")).unwrap();
/// assert_eq!(open(&key, &aad, &sealed).unwrap().expose(), "s3cr3t");
/// assert!(open(&key, &Aad::new("sf-test", "client_secret"), &sealed).is_err());
/// ```
pub fn seal(key: &MasterKey, aad: &Aad<'_>, plaintext: &Secret) -> Result<Sealed, VaultError> {
    let sub = key.seal_key();
    let cipher = XChaCha20Poly1305::new(sub.as_ref().into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let aad_bytes = aad.encode(SEALED_FORMAT_V1);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext.expose().as_bytes(),
                aad: &aad_bytes,
            },
        )
        .map_err(|_| VaultError::Seal {
            integration: aad.integration.to_owned(),
            field: aad.field.to_owned(),
        })?;
    let mut out = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
    out.push(SEALED_FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(Sealed(out))
}

/// Opens a value sealed by [`seal`] for the same record under the same key.
///
/// # Errors
///
/// [`VaultError::Open`] for a wrong key, another record's value or altered bytes (the three
/// are indistinguishable by design); [`VaultError::Malformed`] for bytes that are not a
/// sealed value.
pub fn open(key: &MasterKey, aad: &Aad<'_>, sealed: &Sealed) -> Result<Secret, VaultError> {
    let bytes = sealed.as_bytes();
    let (&version, rest) = bytes
        .split_first()
        .ok_or_else(|| VaultError::malformed(aad, "it is empty"))?;
    if version != SEALED_FORMAT_V1 {
        return Err(VaultError::malformed(aad, "unknown format version"));
    }
    if rest.len() < NONCE_BYTES + TAG_BYTES {
        return Err(VaultError::malformed(aad, "it is too short"));
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
    let sub = key.seal_key();
    let cipher = XChaCha20Poly1305::new(sub.as_ref().into());
    let aad_bytes = aad.encode(version);
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad_bytes,
                },
            )
            .map_err(|_| VaultError::open(aad))?,
    );
    let text = std::str::from_utf8(&plaintext)
        .map_err(|_| VaultError::malformed(aad, "the plaintext is not UTF-8"))?;
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAINTEXT: &str = "refresh-token-5f0c1a-DO-NOT-LEAK";

    fn sealed_for(key: &MasterKey, integration: &str, field: &str) -> Sealed {
        seal(key, &Aad::new(integration, field), &Secret::new(PLAINTEXT)).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_under_the_same_key_and_record() {
        let key = MasterKey::generate();
        let sealed = sealed_for(&key, "sf-prod", "token.refresh");
        let opened = open(&key, &Aad::new("sf-prod", "token.refresh"), &sealed).unwrap();
        assert_eq!(opened.expose(), PLAINTEXT);
    }

    #[test]
    fn a_sealed_value_moved_to_another_integration_or_field_fails_to_open() {
        let key = MasterKey::generate();
        let sealed = sealed_for(&key, "sf-prod", "token.refresh");
        for (integration, field) in [
            ("sf-test", "token.refresh"),
            ("sf-prod", "token.access"),
            ("sf-prodtoken", ".refresh"),
            ("", ""),
        ] {
            let err = open(&key, &Aad::new(integration, field), &sealed).unwrap_err();
            assert!(
                matches!(err, VaultError::Open { .. }),
                "moved to ({integration:?}, {field:?}) must not open"
            );
        }
    }

    #[test]
    fn a_wrong_master_key_cannot_open() {
        let sealed = sealed_for(&MasterKey::generate(), "a", "f");
        let err = open(&MasterKey::generate(), &Aad::new("a", "f"), &sealed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot open the sealed 'f' of integration 'a': it was sealed under another master \
             key or for another record, or it was altered"
        );
    }

    #[test]
    fn flipping_any_bit_of_a_sealed_value_is_detected() {
        let key = MasterKey::generate();
        let sealed = sealed_for(&key, "a", "f");
        for i in 0..sealed.as_bytes().len() {
            for bit in [0x01u8, 0x80] {
                let mut bytes = sealed.as_bytes().to_vec();
                bytes[i] ^= bit;
                assert!(
                    open(&key, &Aad::new("a", "f"), &Sealed::from_bytes(bytes)).is_err(),
                    "flip of bit {bit:#x} in byte {i} went unnoticed"
                );
            }
        }
        assert!(open(&key, &Aad::new("a", "f"), &Sealed::from_bytes(vec![])).is_err());
        assert!(open(&key, &Aad::new("a", "f"), &Sealed::from_bytes(vec![1; 10])).is_err());
    }

    #[test]
    fn sealed_bytes_never_contain_the_plaintext_and_nonces_differ() {
        let key = MasterKey::generate();
        let a = sealed_for(&key, "a", "f");
        let b = sealed_for(&key, "a", "f");
        assert_ne!(a, b, "two seals of one value must differ (fresh nonce)");
        for s in [&a, &b] {
            assert!(
                !s.as_bytes()
                    .windows(8)
                    .any(|w| PLAINTEXT.as_bytes().windows(8).any(|p| p == w)),
                "sealed bytes contain a run of the plaintext"
            );
            assert!(!format!("{s:?}").contains(PLAINTEXT));
        }
    }
}
