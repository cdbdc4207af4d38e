//! `proofpix vault rotate-key`.
//!
//! With a key file (the default), a new key is generated, everything is
//! re-sealed under it in one transaction, and the key file is replaced
//! crash-safely. With `PROOFPIX_MASTER_KEY`, ProofPix cannot replace the
//! variable for you: put the new key in `PROOFPIX_NEW_MASTER_KEY`, run the
//! command, then switch the variable.

use anyhow::{Context, bail};
use proofpix_store::Store;
use proofpix_vault::{KeySource, MasterKey};

/// Vault subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Re-seal every secret and token under a new master key, atomically.
    RotateKey,
}

/// The variable holding the new key when the current one comes from the
/// environment.
const NEW_KEY_ENV: &str = "PROOFPIX_NEW_MASTER_KEY";

/// Runs the command.
// Key rotation is offline maintenance of the store file, run with the daemon stopped and no
// host: the one store write the CLI makes itself (see .ci/owners).
#[allow(clippy::disallowed_methods)]
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::RotateKey => {
            let (config, _) = crate::cmd_serve::load_config(None)?;
            if let Some(url) = &config.store.url {
                bail!(
                    "`vault rotate-key` re-seals the embedded store's file; this daemon's store is PostgreSQL at {}, where key rotation is not built yet (every node must keep the current key)",
                    proofpix_store_pg::masked_url(url)
                );
            }
            let dir = proofpix_store::data_dir()?;
            let (mut store, source): (Store, KeySource) = Store::open_default()?;
            let report = match source {
                KeySource::Env => {
                    let Ok(text) = std::env::var(NEW_KEY_ENV) else {
                        bail!(
                            "the master key comes from PROOFPIX_MASTER_KEY; set {NEW_KEY_ENV} to the new key (64 hex characters), run this again, then set PROOFPIX_MASTER_KEY to it"
                        );
                    };
                    let key = MasterKey::parse(&text)
                        .with_context(|| format!("{NEW_KEY_ENV} is not a valid key"))?;
                    store.rotate_master_key(&key, &operator())?
                }
                _ => proofpix_store::rotate_key_file(
                    &mut store,
                    &dir,
                    &MasterKey::generate(),
                    "cli",
                )?,
            };
            println!(
                "re-sealed {} secrets and {} token sets under the new master key",
                report.secrets, report.token_sets
            );
            Ok(())
        }
    }
}

/// `operator:<login>` for the audit log.
pub fn operator() -> String {
    format!(
        "operator:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into())
    )
}
