//! Schema versions, migrations, master keys and key rotation.

use proofpix_store::*;
use proofpix_vault::{KEY_FILE_NAME, MasterKey, read_key_file, write_key_file};

use crate::common::*;

#[test]
fn a_wrong_master_key_is_refused_at_open_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    populate(&open(dir.path(), &MasterKey::generate(), &clock));
    let err = Store::open_with(dir.path(), &MasterKey::generate(), clock.options()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the master key does not match this store; set PROOFPIX_MASTER_KEY to the key it was created with"
    );
}

#[test]
fn a_store_without_its_key_file_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_in_dir(dir.path()).unwrap();
    drop(store);
    std::fs::remove_file(dir.path().join(KEY_FILE_NAME)).unwrap();
    let err = open_in_dir(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Key(proofpix_vault::KeyError::Missing { .. })
        ),
        "{err}"
    );
    assert!(!dir.path().join(KEY_FILE_NAME).exists());
}

fn set_version(dir: &std::path::Path, v: u32) {
    let db = redb::Database::open(dir.join(STORE_FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(schema::META)
        .unwrap()
        .insert("schema_version", v.to_be_bytes().as_slice())
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn a_store_from_a_newer_proofpix_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let before = {
        let store = open(dir.path(), &key, &clock);
        populate(&store);
        dump(&store).unwrap()
    };
    set_version(dir.path(), schema::SCHEMA_VERSION + 1);
    let err = Store::open_with(dir.path(), &key, clock.options()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the store has schema version {}, but this proofpix understands versions up to {}; \
             it was written by a newer proofpix: upgrade proofpix, or restore a backup taken \
             before the upgrade",
            schema::SCHEMA_VERSION + 1,
            schema::SCHEMA_VERSION
        )
    );
    // redb rewrites its own header on open, so compare data, not bytes: put the version
    // back and check nothing else changed (no audit entry, no table created).
    set_version(dir.path(), schema::SCHEMA_VERSION);
    let store = open(dir.path(), &key, &clock);
    assert_eq!(dump(&store).unwrap(), before);
}

const TEST_TABLE: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("test_migrated");

fn good_step(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(TEST_TABLE)
        .map_err(|e| StoreError::Database(e.into()))?
        .insert("migrated", "yes")
        .map_err(|e| StoreError::Database(e.into()))?;
    Ok(())
}

fn failing_step(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    // Write something first: the failure must undo it.
    good_step(txn)?;
    txn.open_table(schema::FILES)
        .map_err(|e| StoreError::Database(e.into()))?
        .retain(|_, _| false)
        .map_err(|e| StoreError::Database(e.into()))?;
    Err(StoreError::Corrupt {
        table: "files",
        reason: "test step fails on purpose".into(),
    })
}

fn options_with(
    clock: &TestClock,
    run: fn(&redb::WriteTransaction) -> Result<(), StoreError>,
) -> StoreOptions {
    StoreOptions {
        extra_migrations: vec![Migration {
            from: schema::SCHEMA_VERSION,
            name: "test step",
            run,
        }],
        ..clock.options()
    }
}

#[test]
fn an_older_store_is_migrated_in_one_transaction_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    populate(&open(dir.path(), &key, &clock));
    let store = Store::open_with(dir.path(), &key, options_with(&clock, good_step)).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::SCHEMA_VERSION + 1);
    let last = store.audit_entries(0, usize::MAX).unwrap().pop().unwrap();
    assert_eq!(last.action, "store.migrate");
    assert!(store.audit_verify().unwrap().is_ok());
    assert_eq!(store.file_count("sf-prod").unwrap(), 20);
}

