//! ProofPix pixel stage: what the picture itself shows, when its metadata is gone.
//!
//! A photo of a card, a screenshot with an e-mail address or a Wi-Fi QR code carries personal
//! data in its pixels, which stripping metadata does not remove. This crate decodes an image
//! under a [`Budget`], then runs detectors in order, checking the time budget between them:
//!
//! 1. [`decode`]: header dimensions checked before decoding (decompression bombs are refused
//!    without allocating), bounded decode with the `image` crate, one downscale.
//! 2. [`codes`]: QR codes found and decoded (`rqrr`, then passes of our own for small,
//!    blurred codes, gated on finder-pattern candidates), payloads classified (Wi-Fi,
//!    contact, boarding pass, payment, URL).
//! 3. [`faces`]: faces on the upright (EXIF-oriented) view, found by MediaPipe's BlazeFace
//!    network run with `tract-onnx` ([`facenet`], its model provisioned from npm) or, when
//!    that model is absent, OpenCV's Haar cascade from Debian's `opencv-data`, in pure Rust.
//! 4. [`ocr`]: text read by Debian's tesseract in a subprocess with a timeout.
//! 5. [`text`]: personal data in that text (cards, IBANs, national ids, e-mail, phone).
//!
//! A face shown together with personal data in text (an identity document, a badge) is
//! raised to high (`face.with_text_pii`).
//!
//! Nothing panics on hostile input: each step runs under `catch_unwind`, and a failure becomes
//! a note in the [`PixelReport`], with the findings of the steps that did run.
//!
//! ```
//! use proofpix_pixels::{Budget, MonotonicClock, PixelStage};
//! let stage = PixelStage::new(Budget::default()).without_ocr();
//! let report = stage.analyze(b"not an image", &MonotonicClock::start());
//! assert!(report.findings.is_empty());
//! assert!(report.skipped.as_deref().unwrap_or("").contains("not a PNG"));
//! ```
//!
//! Layering (checked by .ci/layers): floor 2, may use only the host crates below it (proofpix-analysis, proofpix-model, proofpix-policy, proofpix-signing, proofpix-vault); never pulls in axum, hyper, redb, reqwest, tokio, wasmtime, even transitively.
#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod budget;
pub mod codes;
pub mod decode;
pub mod deskew;
pub mod facenet;
pub mod faces;
pub mod finding;
pub mod fuzzing;
pub mod ocr;
pub mod text;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

pub use budget::{Budget, Clock, MonotonicClock};
pub use faces::{CascadeError, FaceDetector};
pub use finding::{BBox, PixelCategory, PixelFinding};
pub use ocr::{OcrError, Tesseract};

use serde::Serialize;

/// Largest file the stage reads whole (256 MiB); callers skip larger ones with a note. The
/// decoder's own limits (pixel count, allocation) apply to what is read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The steps of the stage, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Decode and downscale.
    Decode,
    /// QR codes.
    Codes,
    /// Faces.
    Faces,
    /// OCR and text detectors.
    Text,
}

/// What the pixel stage saw in one image.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PixelReport {
    /// Decoded format, when decoding succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    /// Original size, when decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<(u32, u32)>,
    /// Size the detectors saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysed_size: Option<(u32, u32)>,
    /// Findings, in step order.
    pub findings: Vec<PixelFinding>,
    /// Steps that ran to completion.
    pub completed: Vec<Step>,
    /// Why the image was not analysed at all (undecodable, over budget), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Problems in steps that did not complete ("ocr unavailable: ...", "time budget ...").
    pub notes: Vec<String>,
    /// The OCR text, when asked for (evaluation and debugging; never in product reports).
    #[serde(skip)]
    pub ocr_text: Vec<String>,
}

impl PixelReport {
    /// True when every step ran (the absence of findings then means something).
    pub fn complete(&self) -> bool {
        self.skipped.is_none() && self.completed.len() == 4
    }

    /// The findings as the analysis report's, with severities under `policy` (a code
    /// override, then a category override, then the detector's own), and what the stage did.
    pub fn into_analysis(
        self,
        policy: &proofpix_analysis::Policy,
    ) -> (Vec<proofpix_analysis::Finding>, proofpix_analysis::PixelRun) {
        let findings = self
            .findings
            .into_iter()
            .map(|f| f.into_finding(policy))
            .collect();
        let run = proofpix_analysis::PixelRun {
            completed: self.completed.iter().map(|s| s.name().to_owned()).collect(),
            notes: self.notes,
            skipped: self.skipped,
        };
        (findings, run)
    }
}

