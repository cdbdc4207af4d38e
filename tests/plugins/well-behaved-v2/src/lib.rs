//! Version 2.0.0 of the well-behaved test plugin, for upgrade tests: the
//! same code under a new version, whose `check` fails when the integration
//! sets `upgrade_check = "fail"`. It also declares two remediations
//! (replace with the sanitised copy, quarantine) that 1.0.0 does not.

/// The version this build reports.
const VERSION: &str = "2.0.0";

include!("../../well-behaved/src/plugin.rs");
