//! The state one analysis carries through the parsers: what was found, what went wrong, and
//! the limits (time budget, nesting depth) every parser checks.
//!
//! Parsers push *items* (a tag with an ExifTool-style name, a value and its origin); the
//! category comes from [`crate::classify`], so the parsers hold no privacy rules. They also record
//! *facts* the cross-checks need (main image size, embedded images, where the image data ends).
//!
//! A parser that hits bad data records an error string and returns; it never aborts the file, so
//! a broken maker note cannot hide a GPS IFD parsed before or after it.

use std::time::Instant;

use crate::Options;
use crate::classify::{classify, is_empty_value};
use crate::model::{Category, Family};
use crate::source::{ReadError, Reader};

/// How deep containers and directories may nest (TIFF in JPEG in RAF, maker note IFDs, XMP
/// structures). Real files need fewer than 8 levels.
pub const MAX_DEPTH: u32 = 16;

/// At most this many errors are kept per file; the rest are counted.
const MAX_ERRORS: usize = 32;

/// At most this many items per file; a file with more is hostile or a tag dump.
const MAX_ITEMS: usize = 20_000;

/// An extracted value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// Text (already decoded and trimmed).
    Text(String),
    /// A GPS fix in decimal degrees with the resolution it was recorded at (metres).
    Gps {
        lat: f64,
        lon: f64,
        resolution_m: f64,
    },
    /// An embedded binary (thumbnail, preview, video) of this many bytes.
    Binary(u64),
}

/// One extracted tag.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub category: Category,
    pub family: Family,
    pub group: String,
    pub tag: String,
    pub name: String,
    pub offset: Option<u64>,
    pub value: Value,
}

/// An embedded image found while parsing.
#[derive(Debug, Clone, Default)]
pub(crate) struct EmbeddedImage {
    pub group: String,
    pub name: String,
    /// Absolute offset in the file, when the image lies in the file as is.
    pub offset: Option<u64>,
    pub len: u64,
    /// The bytes, when they were already in memory and small.
    pub data: Option<Vec<u8>>,
}

/// Facts for the cross-checks.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// Main image size from SOF/IHDR/VP8/ispe/IFD0.
    pub main_dims: Option<(u32, u32)>,
    /// Embedded thumbnails and previews.
    pub images: Vec<EmbeddedImage>,
    /// Where the image proper ends (after EOI, IEND, RIFF size), if determined.
    pub image_end: Option<u64>,
    /// Motion photo / micro video length announced by XMP (bytes from the end of the file).
    pub motion_photo_len: Option<u64>,
    /// Make (for maker-note dispatch).
    pub make: Option<String>,
    /// Model (for maker-note dispatch).
    pub model: Option<String>,
    /// Start of the JPEG entropy-coded data (after the first SOS header).
    pub scan_start: Option<u64>,
}