impl Step {
    /// The name reports use (`codes`).
    pub fn name(self) -> &'static str {
        match self {
            Step::Decode => "decode",
            Step::Codes => "codes",
            Step::Faces => "faces",
            Step::Text => "text",
        }
    }
}

/// The pixel stage: a budget, an OCR engine and a face cascade (or why there is none), and
/// whether values are shown unmasked.
#[derive(Debug, Clone)]
pub struct PixelStage {
    budget: Budget,
    ocr: Result<Tesseract, OcrError>,
    faces: Result<Arc<FaceDetector>, CascadeError>,
    show_values: bool,
    keep_text: bool,
}

impl PixelStage {
    /// A stage with tesseract and the face cascade located on this machine (see
    /// [`Tesseract::locate`], [`FaceDetector::locate`]). When one is missing, every report
    /// says so in a note ("ocr unavailable: ...", "skipped: cascade not installed ...").
    pub fn new(budget: Budget) -> Self {
        let faces = located_faces().map(|d| {
            if d.params().max_side == budget.face_max_side {
                d
            } else {
                let params = faces::FaceParams {
                    max_side: budget.face_max_side,
                    ..d.params().clone()
                };
                Arc::new((*d).clone().with_params(params))
            }
        });
        Self {
            budget,
            ocr: Tesseract::locate(),
            faces,
            show_values: false,
            keep_text: false,
        }
    }

    /// Run without OCR (codes only); reports say OCR was switched off.
    pub fn without_ocr(mut self) -> Self {
        self.ocr = Err(OcrError::Unavailable(
            "switched off for this stage".to_owned(),
        ));
        self
    }

    /// Run without the face search; reports say it was switched off.
    pub fn without_faces(mut self) -> Self {
        self.faces = Err(CascadeError::Invalid(
            "face search switched off for this stage".to_owned(),
        ));
        self
    }

    /// Use this face detector (or report this reason for having none).
    pub fn with_faces(mut self, faces: Result<FaceDetector, CascadeError>) -> Self {
        self.faces = faces.map(Arc::new);
        self
    }

    /// Use this OCR engine.
    pub fn with_ocr(mut self, ocr: Result<Tesseract, OcrError>) -> Self {
        self.ocr = ocr;
        self
    }

    /// Show values unmasked (the evaluation tool compares them with ground truth).
    pub fn show_values(mut self, show: bool) -> Self {
        self.show_values = show;
        self
    }

    /// Keep the OCR text in [`PixelReport::ocr_text`].
    pub fn keep_text(mut self, keep: bool) -> Self {
        self.keep_text = keep;
        self
    }

    /// The budget in force.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Runs the stage on a whole file's bytes and adds what it found and did to the file's
    /// analysis report, scoring it again under `policy`.
    pub fn add_to_report(
        &self,
        bytes: &[u8],
        report: &mut proofpix_analysis::Report,
        policy: &proofpix_analysis::Policy,
    ) {
        let (findings, run) = self
            .analyze(bytes, &MonotonicClock::start())
            .into_analysis(policy);
        report.add_pixel_findings(findings, run, policy);
    }

