//! Evaluation of the pixel stage on generated images with ground truth.
//!
//! ```text
//! cargo run --release -p proofpix-pixels --example pixel-eval -- [--n 10] [--out DIR] [--corpus DIR --limit 200]
//! ```
//!
//! Text: documents with one value per PII kind plus decoys (Luhn-failing 16-digit runs, dates,
//! order numbers) rendered in DejaVu Sans at 20 and 32 px (clean), and rotated 3 and 6
//! degrees, blurred (sigma 1.0) and JPEG-compressed (quality 30) (degraded). QR: six payload
//! kinds x 3 module sizes x 3 rotations x 2 blurs x PNG/JPEG 50. Prints precision and recall per
//! kind, per-core throughput per detector, and the cost relative to metadata analysis. With
//! `--corpus`, runs the whole stage over real photos and counts card findings (all are false
//! positives: the corpus has no card photos).
//!
//! Generated images are written to `--out` (default: a temp dir, removed at exit) so a
//! failure can be looked at.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::GrayImage;
use proofpix_pixels::text::{self, TextKind};
use proofpix_pixels::{Budget, MonotonicClock, PixelStage, Tesseract, codes, decode};
use support::*;

#[derive(Default, Clone, Copy)]
struct Score {
    tp: u32,
    fp: u32,
    fn_: u32,
}

impl Score {
    fn precision(self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(self.tp + self.fp)
        }
    }
    fn recall(self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(self.tp + self.fn_)
        }
    }
}

fn kind_of(code: &str) -> Option<TextKind> {
    TextKind::ALL.into_iter().find(|k| k.code() == code)
}

