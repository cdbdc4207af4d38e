//! Secrets in memory and at rest.
//!
//! A [`Secret`] holds a credential (client secret, password, token, signing
//! key) in memory. It zeroizes on drop, and its `Debug` and `Display` print
//! `[redacted]`, so a secret that reaches a log line, an error message or an
//! API response by accident shows up as that marker instead of its value. The
//! only way to read it is [`Secret::expose`], which is easy to grep for.

mod secret;

pub use secret::Secret;
