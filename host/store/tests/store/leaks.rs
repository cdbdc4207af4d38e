//! Secrets never appear in logs, errors, debug output, exports, or the store file in clear.

use std::io::Write;
use std::sync::{Arc, Mutex};

use proofpix_store::*;
use proofpix_vault::{Aad, MasterKey, Secret};

use crate::common::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_clean(what: &str, text: &str) {
    for s in ALL_SECRETS {
        assert!(!text.contains(s), "{what} contains the secret {s}:\n{text}");
    }
}

/// Drives every store and vault operation that touches a secret, with every log level on,
/// and greps all log lines, every Debug/Display of values and errors, the audit export and
/// the raw store file for each secret used.
#[test]
fn no_secret_reaches_logs_errors_exports_or_the_file_in_clear() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let mut transcript = String::new();
    let dir = tempfile::tempdir().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let key = MasterKey::generate();
        let clock = TestClock::new();
        let mut store = open(dir.path(), &key, &clock);
        populate(&store);
        transcript += &format!("{store:?}\n{key:?}\n");
        transcript += &format!("{:?}\n", store.tokens("sf-prod"));
        transcript += &format!("{:?}\n", store.secret("sf-prod", "client_secret"));
        transcript += &format!("{:?}\n", store.integrations());
        let sealed =
            proofpix_vault::seal(&key, &Aad::new("x", "y"), &Secret::new(PASSWORD)).unwrap();
        transcript += &format!("{sealed:?}\n");
        // Errors: wrong record, wrong key, missing integration.
        let err = proofpix_vault::open(&key, &Aad::new("x", "z"), &sealed).unwrap_err();
        transcript += &format!("{err}\n{err:?}\n");
        let err = store
            .set_secret("nope", "f", &Secret::new(CLIENT_SECRET), "a")
            .unwrap_err();
        transcript += &format!("{err}\n{err:?}\n");
        store
            .rotate_master_key(&MasterKey::generate(), "operator:ada")
            .unwrap();
        let mut export = Vec::new();
        store.audit_export(&mut export).unwrap();
        transcript += &String::from_utf8(export).unwrap();
        transcript += &format!("{:?}\n", store.check().unwrap());
        drop(store);
        let err = Store::open_with(dir.path(), &key, clock.options()).unwrap_err();
        transcript += &format!("{err}\n{err:?}\n");
        let err = proofpix_vault::MasterKey::parse(CLIENT_SECRET).unwrap_err();
        transcript += &format!("{err}\n{err:?}\n");
        tracing::info!(secret = ?Secret::new(ACCESS_TOKEN), "a log line that carries a Secret");
    });
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("[redacted]"), "the capture works: {logs}");
    assert_clean("the log", &logs);
    assert_clean("the transcript", &transcript);
    let file = std::fs::read(dir.path().join(STORE_FILE_NAME)).unwrap();
    for s in ALL_SECRETS {
        assert!(
            !file.windows(s.len()).any(|w| w == s.as_bytes()),
            "the store file contains {s} in clear"
        );
    }
}
