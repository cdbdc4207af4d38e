//! What one image may cost: pixels, bytes, analysis resolution and time.
//!
//! The pixel stage reads untrusted images, so every limit is checked *before* the work it
//! bounds: dimensions before decoding (a 100 000 x 100 000 PNG is a few hundred bytes),
//! allocation inside the decoder, the analysis resolution before any detector runs, and the
//! time budget between detector steps. A single step is not interrupted (the QR search and
//! the tesseract subprocess have their own bounds); the budget decides whether the next one
//! starts.

use std::time::{Duration, Instant};

/// Limits for one image. The defaults suit a daemon analysing photos and screenshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Largest `width * height` decoded (default 64 megapixels: a 9248 x 6936 phone photo is
    /// 64.1 MP and is refused, an 8000 x 6000 camera frame is not). Checked from the header,
    /// before any pixel buffer exists.
    pub max_pixels: u64,
    /// Largest allocation the decoder may make, in bytes (default 512 MiB: 64 MP of RGBA16).
    pub max_alloc: u64,
    /// Longest side the detectors see (default 2400 px). Larger images are downscaled once,
    /// after decoding; boxes are mapped back to the original's coordinates. 2400 px keeps
    /// 10 pt text on a photographed A4 page above tesseract's ~10 px x-height floor.
    pub analysis_max_side: u32,
    /// Time for the whole image (default 20 s). Checked between steps; steps not started in
    /// time are listed in the report as skipped.
    pub time: Duration,
    /// Time the OCR subprocess may run before it is killed (default 15 s).
    pub ocr_timeout: Duration,
    /// Longest side the face search sees (default 1280 px; the analysis image is downscaled
    /// again for it). Faces narrower than about 20 px at this size (1.6% of the longer side)
    /// are not found; the search stops between scales when the time budget is spent.
    pub face_max_side: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_pixels: 64_000_000,
            max_alloc: 512 * 1024 * 1024,
            analysis_max_side: 2400,
            time: Duration::from_secs(20),
            ocr_timeout: Duration::from_secs(15),
            face_max_side: 1280,
        }
    }
}

/// Elapsed time since the stage started on an image. A trait so tests move time by hand
/// instead of racing a real deadline.
pub trait Clock {
    /// Time spent so far.
    fn elapsed(&self) -> Duration;
}

/// The real clock: time since construction.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock(Instant);

impl MonotonicClock {
    /// Start counting now.
    pub fn start() -> Self {
        Self(Instant::now())
    }
}

impl Clock for MonotonicClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}