/// One generated document: lines to render and the values a detector must find.
fn document(rng: &mut Rng) -> (Vec<String>, Vec<(TextKind, String)>) {
    let first = *rng.pick(&[
        "jane", "omar", "li", "maria", "sven", "aisha", "tom", "ines",
    ]);
    let last = *rng.pick(&[
        "example", "miller", "chen", "garcia", "berg", "khan", "novak",
    ]);
    let domain = *rng.pick(&[
        "mail.example.org",
        "example.com",
        "corp.example.net",
        "post.example.de",
    ]);
    let email = format!("{first}.{last}{}@{domain}", rng.below(100));

    let (phone_shown, phone_norm) = match rng.below(4) {
        0 => {
            let t = rng.digits(4);
            (format!("+44 20 7946 {t}"), format!("44207946{t}"))
        }
        1 => {
            let (a, b) = (rng.digits(4), rng.digits(4));
            (format!("+49 30 {a} {b}"), format!("4930{a}{b}"))
        }
        2 => {
            let t = rng.digits(4);
            (format!("(212) 555-{t}"), format!("212555{t}"))
        }
        _ => {
            let t = rng.digits(7);
            (format!("030 {t}"), format!("030{t}"))
        }
    };

    let (card_shown, card_norm) = {
        let (prefix, len) = *rng.pick(&[("4", 16usize), ("52", 16), ("37", 15), ("6011", 16)]);
        let body = format!("{prefix}{}", rng.digits(len - 1 - prefix.len()));
        let n = format!("{body}{}", luhn_digit(&body));
        let shown = if len == 15 {
            format!("{} {} {}", &n[..4], &n[4..10], &n[10..])
        } else {
            fours(&n)
        };
        (shown, n)
    };

    let iban_norm = match rng.below(3) {
        0 => iban("DE", &rng.digits(18)),
        1 => iban("GB", &format!("NWBK{}", rng.digits(14))),
        _ => iban("FR", &rng.digits(23)),
    };

    let ssn = format!(
        "{:03}-{:02}-{:04}",
        1 + rng.below(665),
        1 + rng.below(99),
        1 + rng.below(9999)
    );
    let ssn = if ssn.starts_with("666") {
        ssn.replacen("666", "665", 1)
    } else {
        ssn
    };

    let nino = {
        let a = *rng.pick(&['A', 'C', 'E', 'H', 'J', 'L', 'M', 'P', 'R', 'S', 'W', 'Y']);
        let b = *rng.pick(&['A', 'B', 'C', 'E', 'H', 'J', 'L', 'M', 'P', 'R', 'S', 'W']);
        let s = *rng.pick(&['A', 'B', 'C', 'D']);
        let d = rng.digits(6);
        (
            format!("{a}{b} {} {} {} {s}", &d[..2], &d[2..4], &d[4..]),
            format!("{a}{b}{d}{s}"),
        )
    };

    let tax = loop {
        let d: Vec<u8> = (0..10).map(|_| rng.below(10) as u8).collect();
        let body: String = d.iter().map(|x| char::from(b'0' + x)).collect();
        let full: Option<String> = (0..10u8).map(|c| format!("{body}{c}")).find(|s| {
            proofpix_pixels::text::detect(&format!("Steuer-ID: {s}"))
                .iter()
                .any(|m| m.kind == TextKind::DeTaxId)
        });
        if let Some(f) = full {
            break f;
        }
    };
    let tax_shown = format!("{} {} {} {}", &tax[..2], &tax[2..5], &tax[5..8], &tax[8..]);

    // A 16-digit decoy that fails Luhn.
    let decoy = loop {
        let body = format!("4{}", rng.digits(15));
        let check = luhn_digit(&body[..15]);
        if !body.ends_with(check) {
            break body;
        }
    };
    let lines = vec![
        format!("Customer: {} {}", capitalise(first), capitalise(last)),
        format!("Email: {email}"),
        format!("Phone: {phone_shown}"),
        format!("Card: {card_shown}"),
        format!("IBAN: {}", fours(&iban_norm)),
        format!("SSN: {ssn}"),
        format!("NI number: {}", nino.0),
        format!("Steuer-ID: {tax_shown}"),
        format!("Order: {}", fours(&decoy)),
        format!(
            "Date: 2024-0{}-1{} Ref {}",
            1 + rng.below(9),
            rng.below(10),
            rng.digits(8)
        ),
    ];
    let truth = vec![
        (TextKind::Email, email),
        (TextKind::Phone, phone_norm),
        (TextKind::CardNumber, card_norm),
        (TextKind::Iban, iban_norm),
        (TextKind::UsSsn, ssn.replace('-', "")),
        (TextKind::UkNino, nino.1),
        (TextKind::DeTaxId, tax),
    ];
    (lines, truth)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

struct Variant {
    name: &'static str,
    degraded: bool,
    px: f32,
    rot: f32,
    blur: f32,
    jpeg: Option<u8>,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "clean 20px",
        degraded: false,
        px: 20.0,
        rot: 0.0,
        blur: 0.0,
        jpeg: None,
    },
    Variant {
        name: "clean 32px",
        degraded: false,
        px: 32.0,
        rot: 0.0,
        blur: 0.0,
        jpeg: None,
    },
    Variant {
        name: "rotated 3deg",
        degraded: true,
        px: 32.0,
        rot: 3.0,
        blur: 0.0,
        jpeg: None,
    },
    Variant {
        name: "rotated 6deg",
        degraded: true,
        px: 32.0,
        rot: 6.0,
        blur: 0.0,
        jpeg: None,
    },
    Variant {
        name: "blur 1.0",
        degraded: true,
        px: 32.0,
        rot: 0.0,
        blur: 1.0,
        jpeg: None,
    },
    Variant {
        name: "jpeg q30",
        degraded: true,
        px: 24.0,
        rot: 0.0,
        blur: 0.0,
        jpeg: Some(30),
    },
];

fn encode(img: &GrayImage, jpeg_q: Option<u8>) -> Vec<u8> {
    match jpeg_q {
        Some(q) => jpeg(img, q),
        None => png(img),
    }
}

#[derive(Default)]
struct Timing {
    total: Duration,
    megapixels: f64,
    images: u32,
}

