//! What only a shared database shows: group-commit round trips, one audit chain written
//! by two stores, and calls from async code.

use std::time::Duration;

use proofpix_store::*;
use proofpix_store_pg::PgStore;

use crate::conformance::{TestClock, file, outbound, result};
use crate::support::{SchemaGuard, database_url, fresh_schema, key, options};

struct Fixture {
    store: PgStore,
    clock: TestClock,
    _guard: SchemaGuard,
}

fn fixture() -> Fixture {
    let url = database_url();
    let schema = fresh_schema();
    let guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    let store = PgStore::open(url, key(), options(&schema, &clock)).unwrap();
    Fixture {
        store,
        clock,
        _guard: guard,
    }
}

/// A group of `n` analysed files with one outbox item each, on fresh leases.
fn group(f: &Fixture, start: usize, n: usize) -> Vec<Record> {
    let ids: Vec<String> = (start..start + n).map(|i| format!("f{i}")).collect();
    let items: Vec<NewItem> = ids
        .iter()
        .map(|id| NewItem {
            dedup_key: format!("{id}@v1"),
            payload: id.as_bytes().to_vec(),
        })
        .collect();
    f.store.enqueue("src", &items).unwrap();
    let leases = f
        .store
        .claim("src", "w1", n, Duration::from_secs(60))
        .unwrap();
    assert_eq!(leases.len(), n);
    let wb = stage_queue("src", Stage::WriteBack);
    leases
        .into_iter()
        .zip(&ids)
        .map(|(lease, id)| Record::Done {
            lease,
            file: file(id, f.clock.now()),
            result: Some(result(id)),
            outbox: vec![outbound(&wb, id)],
        })
        .collect()
}

/// A group commit of 128 files is `BEGIN`, one pipelined round trip for the files, and
/// `COMMIT` (once the connection has its statements prepared).
#[test]
fn a_group_of_128_files_commits_in_three_round_trips() {
    let f = fixture();
    let warm = group(&f, 0, 128);
    f.store.record_group(&warm).unwrap();
    let records = group(&f, 128, 128);
    let before = f.store.stats();
    let out = f.store.record_group(&records).unwrap();
    let after = f.store.stats();
    assert!(out.iter().all(|r| matches!(r, Recorded::Done(Some(_)))));
    assert_eq!(
        after.round_trips - before.round_trips,
        3,
        "{before:?} {after:?}"
    );
    assert_eq!(after.statements - before.statements, 130);
    assert_eq!(
        f.store
            .depth(&stage_queue("src", Stage::WriteBack))
            .unwrap()
            .pending,
        256
    );
}

/// Two stores (two nodes), each used by two threads, appending at once (plain entries and
/// audited changes) write one chain: numbered without gaps, each entry hashed over the one
/// before, and `audit_verify` passes from either node.
#[test]
fn two_nodes_append_to_one_audit_chain() {
    let f = fixture();
    let url = database_url();
    let schema = f._guard.schema.clone();
    let other = PgStore::open(url, key(), options(&schema, &f.clock)).unwrap();
    std::thread::scope(|s| {
        for (n, store) in [(0, &f.store), (1, &other), (2, &f.store), (3, &other)] {
            s.spawn(move || {
                for i in 0..25 {
                    if i % 5 == 0 {
                        store
                            .put_setting(&format!("n{n}"), &format!("{{\"i\":{i}}}"), "op")
                            .unwrap();
                    } else {
                        store
                            .audit(&AuditEvent::new(
                                format!("node{n}"),
                                "sync.start",
                                format!("i{i}"),
                            ))
                            .unwrap();
                    }
                }
            });
        }
    });
    let entries = f.store.audit_entries(0, 1000).unwrap();
    assert_eq!(entries.len(), 101); // and the store's creation
    let mut prev = AuditEntry::GENESIS_HASH;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert!(e.chains_from(&prev), "entry {} does not chain", e.seq);
        prev = e.hash;
    }
    for store in [&f.store, &other] {
        let report = store.audit_verify().unwrap();
        assert!(report.is_ok(), "{report}");
        assert_eq!((report.entries, report.last_seq), (101, Some(101)));
    }
}

/// The pipeline calls the store from `spawn_blocking`; a call from an async task by
/// mistake blocks that worker but does not panic (the sync `postgres` crate would).
#[test]
fn calls_from_blocking_threads_and_async_tasks_both_work() {
    let f = fixture();
    let store: std::sync::Arc<dyn StageStore> = std::sync::Arc::new(f.store);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    let blocking = rt
        .block_on(rt.spawn_blocking(move || s.depth("src")))
        .unwrap()
        .unwrap();
    assert_eq!(blocking, QueueDepth::default());
    let s = store.clone();
    let in_task = rt
        .block_on(rt.spawn(async move { s.depth("src") }))
        .unwrap()
        .unwrap();
    assert_eq!(in_task, QueueDepth::default());
    rt.shutdown_timeout(Duration::from_secs(5));
    // Dropped last, outside any runtime: the store's own runtime shuts down quietly.
    drop(store);
}

