//! ProofPix analysis core: given the bytes of an image, say what in its metadata can identify,
//! locate or expose a person, how risky that is, and write a sanitised copy on request.
//!
//! The CLI, the daemon and the benchmarks all call this crate; it is pure (no I/O beyond the
//! [`ByteSource`] it is handed, no async, no network). Its main design decision is that every
//! parser reads through a counting, bounds-checked [`source::Reader`] over a random-access
//! source, so the daemon can analyse a remote file from the head and tail ranges it fetched
//! and learn from [`Report::needs`] which other ranges to fetch.
//!
//! Layers:
//! - [`container`]: magic-byte detection and walkers for JPEG, TIFF/RAW, PNG, WebP, HEIF/AVIF/CR3,
//!   JPEG 2000, JPEG XL, GIF, PSD, CRW, RAF, MRW and X3F; QuickTime/MP4 user data (vendor tables).
//! - `family`: EXIF/TIFF IFDs, maker notes (privacy subset), XMP, IPTC-IIM, Photoshop
//!   resources, ICC.
//! - [`classify`]: the data table that maps ExifTool-style tag names to privacy categories.
//! - `findings` and [`policy`]: codes, severities, masking, the file's risk and score.
//! - [`mod@strip`]: lossless allow-list rebuild of JPEG, PNG, WebP and TIFF, verified by re-analysis.
//!
//! ```
//! use proofpix_analysis::{Analyzer, Options, Policy, RiskLevel};
//! // A JPEG whose only metadata is a comment naming someone.
//! let mut jpeg = vec![0xff, 0xd8, 0xff, 0xfe, 0x00, 0x0b];
//! jpeg.extend_from_slice(b"Ann Smith");
//! jpeg.extend_from_slice(&[0xff, 0xd9]);
//! let report = Analyzer::new(Policy::default(), Options::default()).analyze(&jpeg);
//! assert_eq!(report.findings[0].category.as_str(), "text");
//! assert_eq!(report.findings[0].value, "A** S****");
//! assert_eq!(report.risk, RiskLevel::Low);
//! ```
//!
//! Layering (checked by .ci/layers): floor 1, may use only the host crates below it (proofpix-model); never pulls in axum, hyper, redb, reqwest, tokio, wasmtime, even transitively.
#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod bytes;
mod checks;
pub mod classify;
pub mod container;
mod ctx;
mod family;
mod findings;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod policy;
mod report;
pub mod source;
pub mod strip;
mod tagdata;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

pub use findings::{mask_email, mask_name};
pub use model::{Category, Family, Finding, Format, PixelRun, Region, RiskLevel, Source};
pub use policy::{Policy, PolicyError};
pub use report::{Report, risk_from_pixels};
pub use source::{ByteRange, ByteSource, FileSource, SourceError};
pub use strip::{StripError, StripOptions, Stripped, strip};

/// Default per-file time budget.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(2);

/// How an analysis runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Show values in full instead of masked (names, e-mails, serials, GPS). Default: false.
    pub show_values: bool,
    /// Deep mode: walk JPEG entropy data to the true end of image (finds trailers that end in
    /// an EOI marker themselves, aCropalypse-style) and decode thumbnail and main image for a
    /// perceptual-hash compare. Reads the whole file. Default: false (range mode: headers plus
    /// a 64 KiB tail window).
    pub deep: bool,
    /// Wall-clock budget per file; parsers stop and report partial results when it is spent.
    /// Default: [`DEFAULT_TIME_BUDGET`].
    pub time_budget: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            show_values: false,
            deep: false,
            time_budget: DEFAULT_TIME_BUDGET,
        }
    }
}

impl Options {
    /// Options with values shown or masked.
    pub fn with_show_values(mut self, show: bool) -> Self {
        self.show_values = show;
        self
    }
    /// Options with deep mode on or off.
    pub fn with_deep(mut self, deep: bool) -> Self {
        self.deep = deep;
        self
    }
    /// Options with a per-file time budget.
    pub fn with_time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = budget;
        self
    }
}

/// Analyses files under one policy and one set of options.
#[derive(Debug, Clone, Default)]
pub struct Analyzer {
    policy: Policy,
    options: Options,
}

impl Analyzer {
    /// An analyzer with this policy and these options.
    pub fn new(policy: Policy, options: Options) -> Self {
        Self { policy, options }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Analyse one file. Never panics: a parser bug becomes `Report::error` for this file.
    pub fn analyze(&self, src: &dyn ByteSource) -> Report {
        let reader = source::Reader::new(src);
        let run = catch_unwind(AssertUnwindSafe(|| self.run(&reader)));
        match run {
            Ok(r) => r,
            Err(_) => Report {
                format: Format::Unsupported,
                risk: RiskLevel::None,
                score: 0,
                findings: Vec::new(),
                bytes_read: reader.bytes_read(),
                error: Some("internal error while parsing this file (a bug); no result".to_owned()),
                needs: reader.needs(),
                policy_version: self.policy.version(),
                pixels: None,
            },
        }
    }

    fn run(&self, reader: &source::Reader<'_>) -> Report {
        let head = reader.read_upto(0, 32);
        let mut ctx = ctx::Ctx::new(reader, &self.options);
        let format = match &head {
            Ok(h) => container::detect(h),
            Err(e) => {
                ctx.read_error("file head", e);
                Format::Unsupported
            }
        };
        if head.is_ok() {
            if format == Format::Unsupported {
                ctx.error(
                    "unsupported format: not JPEG, TIFF/RAW, PNG, WebP, HEIF/AVIF/CR3, JPEG 2000, JPEG XL, GIF, PSD, CRW, RAF, MRW, X3F or QuickTime/MP4",
                );
            } else {
                container::walk(&mut ctx, format);
                checks::thumbnails(&mut ctx, format);
            }
        }
        let findings = findings::build(&ctx.items, &self.policy, self.options.show_values);
        let (risk, score) = findings::risk(&findings, &self.policy);
        Report {
            format,
            risk,
            score,
            findings,
            bytes_read: reader.bytes_read(),
            error: ctx.error_summary(),
            needs: reader.needs(),
            policy_version: self.policy.version(),
            pixels: None,
        }
    }
}