#[test]
fn a_failed_migration_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let before = {
        let store = open(dir.path(), &key, &clock);
        populate(&store);
        dump(&store).unwrap()
    };
    let err = Store::open_with(dir.path(), &key, options_with(&clock, failing_step)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "migrating the store from schema version {v} to {} failed in step 'test step'; the \
             store was left unchanged at version {v}",
            schema::SCHEMA_VERSION + 1,
            v = schema::SCHEMA_VERSION
        )
    );
    let store = open(dir.path(), &key, &clock);
    assert_eq!(store.schema_version().unwrap(), schema::SCHEMA_VERSION);
    assert_eq!(dump(&store).unwrap(), before);
    drop(store);
    let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    assert!(
        txn.open_table(TEST_TABLE).is_err(),
        "the step's write was rolled back"
    );
}

#[test]
fn rotating_the_master_key_reseals_everything_and_the_old_key_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let clock = TestClock::new();
    let mut store = open(dir.path(), &old, &clock);
    populate(&store);
    let report = store.rotate_master_key(&new, "operator:ada").unwrap();
    assert_eq!(
        report,
        RotateReport {
            secrets: 2,
            token_sets: 1
        }
    );
    assert!(store.audit_verify().unwrap().is_ok());
    let before = dump(&store).unwrap();
    drop(store);
    assert!(matches!(
        Store::open_with(dir.path(), &old, clock.options()).unwrap_err(),
        OpenError::WrongKey
    ));
    let mut store = open(dir.path(), &new, &clock);
    assert_eq!(dump(&store).unwrap(), before);
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.sealed_values, 3);
}

#[test]
fn a_rotation_that_crashed_before_replacing_the_key_file_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open_in_dir(dir.path()).unwrap();
    populate(&store);
    let old = read_key_file(&dir.path().join(KEY_FILE_NAME)).unwrap();
    let new = MasterKey::generate();
    // What rotate_key_file does, stopped after the commit and before the rename.
    write_key_file(&dir.path().join(NEXT_KEY_FILE_NAME), &new).unwrap();
    store.rotate_master_key(&new, "operator:ada").unwrap();
    drop(store);

    let (store, _) = open_in_dir(dir.path()).unwrap();
    assert_eq!(store.key_id(), new.id());
    assert_ne!(store.key_id(), old.id());
    assert_eq!(
        read_key_file(&dir.path().join(KEY_FILE_NAME)).unwrap().id(),
        new.id()
    );
    assert!(!dir.path().join(NEXT_KEY_FILE_NAME).exists());
    assert_eq!(
        store
            .secret("sf-prod", "client_secret")
            .unwrap()
            .unwrap()
            .expose(),
        CLIENT_SECRET
    );
}

#[test]
fn a_rotation_that_crashed_before_committing_keeps_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_in_dir(dir.path()).unwrap();
    populate(&store);
    let old_id = store.key_id();
    drop(store);
    write_key_file(&dir.path().join(NEXT_KEY_FILE_NAME), &MasterKey::generate()).unwrap();
    let (store, _) = open_in_dir(dir.path()).unwrap();
    assert_eq!(store.key_id(), old_id);
    assert!(
        !dir.path().join(NEXT_KEY_FILE_NAME).exists(),
        "the stale next key is removed"
    );
}

#[test]
fn rotate_key_file_replaces_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open_in_dir(dir.path()).unwrap();
    populate(&store);
    let new = MasterKey::generate();
    rotate_key_file(&mut store, dir.path(), &new, "operator:ada").unwrap();
    drop(store);
    let (store, _) = open_in_dir(dir.path()).unwrap();
    assert_eq!(store.key_id(), new.id());
    let entries = store.audit_entries(0, usize::MAX).unwrap();
    assert!(entries.iter().any(|e| e.action == "vault.rotate-key"));
    assert!(store.audit_verify().unwrap().is_ok());
}

#[test]
fn the_key_check_is_stored_and_reveals_nothing_about_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    drop(open(dir.path(), &key, &TestClock::new()));
    let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta = txn.open_table(schema::META).unwrap();
    let check = meta.get("key_check").unwrap().unwrap().value().to_vec();
    assert_eq!(check, key.key_check().0.to_vec());
    assert!(
        !check
            .windows(8)
            .any(|w| key.to_hex().as_bytes().windows(8).any(|k| k == w))
    );
}

