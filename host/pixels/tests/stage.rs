//! The pixel stage end to end: codes, OCR text, budgets and hostile input.

mod support;

use std::cell::Cell;
use std::time::Duration;

use proofpix_analysis::RiskLevel;
use proofpix_pixels::{
    Budget, CascadeError, Clock, FaceDetector, MonotonicClock, PixelCategory, PixelStage, Step,
    Tesseract,
};
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
    PixelStage::new(Budget::default())
        .without_ocr()
        .without_faces()
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

/// A contact card printed small (3 px per module), turned 20 degrees, blurred (sigma 1) and
/// saved as JPEG quality 50 on a photo-sized page: `rqrr` alone does not read it (the
/// harder passes around finder candidates do), and it is classified and masked like a sharp one.
#[test]
fn a_small_rotated_blurred_jpeg_qr_code_is_read_and_classified() {
    let payload = "MECARD:N:Doe,Jane;TEL:+15552345678;EMAIL:jane@example.com;;";
    let code = qr(payload, 3);
    let mut page = image::GrayImage::from_pixel(1400, 1000, image::Luma([235]));
    image::imageops::overlay(&mut page, &rotate(&code, 20.0), 700, 420);
    let page = blur(&page, 1.0);
    let bytes = jpeg(&page, 50);

    let decoded = proofpix_pixels::decode::decode(&bytes, &Budget::default()).unwrap();
    let plain =
        proofpix_pixels::codes::search(&decoded.luma, &proofpix_pixels::codes::QrSearch::rqrr_2x());
    assert!(
        plain.codes.is_empty(),
        "the old search reads it now: {plain:?}"
    );

    let report = codes_only().analyze(&bytes, &MonotonicClock::start());
    let f = report
        .findings
        .iter()
        .find(|f| f.category == PixelCategory::Barcode)
        .unwrap_or_else(|| panic!("no code read: {report:?}"));
    assert_eq!(f.code, "barcode.contact");
    assert_eq!(f.severity, RiskLevel::High);
    assert_eq!(f.value, "D** J***");
    // The rotated code's box: it was pasted at (700, 420), its canvas is about 1.28x the
    // code's side; the quiet zone is excluded.
    let side = rotate(&code, 20.0).width();
    assert!(
        f.bbox.x >= 700
            && f.bbox.x <= 700 + side / 3
            && f.bbox.y >= 420
            && f.bbox.y <= 420 + side / 3,
        "{:?}",
        f.bbox
    );
    assert!(
        f.bbox.w >= code.width() / 2 && f.bbox.w <= side,
        "{:?}",
        f.bbox
    );
}

/// Text, a chequerboard (finder-like runs on every row) and noise: the harder passes may run,
/// but nothing is decoded from them.
/// Codes `rqrr` alone cannot read (held-out set, BENCHMARKS.md): light modules on dark, and a
/// low-contrast code whose grey quiet zone sits on lighter paper.
#[test]
fn inverted_and_low_contrast_codes_are_read() {
    let code = qr("WIFI:T:WEP;S:Lab-7;P:plover42;;", 5);
    let (w, h) = code.dimensions();
    let mut inverted = image::GrayImage::from_pixel(w + 80, h + 80, image::Luma([20]));
    let mut dark_code = code.clone();
    image::imageops::invert(&mut dark_code);
    image::imageops::overlay(&mut inverted, &dark_code, 40, 40);
    let mut low = image::GrayImage::from_pixel(w + 80, h + 80, image::Luma([205]));
    let grey = image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([if code.get_pixel(x, y).0[0] < 128 {
            100
        } else {
            170
        }])
    });
    image::imageops::overlay(&mut low, &grey, 40, 40);
    for (name, img) in [("inverted", &inverted), ("low contrast", &low)] {
        let report = codes_only().analyze(&png(img), &MonotonicClock::start());
        assert!(
            report.findings.iter().any(|f| f.code == "barcode.wifi"),
            "{name}: {report:?}"
        );
    }
}

/// A code in keystone perspective (top edge a quarter narrower than the bottom), small
/// (3 px per module), blurred and saved as JPEG: the finders pass's affine map misplaces the
/// far modules by several, and `rqrr` does not read it; the homography through the alignment
/// pattern does.
#[test]
fn a_small_code_in_keystone_perspective_is_read_through_a_homography() {
    use proofpix_pixels::codes::{QrSearch, search};
    let payload = "MECARD:N:Doe,Jane;TEL:+15552345678;EMAIL:jane@example.com;;";
    let code = keystone(&qr(payload, 3), 0.25);
    let mut page = image::GrayImage::from_pixel(900, 700, image::Luma([235]));
    image::imageops::overlay(&mut page, &rotate(&code, 10.0), 300, 200);
    let bytes = jpeg(&blur(&page, 0.8), 70);
    let decoded = proofpix_pixels::decode::decode(&bytes, &Budget::default()).unwrap();

    let affine_only = search(
        &decoded.luma,
        &QrSearch {
            perspective: false,
            ..QrSearch::default()
        },
    );
    assert!(
        affine_only.codes.is_empty(),
        "the search without the homography reads it now: {affine_only:?}"
    );
    let found = search(&decoded.luma, &QrSearch::default());
    assert_eq!(
        found
            .codes
            .iter()
            .map(|c| c.payload.as_str())
            .collect::<Vec<_>>(),
        [payload],
        "{found:?}"
    );
    // The box is the code's, inside where it was pasted.
    let b = found.codes[0].bbox;
    let side = rotate(&code, 10.0).width();
    assert!(
        b.x >= 300 && b.y >= 200 && b.x + b.w <= 300 + side && b.y + b.h <= 200 + side,
        "{b:?}"
    );
}

