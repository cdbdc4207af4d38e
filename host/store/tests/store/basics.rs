//! Records, secrets, tokens, plugin state and integration deletion.

use proofpix_store::*;
use proofpix_vault::{MasterKey, Secret};
use redb::ReadableTable;

use crate::common::*;

#[test]
fn everything_written_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let before = {
        let store = open(dir.path(), &key, &clock);
        populate(&store);
        dump(&store).unwrap()
    };
    let store = open(dir.path(), &key, &clock);
    assert_eq!(dump(&store).unwrap(), before);
    assert!(before.contains(CLIENT_SECRET), "the dump opens secrets");
}

#[test]
fn a_sealed_secret_copied_to_another_record_fails_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    let store = open(dir.path(), &key, &clock);
    populate(&store);
    drop(store);

    // Copy sf-prod's sealed client secret into sp-main's row with a raw redb write.
    let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(schema::SECRETS).unwrap();
        let sealed = t
            .get(("sf-prod", "client_secret"))
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        t.insert(("sp-main", "client_secret"), sealed.as_slice())
            .unwrap();
        t.insert(("sf-prod", "password"), sealed.as_slice())
            .unwrap();
    }
    txn.commit().unwrap();
    drop(db);

    let store = open(dir.path(), &key, &clock);
    for (integration, field) in [("sp-main", "client_secret"), ("sf-prod", "password")] {
        let err = store.secret(integration, field).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Vault(proofpix_vault::VaultError::Open { .. })
            ),
            "{integration}/{field}: {err}"
        );
    }
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
fn tokens_round_trip_and_their_debug_output_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    populate(&store);
    let t = store.tokens("sf-prod").unwrap().unwrap();
    assert_eq!(t, tokens());
    let shown = format!("{t:?}");
    assert!(
        !shown.contains(ACCESS_TOKEN) && !shown.contains(REFRESH_TOKEN),
        "{shown}"
    );
    assert!(shown.contains("instance_url"));
    assert!(store.tokens("sp-main").unwrap().is_none());
}

#[test]
fn secrets_need_an_existing_integration() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    let err = store
        .set_secret("nope", "password", &Secret::new(PASSWORD), "operator:ada")
        .unwrap_err();
    assert_eq!(err.to_string(), "integration 'nope' does not exist");
}

#[test]
fn plugin_state_keeps_a_byte_total_and_refuses_writes_over_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    assert_eq!(store.kv_set("i", "a", &[0; 10], Some(40)).unwrap(), 11);
    assert_eq!(store.kv_set("i", "b", &[0; 20], Some(40)).unwrap(), 32);
    // Replacing a value counts only the difference.
    assert_eq!(store.kv_set("i", "b", &[0; 5], Some(40)).unwrap(), 17);
    let err = store.kv_set("i", "c", &[0; 30], Some(40)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin state of integration 'i' would grow to 48 bytes, over its cap of 40 bytes"
    );
    assert_eq!(
        store.kv_get("i", "c").unwrap(),
        None,
        "a refused write changes nothing"
    );
    assert_eq!(store.kv_usage("i").unwrap(), 17);
    assert_eq!(store.kv_delete("i", "a").unwrap(), 6);
    assert_eq!(store.kv_delete("i", "missing").unwrap(), 6);
    assert_eq!(store.kv_keys("i", "").unwrap(), vec!["b".to_string()]);
    assert_eq!(store.kv_usage("other").unwrap(), 0);
}

#[test]
fn deleting_an_integration_removes_its_data_but_keeps_results_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let mut store = open(dir.path(), &key, &TestClock::new());
    populate(&store);
    store
        .enqueue(
            "sf-prod",
            &[NewItem {
                dedup_key: "x@1".into(),
                payload: vec![1],
            }],
        )
        .unwrap();
    let results = store.result_count().unwrap();
    let counts = store.delete_integration("sf-prod", "operator:ada").unwrap();
    assert_eq!(
        counts,
        DeletedCounts {
            secrets: 1,
            tokens: 1,
            kv_entries: 1,
            files: 20,
            queue_items: 1,
            writebacks: 0
        }
    );
    assert!(store.integration("sf-prod").unwrap().is_none());
    assert!(store.secret_fields("sf-prod").unwrap().is_empty());
    assert!(store.tokens("sf-prod").unwrap().is_none());
    assert!(store.cursor("sf-prod").unwrap().is_none());
    assert_eq!(store.kv_usage("sf-prod").unwrap(), 0);
    assert_eq!(store.file_count("sf-prod").unwrap(), 0);
    assert_eq!(store.depth("sf-prod").unwrap(), QueueDepth::default());
    // The neighbour whose id sorts right after is untouched.
    assert_eq!(
        store
            .secret("sp-main", "password")
            .unwrap()
            .unwrap()
            .expose(),
        PASSWORD
    );
    assert_eq!(store.result_count().unwrap(), results);
    assert_eq!(store.recent_batches(Some("sf-prod"), 10).unwrap().len(), 1);
    let last = store.audit_entries(0, usize::MAX).unwrap().pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.target.as_str()),
        ("integration.delete", "sf-prod")
    );
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn a_file_version_that_was_written_back_is_not_processed_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    assert!(store.needs_processing("i", "f", "v1", true).unwrap());
    let mut f = file("i", "f", "v1");
    f.status = FileStatus::Analysed;
    store.put_file(&f).unwrap();
    assert!(
        store.needs_processing("i", "f", "v1", true).unwrap(),
        "write-back still pending"
    );
    assert!(!store.needs_processing("i", "f", "v1", false).unwrap());
    f.status = FileStatus::Written;
    store.put_file(&f).unwrap();
    assert!(!store.needs_processing("i", "f", "v1", true).unwrap());
    assert!(
        store.needs_processing("i", "f", "v2", true).unwrap(),
        "a new version is new work"
    );
}

#[test]
fn files_page_in_remote_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &MasterKey::generate(), &TestClock::new());
    populate(&store);
    let first = store.files("sf-prod", None, 8).unwrap();
    let second = store
        .files("sf-prod", Some(&first[7].remote_id), 100)
        .unwrap();
    assert_eq!(first.len() + second.len(), 20);
    assert!(first[7].remote_id < second[0].remote_id);
    assert!(
        store.files("sf-pro", None, 100).unwrap().is_empty(),
        "prefixes do not leak"
    );
}

#[test]
fn the_store_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[cfg(unix)]
#[test]
fn the_store_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), &MasterKey::generate(), &TestClock::new()));
    let mode = std::fs::metadata(dir.path().join(STORE_FILE_NAME))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn space_freed_by_retention_can_be_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let mut store = open(dir.path(), &MasterKey::generate(), &clock);
    store
        .add_results(
            (0..2000)
                .map(|i| result("i", &format!("f{i}"), "v1"))
                .collect(),
        )
        .unwrap();
    clock.advance(std::time::Duration::from_secs(86400));
    let retention = Retention {
        results: Some(std::time::Duration::from_secs(3600)),
        ..Retention::default()
    };
    assert_eq!(
        store
            .compact(&retention, clock.now(), "daemon")
            .unwrap()
            .results,
        2000
    );
    let before = std::fs::metadata(dir.path().join(STORE_FILE_NAME))
        .unwrap()
        .len();
    store.reclaim_space().unwrap();
    let after = std::fs::metadata(dir.path().join(STORE_FILE_NAME))
        .unwrap()
        .len();
    assert!(after < before, "{after} < {before}");
    assert!(store.check().unwrap().is_ok());
}