/// Analysis state.
pub(crate) struct Ctx<'a> {
    pub r: &'a Reader<'a>,
    pub opts: &'a Options,
    pub items: Vec<Item>,
    pub errors: Vec<String>,
    pub facts: Facts,
    deadline: Instant,
    depth: u32,
    dropped_errors: usize,
    timed_out: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(r: &'a Reader<'a>, opts: &'a Options) -> Self {
        let deadline = Instant::now()
            .checked_add(opts.time_budget)
            .unwrap_or_else(Instant::now);
        Self {
            r,
            opts,
            items: Vec::new(),
            errors: Vec::new(),
            facts: Facts::default(),
            deadline,
            depth: 0,
            dropped_errors: 0,
            timed_out: false,
        }
    }

    /// Record an error for this file (bounded).
    pub fn error(&mut self, msg: impl Into<String>) {
        if self.errors.len() < MAX_ERRORS {
            let m = msg.into();
            if !self.errors.contains(&m) {
                self.errors.push(m);
            }
        } else {
            self.dropped_errors = self.dropped_errors.saturating_add(1);
        }
    }

    /// Record a read failure with context.
    pub fn read_error(&mut self, what: &str, e: &ReadError) {
        self.error(format!("{what}: {e}"));
    }

    /// False once the time budget is spent; parsers stop their loops then.
    pub fn alive(&mut self) -> bool {
        if self.timed_out {
            return false;
        }
        if Instant::now() > self.deadline {
            self.timed_out = true;
            self.error("time budget exceeded; results are partial");
            return false;
        }
        true
    }

    /// Enter one nesting level; false (and an error) past [`MAX_DEPTH`].
    pub fn enter(&mut self) -> bool {
        if self.depth >= MAX_DEPTH {
            self.error("nesting too deep; inner structures skipped");
            return false;
        }
        self.depth = self.depth.saturating_add(1);
        true
    }

    /// Leave a level entered with [`Ctx::enter`].
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// All errors as one string, or `None`.
    pub fn error_summary(&self) -> Option<String> {
        if self.errors.is_empty() {
            return None;
        }
        let mut s = self.errors.join("; ");
        if self.dropped_errors > 0 {
            s.push_str(&format!("; and {} more", self.dropped_errors));
        }
        Some(s)
    }

    fn push(&mut self, item: Item) {
        if self.items.len() < MAX_ITEMS {
            self.items.push(item);
        }
    }

    /// A text tag: kept when its name is privacy-relevant and its value is not empty.
    pub fn text(
        &mut self,
        family: Family,
        group: &str,
        tag: &str,
        name: &str,
        offset: Option<u64>,
        value: &str,
    ) {
        let Some(category) = classify(name) else {
            return;
        };
        self.text_as(category, family, group, tag, name, offset, value);
    }

    /// A text tag with an explicit category.
    #[allow(clippy::too_many_arguments)]
    pub fn text_as(
        &mut self,
        category: Category,
        family: Family,
        group: &str,
        tag: &str,
        name: &str,
        offset: Option<u64>,
        value: &str,
    ) {
        let v = clean_text(value);
        if is_empty_value(&v) {
            return;
        }
        self.push(Item {
            category,
            family,
            group: group.to_owned(),
            tag: tag.to_owned(),
            name: name.to_owned(),
            offset,
            value: Value::Text(v),
        });
    }

    /// A GPS fix (skipped when both coordinates are zero, as ExifTool's reading is).
    #[allow(clippy::too_many_arguments)]
    pub fn gps(
        &mut self,
        family: Family,
        group: &str,
        tag: &str,
        name: &str,
        offset: Option<u64>,
        lat: f64,
        lon: f64,
        resolution_m: f64,
    ) {
        if !(lat.is_finite() && lon.is_finite()) || (lat == 0.0 && lon == 0.0) {
            return;
        }
        self.push(Item {
            category: Category::Gps,
            family,
            group: group.to_owned(),
            tag: tag.to_owned(),
            name: name.to_owned(),
            offset,
            value: Value::Gps {
                lat,
                lon,
                resolution_m,
            },
        });
    }

    /// An embedded image (thumbnail or preview) of `len` bytes.
    pub fn image(
        &mut self,
        family: Family,
        group: &str,
        tag: &str,
        name: &str,
        img: EmbeddedImage,
    ) {
        if img.len == 0 {
            return;
        }
        let category = classify(name).unwrap_or(Category::Thumbnail);
        self.push(Item {
            category,
            family,
            group: group.to_owned(),
            tag: tag.to_owned(),
            name: name.to_owned(),
            offset: img.offset,
            value: Value::Binary(img.len),
        });
        if self.facts.images.len() < 64 {
            self.facts.images.push(EmbeddedImage {
                group: group.to_owned(),
                name: name.to_owned(),
                ..img
            });
        }
    }

    /// A finding of one of the extra checks (trailer, mismatch, embedded media).
    pub fn check(
        &mut self,
        category: Category,
        group: &str,
        name: &str,
        offset: Option<u64>,
        value: String,
    ) {
        self.push(Item {
            category,
            family: Family::Container,
            group: group.to_owned(),
            tag: name.to_owned(),
            name: name.to_owned(),
            offset,
            value: Value::Text(value),
        });
    }
}

/// Trim NULs, whitespace and control characters at the ends; cap very long values.
pub(crate) fn clean_text(v: &str) -> String {
    let t = v.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let mut s: String = t.chars().take(4096).collect();
    if s.contains('\0') {
        s = s.replace('\0', " ");
    }
    s
}