#[test]
fn pages_without_a_code_give_no_barcode_finding() {
    let font = font();
    let lines: Vec<String> = (0..12)
        .map(|k| format!("Invoice {k}: 4111 1111 1111 1111 jane@example.com ###"))
        .collect();
    let text = render_lines(&font, &lines, 18.0);
    let mut page = image::GrayImage::from_pixel(1200, 900, image::Luma([240]));
    image::imageops::overlay(&mut page, &text, 20, 20);
    let mut rng = Rng(7);
    for y in 600..880u32 {
        for x in 0..1200u32 {
            let v = if x < 600 {
                if ((x / 3) + (y / 3)) % 2 == 0 {
                    20
                } else {
                    230
                }
            } else {
                rng.below(256) as u8
            };
            page.put_pixel(x, y, image::Luma([v]));
        }
    }
    for bytes in [png(&page), jpeg(&blur(&page, 1.0), 50)] {
        let report = codes_only().analyze(&bytes, &MonotonicClock::start());
        assert!(
            !report
                .findings
                .iter()
                .any(|f| f.category == PixelCategory::Barcode),
            "{:?}",
            report.findings
        );
        assert!(report.completed.contains(&Step::Codes));
    }
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
        ["time budget of 1s spent; not run: codes, faces, text"]
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
    let stage = PixelStage::new(Budget::default())
        .with_ocr(Tesseract::with_program(
            std::path::Path::new("/nonexistent/tesseract"),
            "eng",
        ))
        .without_faces();
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

fn face_detector() -> FaceDetector {
    FaceDetector::locate().unwrap_or_else(|e| {
        panic!("{e} (the face tests need Debian's opencv-data; ./test installs it)")
    })
}

/// Rendered text, a QR code and a flat margin, as PNG and as JPEG: the face search runs to
/// completion and finds no face (no false positive on what documents and screenshots are
/// made of). Real faces are measured by `examples/face_eval.rs`, not committed images.
#[test]
fn rendered_text_and_codes_show_no_face() {
    let font = font();
    let lines: Vec<String> = [
        "Invoice 2024-117  Due 14.03.2025",
        "Jane Miller, 42 Harbour Road, Leeds",
        "jane.miller52@example.com  +44 20 7946 0958",
        "IBAN GB33BUKB20201555555555",
        "Card 4111 1111 1111 1111  exp 09/27",
        "Thank you for your order!",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for px in [20.0, 36.0] {
        let mut page = render_lines(&font, &lines, px);
        let code = qr("WIFI:T:WPA;S:Office;P:hunter22;;", 5);
        let (w, h) = page.dimensions();
        let mut canvas = image::GrayImage::from_pixel(
            w.max(code.width()) + 40,
            h + code.height() + 40,
            image::Luma([255]),
        );
        image::imageops::overlay(&mut canvas, &page, 20, 20);
        image::imageops::overlay(&mut canvas, &code, 20, i64::from(h) + 20);
        page = canvas;
        let stage = PixelStage::new(Budget::default())
            .without_ocr()
            .with_faces(Ok(face_detector()));
        for bytes in [png(&page), jpeg(&page, 60)] {
            let report = stage.analyze(&bytes, &MonotonicClock::start());
            assert!(report.completed.contains(&Step::Faces), "{report:?}");
            let faces: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.category == PixelCategory::Face)
                .collect();
            assert!(faces.is_empty(), "false faces at {px} px: {faces:?}");
        }
    }
}

#[test]
fn a_missing_cascade_is_reported_and_the_rest_still_runs() {
    let stage = PixelStage::new(Budget::default())
        .without_ocr()
        .with_faces(Err(CascadeError::NotInstalled(
            "/usr/share/opencv4/...".into(),
        )));
    let report = stage.analyze(
        &png(&qr("WIFI:T:WPA;S:x;P:y;;", 5)),
        &MonotonicClock::start(),
    );
    assert_eq!(report.completed, [Step::Decode, Step::Codes]);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("skipped: cascade not installed (apt install opencv-data)")),
        "{:?}",
        report.notes
    );
    assert_eq!(report.findings.len(), 1, "the QR code is still found");
}

/// The face search gets what is left of the image's time budget and says which face sizes it
/// did not search when that runs out; the next step is then not started.
#[test]
fn the_face_search_stops_at_the_time_budget_with_a_reason() {
    let page = image::GrayImage::from_pixel(900, 700, image::Luma([200]));
    let stage = PixelStage::new(Budget {
        time: Duration::from_secs(3),
        ..Budget::default()
    })
    .without_ocr()
    .with_faces(Ok(face_detector()));
    let clock = SteppingClock {
        now: Cell::new(Duration::ZERO),
        step: Duration::from_secs(1),
    };
    let report = stage.analyze(&png(&page), &clock);
    assert_eq!(report.completed, [Step::Decode, Step::Codes]);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("face search stopped by the time budget after 0 of")),
        "{:?}",
        report.notes
    );
    assert!(
        report.notes.iter().any(|n| n.ends_with("not run: text")),
        "{:?}",
        report.notes
    );
}

/// An image over the pixel budget is skipped before decoding, faces included, with the reason.
#[test]
fn an_image_over_the_pixel_budget_is_skipped_before_the_face_search() {
    let page = image::GrayImage::from_pixel(400, 300, image::Luma([200]));
    let stage = PixelStage::new(Budget {
        max_pixels: 100_000,
        ..Budget::default()
    })
    .without_ocr()
    .with_faces(Ok(face_detector()));
    let report = stage.analyze(&png(&page), &MonotonicClock::start());
    assert!(report.completed.is_empty());
    assert!(
        report
            .skipped
            .as_deref()
            .is_some_and(|s| s.contains("over the pixel budget")),
        "{report:?}"
    );
}