impl Timing {
    fn add(&mut self, d: Duration, w: u32, h: u32) {
        self.total += d;
        self.megapixels += f64::from(w) * f64::from(h) / 1e6;
        self.images += 1;
    }
    fn line(&self, name: &str) -> String {
        let s = self.total.as_secs_f64().max(1e-9);
        format!(
            "| {name} | {} | {:.1} | {:.2} | {:.1} |",
            self.images,
            1e3 * s / f64::from(self.images.max(1)),
            f64::from(self.images) / s,
            self.megapixels / s
        )
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: u32 = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(10);
    let tmp = tempfile::tempdir().expect("temp dir");
    let out: PathBuf = arg("--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&out).expect("output dir");
    let font = font();
    let tesseract = Tesseract::locate().unwrap_or_else(|e| panic!("{e}"));
    let stage = PixelStage::new(Budget::default())
        .with_ocr(Ok(tesseract.clone()))
        .show_values(true);
    let analyzer = proofpix_analysis::Analyzer::new(
        proofpix_analysis::Policy::default(),
        proofpix_analysis::Options::default(),
    );

    let mut t_decode = Timing::default();
    let mut t_qr = Timing::default();
    let mut t_ocr = Timing::default();
    let mut t_text = Timing::default();
    let mut t_stage = Timing::default();
    let mut t_meta = Timing::default();

    // --- text -----------------------------------------------------------------------------
    let mut scores: BTreeMap<(bool, TextKind), Score> = BTreeMap::new();
    // Recall when a finding of the right kind within two edits of the truth counts: the
    // detector fired on the value, OCR misread a character of it.
    let mut near: BTreeMap<(bool, TextKind), Score> = BTreeMap::new();
    let mut per_variant: Vec<(String, Score)> = Vec::new();
    let mut misses: Vec<String> = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for v in VARIANTS {
        let mut vs = Score::default();
        for i in 0..n {
            let (lines, truth) = document(&mut rng);
            let img = render_lines(&font, &lines, v.px);
            let img = blur(&rotate(&img, v.rot), v.blur);
            let bytes = encode(&img, v.jpeg);
            let path = out.join(format!(
                "text-{}-{i}.{}",
                v.name.replace(' ', "_"),
                if v.jpeg.is_some() { "jpg" } else { "png" }
            ));
            std::fs::write(&path, &bytes).expect("write image");

            let t0 = Instant::now();
            let report = stage.analyze(&bytes, &MonotonicClock::start());
            t_stage.add(t0.elapsed(), img.width(), img.height());
            let t0 = Instant::now();
            let _ = analyzer.analyze(&bytes);
            t_meta.add(t0.elapsed(), img.width(), img.height());
            assert!(report.complete(), "{}: {:?}", path.display(), report.notes);

            let found: Vec<(TextKind, String)> = report
                .findings
                .iter()
                .filter_map(|f| kind_of(&f.code).map(|k| (k, f.value.clone())))
                .collect();
            for kind in TextKind::ALL {
                let s = scores.entry((v.degraded, kind)).or_default();
                for t in truth.iter().filter(|t| t.0 == kind) {
                    if found.contains(t) {
                        near.entry((v.degraded, kind)).or_default().tp += 1;
                        s.tp += 1;
                        vs.tp += 1;
                    } else {
                        let e = near.entry((v.degraded, kind)).or_default();
                        if found
                            .iter()
                            .any(|f| f.0 == kind && edit_distance(&f.1, &t.1) <= 2)
                        {
                            e.tp += 1;
                        } else {
                            e.fn_ += 1;
                        }
                        s.fn_ += 1;
                        vs.fn_ += 1;
                        misses.push(format!("{} {i}: missed {:?} {}", v.name, kind, t.1));
                    }
                }
                for f in found.iter().filter(|f| f.0 == kind && !truth.contains(f)) {
                    s.fp += 1;
                    vs.fp += 1;
                    misses.push(format!("{} {i}: false {:?} {}", v.name, kind, f.1));
                }
            }
            // Per-detector timings on the first two documents of each variant.
            if i < 2 {
                let t0 = Instant::now();
                let d = decode::decode(&bytes, &Budget::default()).expect("decodes");
                t_decode.add(t0.elapsed(), img.width(), img.height());
                let t0 = Instant::now();
                let _ = codes::find_qr(&d.luma);
                t_qr.add(t0.elapsed(), img.width(), img.height());
                let t0 = Instant::now();
                let lines = tesseract
                    .recognise(&d.luma, Duration::from_secs(60))
                    .expect("ocr");
                t_ocr.add(t0.elapsed(), img.width(), img.height());
                let t0 = Instant::now();
                for _ in 0..100 {
                    for l in &lines {
                        std::hint::black_box(text::detect(&l.text));
                    }
                }
                t_text.add(t0.elapsed() / 100, img.width(), img.height());
            }
        }
        per_variant.push((v.name.to_owned(), vs));
    }

    // --- QR -------------------------------------------------------------------------------
    let payloads: &[(&str, &str)] = &[
        (
            "WIFI:T:WPA;S:Office 3F;P:correct horse battery;;",
            "barcode.wifi",
        ),
        (
            "MECARD:N:Doe,Jane;TEL:+15552345678;EMAIL:jane@example.com;;",
            "barcode.contact",
        ),
        (
            "https://example.com/invite?token=8f14e45fceea167a5a36dedd4bea2543",
            "barcode.url",
        ),
        (
            "M1DOE/JANE            EABC123 JFKLHRBA 0117 123Y014C0001 147>5180      0",
            "barcode.boarding_pass",
        ),
        (
            "BCD\n002\n1\nSCT\nCOBADEFFXXX\nJane Doe\nDE89370400440532013000\nEUR12.50",
            "barcode.payment",
        ),
        (
            "bitcoin:1BoatSLRHtKNngkdXEeobR76b53LETtpyT?amount=0.01",
            "barcode.payment",
        ),
    ];
    let qr_stage = PixelStage::new(Budget::default())
        .without_ocr()
        .show_values(true);
    let mut qr_by: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut qr_total = (0u32, 0u32);
    let mut qr_wrong_class = 0u32;
    for (k, (payload, code)) in payloads.iter().enumerate() {
        for module in [2u32, 3, 5] {
            for rot in [0.0f32, 20.0, 45.0] {
                for sigma in [0.0f32, 1.0] {
                    for jq in [None, Some(50u8)] {
                        let base = qr(payload, module);
                        let mut canvas = GrayImage::from_pixel(
                            base.width() + 200,
                            base.height() + 120,
                            image::Luma([235]),
                        );
                        image::imageops::overlay(&mut canvas, &base, 100, 60);
                        let img = blur(&rotate(&canvas, rot), sigma);
                        let bytes = encode(&img, jq);
                        let t0 = Instant::now();
                        let r = qr_stage.analyze(&bytes, &MonotonicClock::start());
                        let dt = t0.elapsed();
                        t_qr.add(dt, img.width(), img.height());
                        let ok = r.findings.iter().any(|f| f.code == *code);
                        if !ok
                            && r.findings
                                .iter()
                                .any(|f| f.category == proofpix_pixels::PixelCategory::Barcode)
                        {
                            qr_wrong_class += 1;
                        }
                        let key = format!("module {module}px");
                        for key in [
                            key,
                            format!("rotation {rot}deg"),
                            format!("blur {sigma}"),
                            (if jq.is_some() { "jpeg q50" } else { "png" }).to_owned(),
                        ] {
                            let e = qr_by.entry(key).or_default();
                            e.0 += u32::from(ok);
                            e.1 += 1;
                        }
                        qr_total.0 += u32::from(ok);
                        qr_total.1 += 1;
                        if !ok {
                            let p = out.join(format!(
                                "qr-miss-{k}-{module}-{rot}-{sigma}-{}.{}",
                                jq.unwrap_or(0),
                                if jq.is_some() { "jpg" } else { "png" }
                            ));
                            std::fs::write(p, &bytes).expect("write");
                        }
                    }
                }
            }
        }
    }

    // --- report ---------------------------------------------------------------------------
    println!(
        "## Text PII ({n} documents per variant, {} variants)\n",
        VARIANTS.len()
    );
    println!(
        "Exact: the finding's value equals the truth. Near: within two edits (OCR misread a character of a value the detector found).\n"
    );
    println!(
        "| kind | clean precision | clean recall (exact) | clean recall (near) | degraded precision | degraded recall (exact) | degraded recall (near) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut all = [Score::default(), Score::default()];
    let mut all_near = [Score::default(), Score::default()];
    for kind in TextKind::ALL {
        let c = scores.get(&(false, kind)).copied().unwrap_or_default();
        let d = scores.get(&(true, kind)).copied().unwrap_or_default();
        for (slot, s) in all.iter_mut().zip([c, d]) {
            slot.tp += s.tp;
            slot.fp += s.fp;
            slot.fn_ += s.fn_;
        }
        let cn = near.get(&(false, kind)).copied().unwrap_or_default();
        let dn = near.get(&(true, kind)).copied().unwrap_or_default();
        for (slot, s) in all_near.iter_mut().zip([cn, dn]) {
            slot.tp += s.tp;
            slot.fn_ += s.fn_;
        }
        println!(
            "| {} | {:.3} | {:.3} ({}/{}) | {:.3} | {:.3} | {:.3} ({}/{}) | {:.3} |",
            kind.code(),
            c.precision(),
            c.recall(),
            c.tp,
            c.tp + c.fn_,
            cn.recall(),
            d.precision(),
            d.recall(),
            d.tp,
            d.tp + d.fn_,
            dn.recall()
        );
    }
    println!(
        "| **all** | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        all[0].precision(),
        all[0].recall(),
        all_near[0].recall(),
        all[1].precision(),
        all[1].recall(),
        all_near[1].recall()
    );
    println!("\n| variant | precision | recall |\n| --- | --- | --- |");
    for (name, s) in &per_variant {
        println!("| {name} | {:.3} | {:.3} |", s.precision(), s.recall());
    }
    println!(
        "\n## QR decode: {}/{} = {:.3} (wrong class: {qr_wrong_class})\n",
        qr_total.0,
        qr_total.1,
        f64::from(qr_total.0) / f64::from(qr_total.1.max(1))
    );
    println!("| condition | decoded |\n| --- | --- |");
    for (k, (ok, all)) in &qr_by {
        println!(
            "| {k} | {ok}/{all} = {:.3} |",
            f64::from(*ok) / f64::from((*all).max(1))
        );
    }
    println!("\n## Throughput, one core (OMP_THREAD_LIMIT=1 for tesseract)\n");
    println!("| detector | images | ms/image | images/s | MP/s |\n| --- | --- | --- | --- | --- |");
    println!("{}", t_decode.line("decode + downscale"));
    println!(
        "{}",
        t_qr.line("QR search + decode (text pages and QR set)")
    );
    println!("{}", t_ocr.line("tesseract OCR (subprocess)"));
    println!("{}", t_text.line("text PII detectors (per OCR'd page)"));
    println!("{}", t_stage.line("whole pixel stage (text pages)"));
    println!("{}", t_meta.line("metadata analysis, same files"));
    println!(
        "\npixel stage / metadata analysis time on the same files: {:.0}x",
        t_stage.total.as_secs_f64() / t_meta.total.as_secs_f64().max(1e-9)
    );

    if let Some(dir) = arg("--corpus") {
        let limit: usize = arg("--limit").and_then(|v| v.parse().ok()).unwrap_or(200);
        corpus(Path::new(&dir), limit, &stage);
    }
    if !misses.is_empty() {
        println!("\n## Text misses and false positives ({})\n", misses.len());
        for m in misses.iter().take(60) {
            println!("- {m}");
        }
    }
    if arg("--out").is_none() {
        drop(tmp);
    }
}

fn corpus(dir: &Path, limit: usize, stage: &PixelStage) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                files.push(p);
            }
        }
    }
    files.truncate(limit);
    let mut by_code: BTreeMap<String, u32> = BTreeMap::new();
    let (mut analysed, mut skipped) = (0u32, 0u32);
    let mut cards = Vec::new();
    for p in &files {
        let Ok(bytes) = std::fs::read(p) else {
            continue;
        };
        let r = stage.analyze(&bytes, &MonotonicClock::start());
        if r.skipped.is_some() {
            skipped += 1;
            continue;
        }
        analysed += 1;
        for f in &r.findings {
            *by_code.entry(f.code.clone()).or_default() += 1;
            if f.code == "text_pii.card_number" {
                cards.push(format!("{}: {}", p.display(), f.value));
            }
        }
    }
    println!(
        "\n## Corpus photos: {analysed} analysed, {skipped} skipped, of {} files under {}\n",
        files.len(),
        dir.display()
    );
    println!("card findings (all false positives): {}", cards.len());
    for c in &cards {
        println!("- {c}");
    }
    for (k, v) in &by_code {
        println!("- {k}: {v}");
    }
}
