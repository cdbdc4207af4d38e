//! Migrations and opening: nodes starting together, a newer database, an unreachable one.

use std::sync::Barrier;
use std::time::Duration;

use proofpix_store_pg::{OpenError, PgOptions, PgStore, SCHEMA_VERSION};

use crate::conformance::TestClock;
use crate::support::{SchemaGuard, admin, admin_value, database_url, fresh_schema, options};

/// Four nodes opening an empty database at the same moment: each starts, the migrations
/// ran once (one version row, one `store.create` audit entry).
#[test]
fn nodes_starting_together_migrate_once() {
    let url = database_url();
    let schema = fresh_schema();
    let _guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    let barrier = Barrier::new(4);
    let stores: Vec<PgStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let opts = options(&schema, &clock);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    PgStore::open(url, opts)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    let versions = admin_value(
        url,
        &format!("SELECT count(*)::text || ':' || max(version)::text FROM {schema}.schema_version"),
    )
    .unwrap();
    // One row per migration (versions 1..=SCHEMA_VERSION), each applied once.
    assert_eq!(
        versions.as_deref(),
        Some(format!("{SCHEMA_VERSION}:{SCHEMA_VERSION}").as_str())
    );
    let entries = stores[0].audit_entries(0, 100).unwrap();
    let created: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "store.create")
        .collect();
    assert_eq!(created.len(), 1, "{entries:?}");
    // Opening again finds nothing to do.
    drop(stores);
    let again = PgStore::open(url, options(&schema, &clock)).unwrap();
    assert_eq!(again.audit_entries(0, 100).unwrap().len(), 1);
}

/// A node whose build knows an older schema than the database's refuses to start, and says
/// what to do.
#[test]
fn a_node_older_than_the_database_refuses_to_start() {
    let url = database_url();
    let schema = fresh_schema();
    let _guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    drop(PgStore::open(url, options(&schema, &clock)).unwrap());
    // A newer node migrated the database meanwhile.
    let newer = SCHEMA_VERSION + 1;
    admin(
        url,
        &format!(
            "INSERT INTO {schema}.schema_version (version, applied_ms, applied_by) \
             VALUES ({newer}, 0, 'proofpix 9.9.9')"
        ),
    )
    .unwrap();
    let err = PgStore::open(url, options(&schema, &clock)).unwrap_err();
    assert!(
        matches!(err, OpenError::NewerSchema { found, supported, .. }
            if found == newer && supported == SCHEMA_VERSION),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("has schema version {newer}, but this proofpix understands versions up to {SCHEMA_VERSION}")),
        "{message}"
    );
    assert!(message.contains("upgrade this node"), "{message}");
}

/// The chain of an error, as `main` prints it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out += &format!(": {s}");
        source = s.source();
    }
    out
}

/// An unreachable database is named (password masked) with what to check; the password
/// appears nowhere in the error or its causes. Needs no running database.
#[test]
fn an_unreachable_database_is_named_with_its_password_masked() {
    let opts = PgOptions {
        connect_timeout: Duration::from_secs(3),
        ..PgOptions::default()
    };
    // Port 1 on loopback: nothing listens there.
    let err = PgStore::open(
        "postgres://proofpix:hunter2-NEVER@127.0.0.1:1/proofpix",
        opts,
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::Unreachable { .. }), "{err:?}");
    let message = chain(&err);
    assert!(
        message.starts_with(
            "cannot connect to the PostgreSQL database postgres://proofpix:***@127.0.0.1:1/proofpix; \
             check that it runs"
        ),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[test]
fn a_bad_url_or_schema_name_is_refused_before_connecting() {
    let err = PgStore::open(
        "postgres://u:pw-SECRET@host:notaport/db",
        PgOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::InvalidUrl { .. }), "{err:?}");
    assert!(!chain(&err).contains("pw-SECRET"), "{err}");
    let err = PgStore::open(
        "postgres://u@127.0.0.1:1/db",
        PgOptions {
            schema: Some("x; DROP TABLE files".into()),
            ..PgOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::InvalidSchema { .. }), "{err:?}");
}

/// A database left at version 1 (before the key-value namespaces) is brought to the current
/// version by the next node that opens it, with a `store.migrate` audit entry.
#[test]
fn an_older_database_is_migrated_in_place() {
    use proofpix_store::DownstreamStore;

    let url = database_url();
    let schema = fresh_schema();
    let _guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    drop(PgStore::open(url, options(&schema, &clock)).unwrap());
    admin(
        url,
        &format!("DROP TABLE {schema}.kv; DELETE FROM {schema}.schema_version WHERE version > 1"),
    )
    .unwrap();
    let store = PgStore::open(url, options(&schema, &clock)).unwrap();
    assert_eq!(store.kv_set("n", "k", b"v", None).unwrap(), 2);
    let entries = store.audit_entries(0, 100).unwrap();
    let migrated: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "store.migrate")
        .collect();
    assert_eq!(migrated.len(), 1, "{entries:?}");
    assert!(
        migrated[0]
            .details
            .contains(&format!("\"to\":{SCHEMA_VERSION}")),
        "{}",
        migrated[0].details
    );
}
