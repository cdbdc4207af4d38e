//! Hostile bytes never panic the stage, and the card detector never reports a number that
//! fails Luhn.

use proofpix_pixels::{Budget, MonotonicClock, PixelStage, text};
use proptest::prelude::*;

fn stage() -> PixelStage {
    PixelStage::new(Budget {
        max_pixels: 4_000_000,
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
