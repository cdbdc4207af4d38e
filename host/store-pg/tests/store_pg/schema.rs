//! Migrations and opening: nodes starting together, a newer database, an unreachable one.

use std::sync::Barrier;
use std::time::Duration;

use proofpix_store_pg::{OpenError, PgOptions, PgStore, SCHEMA_VERSION};

use crate::conformance::TestClock;
use crate::support::{SchemaGuard, admin, admin_value, database_url, fresh_schema, key, options};

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
                    PgStore::open(url, key(), opts)
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
    let again = PgStore::open(url, key(), options(&schema, &clock)).unwrap();
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
    drop(PgStore::open(url, key(), options(&schema, &clock)).unwrap());
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
    let err = PgStore::open(url, key(), options(&schema, &clock)).unwrap_err();
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
        key(),
        opts,
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::Unreachable { .. }), "{err:?}");
    let message = chain(&err);
    assert!(
        message.starts_with(
            "cannot connect to the PostgreSQL database postgres://proofpix:***@127.0.0.1:1/proofpix ("
        ),
        "{message}"
    );
    assert!(message.contains("); check that it runs"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[test]
fn a_bad_url_or_schema_name_is_refused_before_connecting() {
    let err = PgStore::open(
        "postgres://u:pw-SECRET@host:notaport/db",
        key(),
        PgOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::InvalidUrl { .. }), "{err:?}");
    assert!(!chain(&err).contains("pw-SECRET"), "{err}");
    let err = PgStore::open(
        "postgres://u@127.0.0.1:1/db",
        key(),
        PgOptions {
            schema: Some("x; DROP TABLE files".into()),
            ..PgOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::InvalidSchema { .. }), "{err:?}");
}

/// A database left at version 1 (before the key-value namespaces and the control plane) is
/// brought to the current version by the next node that opens it, with a `store.migrate`
/// audit entry; its chain, written before heads were authenticated, verifies from a
/// `migrated` genesis marker on.
#[test]
fn an_older_database_is_migrated_in_place() {
    use proofpix_store::{ControlStore, DownstreamStore};

    let url = database_url();
    let schema = fresh_schema();
    let _guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    drop(PgStore::open(url, key(), options(&schema, &clock)).unwrap());
    let s = &schema;
    admin(
        url,
        &format!(
            "DROP TABLE {s}.kv, {s}.meta, {s}.secrets, {s}.tokens, {s}.plugins, \
             {s}.api_tokens, {s}.sessions, {s}.settings, {s}.sync_leases, {s}.schedules, {s}.plugin_files; \
             DROP INDEX {s}.files_last_result, {s}.results_integration; \
             ALTER TABLE {s}.files DROP COLUMN web_url; \
             ALTER TABLE {s}.integrations DROP COLUMN operator_grant, \
                 DROP COLUMN subscriptions, DROP COLUMN remediation, DROP COLUMN pixels; \
             DELETE FROM {s}.schema_version WHERE version > 1"
        ),
    )
    .unwrap();
    // An integration as versions 1-6 kept it: the host's settings as JSON strings under
    // reserved keys of the plugin's config.
    admin(
        url,
        &format!(
            r#"INSERT INTO {s}.integrations (id, plugin_id, plugin_version, config, schedule,
                 enabled, status, last_error, created_ms, updated_ms)
               VALUES ('old', 'teams', '0.2.0', '{{"team": "ops",
                 "grant": "{{\"hosts\": [\"https://graph.microsoft.com\"]}}",
                 "subscriptions": "{{\"events\": [\"high-risk\"], \"min_risk\": \"critical\"}}",
                 "remediation": "{{\"actions\": [\"quarantine\"]}}",
                 "proofpix.pixels": "on"}}', NULL, true, 'New', NULL, 0, 0)"#
        ),
    )
    .unwrap();
    let store = PgStore::open(url, key(), options(&schema, &clock)).unwrap();
    let old = store.integration("old").unwrap().unwrap();
    assert_eq!(old.config.keys().collect::<Vec<_>>(), ["team"], "{old:?}");
    assert_eq!(old.grant.hosts, ["https://graph.microsoft.com"]);
    let subs = old.subscriptions.unwrap();
    assert_eq!(
        (subs.events, subs.min_risk.as_str()),
        (vec!["high-risk".to_string()], "critical")
    );
    assert_eq!(
        old.remediation.unwrap().actions,
        [proofpix_model::RemediationKind::Quarantine]
    );
    assert!(old.pixels);
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
    let report = store.audit_verify().unwrap();
    assert!(report.is_ok(), "{report}");
    let genesis = report.genesis.unwrap();
    assert_eq!((genesis.kind.as_str(), genesis.seq), ("migrated", 1));
}

