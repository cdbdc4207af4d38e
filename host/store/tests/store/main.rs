//! Integration tests of proofpix-store, one binary built from modules (fewer link steps on
//! a shared machine).
//!
//! - `basics`: records, secrets, tokens, plugin state, integration deletion.
//! - `schema`: schema versions, migrations, wrong keys, rotation.
//! - `pipeline`: the work queue and the write-back log.
//! - `audit`: the chain, tampering with entries, export, retention and checkpoints.
//! - `tamper`: flipping bytes of the store file.
//! - `crash_kill`: SIGKILL of a writer process at random points.
//! - `crash_backend`: a fake disk frozen at each sync.
//! - `leaks`: secrets never reach logs, errors, exports or the file in clear.
//! - `model`: the work queue against an in-memory model (proptest).
//! - `sessions`: dashboard sessions, their expiry and revocation with their token.
//! - `conformance`: the stage store suite every backend passes (redb here, PostgreSQL in
//!   `host/store-pg`), run on redb by `stages`.
//! - `stages`: group commit with the outbox, write-back groups, stage queues.
//! - `full_disk`: a disk that fills under a backlog loses nothing acknowledged.

mod common;
// Before the modules that run it: the suite every stage store backend passes.
mod conformance;

mod audit;
mod basics;
mod crash_backend;
mod crash_kill;
mod full_disk;
mod leaks;
mod model;
mod pipeline;
mod schema;
mod sessions;
mod stages;
mod tamper;
