//! Store benchmarks: results written per second (one transaction per result vs batched),
//! store size per 100k file records, and the open time of a store with 1M file records.
//!
//! Run: `CARGO_TARGET_DIR=/work/targets/store cargo bench -p proofpix-store --bench store`
//!
//! The 1M-record store is built once under `$CARGO_TARGET_TMPDIR/proofpix-bench-1m` (about
//! a minute, reused by later runs; delete the directory to rebuild). Before the criterion
//! groups run, the binary prints the size figures and a one-shot open time after an
//! unclean shutdown (redb walks the whole file to repair its allocator state then), which
//! criterion cannot repeat without copying the file each time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use proofpix_store::{FileRecord, FileStatus, NewResult, Store};
use proofpix_vault::MasterKey;
use serde::Serialize;

const BENCH_KEY: [u8; 32] = [7; 32];
const ONE_MILLION: u64 = 1_000_000;
const BUILD_CHUNK: u64 = 20_000;

fn key() -> MasterKey {
    MasterKey::from_bytes(BENCH_KEY)
}

fn result(i: u64) -> NewResult {
    NewResult {
        integration: "sf-prod".into(),
        remote_id: format!("068{i:015}"),
        file_version: "0695g00000AbCdEf".into(),
        risk: proofpix_store::RiskLevel::High,
        score: 87,
        // A typical report: a few findings with their tags and categories.
        report_json: r#"{"format":"jpeg","findings":[{"category":"location","tag":"GPSLatitude","risk":"high"},{"category":"device","tag":"BodySerialNumber","risk":"medium"},{"category":"person","tag":"Artist","risk":"medium"}],"score":87}"#.into(),
    }
}

fn file(integration: &str, i: u64) -> FileRecord {
    FileRecord {
        integration: integration.into(),
        // Salesforce ContentDocument ids are 18 characters.
        remote_id: format!("069{i:015}"),
        version: format!("068{i:015}"),
        name: format!("IMG_{:04}.jpg", i % 10_000),
        content_hash: Some(format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15)),
        last_result: Some(i),
        status: FileStatus::Written,
        attempts: 1,
        last_error: None,
        updated_at: time::OffsetDateTime::now_utc(),
        web_url: None,
    }
}

fn build_files(dir: &Path, integrations: u64, per_integration: u64) -> Store {
    let store = Store::open(dir, &key()).unwrap();
    for n in 0..integrations {
        let integration = format!("integration-{n}");
        let mut i = 0;
        while i < per_integration {
            let end = (i + BUILD_CHUNK).min(per_integration);
            let files: Vec<_> = (i..end).map(|j| file(&integration, j)).collect();
            store.put_files(&files).unwrap();
            i = end;
        }
    }
    store
}

fn million_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proofpix-bench-1m");
    if !dir.join("complete").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        eprintln!(
            "building a store with 1M file records in {} ...",
            dir.display()
        );
        let started = Instant::now();
        drop(build_files(&dir, 10, ONE_MILLION / 10));
        std::fs::write(dir.join("complete"), b"").unwrap();
        eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());
    }
    dir
}

fn file_size(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(proofpix_store::STORE_FILE_NAME))
        .unwrap()
        .len()
}

/// The stored form of a file record, mirrored here to compare encodings.
#[derive(Serialize)]
struct FileRowMirror<'a> {
    version: &'a str,
    name: &'a str,
    content_hash: Option<&'a str>,
    last_result: Option<u64>,
    status: &'a str,
    attempts: u32,
    last_error: Option<&'a str>,
    updated_at: i64,
}

fn report_figures() {
    let f = file("integration-0", 123_456);
    let mirror = FileRowMirror {
        version: &f.version,
        name: &f.name,
        content_hash: f.content_hash.as_deref(),
        last_result: f.last_result,
        status: "Written",
        attempts: 1,
        last_error: None,
        updated_at: 1_767_600_000_000,
    };
    let postcard_len = postcard::to_stdvec(&mirror).unwrap().len() + 1;
    let json_len = serde_json::to_vec(&mirror).unwrap().len();
    println!("file record value: postcard {postcard_len} bytes, JSON {json_len} bytes");

    let tmp = tempfile::tempdir().unwrap();
    let store = build_files(tmp.path(), 1, 100_000);
    drop(store);
    let size = file_size(tmp.path());
    println!(
        "store size per 100k file records: {:.1} MiB ({} bytes/record incl. the 18-byte key and B-tree overhead)",
        size as f64 / (1 << 20) as f64,
        size / 100_000
    );

    let dir = million_dir();
    println!(
        "store with 1M file records: {:.1} MiB",
        file_size(&dir) as f64 / (1 << 20) as f64
    );
    // Unclean shutdown: copy the file, open it, leak the handle so redb never marks it closed.
    let crashed = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::copy(
        dir.join(proofpix_store::STORE_FILE_NAME),
        crashed.path().join(proofpix_store::STORE_FILE_NAME),
    )
    .unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("PROOFPIX_BENCH_OPEN_AND_ABORT", crashed.path())
        .status()
        .unwrap();
    assert!(!child.success(), "the child aborts on purpose");
    let started = Instant::now();
    drop(Store::open(crashed.path(), &key()).unwrap());
    println!(
        "open of the 1M-record store after an unclean shutdown (repair): {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

fn results_written(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), &key()).unwrap();
    let mut g = c.benchmark_group("results_written");
    g.measurement_time(Duration::from_secs(10));
    let mut n = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("one_transaction_per_result", 1), |b| {
        b.iter(|| {
            n += 1;
            store.add_result(result(n)).unwrap()
        })
    });
    for batch in [10u64, 100, 1000] {
        g.throughput(Throughput::Elements(batch));
        g.bench_function(BenchmarkId::new("batched", batch), |b| {
            b.iter(|| {
                let rs: Vec<_> = (0..batch).map(|i| result(n + i)).collect();
                n += batch;
                store.add_results(rs).unwrap()
            })
        });
    }
    g.finish();
}

fn open_1m(c: &mut Criterion) {
    let dir = million_dir();
    let mut g = c.benchmark_group("open");
    g.sample_size(20);
    g.bench_function("store_with_1m_file_records", |b| {
        b.iter(|| drop(Store::open(&dir, &key()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, results_written, open_1m);

fn main() {
    if let Some(dir) = std::env::var_os("PROOFPIX_BENCH_OPEN_AND_ABORT") {
        let store = Store::open(Path::new(&dir), &key()).unwrap();
        store.set_cursor("x", Some("y")).unwrap();
        std::process::abort();
    }
    report_figures();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