/// Regression (found by the tamper sweep): a table that vanished from redb's table directory
/// must not be re-created empty at open; that would hide the loss from every later check.
#[test]
fn an_existing_store_with_a_missing_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    populate(&open(dir.path(), &key, &clock));
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(schema::RESULTS).unwrap());
        txn.commit().unwrap();
    }
    let err = Store::open_with(dir.path(), &key, clock.options()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the store is damaged (the tables [\"results\"] are missing); run `proofpix store check`, or restore a backup"
    );
}

/// The real v1 → v2 step: a store written before the daemon's tables
/// existed opens, gains them, keeps its data, and records the migration.
#[test]
fn a_v1_store_migrates_to_v2_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let before = {
        let store = open(dir.path(), &key, &clock);
        populate(&store);
        dump(&store).unwrap()
    };
    // Turn it into a v1 file: no api_tokens/settings tables, version 1.
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(schema::API_TOKENS).unwrap();
        txn.delete_table(schema::SETTINGS).unwrap();
        txn.commit().unwrap();
    }
    set_version(dir.path(), 1);
    let store = open(dir.path(), &key, &clock);
    assert_eq!(store.schema_version().unwrap(), schema::SCHEMA_VERSION);
    let after = dump(&store).unwrap();
    for line in before.lines().filter(|l| !l.starts_with("audit")) {
        assert!(after.contains(line), "lost in the migration: {line}");
    }
    store
        .put_setting("sync", r#"{"auto":true}"#, "test")
        .unwrap();
    assert_eq!(
        store.setting("sync").unwrap().as_deref(),
        Some(r#"{"auto":true}"#)
    );
    let mut out = Vec::new();
    store.audit_export(&mut out).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("\"store.migrate\"")
    );
    assert!(store.audit_verify().unwrap().is_ok());
}

/// The v2 → v3 step re-encodes plugin records written in the old layout,
/// keeping every field and leaving the new ones empty.
#[test]
fn a_v2_plugin_record_migrates_to_v3() {
    #[derive(serde::Serialize)]
    struct OldPluginRecord {
        id: String,
        version: String,
        content_hash: String,
        capabilities: Vec<String>,
        installed_at: i64,
    }
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    drop(open(dir.path(), &key, &clock));
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        let old = OldPluginRecord {
            id: "slack".into(),
            version: "0.1.0".into(),
            content_hash: "ab".into(),
            capabilities: vec!["notifier".into()],
            installed_at: 1_700_000_000_000,
        };
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_stdvec(&old).unwrap());
        txn.open_table(schema::PLUGINS)
            .unwrap()
            .insert("slack", bytes.as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    set_version(dir.path(), 2);
    let store = open(dir.path(), &key, &clock);
    let p = store.plugin("slack").unwrap().unwrap();
    assert_eq!(
        (p.version.as_str(), p.capabilities.as_slice()),
        ("0.1.0", ["notifier".to_string()].as_slice())
    );
    assert_eq!((p.signer, p.quarantined), (None, None));
}