/// An integration's status is kept per integration, as the dashboard reads it.
#[test]
fn integration_status_is_set_on_the_shared_record() {
    let f = fixture();
    let now = f.clock.now();
    f.store
        .put_integration(
            &IntegrationRecord::new("sf-prod", "salesforce", "0.1.0", now),
            "operator:ada",
        )
        .unwrap();
    f.store
        .set_integration_status("sf-prod", IntegrationStatus::Failing, Some("HTTP 401"))
        .unwrap();
    let rec = f.store.integration("sf-prod").unwrap().unwrap();
    assert_eq!(rec.status, IntegrationStatus::Failing);
    assert_eq!(rec.last_error.as_deref(), Some("HTTP 401"));
    let batch = f.store.start_batch("sf-prod").unwrap();
    assert_eq!(f.store.batch(batch.id).unwrap(), Some(batch));
}

/// A connection the server drops (a restart, a failover, an operator's terminate) costs at
/// most the call in flight, with a message that says so; the next call opens a new one.
#[test]
fn a_dropped_connection_is_replaced_by_the_next_call() {
    let url = database_url();
    let schema = fresh_schema();
    let _guard = SchemaGuard {
        url: url.to_string(),
        schema: schema.clone(),
    };
    let clock = TestClock::new();
    let name = format!("proofpix-{schema}");
    let store = PgStore::open(
        url,
        key(),
        proofpix_store_pg::PgOptions {
            application_name: name.clone(),
            ..options(&schema, &clock)
        },
    )
    .unwrap();
    store
        .enqueue(
            "src",
            &[NewItem {
                dedup_key: "a@1".into(),
                payload: b"a".to_vec(),
            }],
        )
        .unwrap();
    let killed = crate::support::admin_value(
        url,
        &format!(
            "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity \
             WHERE application_name = '{name}'"
        ),
    )
    .unwrap();
    assert_ne!(
        killed.as_deref(),
        Some("0"),
        "the store's connections were found"
    );
    // The call that meets the dead connection may fail, and says why.
    match store.depth("src") {
        Ok(d) => assert_eq!(d.pending, 1),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("PostgreSQL database postgres://"),
                "{message}"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(store.depth("src").unwrap().pending, 1);
    let leases = store
        .claim("src", "w1", 10, Duration::from_secs(60))
        .unwrap();
    assert_eq!(leases.len(), 1);
}

/// Eight threads on two stores (two nodes) race for one integration's sync lease: exactly
/// one wins, and after it releases, exactly one of the others.
#[test]
fn racing_nodes_get_one_sync_lease() {
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let f = fixture();
    let other = PgStore::open(database_url(), key(), options(&f._guard.schema, &f.clock)).unwrap();
    let ttl = Duration::from_secs(60);
    for round in 0..2 {
        let barrier = Barrier::new(8);
        let winners = AtomicUsize::new(0);
        let winner = std::sync::Mutex::new(String::new());
        std::thread::scope(|s| {
            for n in 0..8 {
                let store = if n % 2 == 0 { &f.store } else { &other };
                let (barrier, winners, winner) = (&barrier, &winners, &winner);
                s.spawn(move || {
                    barrier.wait();
                    let node = format!("node-{round}-{n}");
                    if store.try_acquire_sync("sf", &node, ttl).unwrap() {
                        winners.fetch_add(1, Ordering::SeqCst);
                        *winner.lock().unwrap() = node;
                    }
                });
            }
        });
        assert_eq!(winners.load(Ordering::SeqCst), 1, "round {round}");
        let node = winner.into_inner().unwrap();
        assert!(other.release_sync("sf", &node).unwrap());
    }
}

/// A signal reaches every listener of the schema, the sender's own store included; a
/// listener of another schema hears nothing; new queue items signal `work <queue>` by
/// themselves; a message over NOTIFY's limit is refused, not truncated.
#[test]
fn signals_reach_every_node_of_the_schema_and_no_other() {
    let f = fixture();
    let url = database_url();
    let other_node = PgStore::open(url, key(), options(&f._guard.schema, &f.clock)).unwrap();
    let other_schema = fresh_schema();
    let _other_guard = SchemaGuard {
        url: url.to_string(),
        schema: other_schema.clone(),
    };
    let stranger = PgStore::open(url, key(), options(&other_schema, &f.clock)).unwrap();

    let heard = listener;
    let mine = heard(&f.store);
    let theirs = heard(&other_node);
    let strangers = heard(&stranger);
    // LISTEN runs on a connection of its own: wait until both listeners hear a probe.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        f.store.signal("probe").unwrap();
        let got = |rx: &std::sync::mpsc::Receiver<Signal>| {
            rx.recv_timeout(Duration::from_millis(200)).is_ok()
        };
        if got(&mine) && got(&theirs) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the listeners never heard a probe"
        );
    }
    let drain = |rx: &std::sync::mpsc::Receiver<Signal>| while rx.try_recv().is_ok() {};
    std::thread::sleep(Duration::from_millis(200));
    drain(&mine);
    drain(&theirs);

    f.store.signal("hello").unwrap();
    for rx in [&mine, &theirs] {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            Signal::Message("hello".into())
        );
    }
    let item = NewItem {
        dedup_key: "a@v1".into(),
        payload: b"a".to_vec(),
    };
    WorkQueue::enqueue(&other_node, "sf", std::slice::from_ref(&item)).unwrap();
    assert_eq!(
        theirs.recv_timeout(Duration::from_secs(5)).unwrap(),
        Signal::Message(format!("{WORK_SIGNAL}sf"))
    );
    // A duplicate adds nothing and wakes nobody.
    WorkQueue::enqueue(&other_node, "sf", std::slice::from_ref(&item)).unwrap();
    f.store.signal("after").unwrap();
    assert_eq!(
        mine.recv_timeout(Duration::from_secs(5)).unwrap(),
        Signal::Message(format!("{WORK_SIGNAL}sf"))
    );
    assert_eq!(
        mine.recv_timeout(Duration::from_secs(5)).unwrap(),
        Signal::Message("after".into())
    );
    assert!(
        strangers.recv_timeout(Duration::from_millis(500)).is_err(),
        "another schema's cluster heard this one"
    );
    let too_long = "x".repeat(MAX_SIGNAL_BYTES + 1);
    assert!(f.store.signal(&too_long).is_err());
}

