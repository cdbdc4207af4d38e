//! End-to-end tests across the host crates, plugins and emulators live in
//! `tests/`; this library holds nothing.
