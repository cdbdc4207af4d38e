//! `proofpix audit verify|export`.

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
}

/// Runs the command.
pub fn run(command: Command) -> anyhow::Result<()> {
    let (store, _) = Store::open_default()?;
    match command {
        Command::Verify => {
            let report = store.audit_verify()?;
            if report.is_ok() {
                println!("audit log verified: {report}");
                Ok(())
            } else {
                bail!("audit log verification failed: {report}")
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