/// Schema 5 appended the plugin's web link to file records (postcard is positional, so a
/// schema 4 row has one field fewer): a schema 4 store opens with its files intact and no
/// link, and its audit chain still verifies.
#[test]
fn a_v4_store_migrates_its_file_records_to_v5_without_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let before = {
        let store = open(dir.path(), &key, &clock);
        let f = file("src", "IMG_1", "v1");
        store.put_file(&f).unwrap();
        f
    };
    {
        // The schema 4 encoding of the same row: without the trailing `None` (one zero byte).
        let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            use redb::ReadableTable;
            let mut t = txn.open_table(schema::FILES).unwrap();
            let mut bytes = t.get(("src", "IMG_1")).unwrap().unwrap().value().to_vec();
            assert_eq!(bytes.pop(), Some(0));
            t.insert(("src", "IMG_1"), bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    set_version(dir.path(), 4);
    let store = open(dir.path(), &key, &clock);
    assert_eq!(store.schema_version().unwrap(), schema::SCHEMA_VERSION);
    assert_eq!(store.file("src", "IMG_1").unwrap(), Some(before));
    assert!(store.audit_verify().unwrap().is_ok());
}

/// Schema 6 moved the host's settings of an integration (grant, subscriptions, remediation,
/// pixels) out of the plugin's config map, where schemas 1-5 kept them as JSON strings under
/// reserved keys, into typed fields. A setting that no longer parses is dropped (failing
/// closed) and the integration says so in its last error; nothing else is lost.
#[test]
fn a_v5_store_lifts_integration_settings_out_of_the_config() {
    use std::collections::BTreeMap;
    #[derive(serde::Serialize)]
    struct OldIntegration {
        id: String,
        plugin_id: String,
        plugin_version: String,
        config: BTreeMap<String, String>,
        schedule: Option<String>,
        enabled: bool,
        status: IntegrationStatus,
        last_error: Option<String>,
        created_at: i64,
        updated_at: i64,
    }
    let old = |id: &str, config: &[(&str, &str)]| OldIntegration {
        id: id.into(),
        plugin_id: "teams".into(),
        plugin_version: "0.2.0".into(),
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        schedule: Some("every 15m".into()),
        enabled: true,
        status: IntegrationStatus::Healthy,
        last_error: None,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
    };
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    drop(open(dir.path(), &key, &clock));
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(schema::INTEGRATIONS).unwrap();
            for rec in [
                old(
                    "ok",
                    &[
                        ("team", "ops"),
                        (
                            "grant",
                            r#"{"hosts":["https://graph.microsoft.com"],"allow_loopback":true}"#,
                        ),
                        (
                            "subscriptions",
                            r#"{"events":["high-risk-files"],"min_risk":"critical","digest":true}"#,
                        ),
                        (
                            "remediation",
                            r#"{"actions":["quarantine"],"simulate":false}"#,
                        ),
                        ("proofpix.pixels", "on"),
                    ],
                ),
                old("bad", &[("team", "ops"), ("grant", "{not json")]),
            ] {
                let mut bytes = vec![1u8];
                bytes.extend(postcard::to_stdvec(&rec).unwrap());
                t.insert(rec.id.as_str(), bytes.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    set_version(dir.path(), 5);
    let store = open(dir.path(), &key, &clock);
    assert_eq!(store.schema_version().unwrap(), schema::SCHEMA_VERSION);

    let ok = store.integration("ok").unwrap().unwrap();
    assert_eq!(ok.config.keys().collect::<Vec<_>>(), ["team"], "{ok:?}");
    assert_eq!(
        (ok.grant.hosts.as_slice(), ok.grant.allow_loopback),
        (["https://graph.microsoft.com".to_string()].as_slice(), true)
    );
    let subs = ok.subscriptions.clone().unwrap();
    // The contract's alias is stored under the host's name.
    assert_eq!(
        (subs.events, subs.min_risk.as_str(), subs.digest),
        (vec!["high-risk".to_string()], "critical", true)
    );
    let policy = ok.remediation.clone().unwrap();
    assert_eq!(
        (policy.actions.len(), policy.simulate),
        (1, false),
        "{policy:?}"
    );
    assert!(ok.pixels);
    assert_eq!(
        (ok.schedule.as_deref(), ok.status, ok.last_error.as_deref()),
        (Some("every 15m"), IntegrationStatus::Healthy, None)
    );

    let bad = store.integration("bad").unwrap().unwrap();
    assert_eq!(bad.config.keys().collect::<Vec<_>>(), ["team"]);
    assert_eq!(bad.grant, proofpix_policy::OperatorGrant::default());
    assert_eq!(bad.status, IntegrationStatus::Failing);
    let why = bad.last_error.unwrap();
    assert!(
        why.contains("grant") && why.contains("set it again"),
        "{why}"
    );
    assert!(store.audit_verify().unwrap().is_ok());
}
