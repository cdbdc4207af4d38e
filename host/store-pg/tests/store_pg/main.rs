//! Tests of proofpix-store-pg against a real PostgreSQL, one binary built from modules.
//!
//! - `conformance`: the store suite (stages and control plane), the very file redb runs
//!   (`host/store/tests/store/conformance.rs`, included by path), on PostgreSQL.
//! - `support`: finds a database (see there), one fresh schema per test, dropped after it.
//! - `schema`: migrations when nodes start together, a newer database refused, an
//!   unreachable one named with its password masked, a node with another master key
//!   refused, secrets and tokens never in clear, tampering found by `audit_verify`.
//! - `cluster`: round trips of a group commit, the audit chain across stores (verified),
//!   one sync lease among racing nodes, calls from async code.
//!
//! Each test works in a schema of its own, so tests run in parallel and a re-run starts
//! clean.

#[path = "../../../store/tests/store/conformance.rs"]
mod conformance;

mod cluster;
mod schema;
mod support;

mod postgres {
    crate::stage_store_conformance!(crate::support::backend);
}