    /// Analyse one image. `clock` measures this image's time budget.
    pub fn analyze(&self, bytes: &[u8], clock: &dyn Clock) -> PixelReport {
        let mut report = PixelReport::default();
        let decoded = match guarded(|| decode::decode(bytes, &self.budget)) {
            Ok(Ok(d)) => d,
            Ok(Err(skip)) => {
                report.skipped = Some(skip.to_string());
                return report;
            }
            Err(panic) => {
                report.skipped = Some(format!(
                    "the decoder failed on this image ({panic}); pixels not analysed"
                ));
                return report;
            }
        };
        report.format = Some(decoded.format);
        report.size = Some((decoded.width, decoded.height));
        report.analysed_size = Some(decoded.luma.dimensions());
        report.completed.push(Step::Decode);
        let place = |b: BBox| b.scaled(decoded.scale, decoded.width, decoded.height);

        let steps = [Step::Codes, Step::Faces, Step::Text];
        for (k, step) in steps.iter().enumerate() {
            if clock.elapsed() >= self.budget.time {
                let left: Vec<&str> = steps
                    .get(k..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|s| s.name())
                    .collect();
                report.notes.push(format!(
                    "time budget of {:?} spent; not run: {}",
                    self.budget.time,
                    left.join(", ")
                ));
                break;
            }
            match step {
                Step::Decode => {}
                Step::Codes => match guarded(|| codes::find_qr(&decoded.luma)) {
                    Ok((found, failed)) => {
                        for c in found {
                            let p = codes::classify(&c.payload, self.show_values);
                            report.findings.push(PixelFinding {
                                category: PixelCategory::Barcode,
                                code: p.code.to_owned(),
                                severity: p.severity,
                                bbox: place(c.bbox),
                                confidence: 1.0,
                                value: p.value,
                                detail: Some(p.detail),
                            });
                        }
                        if failed > 0 {
                            report.notes.push(format!(
                                "{failed} QR code(s) located but not decodable (damaged, blurred or too small)"
                            ));
                        }
                        report.completed.push(Step::Codes);
                    }
                    Err(panic) => report.notes.push(format!("QR search failed: {panic}")),
                },
                Step::Faces => match &self.faces {
                    Err(e) => report.notes.push(e.to_string()),
                    Ok(detector) => {
                        if let Some(why) = detector.fallback() {
                            report.notes.push(why.to_owned());
                        }
                        let left = self.budget.time.saturating_sub(clock.elapsed());
                        match guarded(|| {
                            let upright = decode::upright(&decoded.luma, decoded.orientation);
                            let found = detector.detect_within(&upright, left);
                            (found, upright.dimensions())
                        }) {
                            Ok((found, (uw, uh))) => {
                                let total = found.faces.len();
                                for (k, f) in found.faces.iter().enumerate() {
                                    let stored =
                                        decode::unorient(f.bbox, decoded.orientation, uw, uh);
                                    report.findings.push(PixelFinding {
                                        category: PixelCategory::Face,
                                        code: "face.frontal".to_owned(),
                                        severity: proofpix_analysis::RiskLevel::Medium,
                                        bbox: place(stored),
                                        confidence: f.confidence,
                                        value: format!("face {} of {total}", k + 1),
                                        detail: Some(if detector.is_net() {
                                            format!(
                                                "face, about {} px wide (face network score {:.2})",
                                                (f64::from(f.bbox.w) * decoded.scale).round(),
                                                f.confidence
                                            )
                                        } else {
                                            format!(
                                                "frontal face, about {} px wide ({} overlapping detections)",
                                                (f64::from(f.bbox.w) * decoded.scale).round(),
                                                f.neighbors
                                            )
                                        }),
                                    });
                                }
                                if let Some(n) = found.note {
                                    report.notes.push(n);
                                } else {
                                    report.completed.push(Step::Faces);
                                }
                            }
                            Err(panic) => report.notes.push(format!("face search failed: {panic}")),
                        }
                    }
                },
                Step::Text => match &self.ocr {
                    Err(e) => report.notes.push(e.to_string()),
                    Ok(t) => {
                        let straight = guarded(|| deskew::straighten(&decoded.luma)).ok().flatten();
                        let (ocr_img, geometry) = match &straight {
                            Some((img, g, deg)) => {
                                report.notes.push(format!(
                                    "text straightened by {deg:.2} degrees before OCR"
                                ));
                                (img, Some(*g))
                            }
                            None => (&decoded.luma, None),
                        };
                        let unrotate = |b: BBox| geometry.map_or(b, |g| g.box_to_source(b));
                        match t.recognise(ocr_img, self.budget.ocr_timeout) {
                            Err(e) => report.notes.push(e.to_string()),
                            Ok(lines) => {
                                for line in &lines {
                                    let matches =
                                        guarded(|| text::detect(&line.text)).unwrap_or_default();
                                    for m in matches {
                                        let (bbox, conf) = line.span(m.start, m.end);
                                        let raw = line.text.get(m.start..m.end).unwrap_or("");
                                        let value = if self.show_values {
                                            m.normalized.clone()
                                        } else {
                                            text::mask(m.kind, raw)
                                        };
                                        report.findings.push(PixelFinding {
                                            category: PixelCategory::TextPii,
                                            code: m.kind.code().to_owned(),
                                            severity: m.kind.severity(),
                                            bbox: place(unrotate(bbox)),
                                            confidence: m.confidence * conf,
                                            value,
                                            detail: Some(m.detail),
                                        });
                                    }
                                }
                                if self.keep_text {
                                    report.ocr_text = lines.into_iter().map(|l| l.text).collect();
                                }
                                report.completed.push(Step::Text);
                            }
                        }
                    }
                },
            }
        }
        raise_faces_with_personal_text(&mut report.findings);
        report
    }
}

