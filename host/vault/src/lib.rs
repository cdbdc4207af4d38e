//! Secrets in memory and at rest.
//!
//! A [`Secret`] holds a credential (client secret, password, token, signing
//! key) in memory. It zeroizes on drop, and its `Debug` and `Display` print
//! `[redacted]`, so a secret that reaches a log line, an error message or an
//! API response by accident shows up as that marker instead of its value. The
//! only way to read it is [`Secret::expose`], which is easy to grep for.
//!
//! At rest, a secret is [`seal`]ed with XChaCha20-Poly1305 under a sub-key of
//! the [`MasterKey`], with the integration id and field name bound as
//! associated data ([`Aad`]), so a sealed value only [`open`]s for the record
//! it was sealed for. The master key comes from `PROOFPIX_MASTER_KEY` or a
//! 0600 key file ([`resolve_master_key`]).
//!
//! This crate knows nothing about where sealed bytes are kept: `proofpix-store`
//! stores them, together with the [`KeyCheck`] that lets it refuse a wrong key
//! before decrypting anything. Keeping the crypto here and the storage there
//! means the vault can be reviewed on its own, and has no database dependency.
//!
//! ```
//! use proofpix_vault::{open, seal, Aad, MasterKey, Secret};
//!
//! let key = MasterKey::generate();
//! let aad = Aad::new("salesforce-prod", "client_secret");
//! let sealed = seal(&key, &aad, &Secret::new("s3cr3t")).unwrap();
//! assert_eq!(format!("{:?}", open(&key, &aad, &sealed).unwrap()), "[redacted]");
//! ```
//!
//! Layering (checked by .ci/layers): floor 1, may use only the host crates below it (proofpix-model); never pulls in axum, hyper, redb, reqwest, tokio, wasmtime, even transitively.

#![deny(missing_docs)]

mod master_key;
mod seal;
mod secret;

pub use master_key::{
    KEY_FILE_NAME, KeyCheck, KeyError, KeyPurpose, KeySource, MASTER_KEY_BYTES, MASTER_KEY_ENV,
    MasterKey, read_key_file, resolve_master_key, resolve_master_key_with, write_key_file,
};
pub use seal::{Aad, SEALED_FORMAT_V1, Sealed, VaultError, open, seal};
pub use secret::Secret;
