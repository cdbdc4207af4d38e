//! `proofpix audit verify|export|check`.

use anyhow::bail;
use proofpix_store::Store;

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

/// Runs the command.
pub fn run(command: Command) -> anyhow::Result<()> {
    let (mut store, _) = Store::open_default()?;
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
            let report = store.check()?;
            println!("{report}");
            if report.is_ok() {
                Ok(())
            } else {
                bail!("the store check found problems")
            }
        }
        Command::Export => {
            let stdout = std::io::stdout();
            let n = store.audit_export(stdout.lock())?;
            eprintln!("exported {n} audit entries");
            Ok(())
        }
    }
}
