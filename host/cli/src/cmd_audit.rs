//! `proofpix audit verify|export|check`.

use anyhow::bail;

/// Audit subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Walk the hash chain and report the first edited, removed or reordered
    /// entry.
    Verify,
    /// Write every entry as JSON lines to stdout.
    Export,
    /// Check the whole store: redb's page checksums, every record, every
    /// sealed value, the audit chain and the counters.
    Check,
}

/// Runs the command: on the store the daemon's configuration names (the shared database in
/// cluster mode, where `verify` and `export` read the one chain every node appends to).
pub fn run(command: Command) -> anyhow::Result<()> {
    let (config, _) = crate::cmd_serve::load_config(None)?;
    let opened = crate::backend::open(&config.store)?;
    let store = opened.backend;
    match command {
        Command::Verify => {
            let report = store.audit_verify()?;
            if report.is_ok() {
                println!("{report}");
                Ok(())
            } else {
                bail!("audit log verification failed: {report}")
            }
        }
        Command::Check => {
            if opened.local.is_none() {
                bail!(
                    "`audit check` reads the embedded store's file (redb's page checksums); this daemon's store is PostgreSQL at {}: use `audit verify`, and PostgreSQL's own checks (pg_amcheck) for the database",
                    opened.shown
                );
            }
            // The check takes the store for itself.
            drop((store, opened.local));
            let (mut local, _) = proofpix_store::Store::open_default()?;
            let report = local.check()?;
            println!("{report}");
            if report.is_ok() {
                Ok(())
            } else {
                bail!("the store check found problems")
            }
        }
        Command::Export => {
            let stdout = std::io::stdout();
            let n = store.audit_export(&mut stdout.lock())?;
            eprintln!("exported {n} audit entries");
            Ok(())
        }
    }
}