/// A plugin file kept by one node is read by another; the newest two files of a plugin are
/// kept (the current one and a rollback's), and removing the plugin removes its files.
#[test]
fn plugin_files_are_shared_and_the_newest_two_kept() {
    let f = fixture();
    let other_node =
        PgStore::open(database_url(), key(), options(&f._guard.schema, &f.clock)).unwrap();
    for (i, hash) in ["h1", "h2", "h3"].iter().enumerate() {
        f.store
            .put_plugin_file("acme", hash, format!("file {i}").as_bytes())
            .unwrap();
        f.clock.advance(Duration::from_secs(1));
    }
    assert_eq!(
        other_node.plugin_file("acme", "h1").unwrap(),
        None,
        "the oldest went"
    );
    assert_eq!(
        other_node.plugin_file("acme", "h2").unwrap().as_deref(),
        Some(b"file 1".as_slice())
    );
    assert_eq!(
        other_node.plugin_file("acme", "h3").unwrap().as_deref(),
        Some(b"file 2".as_slice())
    );
    assert_eq!(other_node.plugin_file("other", "h3").unwrap(), None);
    let record = PluginRecord {
        id: "acme".into(),
        version: "1.0.0".into(),
        content_hash: "h3".into(),
        capabilities: vec![],
        installed_at: f.clock.now(),
        signer: None,
        key_id: None,
        previous_version: None,
        quarantined: None,
    };
    f.store.put_plugin(&record, "test").unwrap();
    assert!(other_node.remove_plugin("acme", "test").unwrap());
    assert_eq!(f.store.plugin_file("acme", "h3").unwrap(), None);
}

/// TLS: a database that takes TLS connections only is reached with `sslmode=verify-full` and
/// its CA (`sslrootcert`), signals included; without the CA (the web PKI roots) the
/// connection is refused with the certificate problem named; in plain text the server
/// refuses it. No message shows the URL's password.
#[test]
fn a_tls_only_database_is_reached_with_its_ca_and_refused_without() {
    let (server, ca) = proofpix_test_postgres::PrivateServer::start_tls_only()
        .unwrap_or_else(|e| panic!("this test needs PostgreSQL's server programs: {e}"));
    let schema = fresh_schema();
    let clock = crate::conformance::TestClock::new();
    let with_password = server.url.replace("postgres@", "postgres:hunter2@");
    let url = format!(
        "{with_password}?sslmode=verify-full&sslrootcert={}",
        ca.display()
    );
    let store = PgStore::open(&url, key(), options(&schema, &clock)).unwrap();
    let item = NewItem {
        dedup_key: "a@v1".into(),
        payload: b"a".to_vec(),
    };
    WorkQueue::enqueue(&store, "sf", std::slice::from_ref(&item)).unwrap();
    assert_eq!(store.depth("sf").unwrap().pending, 1);
    let rx = listener(&store);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        store.signal("over tls").unwrap();
        if rx.recv_timeout(Duration::from_millis(300)).is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no signal over TLS");
    }

    let refused = |url: String| -> String {
        let e = PgStore::open(&url, key(), options(&schema, &clock)).unwrap_err();
        let text = format!("{e}");
        assert!(!text.contains("hunter2"), "{text}");
        text
    };
    let untrusted = refused(format!("{with_password}?sslmode=require"));
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "{untrusted}"
    );
    let plain = refused(with_password.clone());
    assert!(
        plain.contains("pg_hba.conf") || plain.to_lowercase().contains("ssl"),
        "{plain}"
    );
}

/// Listens on `store`; every signal it hears arrives on the returned channel.
fn listener(store: &PgStore) -> std::sync::mpsc::Receiver<Signal> {
    let (tx, rx) = std::sync::mpsc::channel::<Signal>();
    let tx = std::sync::Mutex::new(tx);
    assert!(
        store
            .listen(Box::new(move |s| {
                let _ = tx.lock().unwrap().send(s);
            }))
            .unwrap(),
        "a shared store listens"
    );
    rx
}
