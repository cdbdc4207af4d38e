//! Hostile input: every file in the shared corpus, the hostile set and ExifTool's, Exiv2's and
//! ianare's broken files included, must produce a report (maybe with an error) and never a
//! panic, an abort or a hang, in range mode, deep mode and when stripped. The time budget
//! guarantees termination; these tests check behaviour, not speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use proofpix_analysis::{Analyzer, FileSource, Options, Policy, StripOptions, strip};

fn run_all(dirs: &[&str], deep: bool) {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let a = Analyzer::new(Policy::default(), Options::default().with_deep(deep));
    let mut n = 0;
    for d in dirs {
        for f in common::files_under(&corpus.join(d)) {
            let src = FileSource::new(std::fs::File::open(&f).unwrap()).unwrap();
            let r = a.analyze(&src);
            assert!(
                !r.error.as_deref().unwrap_or("").contains("internal error"),
                "{} panicked inside the analyzer",
                f.display()
            );
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn every_hostile_and_invalid_file_gets_a_report_in_range_mode() {
    run_all(&["hostile", "exif-samples/jpg/invalid"], false);
}

#[test]
fn every_hostile_and_invalid_file_gets_a_report_in_deep_mode() {
    run_all(&["hostile", "exif-samples/jpg/invalid"], true);
}

#[test]
fn every_corpus_file_gets_a_report_in_both_modes() {
    run_all(&["exiftool-t", "exif-samples", "exiv2", "mat2"], false);
    run_all(&["exiftool-t", "exif-samples", "exiv2", "mat2"], true);
}

#[test]
fn stripping_hostile_files_refuses_or_verifies_and_never_panics() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    for d in ["hostile", "exif-samples/jpg/invalid"] {
        for f in common::files_under(&corpus.join(d)) {
            let src = FileSource::new(std::fs::File::open(&f).unwrap()).unwrap();
            if let Ok(s) = strip(&src, &StripOptions::default()) {
                let r = Analyzer::default().analyze(&s.bytes);
                assert!(
                    r.findings.is_empty()
                        || r.findings
                            .iter()
                            .all(|x| x.source.family == proofpix_analysis::Family::Icc),
                    "{}",
                    f.display()
                );
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Arbitrary bytes behind every container's magic number: never a panic.
    #[test]
    fn arbitrary_bytes_after_any_magic_never_panic(
        magic in proptest::sample::select(vec![
            b"\xff\xd8\xff".to_vec(), b"II*\0".to_vec(), b"MM\0*".to_vec(), b"\x89PNG\r\n\x1a\n".to_vec(),
            b"RIFF\0\0\0\0WEBP".to_vec(), b"\0\0\0\x18ftypheic".to_vec(), b"GIF89a".to_vec(), b"8BPS".to_vec(),
            b"II\x1a\0\0\0HEAPCCDR".to_vec(), b"FUJIFILMCCD-RAW ".to_vec(), b"\0MRM".to_vec(), b"FOVb".to_vec(),
            b"\0\0\0\x0cjP  \r\n\x87\n".to_vec(), b"\xff\x01Exiv2".to_vec(),
        ]),
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..4096),
        deep in proptest::bool::ANY,
    ) {
        let mut data = magic;
        data.extend_from_slice(&body);
        let r = Analyzer::new(Policy::default(), Options::default().with_deep(deep)).analyze(&data);
        proptest::prop_assert!(!r.error.as_deref().unwrap_or("").contains("internal error"));
        let _ = strip(&data, &StripOptions::default());
    }
}
