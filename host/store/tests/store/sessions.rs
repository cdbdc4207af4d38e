//! Dashboard sessions: stored by hash, tied to their token, expiring, revoked with the token.

use std::time::Duration;

use proofpix_store::*;
use proofpix_vault::MasterKey;

use crate::common::*;

fn token(store: &Store, hash: &str, name: &str, role: &str) {
    let record = ApiTokenRecord {
        name: name.into(),
        role: role.into(),
        created_by: "test".into(),
        created_at: store.now(),
    };
    store.put_api_token(hash, &record, "test").unwrap();
}

fn session(store: &Store, token_hash: &str, name: &str, hours: u64) -> SessionRecord {
    let now = store.now();
    SessionRecord {
        token_sha256: token_hash.into(),
        token_name: name.into(),
        created_at: now,
        expires_at: now + Duration::from_secs(hours * 3600),
    }
}

#[test]
fn a_session_stands_for_its_token_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    token(&store, "tok-a", "ada", "admin");
    assert!(
        store
            .put_session("sess-1", &session(&store, "tok-a", "ada", 12))
            .unwrap()
    );
    let (s, t) = store.session("sess-1").unwrap().expect("live session");
    assert_eq!((s.token_name.as_str(), t.role.as_str()), ("ada", "admin"));
    // Looked up by the hash only: the token's hash is not a session.
    assert!(store.session("tok-a").unwrap().is_none());

    // The role is the token's at each use, not a copy taken at sign-in.
    token(&store, "tok-a", "ada", "viewer");
    assert_eq!(store.session("sess-1").unwrap().unwrap().1.role, "viewer");

    clock.advance(Duration::from_secs(12 * 3600 - 1));
    assert!(store.session("sess-1").unwrap().is_some());
    clock.advance(Duration::from_secs(1));
    assert!(
        store.session("sess-1").unwrap().is_none(),
        "expired at 12 h"
    );
    assert_eq!(store.session_count().unwrap(), 1);
    assert_eq!(store.expire_sessions().unwrap(), 1);
    assert_eq!(store.session_count().unwrap(), 0);
}

#[test]
fn revoking_or_replacing_a_token_ends_its_sessions_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    token(&store, "tok-a", "ada", "admin");
    token(&store, "tok-b", "bob", "viewer");
    for (id, tok, name) in [
        ("s-a1", "tok-a", "ada"),
        ("s-a2", "tok-a", "ada"),
        ("s-b", "tok-b", "bob"),
    ] {
        assert!(
            store
                .put_session(id, &session(&store, tok, name, 12))
                .unwrap()
        );
    }
    assert!(store.delete_api_token("ada", "test").unwrap());
    assert!(store.session("s-a1").unwrap().is_none());
    assert!(store.session("s-a2").unwrap().is_none());
    assert!(
        store.session("s-b").unwrap().is_some(),
        "bob stays signed in"
    );
    assert_eq!(
        store.session_count().unwrap(),
        1,
        "removed, not just refused"
    );

    // A token created again under bob's name replaces his old one: the old sessions end.
    token(&store, "tok-b2", "bob", "admin");
    assert!(store.session("s-b").unwrap().is_none());
    assert_eq!(store.session_count().unwrap(), 0);

    // A session cannot be opened for a token that no longer exists.
    assert!(
        !store
            .put_session("s-late", &session(&store, "tok-a", "ada", 12))
            .unwrap()
    );
    assert!(store.session("s-late").unwrap().is_none());
    assert!(store.audit_verify().unwrap().is_ok());
}

#[test]
fn signing_out_removes_the_session_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let store = open(dir.path(), &MasterKey::generate(), &clock);
    token(&store, "tok-a", "ada", "operator");
    store
        .put_session("sess-1", &session(&store, "tok-a", "ada", 1))
        .unwrap();
    assert!(store.delete_session("sess-1").unwrap());
    assert!(!store.delete_session("sess-1").unwrap());
    assert!(store.session("sess-1").unwrap().is_none());
    let mut out = Vec::new();
    store.audit_export(&mut out).unwrap();
    let audit = String::from_utf8(out).unwrap();
    assert!(audit.contains("\"session.create\""), "{audit}");
    assert!(audit.contains("\"session.delete\""), "{audit}");
    assert!(!audit.contains("sess-1"), "the session hash is not audited");
}

/// The v3 → v4 step adds the sessions table to a store written before it.
#[test]
fn a_v3_store_migrates_to_v4_with_a_sessions_table() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let clock = TestClock::new();
    {
        let store = open(dir.path(), &key, &clock);
        token(&store, "tok-a", "ada", "admin");
    }
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(schema::SESSIONS).unwrap();
        txn.open_table(schema::META)
            .unwrap()
            .insert("schema_version", 3u32.to_be_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(dir.path(), &key, &clock);
    assert_eq!(store.schema_version().unwrap(), schema::SCHEMA_VERSION);
    assert!(
        store
            .put_session("s", &session(&store, "tok-a", "ada", 12))
            .unwrap()
    );
    assert!(store.session("s").unwrap().is_some());
    assert!(store.audit_verify().unwrap().is_ok());
}
