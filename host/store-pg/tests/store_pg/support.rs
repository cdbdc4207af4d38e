//! The database the tests use, and a schema of its own for each test: found or started by
//! `proofpix-test-postgres` (shared with the CLI's cluster tests; its docs say where the
//! database comes from), and the conformance suite's PostgreSQL backend on it.

use std::sync::OnceLock;

use proofpix_store_pg::{PgOptions, PgStore};
pub use proofpix_test_postgres::{SchemaGuard, admin, admin_value, database_url, fresh_schema};
use proofpix_vault::MasterKey;

use crate::conformance::{Backend, TestClock};

/// The master key of the tests' "cluster": every store a test opens on one schema uses it,
/// as the nodes of a cluster share one.
pub fn key() -> &'static MasterKey {
    static KEY: OnceLock<MasterKey> = OnceLock::new();
    KEY.get_or_init(MasterKey::generate)
}

/// Options for a store in `schema`, reading `clock`.
pub fn options(schema: &str, clock: &TestClock) -> PgOptions {
    PgOptions {
        schema: Some(schema.to_string()),
        max_connections: 4,
        clock: clock.clock(),
        ..PgOptions::default()
    }
}

/// A PostgreSQL backend in a fresh schema; a restart opens a new store (a new run) on it.
pub fn backend() -> Backend {
    let url = database_url();
    let schema = fresh_schema();
    let clock = TestClock::new();
    let guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let opts = options(&schema, &clock);
    let key = MasterKey::generate();
    Backend::new(
        clock,
        Box::new(move || {
            Box::new(PgStore::open(url, &key, opts.clone()).unwrap())
                as Box<dyn proofpix_store::Backend>
        }),
        Box::new(guard),
    )
}
