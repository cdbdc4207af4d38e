//! The pixel stage end to end: codes, OCR text, budgets and hostile input.

mod support;

use std::cell::Cell;
use std::time::Duration;

use proofpix_analysis::RiskLevel;
use proofpix_pixels::{Budget, Clock, MonotonicClock, PixelStage, Step, Tesseract};
use support::*;

/// A clock that moves `step` every time it is read.
struct SteppingClock {
    now: Cell<Duration>,
    step: Duration,
}

impl Clock for SteppingClock {
    fn elapsed(&self) -> Duration {
        let t = self.now.get() + self.step;
        self.now.set(t);
        t
    }
}

fn codes_only() -> PixelStage {
    PixelStage::new(Budget::default()).without_ocr()
}

#[test]
fn a_wifi_qr_code_is_a_high_finding_with_its_password_masked_and_its_box() {
    let mut page = image::GrayImage::from_pixel(800, 600, image::Luma([255]));
    let code = qr("WIFI:T:WPA;S:Office;P:hunter22;;", 6);
    image::imageops::overlay(&mut page, &code, 300, 150);
    let report = codes_only().analyze(&png(&page), &MonotonicClock::start());
    assert_eq!(report.findings.len(), 1, "{report:?}");
    let f = &report.findings[0];
    assert_eq!(f.code, "barcode.wifi");
    assert_eq!(f.severity, RiskLevel::High);
    assert_eq!(f.value, "network Office, password ********");
    // The box lies on the code (quiet zone excluded: 4 modules of 6 px).
    let (x, y) = (300 + 24, 150 + 24);
    assert!(
        f.bbox.x.abs_diff(x) <= 6 && f.bbox.y.abs_diff(y) <= 6,
        "{:?}",
        f.bbox
    );
    assert!(f.bbox.w.abs_diff(code.width() - 48) <= 8, "{:?}", f.bbox);
    assert!(
        report.notes.iter().any(|n| n.contains("ocr unavailable")),
        "{:?}",
        report.notes
    );
    assert!(
        !report.complete(),
        "OCR did not run, so the report says it is partial"
    );
}

#[test]
fn large_images_are_downscaled_and_boxes_map_back_to_the_original() {
    let mut page = image::GrayImage::from_pixel(6000, 3000, image::Luma([255]));
    let code = qr("https://example.com/path", 20);
    image::imageops::overlay(&mut page, &code, 4000, 1000);
    let report = codes_only().analyze(&png(&page), &MonotonicClock::start());
    assert_eq!(report.size, Some((6000, 3000)));
    assert_eq!(report.analysed_size, Some((2400, 1200)));
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "barcode.url")
        .expect("QR found after downscale");
    assert_eq!(f.value, "https://example.com/…");
    assert!(
        f.bbox.x.abs_diff(4000 + 80) <= 15 && f.bbox.y.abs_diff(1000 + 80) <= 15,
        "{:?}",
        f.bbox
    );
}

#[test]
fn the_time_budget_is_checked_between_steps() {
    let page = qr("WIFI:T:WPA;S:x;P:y;;", 4);
    let stage = PixelStage::new(Budget {
        time: Duration::from_secs(1),
        ..Budget::default()
    })
    .without_ocr();
    let clock = SteppingClock {
        now: Cell::new(Duration::ZERO),
        step: Duration::from_secs(2),
    };
    let report = stage.analyze(&png(&page), &clock);
    assert_eq!(report.completed, [Step::Decode]);
    assert!(report.findings.is_empty());
    assert_eq!(
        report.notes,
        ["time budget of 1s spent; not run: codes, text"]
    );
}

/// A PNG whose header claims `w` x `h` with one tiny IDAT: a decompression bomb's shape.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in data {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let report = codes_only().analyze(&png_claiming(100_000, 100_000), &MonotonicClock::start());
    let why = report.skipped.expect("refused");
    assert!(
        why.contains("100000 x 100000 pixels is over the pixel budget"),
        "{why}"
    );
    assert!(report.completed.is_empty());
}

#[test]
fn truncated_and_lying_images_are_skipped_with_the_reason() {
    // Within budget but the data stops: the decoder's error is the reason.
    let report = codes_only().analyze(&png_claiming(4000, 4000), &MonotonicClock::start());
    let why = report.skipped.expect("skipped");
    assert!(why.starts_with("the image could not be decoded"), "{why}");
    let full = jpeg(&qr("hello", 4), 90);
    for cut in [2, 20, full.len() / 2, full.len() - 2] {
        let r = codes_only().analyze(&full[..cut], &MonotonicClock::start());
        assert!(
            r.skipped.is_some() || r.completed.contains(&Step::Decode),
            "cut {cut}: {r:?}"
        );
    }
    let r = codes_only().analyze(b"GIF89a\x00", &MonotonicClock::start());
    assert!(r.skipped.is_some());
}

#[test]
fn a_missing_tesseract_is_reported_not_passed() {
    let stage = PixelStage::new(Budget::default()).with_ocr(Tesseract::with_program(
        std::path::Path::new("/nonexistent/tesseract"),
        "eng",
    ));
    let report = stage.analyze(&png(&qr("x", 4)), &MonotonicClock::start());
    assert_eq!(report.completed, [Step::Decode, Step::Codes]);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("ocr unavailable: cannot run /nonexistent/tesseract")),
        "{:?}",
        report.notes
    );
}

fn ocr_stage() -> PixelStage {
    let t = Tesseract::locate().unwrap_or_else(|e| {
        panic!("{e} (the OCR tests need Debian's tesseract-ocr and tesseract-ocr-eng; ./test installs them)")
    });
    PixelStage::new(Budget::default()).with_ocr(Ok(t))
}

#[test]
fn ocr_finds_a_card_number_and_an_email_with_boxes_and_masks_them() {
    let f = font();
    let lines = vec![
        "Customer: Jane Example".to_owned(),
        "Card: 4111 1111 1111 1111".to_owned(),
        "Reference: 4111 1111 1111 1112".to_owned(),
        "Email: jane.example@mail.example.org".to_owned(),
    ];
    let img = render_lines(&f, &lines, 32.0);

    let report = ocr_stage().analyze(&png(&img), &MonotonicClock::start());
    assert!(report.complete(), "{report:?}");
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        ["text_pii.card_number", "text_pii.email"],
        "{report:?}"
    );
    let card = &report.findings[0];
    assert_eq!(card.value, "**** **** **** 1111");
    assert_eq!(card.severity, RiskLevel::High);
    // Second line of four: the box sits in the upper half, right of the label.
    assert!(
        card.bbox.y > img.height() / 8 && card.bbox.y < img.height() / 2,
        "{:?}",
        card.bbox
    );
    assert!(card.bbox.w > 200 && card.confidence > 0.5, "{card:?}");
    assert_eq!(report.findings[1].value, "j***********@m***********.org");
}

#[test]
fn an_ocr_timeout_is_a_note_and_the_codes_still_count() {
    let t = Tesseract::locate().expect("tesseract installed");
    let stage = PixelStage::new(Budget {
        ocr_timeout: Duration::ZERO,
        ..Budget::default()
    })
    .with_ocr(Ok(t));
    let report = stage.analyze(&png(&qr("WIFI:S:a;P:b;;", 4)), &MonotonicClock::start());
    assert_eq!(report.findings.len(), 1);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("ocr stopped after")),
        "{:?}",
        report.notes
    );
}