/// A face shown together with personal data in text is most likely an identity document, a
/// badge or a card: each face becomes `face.with_text_pii`, high.
fn raise_faces_with_personal_text(findings: &mut [PixelFinding]) {
    if !findings
        .iter()
        .any(|f| f.category == PixelCategory::TextPii)
    {
        return;
    }
    for f in findings
        .iter_mut()
        .filter(|f| f.category == PixelCategory::Face)
    {
        f.code = "face.with_text_pii".to_owned();
        f.severity = proofpix_analysis::RiskLevel::High;
        if let Some(d) = f.detail.as_mut() {
            d.push_str("; shown with personal data in text (an identity document or card?)");
        }
    }
}

/// The face cascade located on this machine, read once per process (the XML is half a
/// megabyte; stages are made per integration and per command).
fn located_faces() -> Result<Arc<FaceDetector>, CascadeError> {
    static FACES: std::sync::OnceLock<Result<Arc<FaceDetector>, CascadeError>> =
        std::sync::OnceLock::new();
    FACES
        .get_or_init(|| FaceDetector::locate().map(Arc::new))
        .clone()
}

/// Read the file at `path` whole, refusing one longer than `max` bytes: a model or cascade
/// file named by an environment variable may be anything (a huge file, `/dev/zero`), so the
/// length is checked first and the read stops at `max + 1` bytes whatever the length said.
pub(crate) fn read_bounded(path: &std::path::Path, max: u64) -> Result<Vec<u8>, CascadeError> {
    use std::io::Read;
    let io = |message: String| CascadeError::Io {
        path: path.display().to_string(),
        message,
    };
    let over = |len: u64| io(format!("{len} bytes is over the {max}-byte limit"));
    let file = std::fs::File::open(path).map_err(|e| io(e.to_string()))?;
    let len = file.metadata().map_err(|e| io(e.to_string()))?.len();
    if len > max {
        return Err(over(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io(e.to_string()))?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > max {
        return Err(over(read));
    }
    Ok(bytes)
}

/// Run `f`, turning a panic into its message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proofpix_analysis::RiskLevel;

    fn finding(category: PixelCategory, code: &str, severity: RiskLevel) -> PixelFinding {
        PixelFinding {
            category,
            code: code.to_owned(),
            severity,
            bbox: BBox::default(),
            confidence: 0.9,
            value: String::new(),
            detail: Some("frontal face".to_owned()),
        }
    }

    #[test]
    fn a_face_with_personal_text_is_raised_to_high() {
        let mut alone = vec![finding(
            PixelCategory::Face,
            "face.frontal",
            RiskLevel::Medium,
        )];
        raise_faces_with_personal_text(&mut alone);
        assert_eq!(alone[0].severity, RiskLevel::Medium);
        assert_eq!(alone[0].code, "face.frontal");

        let mut id_card = vec![
            finding(PixelCategory::Face, "face.frontal", RiskLevel::Medium),
            finding(
                PixelCategory::TextPii,
                "text_pii.national_id.uk_nino",
                RiskLevel::High,
            ),
            finding(PixelCategory::Barcode, "barcode.url", RiskLevel::Low),
        ];
        raise_faces_with_personal_text(&mut id_card);
        assert_eq!(id_card[0].code, "face.with_text_pii");
        assert_eq!(id_card[0].severity, RiskLevel::High);
        assert!(
            id_card[0]
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("identity document")
        );
        assert_eq!(id_card[2].severity, RiskLevel::Low);
    }

    #[test]
    fn a_bounded_read_refuses_long_files_and_endless_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model");
        std::fs::write(&p, [7u8; 100]).unwrap();
        assert_eq!(read_bounded(&p, 100).unwrap(), vec![7u8; 100]);
        let over = read_bounded(&p, 99).unwrap_err().to_string();
        assert!(
            over.contains("100 bytes is over the 99-byte limit"),
            "{over}"
        );
        let missing = read_bounded(&dir.path().join("absent"), 99).unwrap_err();
        assert!(matches!(missing, CascadeError::Io { .. }), "{missing:?}");
        // A character device says it is empty and never ends.
        let zero = std::path::Path::new("/dev/zero");
        if zero.exists() {
            let endless = read_bounded(zero, 1000).unwrap_err().to_string();
            assert!(
                endless.contains("1001 bytes is over the 1000-byte limit"),
                "{endless}"
            );
        }
    }

    #[test]
    fn a_face_finding_is_an_analysis_finding_in_the_face_category() {
        let f = finding(PixelCategory::Face, "face.frontal", RiskLevel::Medium)
            .into_finding(&proofpix_analysis::Policy::default());
        assert_eq!(f.category, proofpix_analysis::Category::Face);
        assert_eq!(f.category.as_str(), "face");
        assert_eq!(f.severity, RiskLevel::Medium);
        assert_eq!(f.source.group, "Faces");
    }
}
