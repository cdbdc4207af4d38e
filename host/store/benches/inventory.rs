//! The file inventory at a million files: time to build one filtered, sorted page.
//!
//! Run: `CARGO_TARGET_DIR=/work/main/target cargo bench -p proofpix-store --bench inventory`
//!
//! Seeds a store under `$CARGO_TARGET_TMPDIR/proofpix-inventory-1m` with 1,000,000 files in
//! four integrations, each file with one analysis result (risk spread over none..critical,
//! a GPS finding on one in five), once (reused by later runs; delete the directory to
//! rebuild). Then times, several times each, the pages the dashboard asks for and prints the
//! median and range. Not a criterion bench: one page is a full pass, so a handful of samples
//! says enough, and seeding is the expensive part.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proofpix_store::{
    FileRecord, FileStatus, IntegrationRecord, InventoryQuery, InventorySort, NewResult, Store,
};
use proofpix_vault::MasterKey;

const FILES: u64 = 1_000_000;
const INTEGRATIONS: u64 = 4;
const CHUNK: u64 = 20_000;
const RISKS: [&str; 5] = ["none", "none", "low", "medium", "high"];

fn key() -> MasterKey {
    MasterKey::from_bytes([9; 32])
}

fn seed(store: &Store) {
    let now = store.now();
    for n in 0..INTEGRATIONS {
        store
            .put_integration(
                &IntegrationRecord::new(format!("int-{n}"), "local-folder", "0.1.0", now),
                "bench",
            )
            .unwrap();
    }
    let mut i = 0;
    while i < FILES {
        let end = (i + CHUNK).min(FILES);
        let mut results = Vec::new();
        for j in i..end {
            let risk = if j % 97 == 0 {
                "critical"
            } else {
                RISKS[(j % 5) as usize]
            };
            let findings = if j % 5 == 0 {
                r#"[{"category":"gps","code":"gps-position","severity":"high","source":"exif","value":"52.4,4.9"}]"#
            } else {
                "[]"
            };
            results.push(NewResult {
                integration: format!("int-{}", j % INTEGRATIONS),
                remote_id: format!("01QJ2L76{j:012}"),
                file_version: "v1".into(),
                risk: risk.parse().expect("a risk level"),
                score: (j % 100) as u32,
                report_json: format!(
                    r#"{{"path":"IMG_{j}.jpg","format":"jpeg","risk":"{risk}","score":{},"findings":{findings}}}"#,
                    j % 100
                ),
            });
        }
        let ids = store.add_results(results).unwrap();
        let files: Vec<FileRecord> = (i..end)
            .zip(ids)
            .map(|(j, id)| FileRecord {
                integration: format!("int-{}", j % INTEGRATIONS),
                remote_id: format!("01QJ2L76{j:012}"),
                version: "v1".into(),
                name: format!("IMG_{j:07}.jpg"),
                content_hash: None,
                last_result: Some(id),
                status: FileStatus::Analysed,
                attempts: 1,
                last_error: None,
                updated_at: now,
                web_url: None,
            })
            .collect();
        store.put_files(&files).unwrap();
        i = end;
    }
}

fn time(label: &str, store: &Store, q: &InventoryQuery) {
    let mut samples = Vec::new();
    let mut rows = 0;
    let mut scanned = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let page = store.inventory(q).unwrap();
        samples.push(t.elapsed());
        rows = page.rows.len();
        scanned = page.scanned;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<58} median {:>8.1} ms [{:.1}-{:.1}]  rows {rows}  files scanned {scanned}",
        ms(samples[2]),
        ms(samples[0]),
        ms(samples[4]),
    );
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proofpix-inventory-1m");
    let fresh = !dir.join(proofpix_store::STORE_FILE_NAME).exists();
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir, &key()).unwrap();
    if fresh || store.result_count().unwrap() < FILES {
        let t = Instant::now();
        seed(&store);
        println!(
            "seeded {FILES} files and results in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let page = |f: &dyn Fn(&mut InventoryQuery)| {
        let mut q = InventoryQuery {
            limit: 50,
            descending: true,
            ..InventoryQuery::default()
        };
        f(&mut q);
        q
    };
    time(
        "all files, riskiest first, first page of 50",
        &store,
        &page(&|_| {}),
    );
    time(
        "risk=high,critical, riskiest first",
        &store,
        &page(&|q| {
            q.risks = vec![
                proofpix_store::RiskLevel::High,
                proofpix_store::RiskLevel::Critical,
            ]
        }),
    );
    time(
        "search q=IMG_00012 (name substring), riskiest first",
        &store,
        &page(&|q| q.search = Some("img_00012".into())),
    );
    time(
        "one integration (250k files), by name",
        &store,
        &page(&|q| {
            q.integrations = vec!["int-2".into()];
            q.sort = InventorySort::Name;
            q.descending = false;
        }),
    );
    time(
        "category=gps, by analysis time",
        &store,
        &page(&|q| {
            q.category = Some("gps".into());
            q.sort = InventorySort::AnalysedAt;
        }),
    );
    time(
        "key order (an export page of 1000)",
        &store,
        &page(&|q| {
            q.sort = InventorySort::Key;
            q.limit = 1000;
        }),
    );
}
