//! Hostile bytes never panic the stage, and the card detector never reports a number that
//! fails Luhn.

use proofpix_pixels::{Budget, MonotonicClock, PixelStage, text};
use proptest::prelude::*;

fn stage() -> PixelStage {
    PixelStage::new(Budget {
        max_pixels: 4_000_000,
        // The face search runs on whatever decodes, at a small size to keep the test quick.
        face_max_side: 320,
        ..Budget::default()
    })
    .without_ocr()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_skipped_or_analysed(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let r = stage().analyze(&bytes, &MonotonicClock::start());
        prop_assert!(r.skipped.is_some() || !r.completed.is_empty());
    }

    #[test]
    fn bytes_behind_a_real_magic_number_are_skipped_or_analysed(
        magic in prop::sample::select(vec![
            &b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"[..], &b"\xff\xd8\xff\xe0"[..], &b"GIF89a"[..],
            &b"RIFF\x00\x00\x00\x00WEBPVP8 "[..], &b"BM"[..], &b"II*\x00"[..], &b"MM\x00*"[..],
        ]),
        tail in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&tail);
        let r = stage().analyze(&bytes, &MonotonicClock::start());
        prop_assert!(r.skipped.is_some() || !r.completed.is_empty());
    }

    #[test]
    fn text_detectors_take_any_string(s in "\\PC{0,300}") {
        for m in text::detect(&s) {
            prop_assert!(s.is_char_boundary(m.start) && s.is_char_boundary(m.end) && m.start < m.end);
        }
    }

    #[test]
    fn digit_runs_that_fail_luhn_are_never_cards(
        d in prop::collection::vec(0u8..10, 12..20),
        sep in prop::sample::select(vec!["", " ", "-"]),
    ) {
        let digits: String = d.iter().map(|x| char::from(b'0' + x)).collect();
        let grouped = digits.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or("")).collect::<Vec<_>>().join(sep);
        let text = format!("No. {grouped} paid");
        for m in text::detect(&text) {
            if m.kind == text::TextKind::CardNumber {
                let v: Vec<u8> = m.normalized.bytes().map(|b| b - b'0').collect();
                let sum: u32 = v.iter().rev().enumerate().map(|(k, x)| {
                    let x = u32::from(*x);
                    if k % 2 == 1 { let y = x * 2; if y > 9 { y - 9 } else { y } } else { x }
                }).sum();
                prop_assert_eq!(sum % 10, 0, "{} reported as a card", m.normalized);
            }
        }
    }
}

/// The shared corpus's hostile files and decoder crash/timeout reproducers (Exiv2's CVE
/// proofs of concept, ianare's broken JPEGs, Pillow's test images): each is skipped with a
/// reason or analysed. A panic inside a decoder is caught by the stage and becomes the skip
/// reason (the `tiff` 0.11.3 crate asserts on Pillow's `tiff_tiled_planar_16bit_RGB.tiff`);
/// the QR search never panics.
#[test]
fn corpus_hostile_files_are_skipped_or_analysed_without_a_panic() {
    let corpus = std::env::var_os("PROOFPIX_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    if !corpus.is_dir() {
        eprintln!("note: corpus not found at {}; skipping", corpus.display());
        return;
    }
    let (mut n, mut caught) = (0, Vec::new());
    for d in ["hostile", "exif-samples/jpg/invalid", "pillow"] {
        let mut stack = vec![corpus.join(d)];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let Ok(bytes) = std::fs::read(&p) else {
                    continue;
                };
                let r = stage().analyze(&bytes, &MonotonicClock::start());
                assert!(
                    r.skipped.is_some() || !r.completed.is_empty(),
                    "{}",
                    p.display()
                );
                let why = r.skipped.as_deref().unwrap_or("");
                if why.contains("decoder failed") {
                    assert!(why.ends_with("pixels not analysed"), "{why}");
                    caught.push(p.display().to_string());
                }
                assert!(
                    !r.notes.iter().any(|n| n.starts_with("QR search failed")),
                    "{}: {:?}",
                    p.display(),
                    r.notes
                );
                n += 1;
            }
        }
    }
    eprintln!("{n} files; decoder panics caught: {caught:?}");
    assert!(n > 100, "only {n} files");
}
