//! Structured logging into the host's log (capped per call by the host).
//!
//! Log categories, counts and opaque ids, never metadata values or file
//! names: the host treats plugin logs as operator-visible.

use crate::bindings::proofpix::plugin::log as host;
pub use crate::bindings::proofpix::plugin::log::Level;

/// Logs a message with structured fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    host::log(level, message, &fields);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}
