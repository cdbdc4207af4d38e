//! Entry point and oracle for the fuzz target in `fuzz/` and for `tests/mutated.rs` (not a
//! stable API).
//!
//! [`check_analyze`] runs the stage's own entry, [`PixelStage::analyze`], on any bytes: the
//! header gate and bounded decode, then the QR search. OCR (a tesseract subprocess) and the
//! face search (a model file that may not be on the fuzzing machine) are switched off, and the
//! budget is small, so one input stays in the milliseconds. The oracle asserts what must hold
//! for any input: a skipped image has no findings; a decoded one is within the budget and its
//! boxes inside it; no step of our own panicked (the stage catches panics and notes them, so a
//! caught panic is turned back into a failure here).

use std::sync::OnceLock;
use std::time::Duration;

use crate::{Budget, MonotonicClock, PixelReport, PixelStage, Step};

/// The budget the fuzz target and the mutation test analyse under: the default's checks at
/// a quarter of its sizes (4 megapixels decoded, 64 MiB per allocation, 640 px analysed).
pub fn budget() -> Budget {
    Budget {
        max_pixels: 4_000_000,
        max_alloc: 64 * 1024 * 1024,
        analysis_max_side: 640,
        time: Duration::from_secs(5),
        ..Budget::default()
    }
}

/// The stage under [`budget`], without OCR or faces (made once per process).
pub fn stage() -> &'static PixelStage {
    static STAGE: OnceLock<PixelStage> = OnceLock::new();
    STAGE.get_or_init(|| PixelStage {
        budget: budget(),
        ocr: Err(crate::OcrError::Unavailable(
            "switched off for fuzzing".to_owned(),
        )),
        faces: Err(crate::CascadeError::Invalid(
            "switched off for fuzzing".to_owned(),
        )),
        show_values: false,
        keep_text: false,
    })
}

/// Analyse `data` with [`stage`] and check the report's invariants; panics when one fails.
pub fn check_analyze(data: &[u8]) -> PixelReport {
    let r = stage().analyze(data, &MonotonicClock::start());
    check(&r);
    r
}

/// The invariants of a report made under [`budget`].
pub fn check(r: &PixelReport) {
    let b = budget();
    if let Some(why) = &r.skipped {
        assert!(!why.is_empty());
        assert!(r.findings.is_empty(), "findings in a skipped image: {r:?}");
        assert!(
            r.completed.is_empty(),
            "steps ran on a skipped image: {r:?}"
        );
        return;
    }
    assert_eq!(r.completed.first(), Some(&Step::Decode), "{r:?}");
    let (w, h) = r.size.unwrap_or_default();
    assert!(w > 0 && h > 0, "{r:?}");
    assert!(u64::from(w) * u64::from(h) <= b.max_pixels, "{r:?}");
    let (aw, ah) = r.analysed_size.unwrap_or_default();
    assert!(
        aw > 0 && ah > 0 && aw <= w && ah <= h && aw.max(ah) <= b.analysis_max_side,
        "{r:?}"
    );
    for f in &r.findings {
        let x = u64::from(f.bbox.x) + u64::from(f.bbox.w);
        let y = u64::from(f.bbox.y) + u64::from(f.bbox.h);
        assert!(x <= u64::from(w) && y <= u64::from(h), "box outside: {f:?}");
        assert!((0.0..=1.0).contains(&f.confidence), "{f:?}");
    }
    for n in &r.notes {
        assert!(
            !n.starts_with("QR search failed") && !n.starts_with("face search failed"),
            "a step panicked: {n}"
        );
    }
}
