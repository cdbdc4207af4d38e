//! Round trips and time per file of the stage store's group operations, on PostgreSQL and
//! on the embedded store (redb), with the same workload.
//!
//! Run: `cargo run --release -p proofpix-store-pg --example group-commit -- [GROUPS]`
//! with `PROOFPIX_TEST_DATABASE_URL` naming a database (default
//! `postgres://postgres@127.0.0.1:5432/test`); it works in a schema of its own
//! (`pp_bench_<pid>`) and drops it at the end.
//!
//! Each of GROUPS rounds (default 20) does what the pipeline does for 128 files: enqueue
//! them, claim them, record them (`record_group`: a result and one write-back outbox item
//! each), claim the write-back items, begin their write-backs and finish them as written.
//! Output: one line per operation with round trips per file, statements per file, and the
//! median and p90 milliseconds per group, then the redb medians.

use std::time::{Duration, Instant};

use proofpix_store::*;
use proofpix_store_pg::{PgOptions, PgStats, PgStore};
use proofpix_vault::MasterKey;

const GROUP: usize = 128;
const LEASE: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Op {
    times_ms: Vec<f64>,
    round_trips: u64,
    statements: u64,
}

impl Op {
    fn record(&mut self, t: Duration, before: Option<PgStats>, after: Option<PgStats>) {
        self.times_ms.push(t.as_secs_f64() * 1000.0);
        if let (Some(b), Some(a)) = (before, after) {
            self.round_trips += a.round_trips - b.round_trips;
            self.statements += a.statements - b.statements;
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.times_ms.clone();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
}

const OPS: [&str; 6] = [
    "enqueue",
    "claim",
    "record_group",
    "claim write-backs",
    "begin_writebacks",
    "finish_writebacks",
];

/// Runs the workload on `store`; `stats` reads its round-trip counters, if it has them.
fn run(store: &dyn StageStore, stats: &dyn Fn() -> Option<PgStats>, groups: usize) -> Vec<Op> {
    let mut ops: Vec<Op> = OPS.iter().map(|_| Op::default()).collect();
    let wb = stage_queue("src", Stage::WriteBack);
    for g in 0..groups {
        let ids: Vec<String> = (0..GROUP).map(|i| format!("g{g}f{i}")).collect();
        let items: Vec<NewItem> = ids
            .iter()
            .map(|id| NewItem {
                dedup_key: format!("{id}@v1"),
                payload: id.as_bytes().to_vec(),
            })
            .collect();
        let mut timed = |op: usize, f: &mut dyn FnMut()| {
            let before = stats();
            let t = Instant::now();
            f();
            let elapsed = t.elapsed();
            ops[op].record(elapsed, before, stats());
        };
        timed(0, &mut || {
            store.enqueue("src", &items).unwrap();
        });
        let mut leases = Vec::new();
        timed(1, &mut || {
            leases = store.claim("src", "w1", GROUP, LEASE).unwrap()
        });
        assert_eq!(leases.len(), GROUP);
        let now = store.now();
        let records: Vec<Record> = leases
            .into_iter()
            .zip(&ids)
            .map(|(lease, id)| Record::Done {
                lease,
                file: FileRecord {
                    integration: "src".into(),
                    remote_id: id.clone(),
                    version: "v1".into(),
                    name: format!("{id}.jpg"),
                    content_hash: Some("ab".repeat(32)),
                    last_result: None,
                    status: FileStatus::Analysed,
                    attempts: 1,
                    last_error: None,
                    updated_at: now,
                    web_url: None,
                },
                result: Some(NewResult {
                    integration: "src".into(),
                    remote_id: id.clone(),
                    file_version: "v1".into(),
                    risk: proofpix_store::RiskLevel::High,
                    score: 80,
                    // About the size of a real report with a few findings.
                    report_json: format!(
                        r#"{{"file":"{id}","risk":"high","findings":[{}]}}"#,
                        r#"{"category":"location","tag":"GPSLatitude","family":"exif"},"#
                            .repeat(8)
                            .trim_end_matches(',')
                    ),
                }),
                outbox: vec![Outbound {
                    queue: wb.clone(),
                    item: NewItem {
                        dedup_key: format!("{id}@v1"),
                        payload: id.as_bytes().to_vec(),
                    },
                }],
            })
            .collect();
        timed(2, &mut || {
            store.record_group(&records).unwrap();
        });
        let mut wb_leases = Vec::new();
        timed(3, &mut || {
            wb_leases = store.claim(&wb, "w1", GROUP, LEASE).unwrap()
        });
        assert_eq!(wb_leases.len(), GROUP);
        let keys: Vec<WritebackKey> = ids
            .iter()
            .map(|id| WritebackKey {
                integration: "src".into(),
                remote_id: id.clone(),
                file_version: "v1".into(),
                plugin_version: "1.0.0".into(),
                policy_version: "p1".into(),
            })
            .collect();
        timed(4, &mut || {
            store.begin_writebacks(&keys).unwrap();
        });
        let done: Vec<WritebackDone> = wb_leases
            .into_iter()
            .zip(keys)
            .map(|(lease, key)| WritebackDone {
                lease,
                key,
                end: WritebackEnd::Written,
            })
            .collect();
        timed(5, &mut || {
            store.finish_writebacks(&done).unwrap();
        });
    }
    ops
}

fn main() {
    let groups: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let url = std::env::var("PROOFPIX_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("pp_bench_{}", std::process::id());
    let pg = PgStore::open(
        &url,
        &MasterKey::generate(),
        PgOptions {
            schema: Some(schema.clone()),
            ..PgOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pg_ops = run(&pg, &|| Some(pg.stats()), groups);

    let dir = tempfile::tempdir().unwrap();
    let redb = Store::open(dir.path(), &MasterKey::generate()).unwrap();
    let redb_ops = run(&redb, &|| None, groups);

    println!(
        "{groups} groups of {GROUP} files; PostgreSQL at {} (schema {schema})",
        pg.url()
    );
    println!(
        "{:<18} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "operation", "rt/file", "stmts/file", "pg p50 ms", "pg p90 ms", "redb p50 ms"
    );
    for (i, name) in OPS.iter().enumerate() {
        let files = (groups * GROUP) as f64;
        let op = &pg_ops[i];
        println!(
            "{:<18} {:>12.3} {:>12.3} {:>12.2} {:>12.2} {:>14.2}",
            name,
            op.round_trips as f64 / files,
            op.statements as f64 / files,
            op.percentile(0.5),
            op.percentile(0.9),
            redb_ops[i].percentile(0.5),
        );
    }
    drop(pg);
    // Drop the schema through a store-less connection.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
    });
}
