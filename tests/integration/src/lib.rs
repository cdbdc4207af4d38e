//! End-to-end tests across the host crates, plugins and emulators.
