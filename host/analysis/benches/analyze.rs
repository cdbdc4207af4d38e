//! Analysis throughput on one core: files/s over the shared corpus held in memory.
//!
//! Run: `CARGO_TARGET_DIR=/work/targets/analysis cargo bench -p proofpix-analysis --bench analyze`
//! Groups: `corpus/{jpeg,all}` in range mode and deep mode, plus `fixture` (a generated JPEG,
//! available without the corpus). Files are read before timing; the timed loop analyses every
//! file once per iteration, so criterion's element throughput is files per second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proofpix_analysis::{Analyzer, Options, Policy};

fn corpus_files() -> Vec<(PathBuf, Vec<u8>)> {
    let root = std::env::var_os("PROOFPIX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("golden") {
                    stack.push(p);
                }
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    if out.is_empty() {
        eprintln!(
            "note: corpus not found at {}; only the fixture bench runs",
            root.display()
        );
    }
    out.sort();
    out
}

fn fixture() -> Vec<u8> {
    // SOI, APP1 Exif with Artist, a tiny frame and scan, EOI.
    let tiff: &[u8] = b"II*\0\x08\0\0\0\x01\0\x3b\x01\x02\0\x04\0\0\0Ann\0\0\0\0\0";
    let mut j = vec![0xff, 0xd8, 0xff, 0xe1];
    j.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    j.extend_from_slice(b"Exif\0\0");
    j.extend_from_slice(tiff);
    j.extend_from_slice(&[0xff, 0xc0, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0]);
    j.extend_from_slice(&[0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0, 0x12, 0x34, 0xff, 0xd9]);
    j
}

fn bench(c: &mut Criterion) {
    let files = corpus_files();
    let jpegs: Vec<&Vec<u8>> = files
        .iter()
        .map(|(_, b)| b)
        .filter(|b| b.starts_with(&[0xff, 0xd8]))
        .collect();
    let all: Vec<&Vec<u8>> = files.iter().map(|(_, b)| b).collect();
    let mut g = c.benchmark_group("corpus");
    g.sample_size(20);
    for (mode, deep) in [("range", false), ("deep", true)] {
        let a = Analyzer::new(Policy::default(), Options::default().with_deep(deep));
        for (name, set) in [("jpeg", &jpegs), ("all", &all)] {
            if set.is_empty() {
                continue;
            }
            g.throughput(Throughput::Elements(set.len() as u64));
            g.bench_with_input(BenchmarkId::new(name, mode), set, |b, set| {
                b.iter(|| {
                    for f in set.iter() {
                        std::hint::black_box(a.analyze(*f));
                    }
                });
            });
        }
    }
    g.finish();
    let f = fixture();
    let a = Analyzer::default();
    let mut g = c.benchmark_group("fixture");
    g.throughput(Throughput::Elements(1));
    g.bench_function("small_jpeg", |b| {
        b.iter(|| std::hint::black_box(a.analyze(&f)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