/// A node whose master key is not the cluster's refuses to start, naming both keys' public
/// ids, and writes nothing; the cluster's key still opens the database.
#[test]
fn a_node_with_another_master_key_refuses_to_start() {
    use proofpix_store::ControlStore;
    use proofpix_vault::{MasterKey, Secret};

    let url = database_url();
    let schema = fresh_schema();
    let _guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    let first = PgStore::open(url, key(), options(&schema, &clock)).unwrap();
    with_integration(&first, "sf")
        .set_secret("sf", "password", &Secret::new("pw"), "op")
        .unwrap();
    let entries = first.audit_entries(0, 1000).unwrap().len();
    let other = MasterKey::generate();
    let err = PgStore::open(url, &other, options(&schema, &clock)).unwrap_err();
    assert!(
        matches!(&err, OpenError::KeyMismatch { node_key_id, cluster_key_id, .. }
            if *node_key_id == other.id() && *cluster_key_id == key().id()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("this node's master key differs from the cluster's: "),
        "{message}"
    );
    assert!(
        message.contains(&other.id()) && message.contains(&key().id()),
        "{message}"
    );
    // Nothing was written by the refused node, and the cluster's key still works.
    assert_eq!(first.audit_entries(0, 1000).unwrap().len(), entries);
    let again = PgStore::open(url, key(), options(&schema, &clock)).unwrap();
    assert_eq!(
        again.secret("sf", "password").unwrap().unwrap().expose(),
        "pw"
    );
    assert!(again.audit_verify().unwrap().is_ok());
}

/// Secrets and tokens are sealed in the database: their values appear in no column.
#[test]
fn secrets_and_tokens_are_not_stored_in_clear() {
    use proofpix_store::{ControlStore, TokenSet};
    use proofpix_vault::Secret;

    let url = database_url();
    let schema = fresh_schema();
    let _guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    let store = PgStore::open(url, key(), options(&schema, &clock)).unwrap();
    with_integration(&store, "sf")
        .set_secret("sf", "password", &Secret::new("PLAIN-secret-1"), "op")
        .unwrap();
    store
        .set_tokens(
            "sf",
            &TokenSet {
                access_token: Secret::new("PLAIN-access-2"),
                refresh_token: Some(Secret::new("PLAIN-refresh-3")),
                expires_at: None,
                scope: None,
                context: Default::default(),
            },
            "op",
        )
        .unwrap();
    let s = &schema;
    for table in ["secrets", "tokens", "audit", "meta"] {
        let hits = admin_value(
            url,
            &format!(
                "SELECT count(*)::text FROM {s}.{table} t \
                 WHERE position('PLAIN' in encode(convert_to(t::text, 'UTF8'), 'escape')) > 0"
            ),
        )
        .unwrap();
        assert_eq!(hits.as_deref(), Some("0"), "{table}");
    }
    assert_eq!(
        store.secret("sf", "password").unwrap().unwrap().expose(),
        "PLAIN-secret-1"
    );
}

/// Edits made in the database behind the store's back break the chain where they are.
#[test]
fn audit_verify_finds_edited_and_cut_entries() {
    use proofpix_store::{AuditEvent, AuditProblem, ControlStore, StageStore};

    let url = database_url();
    let schema = fresh_schema();
    let _guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    let store = PgStore::open(url, key(), options(&schema, &clock)).unwrap();
    for i in 0..4 {
        store
            .audit(&AuditEvent::new("daemon", "sync.start", format!("i{i}")))
            .unwrap();
    }
    assert!(store.audit_verify().unwrap().is_ok());
    let s = &schema;
    admin(
        url,
        &format!("UPDATE {s}.audit SET actor = 'mallory' WHERE seq = 3"),
    )
    .unwrap();
    assert_eq!(
        store.audit_verify().unwrap().problem,
        Some(AuditProblem::Edited(3))
    );
    admin(
        url,
        &format!("UPDATE {s}.audit SET actor = 'daemon' WHERE seq = 3"),
    )
    .unwrap();
    assert!(store.audit_verify().unwrap().is_ok());
    admin(url, &format!("DELETE FROM {s}.audit WHERE seq = 5")).unwrap();
    assert_eq!(
        store.audit_verify().unwrap().problem,
        Some(AuditProblem::Truncated { found: 4, head: 5 })
    );
    admin(
        url,
        &format!("DELETE FROM {s}.meta WHERE key LIKE 'audit.genesis%'"),
    )
    .unwrap();
    assert_eq!(
        store.audit_verify().unwrap().problem,
        Some(AuditProblem::GenesisMissing)
    );
}

/// `store`, after adding an integration `id` to it.
fn with_integration<'a>(store: &'a PgStore, id: &str) -> &'a PgStore {
    use proofpix_store::{DownstreamStore, IntegrationRecord};
    store
        .put_integration(&IntegrationRecord::new(id, "p", "0.1.0", store.now()), "op")
        .unwrap();
    store
}
